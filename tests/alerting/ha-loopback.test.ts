import { ChildProcess, spawn } from "child_process";
import { expect } from "chai";
import * as fs from "fs";
import * as http from "http";
import * as path from "path";
import YAML from "yaml";
import { buildAlertmanagerConfig } from "../../components/alerting/alertmanager-config";
import { buildAlertRules } from "../../components/alerting/rules";
import { StackConfig } from "../../components/config";
import { buildFederationConfig, buildRecordingRules, buildScrapeConfig } from "../../components/prometheus";
import { toStaticTargets } from "../../components/prometheus/scrape";
import { stackConfig } from "../harness";
import { tempDir, tool } from "../promtool";
import { HOST, closeServer, freePort, waitFor } from "../proxy/helpers";

/**
 * The HA shape of prod on loopback, with Debian's Prometheus and Alertmanager running the generated configs: a pair of
 * cluster Prometheus (replica external label from POD_NAME, as in the StatefulSet), a three-member Alertmanager
 * cluster, a webhook receiver counting what arrives, and a global Prometheus federating the pair.
 */
type Notification = { receiver: string; alerts: { labels: Record<string, string> }[] };

function getJson(port: number, p: string): Promise<any> {
    return new Promise((resolve, reject) => {
        http.get({ host: HOST, port, path: p }, (res) => {
            let t = "";
            res.on("data", (c) => (t += c));
            res.on("end", () => {
                try {
                    resolve(JSON.parse(t));
                } catch {
                    reject(new Error(`not JSON from :${port}${p}: ${t.slice(0, 80)}`));
                }
            });
        }).on("error", reject);
    });
}
function postJson(port: number, p: string, body: unknown): Promise<number> {
    return new Promise((resolve, reject) => {
        const data = JSON.stringify(body);
        const req = http.request(
            { host: HOST, port, path: p, method: "POST", headers: { "content-type": "application/json" } },
            (res) => {
                res.resume();
                res.on("end", () => resolve(res.statusCode ?? 0));
            },
        );
        req.on("error", reject);
        req.end(data);
    });
}
const ok = (f: () => Promise<boolean>) => async () => {
    try {
        return await f();
    } catch {
        return false;
    }
};

/** Every receiver of the stack as a webhook to `url/<receiver>`. */
function withWebhooks(stack: string, extra: Record<string, unknown> = {}): StackConfig {
    return stackConfig(stack, {
        alerting: {
            receivers: ["oncall", "proxy-alerts", "deadmansswitch"].map((name) => ({ name, type: "webhook" })),
            criticalReceiver: "oncall",
            warningReceiver: "proxy-alerts",
            watchdogReceiver: "deadmansswitch",
        },
        alertingSecrets: { oncall: "http://x", "proxy-alerts": "http://x", deadmansswitch: "http://x" },
        ...extra,
    });
}

class Procs {
    private readonly procs: ChildProcess[] = [];
    private readonly logs: string[] = [];
    /** Starts a server, its output into `log` (read back by `tail` when a test fails). */
    start(cmd: string, args: string[], log: string, env: Record<string, string> = {}): void {
        const fd = fs.openSync(log, "w");
        this.procs.push(spawn(cmd, args, { stdio: ["ignore", fd, fd], env: { ...process.env, ...env } }));
        fs.closeSync(fd);
        this.logs.push(log);
    }
    tail(): string {
        return this.logs
            .map((l) => `== ${l}\n${fs.readFileSync(l, "utf8").split("\n").slice(-8).join("\n")}`)
            .join("\n");
    }
    async stop(): Promise<void> {
        await Promise.all(
            this.procs.map(
                (p) =>
                    new Promise<void>((r) => {
                        if (p.exitCode !== null) return r();
                        p.once("exit", () => r());
                        p.kill("SIGTERM");
                        setTimeout(() => p.kill("SIGKILL"), 5000).unref();
                    }),
            ),
        );
    }
}

/** Alertmanager members on loopback, clustered when more than one. */
async function startAlertmanagers(procs: Procs, dir: string, config: unknown, n: number): Promise<number[]> {
    tool("prometheus-alertmanager", "prometheus-alertmanager");
    const file = path.join(dir, "alertmanager.yml");
    fs.writeFileSync(file, YAML.stringify(config, { lineWidth: 0 }));
    const web = await Promise.all(Array.from({ length: n }, () => freePort()));
    const gossip = await Promise.all(Array.from({ length: n }, () => freePort()));
    web.forEach((port, i) => {
        const cluster =
            n > 1
                ? [
                      `--cluster.listen-address=${HOST}:${gossip[i]}`,
                      `--cluster.advertise-address=${HOST}:${gossip[i]}`,
                      ...gossip.filter((_, j) => j !== i).map((g) => `--cluster.peer=${HOST}:${g}`),
                  ]
                : ["--cluster.listen-address="];
        procs.start(
            "prometheus-alertmanager",
            [
                `--config.file=${file}`,
                `--storage.path=${path.join(dir, `am-${i}`)}`,
                `--web.listen-address=${HOST}:${port}`,
                ...cluster,
            ],
            path.join(dir, `am-${i}.log`),
        );
    });
    for (const port of web)
        await waitFor(
            ok(async () => (await getJson(port, "/api/v2/status")).cluster !== undefined),
            20_000,
            "Alertmanager",
        );
    if (n > 1)
        await waitFor(
            ok(async () => (await getJson(web[0], "/api/v2/status")).cluster.peers.length === n),
            30_000,
            "the Alertmanager cluster to form",
        );
    return web;
}

describe("HA on loopback: an Alertmanager cluster, a Prometheus pair and a global Prometheus", function () {
    this.timeout(180_000);
    const procs = new Procs();
    const received: Notification[] = [];
    let hook: http.Server;
    let hookPort = 0;

    before(async () => {
        tool("prometheus", "prometheus");
        hook = http.createServer((req, res) => {
            let t = "";
            req.on("data", (c) => (t += c));
            req.on("end", () => {
                received.push(JSON.parse(t));
                res.writeHead(200).end();
            });
        });
        await new Promise<void>((r) => hook.listen(0, HOST, () => r()));
        hookPort = (hook.address() as { port: number }).port;
    });
    afterEach(function () {
        if (this.currentTest?.state === "failed") console.log(procs.tail());
    });
    after(async () => {
        await procs.stop();
        await closeServer(hook);
    });

    it("an HA pair and three Alertmanagers deliver one notification per alert, without a replica label", async () => {
        const cfg = withWebhooks("prod", { scrapeInterval: "2s", evaluationInterval: "2s" });
        const secrets = Object.fromEntries(
            cfg.alerting.receivers.map((r) => [r.name, `http://${HOST}:${hookPort}/${r.name}`]),
        );
        const dir = tempDir("ha-");
        const ams = await startAlertmanagers(procs, dir, buildAlertmanagerConfig(cfg, secrets), 3);

        fs.mkdirSync(path.join(dir, "rules"));
        fs.writeFileSync(path.join(dir, "rules", "recording.yaml"), YAML.stringify(buildRecordingRules(cfg)));
        fs.writeFileSync(path.join(dir, "rules", "alerts.yaml"), YAML.stringify(buildAlertRules(cfg)));
        const promPorts = [await freePort(), await freePort()];
        promPorts.forEach((port, i) => {
            const generated = toStaticTargets(
                buildScrapeConfig(cfg, { replicaLabel: true }),
                { prometheus: [{ targets: [`${HOST}:${port}`] }] },
                ams.map((p) => `${HOST}:${p}`),
            ) as any;
            generated.rule_files = [path.join(dir, "rules", "*.yaml")];
            const file = path.join(dir, `prometheus-${i}.yml`);
            fs.writeFileSync(file, YAML.stringify(generated, { lineWidth: 0 }));
            procs.start(
                "prometheus",
                [
                    `--config.file=${file}`,
                    `--storage.tsdb.path=${path.join(dir, `prom-${i}`)}`,
                    `--web.listen-address=${HOST}:${port}`,
                    "--enable-feature=expand-external-labels",
                    // Alerts evaluated before the Alertmanagers are known are dropped and resent after this delay
                    // (1m by default): shortened so the test does not wait a minute.
                    "--rules.alert.resend-delay=5s",
                ],
                path.join(dir, `prom-${i}.log`),
                { POD_NAME: `prometheus-${i}` },
            );
        });

        // Both replicas fire Watchdog and send it to all three Alertmanagers.
        await waitFor(
            ok(async () => {
                const alerts = await getJson(ams[0], "/api/v2/alerts?filter=alertname%3D%22Watchdog%22");
                return alerts.length >= 1 && received.length >= 1;
            }),
            60_000,
            "Watchdog to reach the webhook",
        );
        // Every Alertmanager holds the one Watchdog alert, without a replica label.
        for (const port of ams) {
            const alerts = await getJson(port, "/api/v2/alerts?filter=alertname%3D%22Watchdog%22");
            expect(alerts.map((a: any) => a.labels)).to.deep.equal([
                { alertname: "Watchdog", cluster: "prod-us", severity: "info" },
            ]);
        }
        // The cluster sends it once: members wait their peer position x 15 s and see the first one's log.
        await new Promise((r) => setTimeout(r, 40_000));
        const watchdog = received.filter((n) => n.alerts.some((a) => a.labels.alertname === "Watchdog"));
        expect(watchdog.map((n) => n.receiver)).to.deep.equal(["deadmansswitch"]);
        expect(watchdog[0].alerts.map((a) => a.labels)).to.deep.equal([
            { alertname: "Watchdog", cluster: "prod-us", severity: "info" },
        ]);

        // The global Prometheus federates the pair through one named replica: no replica label is stored.
        const globalPort = await freePort();
        const fed = buildFederationConfig(cfg) as any;
        const local = fed.scrape_configs.find((j: any) => j.job_name === "federate-prod-us");
        local.static_configs[0].targets = [`${HOST}:${promPorts[0]}`];
        local.scrape_interval = "2s";
        local.scrape_timeout = "2s";
        fed.scrape_configs = [local];
        delete fed.alerting;
        delete fed.remote_write;
        fed.rule_files = [];
        const gfile = path.join(dir, "global.yml");
        fs.writeFileSync(gfile, YAML.stringify(fed, { lineWidth: 0 }));
        procs.start(
            "prometheus",
            [
                `--config.file=${gfile}`,
                `--storage.tsdb.path=${path.join(dir, "global")}`,
                `--web.listen-address=${HOST}:${globalPort}`,
            ],
            path.join(dir, "global.log"),
        );
        const q = (expr: string) => getJson(globalPort, `/api/v1/query?query=${encodeURIComponent(expr)}`);
        await waitFor(
            ok(async () => (await q("count_over_time(vendor:proxy_price_per_gb:config[1m])")).data.result.length > 0),
            30_000,
            "the global Prometheus to federate",
        );
        await new Promise((r) => setTimeout(r, 5000));
        const stored = (
            await getJson(globalPort, `/api/v1/series?match[]=${encodeURIComponent('{cluster="prod-us"}')}`)
        ).data as Record<string, string>[];
        expect(stored.length).to.be.greaterThan(3);
        expect(stored.filter((s) => "replica" in s)).to.deep.equal([]);
        const names = new Set(stored.map((s) => s.__name__));
        // Only recorded series, besides the global's own series about its federation scrape (up, scrape_*).
        expect([...names].filter((n) => !n.includes(":") && n !== "up" && !n.startsWith("scrape_"))).to.deep.equal([]);
    });

    it("a real Alertmanager inhibits only within a vendor and a symptom (the rules' own labels)", async () => {
        const cfg = withWebhooks("prod");
        const dir = tempDir("inhibit-");
        const secrets = Object.fromEntries(cfg.alerting.receivers.map((r) => [r.name, `http://${HOST}:${hookPort}/x`]));
        const [am] = await startAlertmanagers(procs, dir, buildAlertmanagerConfig(cfg, secrets), 1);
        const rules = Object.fromEntries(
            buildAlertRules(cfg).groups.flatMap((g) => g.rules.map((r) => [r.alert, r.labels])),
        );
        const alert = (alertname: string, vendor: string, extra: Record<string, string> = {}) => ({
            labels: { alertname, cluster: "prod-us", vendor, ...rules[alertname], ...extra },
            startsAt: new Date().toISOString(),
        });
        const sent = [
            // vendor-a: over its bandwidth budget, with auth errors, refusals and one pool of three down.
            alert("VendorBandwidthBudgetExceeded", "vendor-a"),
            alert("VendorAuthErrors", "vendor-a"),
            alert("VendorRefusalsHigh", "vendor-a"),
            alert("VendorPoolDown", "vendor-a", { pool: "dc-us-east" }),
            // vendor-b: every pool down, which explains its pool alert but not rejected credentials.
            alert("VendorAllPoolsDown", "vendor-b"),
            alert("VendorPoolDown", "vendor-b", { pool: "res-us" }),
            alert("VendorAuthErrors", "vendor-b"),
            // vendor-c: a fast burn, which covers its 5xx warning but not its latency.
            alert("VendorErrorBudgetBurnFast", "vendor-c"),
            alert("VendorServerErrorsHigh", "vendor-c"),
            alert("VendorLatencyHigh", "vendor-c"),
            // vendor-d (a label only): no gateway replica, hence no data and no traffic: one page, not three.
            alert("GatewayNoAvailableReplica", "vendor-d"),
            alert("VendorNoData", "vendor-d"),
            alert("VendorTrafficStopped", "vendor-d"),
        ];
        expect(await postJson(am, "/api/v2/alerts", sent)).to.equal(200);
        const key = (a: any) => `${a.labels.vendor}/${a.labels.alertname}`;
        let inhibited: string[] = [];
        await waitFor(
            ok(async () => {
                const all = await getJson(am, "/api/v2/alerts");
                inhibited = all
                    .filter((a: any) => a.status.inhibitedBy.length > 0)
                    .map(key)
                    .sort();
                return all.length === sent.length && inhibited.length >= 4;
            }),
            20_000,
            "Alertmanager to evaluate inhibitions",
        );
        expect(inhibited).to.deep.equal([
            "vendor-b/VendorPoolDown",
            "vendor-c/VendorServerErrorsHigh",
            "vendor-d/VendorNoData",
            "vendor-d/VendorTrafficStopped",
        ]);
    });
});
