/**
 * `npm run bench:fleet -- --pods 100,500,2500 [--designs ours,anchor] [--live 120] [--write]`: what the monitoring
 * stack costs as the crawler fleet grows. For each fleet size an emulated fleet (scripts/fleet.ts) is scraped at 15 s
 * by Debian's Prometheus, once with our design (the generated scrape config, recording and alert rules; gateway
 * metrics, trimmed Istio series, relabelling) and once with the anchor (every crawler sidecar scraped with Istio's
 * default labels, cAdvisor and kube-state-metrics unfiltered, no rules). Measured per run: active series, vendor-metric
 * series, samples ingested per second, Prometheus resident memory, rule evaluation time, whether scrapes keep pace,
 * and p50/p95 latency of the dashboards' queries over the last hour.
 *
 * Our design gets a real hour of history first: after a short live phase, every scraped series is written back over
 * the previous hour (counters linear in time, as the emulator produces them) with `promtool tsdb create-blocks-from
 * openmetrics`, and the recording rules are backfilled over it with `promtool tsdb create-blocks-from rules`, one pass
 * per level of rules reading recorded series. The anchor, at hundreds of thousands of series per hundred pods, has
 * only its live minutes: its query latencies flatter it. An anchor run whose projected memory exceeds 80% of the
 * machine is not started; the table says so with the projection.
 *
 * `--write` puts the results in docs/performance-tuning.md between the fleet-bench markers. All on 127.0.0.1; every
 * process it starts is stopped at the end.
 */
import { ChildProcess, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { allRecordedSeries } from "../catalog";
import { buildAlertRules } from "../components/alerting";
import { StackConfig } from "../components/config";
import { buildRecordingRules, buildScrapeConfig } from "../components/prometheus";
import { RuleGroup } from "../components/prometheus/rules";
import { toStaticTargets } from "../components/prometheus/scrape";
import { dashboardTargets } from "../dashboards";
import { Fleet } from "./fleet";
import { HOST, freePort } from "./loopback";
import { httpGet, loadStack } from "./pipeline";
import { spawnLogged, stopProcesses, waitUntil } from "./processes";
import { measured, requireTools } from "./bench-checks";
import { writeBenchSection } from "./bench-doc";
import { command, helpText, parseCommand } from "./cli";

const HOUR = 3600;
const STEP = 15;
const GOAL_MS = 100;
export const BENCH_FLEET = command({
    usage: "npm run bench:fleet --",
    description: `
What Prometheus costs as the crawler fleet grows: an emulated fleet scraped by Debian's Prometheus, with our design
and with Istio's defaults (the anchor). Needs prometheus and promtool (sudo apt-get install -y prometheus). Exit
code 1 when a figure could not be measured, 3 when a tool is missing.`,
    flags: {
        pods: { type: "string", value: "<n,n,...>", help: "crawler fleet sizes", default: "100,500,2500" },
        designs: { type: "string", value: "<ours,anchor>", help: "designs to run", default: "ours,anchor" },
        live: { type: "string", value: "<seconds>", help: "live measuring time per run, at least 60", default: "120" },
        repeats: { type: "string", value: "<n>", help: "runs of each dashboard query", default: "10" },
        write: { type: "boolean", help: "also write the tables into docs/performance-tuning.md" },
    },
});
const FLAGS = parseCommand(BENCH_FLEET, process.argv.slice(2));
requireTools("bench:fleet");
const SIZES = FLAGS.pods!.split(",").map(Number);
const DESIGNS = FLAGS.designs!.split(",") as ("ours" | "anchor")[];
const LIVE_S = Math.max(60, Number(FLAGS.live));
const REPEATS = Number(FLAGS.repeats);
for (const [name, ok] of [
    ["--pods", SIZES.every((n) => Number.isInteger(n) && n > 0)],
    ["--designs", DESIGNS.every((d) => d === "ours" || d === "anchor")],
    ["--live", Number.isFinite(LIVE_S)],
    ["--repeats", Number.isInteger(REPEATS) && REPEATS > 0],
] as const) {
    if (!ok) {
        process.stderr.write(`bench:fleet: ${name} is not valid\n\n${helpText(BENCH_FLEET)}`);
        process.exit(2);
    }
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-fleet-"));
const children: ChildProcess[] = [];
const log = (s: string) => process.stderr.write(`[${new Date().toISOString().slice(11, 19)}] ${s}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Query {
    readonly name: string;
    readonly expr: string;
}
interface Result {
    design: string;
    pods: number;
    gatewayReplicas: number;
    series?: number;
    vendorSeries?: number;
    recordedSeries?: number;
    samplesPerSecond?: number;
    rssMb?: number;
    peakRssMb?: number;
    ruleEvalMs?: number;
    maxScrapeS?: number;
    downTargets?: number;
    intervalP99S?: number;
    historyMinutes?: number;
    slowestGroup?: string;
    queries: {
        label: string;
        count: number;
        p50: number;
        p95: number;
        worst: string;
        worstP95: number;
        /** Queries whose p95 is at or over the goal (100 ms), with it. */
        over: string[];
    }[];
    /** Peak resident memory including the dashboard queries. */
    peakWithQueriesMb?: number;
    skipped?: string;
}

class Prom {
    proc?: ChildProcess;
    constructor(
        readonly port: number,
        readonly config: string,
        readonly data: string,
    ) {}
    async start(): Promise<void> {
        this.proc = spawnLogged(
            [
                "prometheus",
                `--config.file=${this.config}`,
                `--storage.tsdb.path=${this.data}`,
                "--storage.tsdb.retention.time=30d",
                `--web.listen-address=${HOST}:${this.port}`,
                "--web.enable-admin-api",
            ],
            path.join(tmp, `prometheus-${this.port}.log`),
        );
        children.push(this.proc);
        const ready = async () => (await httpGet(this.port, "/-/ready")).status === 200;
        await waitUntil("Prometheus to be ready", ready, 300_000, { [`prometheus on :${this.port}`]: this.proc });
    }
    async stop(): Promise<void> {
        if (this.proc) await stopProcesses([this.proc], 120_000);
    }
    rss(): { now: number; peak: number } {
        const status = fs.readFileSync(`/proc/${this.proc!.pid}/status`, "utf8");
        const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0);
        return { now: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
    }
    async query(
        q: string,
        range?: { start: number; end: number },
    ): Promise<{ data: { result: { metric: Record<string, string>; value: [number, string] }[] }; ms: number }> {
        const t0 = performance.now();
        const url = range
            ? `/api/v1/query_range?query=${encodeURIComponent(q)}&start=${range.start}&end=${range.end}&step=${STEP}`
            : `/api/v1/query?query=${encodeURIComponent(q)}`;
        const r = await httpGet(this.port, url);
        const ms = performance.now() - t0;
        const body = JSON.parse(r.body);
        if (body.status !== "success") throw new Error(`${q}: ${r.body.slice(0, 300)}`);
        return { data: body.data, ms };
    }
    async scalar(q: string): Promise<number | undefined> {
        const r = (await this.query(q)).data.result;
        return r.length > 0 ? Number(r[0].value[1]) : undefined;
    }
    async selfMetric(name: string, match = ""): Promise<number[]> {
        const body = (await httpGet(this.port, "/metrics")).body;
        return body
            .split("\n")
            .filter((l) => l.startsWith(name) && l.includes(match) && !l.startsWith("#"))
            .map((l) => Number(l.split(" ").pop()));
    }
}

/** The queries every dashboard panel runs, as Grafana sends them with every vendor and pool selected. */
function dashboardQueries(cfg: StackConfig): Query[] {
    return dashboardTargets(cfg).map((t) => ({
        name: `${t.dashboard} / ${t.panel}`,
        expr: t.expr
            .replace(/\$__rate_interval/g, "1m")
            .replace(/\$cluster/g, cfg.cluster)
            .replace(/\$(vendor|pool)/g, ".*"),
    }));
}

/** Without recorded series, the dashboards would run the recording rules' expressions themselves. */
function ruleQueries(groups: RuleGroup[]): Query[] {
    const seen = new Set<string>();
    return groups
        .flatMap((g) => g.rules)
        .filter((r) => !seen.has(r.expr) && seen.add(r.expr))
        .map((r) => ({ name: r.record, expr: r.expr }));
}

/** The anchor's dashboards: the same views from Istio's standard series, as hand-assembled stacks chart them. */
function anchorQueries(): Query[] {
    const req = 'istio_requests_total{reporter="source"}';
    const by = "destination_service";
    return [
        { name: "requests/s per pool", expr: `sum by (${by}) (rate(${req}[1m]))` },
        {
            name: "error ratio per pool",
            expr: `sum by (${by}) (rate(istio_requests_total{reporter="source",response_code=~"4..|5.."}[1m])) / sum by (${by}) (rate(${req}[1m]))`,
        },
        {
            name: "p95 latency per pool",
            expr: `histogram_quantile(0.95, sum by (${by}, le) (rate(istio_request_duration_milliseconds_bucket{reporter="source"}[1m])))`,
        },
        {
            name: "p50 latency per pool",
            expr: `histogram_quantile(0.5, sum by (${by}, le) (rate(istio_request_duration_milliseconds_bucket{reporter="source"}[1m])))`,
        },
        { name: "bytes/s per pool", expr: `sum by (${by}) (rate(istio_response_bytes_sum{reporter="source"}[1m]))` },
        {
            name: "bytes/s per namespace and pool",
            expr: `sum by (source_workload_namespace, ${by}) (rate(istio_response_bytes_sum{reporter="source"}[1m]))`,
        },
        {
            name: "top destinations",
            expr: `topk(10, sum by (destination_host) (rate(${req}[1m])))`,
        },
        { name: "status codes", expr: `sum by (response_code) (rate(${req}[1m]))` },
        {
            name: "crawler CPU per namespace",
            expr: "sum by (namespace) (rate(container_cpu_usage_seconds_total{container!=''}[1m]))",
        },
        {
            name: "crawler memory per namespace",
            expr: "sum by (namespace) (container_memory_working_set_bytes{container!=''})",
        },
        { name: "pods running", expr: 'sum by (namespace) (kube_pod_status_phase{phase="Running"})' },
    ];
}

/**
 * One target per crawler pod on the emulator. Sidecar targets carry the pod's labels, as Kubernetes discovery would add
 * them; cAdvisor's series carry them already (in a cluster its target is the node's kubelet).
 */
function podTargets(
    fleet: Fleet,
    port: number,
    kind: "sidecar" | "cadvisor",
): { targets: string[]; labels: Record<string, string> }[] {
    return fleet.pods.map((p) => {
        const labels: Record<string, string> =
            kind === "sidecar"
                ? {
                      instance: `10.0.${Math.floor(p.index / 250)}.${p.index % 250}:15020`,
                      namespace: p.namespace,
                      pod: p.name,
                  }
                : { instance: `node-${p.index}:10250` };
        return { targets: [`${HOST}:${port}`], labels: { __metrics_path__: `/pod/${p.index}/${kind}`, ...labels } };
    });
}

/** The single kube-state-metrics target, serving every pod's objects. */
const ksmTarget = (port: number) => ({
    targets: [`${HOST}:${port}`],
    labels: { __metrics_path__: "/kube-state-metrics" },
});

function gatewayTargets(fleet: Fleet, port: number, kind: "metrics" | "envoy") {
    return fleet.cfg.vendors.flatMap((v) =>
        Array.from({ length: fleet.gatewayReplicas }, (_, r) => ({
            targets: [`${HOST}:${port}`],
            labels: { __metrics_path__: `/gateway/${v.name}/${r}/${kind}`, instance: `${v.name}-gateway-${r}` },
        })),
    );
}

function ourConfig(cfg: StackConfig, fleet: Fleet, fleetPort: number, promPort: number, rulesDir: string) {
    const generated = toStaticTargets(buildScrapeConfig(cfg, { replicaLabel: false }), {
        "proxy-gateways": gatewayTargets(fleet, fleetPort, "metrics"),
        "istio-gateways": gatewayTargets(fleet, fleetPort, "envoy"),
        "kubelet-cadvisor": podTargets(fleet, fleetPort, "cadvisor"),
        "kube-state-metrics": [ksmTarget(fleetPort)],
        prometheus: [{ targets: [`${HOST}:${promPort}`] }],
    }) as Record<string, unknown>;
    generated.rule_files = [path.join(rulesDir, "*.yaml")];
    return generated;
}

function anchorConfig(fleet: Fleet, fleetPort: number, promPort: number) {
    const job = (name: string, static_configs: unknown[]) => ({ job_name: name, static_configs });
    return {
        global: { scrape_interval: "15s", evaluation_interval: "15s", scrape_timeout: "10s" },
        scrape_configs: [
            job("kubernetes-pods", podTargets(fleet, fleetPort, "sidecar")),
            job("kubernetes-cadvisor", podTargets(fleet, fleetPort, "cadvisor")),
            job("kube-state-metrics", [ksmTarget(fleetPort)]),
            job("prometheus", [{ targets: [`${HOST}:${promPort}`] }]),
        ],
    };
}

/** Recording rules split by level: level 0 reads only scraped series, level n reads level n-1's. */
function ruleLevels(groups: RuleGroup[]): RuleGroup[][] {
    const names = new Set(groups.flatMap((g) => g.rules.map((r) => r.record)));
    const level = new Map<string, number>();
    const reads = (expr: string) => [...names].filter((n) => new RegExp(`(^|[^\\w:])${n}($|[^\\w:])`).test(expr));
    const all = groups.flatMap((g) => g.rules);
    for (let pass = 0; pass < 20 && level.size < names.size; pass++)
        for (const r of all) {
            const deps = reads(r.expr);
            if (deps.every((d) => level.has(d) || d === r.record))
                level.set(r.record, Math.max(0, ...deps.filter((d) => d !== r.record).map((d) => level.get(d)! + 1)));
        }
    const max = Math.max(0, ...level.values());
    return Array.from({ length: max + 1 }, (_, l) =>
        groups
            .map((g) => ({ ...g, rules: g.rules.filter((r) => level.get(r.record) === l) }))
            .filter((g) => g.rules.length > 0),
    );
}

/** An hour of history for every scraped series, from one federated sample of each (see the file comment). */
async function writeHistory(prom: Prom, fleet: Fleet, file: string, end: number): Promise<number> {
    const body = (await httpGet(prom.port, `/federate?match[]=${encodeURIComponent('{job=~".+"}')}`)).body;
    const series = body
        .split("\n")
        .filter((l) => l && !l.startsWith("#"))
        .map((l) => {
            const parts = l.split(" ");
            const ts = Number(parts.pop()) / 1000;
            const value = Number(parts.pop());
            const prefix = parts.join(" ");
            const name = prefix.split("{")[0];
            return { prefix, value, ts, name, counter: /(_total|_bucket|_sum|_count)$/.test(name) };
        })
        .filter((s) => Number.isFinite(s.value))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const out = fs.openSync(file, "w");
    const start = end - HOUR;
    let lines = 0;
    let chunk = "";
    for (const s of series) {
        const slope = s.counter ? s.value / Math.max(1, s.ts - fleet.t0) : 0;
        for (let t = start; t <= end; t += STEP) {
            const v = s.counter ? slope * (t - fleet.t0) : s.value;
            chunk += `${s.prefix} ${v} ${t}\n`;
            lines++;
        }
        if (chunk.length > 1 << 22) {
            fs.writeSync(out, chunk);
            chunk = "";
        }
    }
    fs.writeSync(out, chunk + "# EOF\n");
    fs.closeSync(out);
    return lines;
}

function promtool(args: string[]): void {
    const r = spawnSync("promtool", args, { encoding: "utf8", maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`promtool ${args.slice(0, 3).join(" ")} failed: ${r.stderr || r.stdout}`);
}

function percentile(xs: number[], p: number): number {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

async function timeQueries(prom: Prom, label: string, queries: Query[], repeats: number) {
    const end = Math.floor(Date.now() / 1000);
    const range = { start: end - HOUR, end };
    const all: number[] = [];
    let worst = "";
    let worstP95 = -1;
    const over: string[] = [];
    for (const q of queries) {
        const ms: number[] = [];
        for (let i = 0; i < repeats; i++) ms.push((await prom.query(q.expr, range)).ms);
        all.push(...ms);
        const p95 = percentile(ms, 95);
        if (p95 > worstP95) [worst, worstP95] = [q.name, p95];
        // A query whose latency was not measured counts as over the goal, never as under it.
        if (!measured(p95) || p95 >= GOAL_MS) over.push(`${q.name} (${Math.round(p95)})`);
    }
    return { label, count: queries.length, p50: percentile(all, 50), p95: percentile(all, 95), worst, worstP95, over };
}

/** Samples appended per second over `seconds`, from Prometheus' own counter. */
async function samplesPerSecond(prom: Prom, seconds: number): Promise<number> {
    const read = async () =>
        (await prom.selfMetric("prometheus_tsdb_head_samples_appended_total")).reduce((a, b) => a + b, 0);
    const a = await read();
    await sleep(seconds * 1000);
    return ((await read()) - a) / seconds;
}

async function measure(prom: Prom, res: Result, vendorMatch: string, liveSeconds: number): Promise<void> {
    res.series = (await prom.selfMetric("prometheus_tsdb_head_series "))[0];
    res.vendorSeries = await prom.scalar(`count({${vendorMatch}})`);
    const rss = prom.rss();
    res.rssMb = rss.now;
    res.peakRssMb = rss.peak;
    const groups = await prom.selfMetric("prometheus_rule_group_last_duration_seconds");
    res.ruleEvalMs = groups.length > 0 ? groups.reduce((a, b) => a + b, 0) * 1000 : undefined;
    // Scrapes of the measured live phase only (the history writer shares the emulator's event loop before it).
    res.maxScrapeS = await prom.scalar(`max(max_over_time(scrape_duration_seconds[${liveSeconds}s]))`);
    const slowest = (await prom.query("topk(1, prometheus_rule_group_last_duration_seconds)")).data.result[0];
    res.slowestGroup = slowest
        ? `${(slowest as { metric: { rule_group?: string } }).metric.rule_group?.split(";").pop()}`
        : undefined;
    res.downTargets = (await prom.scalar("count(up == 0)")) ?? 0;
    res.intervalP99S = (await prom.selfMetric("prometheus_target_interval_length_seconds", 'quantile="0.99"'))[0];
}

async function teardown(prom: Prom, fleet: Fleet, dir: string): Promise<void> {
    await prom.stop();
    await fleet.close();
    fs.rmSync(dir, { recursive: true, force: true });
}

async function runOurs(cfg: StackConfig, pods: number): Promise<Result> {
    const t0 = Math.floor(Date.now() / 1000) - 2 * HOUR;
    const fleet = new Fleet(cfg, pods, t0);
    const fleetPort = await fleet.listen();
    const promPort = await freePort();
    const dir = fs.mkdtempSync(path.join(tmp, `ours-${pods}-`));
    const rulesDir = path.join(dir, "rules");
    fs.mkdirSync(rulesDir);
    const recording = buildRecordingRules(cfg) as { groups: RuleGroup[] };
    fs.writeFileSync(path.join(rulesDir, "recording.yaml"), YAML.stringify(recording));
    fs.writeFileSync(path.join(rulesDir, "alerts.yaml"), YAML.stringify(buildAlertRules(cfg)));
    const config = path.join(dir, "prometheus.yml");
    fs.writeFileSync(config, YAML.stringify(ourConfig(cfg, fleet, fleetPort, promPort, rulesDir)));
    promtool(["check", "config", config]);
    const data = path.join(dir, "data");
    const prom = new Prom(promPort, config, data);
    const res: Result = { design: "ours", pods, gatewayReplicas: fleet.gatewayReplicas, queries: [] };
    try {
        log(`ours, ${pods} pods: first scrapes`);
        const liveStart = Math.floor(Date.now() / 1000);
        await prom.start();
        await sleep(3 * STEP * 1000 + 5000);
        const histEnd = liveStart - STEP;
        const lines = await writeHistory(prom, fleet, path.join(dir, "history.om"), histEnd);
        await prom.stop();
        log(`ours, ${pods} pods: ${lines} historical samples`);
        promtool(["tsdb", "create-blocks-from", "openmetrics", path.join(dir, "history.om"), data]);
        fs.rmSync(path.join(dir, "history.om"));
        await prom.start();
        const levels = ruleLevels(recording.groups);
        for (const [i, groups] of levels.entries()) {
            const file = path.join(dir, `backfill-${i}.yaml`);
            fs.writeFileSync(file, YAML.stringify({ groups }));
            const out = path.join(dir, `backfill-${i}`);
            log(`ours, ${pods} pods: backfilling rule level ${i} (${groups.flatMap((g) => g.rules).length} rules)`);
            promtool([
                "tsdb",
                "create-blocks-from",
                "rules",
                `--start=${histEnd - HOUR}`,
                `--end=${liveStart}`,
                `--eval-interval=${STEP}s`,
                `--url=http://${HOST}:${promPort}`,
                `--output-dir=${out}`,
                file,
            ]);
            await prom.stop();
            for (const b of fs.readdirSync(out)) fs.renameSync(path.join(out, b), path.join(data, b));
            await prom.start();
        }
        res.historyMinutes = Math.round((Date.now() / 1000 - (histEnd - HOUR)) / 60);
        log(`ours, ${pods} pods: live for ${LIVE_S} s`);
        await sleep((LIVE_S - 30) * 1000);
        res.samplesPerSecond = await samplesPerSecond(prom, 30);
        await measure(prom, res, 'job=~"proxy-gateways|istio-gateways"', LIVE_S - 15);
        res.recordedSeries = await prom.scalar(`count({__name__=~"${allRecordedSeries().join("|")}"})`);
        res.queries.push(await timeQueries(prom, "dashboards (recorded series)", dashboardQueries(cfg), REPEATS));
        res.queries.push(
            await timeQueries(prom, "dashboards without recorded series", ruleQueries(recording.groups), REPEATS),
        );
        res.peakWithQueriesMb = prom.rss().peak;
    } finally {
        await teardown(prom, fleet, dir);
    }
    return res;
}

async function runAnchor(cfg: StackConfig, pods: number, bytesPerSeries: number): Promise<Result> {
    const fleet = new Fleet(cfg, pods, Math.floor(Date.now() / 1000) - 2 * HOUR);
    const res: Result = { design: "anchor", pods, gatewayReplicas: 0, queries: [] };
    const projected = pods * fleet.anchorSeriesPerPod();
    const projectedMb = (projected * bytesPerSeries) / 2 ** 20;
    const budgetMb = (os.totalmem() / 2 ** 20) * 0.8;
    if (projectedMb > budgetMb) {
        res.skipped =
            `not run: about ${Math.round(projected / 1000)}k series, projected ${(projectedMb / 1024).toFixed(1)} GiB ` +
            `at ${Math.round(bytesPerSeries)} bytes per series, over 80% of this machine's ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`;
        return res;
    }
    const fleetPort = await fleet.listen();
    const promPort = await freePort();
    const dir = fs.mkdtempSync(path.join(tmp, `anchor-${pods}-`));
    const config = path.join(dir, "prometheus.yml");
    fs.writeFileSync(config, YAML.stringify(anchorConfig(fleet, fleetPort, promPort)));
    promtool(["check", "config", config]);
    const prom = new Prom(promPort, config, path.join(dir, "data"));
    try {
        log(`anchor, ${pods} pods: live for ${LIVE_S} s (about ${Math.round(projected / 1000)}k series)`);
        await prom.start();
        await sleep((LIVE_S - 30) * 1000);
        res.samplesPerSecond = await samplesPerSecond(prom, 30);
        await measure(prom, res, '__name__=~"istio_.*"', LIVE_S - 15);
        res.historyMinutes = Math.round(LIVE_S / 60);
        res.queries.push(await timeQueries(prom, "Istio-based dashboards", anchorQueries(), Math.min(REPEATS, 5)));
        res.peakWithQueriesMb = prom.rss().peak;
    } finally {
        await teardown(prom, fleet, dir);
    }
    return res;
}

const fmt = (n: number | undefined, digits = 0) =>
    n === undefined ? "" : n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

function report(results: Result[]): string {
    const cpu = os.cpus()[0]?.model ?? "unknown CPU";
    const promVersion = /version (\S+)/.exec(spawnSync("prometheus", ["--version"], { encoding: "utf8" }).stdout)?.[1];
    const lines = [
        `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench:fleet -- --pods ${SIZES.join(",")}\` on ` +
            `${os.cpus().length} cores (${cpu}), ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Prometheus ${promVersion}, ` +
            `15 s scrape and evaluation, ${LIVE_S} s measured live after warm-up; the emulator shares the machine.`,
        "",
        "| design | crawler pods | gateway replicas per vendor | active series | vendor-metric series | recorded series | samples/s | Prometheus RSS MB (peak before queries; peak with queries) | rule evaluation ms per cycle | slowest scrape s | scrape interval p99 s | targets down | history |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ];
    for (const r of results) {
        if (r.skipped) {
            lines.push(`| ${r.design} | ${fmt(r.pods)} | | ${r.skipped} | | | | | | | | | |`);
            continue;
        }
        lines.push(
            `| ${r.design} | ${fmt(r.pods)} | ${r.design === "ours" ? r.gatewayReplicas : ""} | ${fmt(r.series)} | ` +
                `${fmt(r.vendorSeries)} | ${fmt(r.recordedSeries)} | ${fmt(r.samplesPerSecond)} | ` +
                `${fmt(r.rssMb)} (${fmt(r.peakRssMb)}; ${fmt(r.peakWithQueriesMb)}) | ${fmt(r.ruleEvalMs, 1)}${r.slowestGroup ? ` (slowest: ${r.slowestGroup.replace(/^proxy-monitor-|\.rules$/g, "")})` : ""} | ${fmt(r.maxScrapeS, 2)} | ` +
                `${fmt(r.intervalP99S, 1)} | ${r.downTargets} | ${r.design === "ours" ? `${r.historyMinutes} min (backfilled hour + live)` : `${r.historyMinutes} min live`} |`,
        );
    }
    lines.push(
        "",
        "Dashboard query latency, range queries over the last hour at a 15 s step, each query run repeatedly:",
        "",
        `| design | crawler pods | queries | p50 ms | p95 ms | slowest query (its p95 ms) | queries with p95 over ${GOAL_MS} ms |`,
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
    );
    for (const r of results)
        for (const q of r.queries)
            lines.push(
                `| ${r.design} | ${fmt(r.pods)} | ${q.label} (${q.count}) | ${fmt(q.p50, 1)} | ${fmt(q.p95, 1)} | ${q.worst} (${fmt(q.worstP95, 1)}) | ${q.over.length === 0 ? "none" : `${q.over.length}: ${q.over.join("; ")}`} |`,
            );
    return lines.join("\n");
}

async function main(): Promise<void> {
    const cfg = loadStack("prod");
    const results: Result[] = [];
    // Bytes per active series, from our smallest run; the issue's anchor measured 8.4 GB for 1.21 M series.
    let bytesPerSeries = (8.4e9 / 1.21e6) * 1;
    for (const pods of SIZES) {
        for (const design of DESIGNS) {
            const r = design === "ours" ? await runOurs(cfg, pods) : await runAnchor(cfg, pods, bytesPerSeries);
            if (r.design === "anchor" && r.series && r.rssMb) bytesPerSeries = (r.rssMb * 2 ** 20) / r.series;
            results.push(r);
            log(JSON.stringify(r));
        }
    }
    const table = report(results);
    process.stdout.write(table + "\n");
    if (FLAGS.write) writeBenchSection("fleet-bench", table);
}

function cleanup(): void {
    for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
    fs.rmSync(tmp, { recursive: true, force: true });
}

process.on("SIGINT", () => {
    cleanup();
    process.exit(130);
});
main().then(
    () => {
        cleanup();
        process.exit(0);
    },
    (e: Error) => {
        process.stderr.write(`bench:fleet failed: ${e.message}\n(logs kept until exit in ${tmp})\n`);
        cleanup();
        process.exit(1);
    },
);
