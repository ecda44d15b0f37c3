/**
 * `npm run verify -- --stack <name> (--prometheus URL --alertmanager URL [--grafana URL] | --context <kube context>)`:
 * checks a running stack the way docs/deployment-guide.md's "After pulumi up" section says: every scrape target up,
 * the gateways' series present for every configured vendor and pool, recording and alerting rules evaluating and
 * the dashboards' recorded series present, the Watchdog alert firing in Prometheus and reaching Alertmanager, and
 * Grafana answering with its datasource and every dashboard. With `--context`, it reaches the Services through
 * `kubectl port-forward` and reads Grafana's admin password from its Secret. Exit code 0 when every check passes,
 * 1 when one fails (each failure says what was found), 2 on a usage error.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as path from "path";
import { DATA_MODEL, L, R } from "../catalog";
import { StackConfig } from "../components/config";
import { durationMs } from "../components/validate";
import { allDashboards } from "../dashboards";
import { command, helpText, parseCommand } from "./cli";
import { ROOT } from "./offline";
import { loadStack } from "./pipeline";
import { stopProcesses } from "./processes";

export const VERIFY = command({
    usage: "npm run verify -- --stack <name>",
    description: `
Checks a running stack: every Prometheus scrape target up; the gateways' series for every vendor and pool of the
stack; recording and alerting rules evaluating without errors, with the dashboards' recorded series present for
every vendor; the Watchdog alert firing and reaching Alertmanager; Grafana healthy with its Prometheus datasource and
every dashboard. Give the URLs, or --context to reach the stack's Services with kubectl port-forward (Grafana's
admin password is then read from its Secret). Exit code 0 when every check passes, 1 when one fails.`,
    flags: {
        stack: {
            type: "string",
            value: "<name>",
            help: "stack whose vendors and dashboards to expect",
            default: "dev",
        },
        prometheus: { type: "string", value: "<url>", help: "Prometheus base URL, e.g. http://localhost:9090" },
        alertmanager: { type: "string", value: "<url>", help: "Alertmanager base URL, e.g. http://localhost:9093" },
        grafana: { type: "string", value: "<url>", help: "Grafana base URL; without it Grafana is not checked" },
        "grafana-user": { type: "string", value: "<user>", help: "Grafana user", default: "admin" },
        "grafana-password": {
            type: "string",
            value: "<password>",
            help: "Grafana password",
            defaultText: "$GRAFANA_PASSWORD, or with --context the grafana-admin Secret",
        },
        context: {
            type: "string",
            value: "<kube context>",
            help: "find Prometheus, Alertmanager and Grafana through kubectl port-forward in this context",
        },
        namespace: {
            type: "string",
            value: "<namespace>",
            help: "their namespace, with --context",
            defaultText: "the stack's namespaces.monitoring",
        },
        wait: {
            type: "string",
            value: "<duration>",
            help: "retry failing checks for up to this long (a stack just deployed needs a few minutes)",
            default: "0s",
        },
        "config-dir": {
            type: "string",
            value: "<dir>",
            help: "folder holding Pulumi.<name>.yaml",
            defaultText: "the project's",
        },
    },
});

export interface Check {
    readonly name: string;
    readonly ok: boolean;
    readonly detail: string;
}

export interface Endpoints {
    readonly prometheus: string;
    readonly alertmanager: string;
    readonly grafana?: string;
    readonly grafanaAuth?: { user: string; password: string };
}

type Sample = { metric: Record<string, string>; value: [number, string] };

async function getJson(url: string, headers: Record<string, string> = {}): Promise<unknown> {
    const res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) });
    const text = await res.text();
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status} ${text.slice(0, 200)}`);
    return JSON.parse(text);
}

function promClient(base: string) {
    return async (q: string): Promise<Sample[]> => {
        const body = (await getJson(`${base}/api/v1/query?query=${encodeURIComponent(q)}`)) as {
            status: string;
            data: { result: Sample[] };
        };
        if (body.status !== "success") throw new Error(`${q}: ${JSON.stringify(body)}`);
        return body.data.result;
    };
}

const list = (xs: string[], n = 8) =>
    xs.length <= n ? xs.join(", ") : `${xs.slice(0, n).join(", ")} and ${xs.length - n} more`;

/** Runs every check once. A check that cannot reach its server fails with the error. */
export async function runChecks(cfg: StackConfig, e: Endpoints): Promise<Check[]> {
    const checks: Check[] = [];
    const check = async (name: string, run: () => Promise<{ ok: boolean; detail: string }>) => {
        try {
            checks.push({ name, ...(await run()) });
        } catch (err) {
            checks.push({ name, ok: false, detail: (err as Error).message });
        }
    };
    const query = promClient(e.prometheus);
    const vendors = cfg.vendors.map((v) => v.name);
    const missingVendors = (samples: Sample[]) => {
        const seen = new Set(samples.map((s) => s.metric[L.vendor]));
        return vendors.filter((v) => !seen.has(v));
    };

    await check("Prometheus: every scrape target up", async () => {
        const body = (await getJson(`${e.prometheus}/api/v1/targets?state=active`)) as {
            data: { activeTargets: { labels: Record<string, string>; health: string; lastError: string }[] };
        };
        const targets = body.data.activeTargets;
        const down = targets.filter((t) => t.health !== "up");
        const jobs = new Set(targets.map((t) => t.labels.job));
        if (!jobs.has("proxy-gateways"))
            return {
                ok: false,
                detail: `no target in job proxy-gateways (jobs found: ${[...jobs].sort().join(", ")})`,
            };
        return down.length === 0
            ? { ok: true, detail: `${targets.length} targets in ${jobs.size} jobs, all up` }
            : {
                  ok: false,
                  detail: `${down.length} of ${targets.length} down: ${list(
                      down.map(
                          (t) => `${t.labels.job}/${t.labels.instance} (${t.health}: ${t.lastError || "no error"})`,
                      ),
                  )}`,
              };
    });

    await check("Gateways: series for every vendor and pool", async () => {
        const health = await query(DATA_MODEL.poolHealth.name);
        const seen = new Set(health.map((s) => `${s.metric[L.vendor]}/${s.metric[L.pool]}`));
        const pools = cfg.vendors.flatMap((v) => v.pools.map((p) => `${v.name}/${p.name}`));
        const missing = pools.filter((p) => !seen.has(p));
        const noRequests = missingVendors(await query(`sum by (${L.vendor}) (${DATA_MODEL.requests.name})`));
        if (missing.length > 0) return { ok: false, detail: `no ${DATA_MODEL.poolHealth.name} for ${list(missing)}` };
        return {
            ok: true,
            detail:
                `${DATA_MODEL.poolHealth.name} for all ${pools.length} pools` +
                (noRequests.length
                    ? `; no requests yet through ${noRequests.join(", ")}`
                    : "; requests through every vendor"),
        };
    });

    await check("Rules: recording and alerting rules evaluate without errors", async () => {
        const body = (await getJson(`${e.prometheus}/api/v1/rules`)) as {
            data: {
                groups: { name: string; rules: { name: string; type: string; health: string; lastError?: string }[] }[];
            };
        };
        const rules = body.data.groups.flatMap((g) => g.rules.map((r) => ({ ...r, group: g.name })));
        const bad = rules.filter((r) => r.health !== "ok");
        const recording = rules.filter((r) => r.type === "recording").length;
        const alerting = rules.filter((r) => r.type === "alerting").length;
        if (recording === 0 || alerting === 0)
            return { ok: false, detail: `${recording} recording and ${alerting} alerting rules loaded` };
        return bad.length === 0
            ? { ok: true, detail: `${recording} recording and ${alerting} alerting rules, all healthy` }
            : {
                  ok: false,
                  detail: `${bad.length} unhealthy: ${list(bad.map((r) => `${r.group}/${r.name} (${r.health}: ${r.lastError ?? ""})`))}`,
              };
    });

    await check("Rules: the dashboards' recorded series exist for every vendor", async () => {
        const wanted = [
            R.vendorHealthyPools,
            R.vendorRequests,
            R.vendorSuccessRatio,
            R.vendorBandwidth,
            R.vendorCostPerHour,
        ];
        const gaps: string[] = [];
        for (const r of wanted) {
            const missing = missingVendors(await query(r));
            if (missing.length > 0) gaps.push(`${r} (${missing.join(", ")})`);
        }
        return gaps.length === 0
            ? { ok: true, detail: `${wanted.length} recorded series present for ${vendors.length} vendors` }
            : {
                  ok: false,
                  detail: `missing: ${gaps.join("; ")} (a vendor with no traffic for 5 minutes has no rates)`,
              };
    });

    await check("Alerting: Watchdog fires in Prometheus", async () => {
        const firing = await query(`ALERTS{alertname="Watchdog", alertstate="firing"}`);
        return firing.length > 0
            ? { ok: true, detail: `firing (${firing.length} series)` }
            : {
                  ok: false,
                  detail: "Watchdog is not firing: the alert rules are not evaluated, or Prometheus just started",
              };
    });

    await check("Alerting: Watchdog reaches Alertmanager", async () => {
        const alerts = (await getJson(
            `${e.alertmanager}/api/v2/alerts?filter=${encodeURIComponent('alertname="Watchdog"')}`,
        )) as { status: { state: string }; receivers: { name: string }[] }[];
        if (alerts.length === 0)
            return {
                ok: false,
                detail: "Alertmanager has no Watchdog alert: Prometheus does not reach it (alerting.alertmanagers)",
            };
        const receivers = [...new Set(alerts.flatMap((a) => a.receivers.map((r) => r.name)))];
        return {
            ok: true,
            detail: `${alerts.length} Watchdog alert(s), routed to ${receivers.join(", ") || "no receiver"}`,
        };
    });

    if (!e.grafana) {
        checks.push({ name: "Grafana", ok: true, detail: "not checked: no --grafana URL (or --context) given" });
        return checks;
    }
    const auth: Record<string, string> = e.grafanaAuth
        ? {
              authorization:
                  "Basic " + Buffer.from(`${e.grafanaAuth.user}:${e.grafanaAuth.password}`).toString("base64"),
          }
        : {};
    await check("Grafana: healthy, with its Prometheus datasource", async () => {
        const health = (await getJson(`${e.grafana}/api/health`)) as { database?: string; version?: string };
        if (health.database !== "ok") return { ok: false, detail: `database: ${health.database}` };
        const ds = (await getJson(`${e.grafana}/api/datasources`, auth)) as { name: string; type: string }[];
        const prom = ds.filter((d) => d.type === "prometheus");
        return prom.length > 0
            ? {
                  ok: true,
                  detail: `Grafana ${health.version ?? "?"}; Prometheus datasources: ${prom.map((d) => d.name).join(", ")}`,
              }
            : {
                  ok: false,
                  detail: `no Prometheus datasource (found: ${ds.map((d) => `${d.name} (${d.type})`).join(", ") || "none"})`,
              };
    });
    await check("Grafana: every dashboard provisioned", async () => {
        const found = (await getJson(`${e.grafana}/api/search?type=dash-db&limit=5000`, auth)) as {
            uid: string;
            title: string;
        }[];
        const uids = new Set(found.map((d) => d.uid));
        const expected = Object.values(allDashboards(cfg)).map((d) => ({ uid: String(d.uid), title: String(d.title) }));
        const missing = expected.filter((d) => !uids.has(d.uid));
        return missing.length === 0
            ? { ok: true, detail: `${expected.length} dashboards: ${expected.map((d) => d.title).join(", ")}` }
            : { ok: false, detail: `missing: ${missing.map((d) => `${d.title} (uid ${d.uid})`).join(", ")}` };
    });
    return checks;
}

/** `kubectl port-forward svc/<service> :<port>` in the background; resolves with the local URL it prints. */
export function portForward(
    context: string,
    namespace: string,
    service: string,
    port: number,
    children: ChildProcess[],
): Promise<string> {
    return new Promise((resolve, reject) => {
        const p = spawn(
            "kubectl",
            ["--context", context, "-n", namespace, "port-forward", `svc/${service}`, `:${port}`],
            {
                stdio: ["ignore", "pipe", "pipe"],
            },
        );
        children.push(p);
        let out = "";
        const timer = setTimeout(
            () => reject(new Error(`kubectl port-forward svc/${service}: no answer in 20 s: ${out}`)),
            20_000,
        );
        const onData = (c: Buffer) => {
            out += c.toString();
            const m = /Forwarding from 127\.0\.0\.1:([0-9]+)/.exec(out);
            if (m) {
                clearTimeout(timer);
                resolve(`http://127.0.0.1:${m[1]}`);
            }
        };
        p.stdout!.on("data", onData);
        p.stderr!.on("data", onData);
        p.on("error", (e) => (clearTimeout(timer), reject(new Error(`kubectl: ${e.message}`))));
        p.on(
            "exit",
            (code) => (
                clearTimeout(timer),
                reject(new Error(`kubectl port-forward svc/${service} exited ${code}: ${out.trim()}`))
            ),
        );
    });
}

/** Grafana's admin password from the Secret the program creates (labelled app.kubernetes.io/name=grafana). */
export function grafanaPasswordFromCluster(context: string, namespace: string): string {
    const r = spawnSync(
        "kubectl",
        [
            "--context",
            context,
            "-n",
            namespace,
            "get",
            "secret",
            "-l",
            "app.kubernetes.io/name=grafana",
            "-o",
            "jsonpath={.items[0].data.admin-password}",
        ],
        { encoding: "utf8", timeout: 20_000 },
    );
    if (r.error || r.status !== 0 || !r.stdout)
        throw new Error(`reading Grafana's Secret: ${r.error?.message ?? r.stderr}`);
    return Buffer.from(r.stdout, "base64").toString("utf8");
}

async function main(): Promise<number> {
    const v = parseCommand(VERIFY, process.argv.slice(2));
    const usage = (m: string) => {
        process.stderr.write(`verify: ${m}\n\n${helpText(VERIFY)}`);
        return 2;
    };
    if (!v.context && (!v.prometheus || !v.alertmanager))
        return usage("give --prometheus and --alertmanager URLs, or --context to find them with kubectl");
    if (!/^([0-9]+(ms|s|m|h))+$/.test(v.wait!))
        return usage(`--wait: expected a duration such as 90s, found ${v.wait}`);
    const cfg = loadStack(v.stack!, v["config-dir"] ? path.resolve(v["config-dir"]) : ROOT);
    const children: ChildProcess[] = [];
    try {
        let endpoints: Endpoints;
        const password = v["grafana-password"] || process.env.GRAFANA_PASSWORD || undefined;
        if (v.context) {
            const ns = v.namespace ?? cfg.namespaces.monitoring;
            process.stdout.write(`reaching the Services in ${v.context}/${ns} with kubectl port-forward\n`);
            const [prometheus, alertmanager, grafana] = await Promise.all([
                portForward(v.context, ns, "prometheus", 9090, children),
                portForward(v.context, ns, "alertmanager", 9093, children),
                portForward(v.context, ns, "grafana", 3000, children),
            ]);
            endpoints = {
                prometheus: v.prometheus ?? prometheus,
                alertmanager: v.alertmanager ?? alertmanager,
                grafana: v.grafana ?? grafana,
                grafanaAuth: {
                    user: v["grafana-user"]!,
                    password: password ?? grafanaPasswordFromCluster(v.context, ns),
                },
            };
        } else {
            endpoints = {
                prometheus: v.prometheus!.replace(/\/$/, ""),
                alertmanager: v.alertmanager!.replace(/\/$/, ""),
                grafana: v.grafana?.replace(/\/$/, ""),
                grafanaAuth: password === undefined ? undefined : { user: v["grafana-user"]!, password },
            };
        }
        const deadline = Date.now() + durationMs(v.wait!);
        let checks = await runChecks(cfg, endpoints);
        while (checks.some((c) => !c.ok) && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 5_000));
            checks = await runChecks(cfg, endpoints);
        }
        for (const c of checks) process.stdout.write(`${c.ok ? "ok  " : "FAIL"}  ${c.name}: ${c.detail}\n`);
        const failed = checks.filter((c) => !c.ok).length;
        process.stdout.write(failed === 0 ? "every check passed\n" : `${failed} check(s) failed\n`);
        return failed === 0 ? 0 : 1;
    } finally {
        // Stop every port-forward started, and wait (up to 5 s, then SIGKILL) until they are gone.
        await stopProcesses(children, 5_000);
    }
}

if (require.main === module) {
    main().then(
        (code) => process.exit(code),
        (e: Error) => {
            process.stderr.write(`verify: ${e.message}\n`);
            process.exit(1);
        },
    );
}
