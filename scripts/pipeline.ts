/**
 * The generated stack, running for real on 127.0.0.1: target, one vendor simulator per pool, one gateway per vendor,
 * the load generator, Debian's Prometheus and Alertmanager running the generated configs and rules, an Istio-format
 * emulator for the crawler-to-gateway hop, a Kubernetes-exporter emulator (kube-state-metrics and cAdvisor series of
 * the generator's pod), and a webhook receiver recording notifications. Used by `npm run local` and the e2e test.
 *
 * The generated configuration is changed in documented ways only:
 * - discovery becomes static targets (`toStaticTargets`, the one transformation from components/prometheus);
 * - with `fast`, scrape and evaluation run every 2 s, rule windows `[5m]` become `[20s]`, alert `for` durations are
 *   capped at 10 s, Alertmanager groups and repeats within seconds, so faults page in under a minute, and half the
 *   generator's requests are plain HTTP (see below).
 */
import { ChildProcess, spawnSync } from "child_process";
import * as crypto from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { buildAlertRules } from "../components/alerting";
import { buildAlertmanagerConfig } from "../components/alerting/alertmanager-config";
import { StackConfig } from "../components/config";
import { gatewayFileConfig } from "../components/gateway/file-config";
import { generatorPattern } from "../components/load-generator";
import { buildRecordingRules, buildScrapeConfig } from "../components/prometheus";
import { toStaticTargets } from "../components/prometheus/scrape";
import { simulatorFileConfig, targetFileConfig } from "../components/simulators";
import { writeProgram } from "../proxy/bundle";
import { nodeFlags } from "../proxy/loader";
import { HOST, accepts, freePort } from "./loopback";
import { loadStackFile } from "./offline";
import { Teardown, spawnLogged, stopProcesses, waitUntil } from "./processes";

export { HOST, freePort };

export function httpGet(port: number, p: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        http.get({ host: HOST, port, path: p }, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        }).on("error", reject);
    });
}

/** An instant PromQL query against a Prometheus on 127.0.0.1; throws with the body unless it succeeded. */
export async function promQuery(
    port: number,
    q: string,
): Promise<{ metric: Record<string, string>; value: [number, string] }[]> {
    const r = await httpGet(port, `/api/v1/query?query=${encodeURIComponent(q)}`);
    const body = JSON.parse(r.body);
    if (body.status !== "success") throw new Error(`${q}: ${r.body}`);
    return body.data.result;
}

export function httpPost(port: number, p: string): Promise<number> {
    return new Promise((resolve, reject) => {
        const req = http.request({ host: HOST, port, path: p, method: "POST" }, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
        });
        req.on("error", reject);
        req.end();
    });
}

/** The validated config of a committed stack (`dir` holds its Pulumi.<stack>.yaml; the project's by default). */
export function loadStack(stack: string, dir?: string): StackConfig {
    return loadStackFile(stack, dir);
}

/** The local changes to rules for fast pipelines: short windows and `for` durations (see the file comment). */
export function fastRules<T>(groups: T, fast: boolean): T {
    if (!fast) return groups;
    const text = JSON.stringify(groups).replace(/\[5m\]/g, "[20s]");
    const g = JSON.parse(text);
    for (const group of g.groups) for (const r of group.rules) if (r.for) r.for = "10s";
    return g;
}

export interface Notification {
    status: string;
    labels: Record<string, string>;
}

export interface Pipeline {
    readonly cfg: StackConfig;
    readonly prometheusPort: number;
    readonly alertmanagerPort: number;
    /** Ops ports of the simulators by `vendor/pool`, and of the gateways by vendor. */
    readonly simulators: Record<string, number>;
    readonly gateways: Record<string, number>;
    readonly notifications: Notification[];
    query(q: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]>;
    restartPrometheus(): Promise<void>;
    stop(): Promise<void>;
}

export interface PipelineOptions {
    readonly stack: string;
    readonly fast: boolean;
    /** Generator requests per second (defaults to the stack's). */
    readonly requestsPerSecond?: number;
    /**
     * Pools (`vendor/pool`) that serve only N exit IPs from the start, before any traffic: the exit-IP diversity alert
     * reads an hour of samples, so a pool degraded mid-run would page an hour later (`POST /admin/exit-ips` on the
     * simulator's ops port ends it, as it starts it).
     */
    readonly degradedExitIps?: Readonly<Record<string, number>>;
    readonly log?: (line: string) => void;
}

/** `vendor/pool` of every pool without a simulator: the local pipeline cannot run them (no vendor accounts). */
export function unsimulatedPools(cfg: StackConfig): string[] {
    return cfg.vendors.flatMap((v) => v.pools.filter((p) => !p.simulator).map((p) => `${v.name}/${p.name}`));
}

/** The Debian packages the pipeline runs; fails before anything is started when one is missing. */
function checkTools(): void {
    for (const bin of ["prometheus", "prometheus-alertmanager"]) {
        if (spawnSync(bin, ["--version"]).error)
            throw new Error(
                `${bin} is not installed: apt-get install -y ${bin === "prometheus" ? "prometheus" : "prometheus-alertmanager"}`,
            );
    }
}

/** The stack's config, refused when a pool has no simulator. */
function simulatedStack(stack: string): StackConfig {
    const cfg = loadStack(stack);
    const unsimulated = unsimulatedPools(cfg);
    if (unsimulated.length > 0)
        throw new Error(
            `stack ${stack}: pools ${unsimulated.join(", ")} are not simulated; only simulated pools run locally`,
        );
    return cfg;
}

/**
 * One pipeline's working folder (config files, pool secrets, logs, the data of Prometheus and Alertmanager) and what
 * its steps started: `teardown` stops it all in reverse order and removes the folder last.
 */
interface Workspace {
    readonly dir: string;
    /** The loader of the program the pods run (components/node-app.ts), written into the folder. */
    readonly script: string;
    readonly teardown: Teardown;
    readonly log: (line: string) => void;
    /** Writes a file of the folder (JSON unless a string), returning its path. */
    write(name: string, content: unknown): string;
}

function createWorkspace(stack: string, log: (line: string) => void): Workspace {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `local-${stack}-`));
    const teardown = new Teardown();
    teardown.add("working folder", () => fs.rmSync(dir, { recursive: true, force: true }));
    const write = (name: string, content: unknown) => {
        const f = path.join(dir, name);
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, typeof content === "string" ? content : JSON.stringify(content, null, 2));
        return f;
    };
    log(`working folder ${dir}; writing the program the pods run`);
    try {
        return { dir, script: writeProgram(path.join(dir, "program")), teardown, log, write };
    } catch (e) {
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
    }
}

/**
 * The processes of one step, stopped together by the teardown (registered before the first starts). `children` names
 * each by its log file's name, for `waitUntil`.
 */
function processGroup(ws: Workspace, step: string) {
    const started: ChildProcess[] = [];
    const children: Record<string, ChildProcess> = {};
    ws.teardown.add(step, (graceMs) => stopProcesses(started, graceMs));
    return {
        children,
        start(name: string, argv: string[]): ChildProcess {
            const c = spawnLogged(argv, path.join(ws.dir, `${name}.log`));
            started.push(c);
            children[name] = c;
            return c;
        },
    };
}

interface Listen {
    readonly proxyPort: number;
    readonly metricsPort: number;
}

/** What the simulators step started: the target's ports, and each pool's simulator by `vendor/pool`. */
interface Backends {
    readonly target: { readonly http: number; readonly https: number };
    readonly pools: Readonly<Record<string, Listen>>;
    readonly children: Readonly<Record<string, ChildProcess>>;
}

/**
 * The target (the destinations' stand-in) and one vendor simulator per pool forwarding to it, each with a random
 * password that the step writes as the pool's secret files (`secrets/<vendor>/<pool>.*`) for the gateways.
 */
async function startSimulators(ws: Workspace, cfg: StackConfig): Promise<Backends> {
    const group = processGroup(ws, "target and simulators");
    ws.log("starting the target (the destinations' stand-in)");
    const t = { http: await freePort(), https: await freePort(), metrics: await freePort() };
    const listen = { host: HOST, httpPort: t.http, httpsPort: t.https, metricsPort: t.metrics };
    group.start("target", [
        "node",
        ws.script,
        "target",
        "--config",
        ws.write("target.json", { ...targetFileConfig(), listen }),
    ]);
    const pools: Record<string, Listen> = {};
    for (const v of cfg.vendors)
        for (const p of v.pools) {
            const username = `${v.name}-${p.name}`;
            const password = crypto.randomBytes(12).toString("hex");
            ws.write(`secrets/${v.name}/${p.name}.username`, username);
            ws.write(`secrets/${v.name}/${p.name}.password`, password);
            const ports = { proxyPort: await freePort(), metricsPort: await freePort() };
            const file = ws.write(`sim-${v.name}-${p.name}.json`, {
                ...simulatorFileConfig(cfg, v, p, "/unused"),
                usernameFile: undefined,
                passwordFile: undefined,
                username,
                password,
                listen: { host: HOST, ...ports },
                forward: `${HOST}:${t.http}`,
                forwardTls: `${HOST}:${t.https}`,
            });
            group.start(`sim-${v.name}-${p.name}`, ["node", ws.script, "vendor-sim", "--config", file]);
            ws.log(`starting vendor simulator ${v.name}/${p.name} on ${HOST}:${ports.proxyPort}`);
            pools[`${v.name}/${p.name}`] = ports;
        }
    return { target: { http: t.http, https: t.https }, pools, children: group.children };
}

/** One gateway per vendor, its pools pointing at their simulators; returns its ports by vendor. */
async function startGateways(
    ws: Workspace,
    cfg: StackConfig,
    backends: Backends,
    fast: boolean,
): Promise<{ ports: Record<string, Listen>; children: Record<string, ChildProcess> }> {
    const group = processGroup(ws, "gateways");
    const ports: Record<string, Listen> = {};
    for (const v of cfg.vendors) {
        const g = gatewayFileConfig(cfg, v, path.join(ws.dir, "secrets", v.name));
        const listen = { proxyPort: await freePort(), metricsPort: await freePort() };
        const file = ws.write(`gateway-${v.name}.json`, {
            ...g,
            listen: { host: HOST, ...listen },
            pools: g.pools.map((p) => ({ ...p, host: HOST, port: backends.pools[`${v.name}/${p.name}`].proxyPort })),
            probe: {
                ...g.probe,
                intervalMs: fast ? 1000 : g.probe.intervalMs,
                destination: "probe.local:443",
                failuresToDown: 2,
                successesToUp: 2,
            },
            logSampleRate: 0,
        });
        ws.log(`starting the ${v.name} gateway on ${HOST}:${listen.proxyPort} (metrics :${listen.metricsPort})`);
        group.start(`gateway-${v.name}`, ["node", ...nodeFlags("gateway"), ws.script, "gateway", "--config", file]);
        ports[v.name] = listen;
    }
    return { ports, children: group.children };
}

/**
 * As readiness probes would in a cluster: no crawler traffic before every listener is up, or the first requests fail
 * as if the vendors had (and burn the error budgets of healthy vendors). A child that exits fails this at once.
 */
async function waitForListeners(
    ws: Workspace,
    ports: number[],
    children: Readonly<Record<string, ChildProcess>>,
): Promise<void> {
    ws.log(`waiting for ${ports.length} listeners to accept connections`);
    for (const port of ports) await waitUntil(`a listener on ${HOST}:${port}`, () => accepts(port), 30_000, children);
}

/** Has the pools of `degraded` (`vendor/pool` to N) serve only N exit IPs, through their simulators' ops ports. */
async function degradeExitIps(
    ws: Workspace,
    backends: Backends,
    degraded: Readonly<Record<string, number>>,
): Promise<void> {
    for (const [pool, n] of Object.entries(degraded)) {
        const sim = backends.pools[pool];
        if (sim === undefined) throw new Error(`degradedExitIps: ${pool} is not a simulated pool`);
        const status = await httpPost(sim.metricsPort, `/admin/exit-ips?degradedTo=${n}`);
        if (status !== 200) throw new Error(`degradedExitIps: ${pool} answered ${status}`);
        ws.log(`${pool} serves only ${n} exit IPs from the start`);
    }
}

/** The load generator, as a crawler with HTTP(S)_PROXY pointing at the local gateways; returns its metrics port. */
async function startTraffic(
    ws: Workspace,
    cfg: StackConfig,
    gateways: Readonly<Record<string, Listen>>,
    o: PipelineOptions,
): Promise<number> {
    const group = processGroup(ws, "load generator");
    const pattern = generatorPattern(cfg);
    const metricsPort = await freePort();
    ws.log(`starting the load generator at ${o.requestsPerSecond ?? pattern.rate.requestsPerSecond} requests/s`);
    const file = ws.write("pattern.json", {
        ...pattern,
        vendors: pattern.vendors.map((v) => ({ ...v, proxyUrl: `http://${HOST}:${gateways[v.name].proxyPort}` })),
        rate: {
            ...pattern.rate,
            schedule: "constant",
            requestsPerSecond: o.requestsPerSecond ?? pattern.rate.requestsPerSecond,
        },
        // Enough connections to hold the rate through the slowest (mobile) simulator.
        concurrency: Math.max(pattern.concurrency, o.requestsPerSecond ?? 0),
        // The gateway sees one CONNECT for all the requests of a kept-alive tunnel, but every plain-HTTP request:
        // with `fast`, half are plain HTTP, so the series counted per gateway request (exit-IP samples, ban reports,
        // which ride on plain-HTTP requests) fill in minutes.
        httpsShare: o.fast ? 0.5 : pattern.httpsShare,
        insecureTls: true,
        metricsPort,
    });
    group.start("loadgen", ["node", ws.script, "generate", "--config", file]);
    return metricsPort;
}

/** The in-process servers: what they serve and where. */
interface Emulators {
    readonly istioPort: number;
    readonly kubePort: number;
    readonly webhookPort: number;
    readonly notifications: Notification[];
}

/** The Prometheus text format of Istio's TCP series as the gateways' sidecars would report them. */
async function istioSeries(cfg: StackConfig, gateways: Readonly<Record<string, Listen>>): Promise<string> {
    const lines: string[] = [
        "# TYPE istio_tcp_sent_bytes_total counter",
        "# TYPE istio_tcp_received_bytes_total counter",
        "# TYPE istio_tcp_connections_opened_total counter",
    ];
    for (const v of cfg.vendors) {
        // Bytes follow the gateways' own counts.
        const m = await httpGet(gateways[v.name].metricsPort, "/metrics").catch(() => ({ body: "" }));
        const sum = (filter: (l: string) => boolean) =>
            m.body
                .split("\n")
                .filter(filter)
                .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
        const bytes = (dir: string) =>
            sum((l) => l.startsWith("proxy_bandwidth_bytes_total{") && l.includes(`direction="${dir}"`));
        const count = sum((l) => l.startsWith("proxy_requests_total{") && l.includes('protocol="CONNECT"'));
        const labels = `reporter="destination",source_workload_namespace="${cfg.loadGenerator.namespace}",source_workload="loadgen",destination_workload="${v.name}-gateway"`;
        lines.push(
            `istio_tcp_sent_bytes_total{${labels}} ${bytes("ingress")}`,
            `istio_tcp_received_bytes_total{${labels}} ${bytes("egress")}`,
            `istio_tcp_connections_opened_total{${labels}} ${count}`,
        );
    }
    return lines.join("\n") + "\n";
}

/** The Kubernetes exporters' series (kube-state-metrics and cAdvisor) of the generator's pod, `seconds` after start. */
function kubeSeries(cfg: StackConfig, seconds: number): string {
    const ns = cfg.loadGenerator.namespace;
    const pod = `namespace="${ns}",pod="loadgen-0"`;
    return [
        `kube_pod_status_phase{${pod},phase="Running"} 1`,
        `kube_pod_status_phase{${pod},phase="Pending"} 0`,
        `kube_pod_container_status_restarts_total{${pod},container="generate"} 0`,
        `kube_deployment_status_replicas_available{namespace="${ns}",deployment="loadgen"} 1`,
        `kube_horizontalpodautoscaler_status_current_replicas{namespace="${ns}",horizontalpodautoscaler="loadgen"} 1`,
        `kube_horizontalpodautoscaler_spec_max_replicas{namespace="${ns}",horizontalpodautoscaler="loadgen"} ${cfg.loadGenerator.maxReplicas}`,
        `container_cpu_usage_seconds_total{${pod},container="generate"} ${(seconds * 0.1).toFixed(3)}`,
        `container_memory_working_set_bytes{${pod},container="generate"} 100000000`,
        `container_cpu_cfs_throttled_periods_total{${pod},container="generate"} 0`,
        "",
    ].join("\n");
}

/**
 * The emulators of what a cluster has and loopback lacks (Istio's series, the Kubernetes exporters' series) and the
 * webhook receiver recording Alertmanager's notifications; closed by the teardown.
 */
async function startEmulators(
    ws: Workspace,
    cfg: StackConfig,
    gateways: Readonly<Record<string, Listen>>,
): Promise<Emulators> {
    const servers: http.Server[] = [];
    ws.teardown.add("emulators and webhook receiver", () => {
        for (const s of servers) {
            s.closeAllConnections();
            s.close();
        }
    });
    const serve = async (handler: http.RequestListener) => {
        const s = http.createServer(handler);
        await new Promise<void>((r) => s.listen(0, HOST, () => r()));
        servers.push(s);
        return (s.address() as net.AddressInfo).port;
    };
    const metrics = (res: http.ServerResponse, text: string) => {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
        res.end(text);
    };
    const started = Date.now();
    const notifications: Notification[] = [];
    const istioPort = await serve(async (_req, res) => metrics(res, await istioSeries(cfg, gateways)));
    const kubePort = await serve((_req, res) => metrics(res, kubeSeries(cfg, (Date.now() - started) / 1000)));
    const webhookPort = await serve((req, res) => {
        let body = "";
        req.on("data", (c) => (body += c));
        req.on("end", () => {
            try {
                for (const a of JSON.parse(body).alerts ?? [])
                    notifications.push({ status: a.status, labels: a.labels });
            } catch {
                // not a notification
            }
            res.writeHead(200);
            res.end();
        });
    });
    return { istioPort, kubePort, webhookPort, notifications };
}

/** Alertmanager with the generated config, its receivers replaced by the local webhook. */
async function startAlertmanager(
    ws: Workspace,
    cfg: StackConfig,
    webhookPort: number,
    fast: boolean,
): Promise<{ port: number; child: ChildProcess }> {
    const group = processGroup(ws, "Alertmanager");
    const port = await freePort();
    const amCfg = {
        ...cfg,
        alerting: {
            ...cfg.alerting,
            receivers: [{ name: "local", type: "webhook" as const }],
            criticalReceiver: "local",
            warningReceiver: "local",
            vendorReceivers: {},
            watchdogReceiver: "",
        },
    };
    type Route = Record<string, unknown> & { routes: Record<string, unknown>[] };
    const am = buildAlertmanagerConfig(amCfg, { local: `http://${HOST}:${webhookPort}/` }) as { route: Route };
    if (fast) {
        const quick = { group_wait: "1s", group_interval: "2s", repeat_interval: "1m" };
        am.route = { ...am.route, ...quick };
        am.route.routes = am.route.routes.map((r) => ({ ...r, ...quick }));
    }
    ws.log(`starting Alertmanager on ${HOST}:${port}`);
    const child = group.start("alertmanager", [
        "prometheus-alertmanager",
        `--config.file=${ws.write("alertmanager.yml", YAML.stringify(am))}`,
        `--storage.path=${path.join(ws.dir, "am-data")}`,
        `--web.listen-address=${HOST}:${port}`,
        "--cluster.listen-address=",
    ]);
    return { port, child };
}

/** Static targets by scrape job of the generated config, except Prometheus's own (its port is the step's). */
type Targets = Record<string, { targets: string[] }[]>;

/** A running Prometheus, and how to restart it on the same data. */
interface Prometheus {
    readonly port: number;
    readonly child: () => ChildProcess;
    restart(): Promise<void>;
}

const ready = (port: number) => async () => (await httpGet(port, "/-/ready")).status === 200;

/** Prometheus with the generated scrape config (discovery turned into `targets`), recording and alert rules. */
async function startPrometheus(
    ws: Workspace,
    cfg: StackConfig,
    targets: Targets,
    alertmanagerPort: number,
    fast: boolean,
): Promise<Prometheus> {
    const group = processGroup(ws, "Prometheus");
    const port = await freePort();
    const interval = fast ? "2s" : cfg.prometheus.scrapeInterval;
    const local = { ...cfg, prometheus: { ...cfg.prometheus, scrapeInterval: interval, evaluationInterval: interval } };
    const generated = toStaticTargets(
        buildScrapeConfig(local, { replicaLabel: false }),
        { ...targets, prometheus: [{ targets: [`${HOST}:${port}`] }] },
        [`${HOST}:${alertmanagerPort}`],
    ) as { scrape_configs: Record<string, unknown>[]; rule_files?: string[] };
    // The emulators serve both exporters' series on one port: their metrics_path is /metrics.
    for (const j of generated.scrape_configs) if (j.job_name === "kubelet-cadvisor") j.metrics_path = "/metrics";
    ws.write("rules/recording.yaml", YAML.stringify(fastRules(buildRecordingRules(local), fast)));
    ws.write("rules/alerts.yaml", YAML.stringify(fastRules(buildAlertRules(local), fast)));
    generated.rule_files = [path.join(ws.dir, "rules", "*.yaml")];
    const argv = [
        "prometheus",
        `--config.file=${ws.write("prometheus.yml", YAML.stringify(generated))}`,
        `--storage.tsdb.path=${path.join(ws.dir, "prom-data")}`,
        `--web.listen-address=${HOST}:${port}`,
    ];
    ws.log(`starting Prometheus on ${HOST}:${port} (scrape and evaluation every ${interval})`);
    let prom = group.start("prometheus", argv);
    return {
        port,
        child: () => prom,
        async restart() {
            await stopProcesses([prom], 60_000);
            prom = group.start("prometheus", argv);
            await waitUntil("Prometheus after restart", ready(port), 30_000, { prometheus: prom });
        },
    };
}

export async function startPipeline(o: PipelineOptions): Promise<Pipeline> {
    checkTools();
    const cfg = simulatedStack(o.stack);
    const ws = createWorkspace(o.stack, o.log ?? (() => undefined));
    return ws.teardown.undoOnError(async () => {
        const backends = await startSimulators(ws, cfg);
        const gateways = await startGateways(ws, cfg, backends, o.fast);
        await waitForListeners(
            ws,
            [
                backends.target.http,
                backends.target.https,
                ...Object.values(gateways.ports).flatMap((g) => [g.proxyPort, g.metricsPort]),
                ...Object.values(backends.pools).flatMap((p) => [p.metricsPort, p.proxyPort]),
            ],
            { ...backends.children, ...gateways.children },
        );
        await degradeExitIps(ws, backends, o.degradedExitIps ?? {});
        const loadgenPort = await startTraffic(ws, cfg, gateways.ports, o);
        const emulators = await startEmulators(ws, cfg, gateways.ports);
        const am = await startAlertmanager(ws, cfg, emulators.webhookPort, o.fast);
        const at = (...ports: number[]) => [{ targets: ports.map((p) => `${HOST}:${p}`) }];
        const prom = await startPrometheus(
            ws,
            cfg,
            {
                "proxy-gateways": at(...Object.values(gateways.ports).map((g) => g.metricsPort)),
                "istio-gateways": at(emulators.istioPort),
                "kubelet-cadvisor": at(emulators.kubePort),
                "kube-state-metrics": at(emulators.kubePort),
                alertmanager: at(am.port),
                "load-generator": at(loadgenPort),
                "vendor-simulators": at(...Object.values(backends.pools).map((p) => p.metricsPort)),
            },
            am.port,
            o.fast,
        );
        await waitUntil("Prometheus", ready(prom.port), 30_000, { prometheus: prom.child() });
        await waitUntil("Alertmanager", ready(am.port), 30_000, { alertmanager: am.child });
        ws.log(
            `pipeline running in ${ws.dir}: Prometheus http://${HOST}:${prom.port}, Alertmanager http://${HOST}:${am.port}`,
        );
        return {
            cfg,
            prometheusPort: prom.port,
            alertmanagerPort: am.port,
            simulators: Object.fromEntries(Object.entries(backends.pools).map(([k, p]) => [k, p.metricsPort])),
            gateways: Object.fromEntries(Object.entries(gateways.ports).map(([k, g]) => [k, g.metricsPort])),
            notifications: emulators.notifications,
            query: (q: string) => promQuery(prom.port, q),
            restartPrometheus: () => prom.restart(),
            stop: () => ws.teardown.run(10_000),
        };
    });
}
