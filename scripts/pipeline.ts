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
import { ChildProcess, spawn, spawnSync } from "child_process";
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
import { HOST, freePort, waitListening } from "./loopback";
import { loadStackFile } from "./offline";

export { HOST, freePort };

async function waitFor(check: () => Promise<boolean>, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (await check().catch(() => false)) return;
        await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export function httpGet(port: number, p: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
        http.get({ host: HOST, port, path: p }, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        }).on("error", reject);
    });
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

export async function startPipeline(o: PipelineOptions): Promise<Pipeline> {
    const log = o.log ?? (() => undefined);
    for (const bin of ["prometheus", "prometheus-alertmanager"]) {
        if (spawnSync(bin, ["--version"]).error)
            throw new Error(
                `${bin} is not installed: apt-get install -y ${bin === "prometheus" ? "prometheus" : "prometheus-alertmanager"}`,
            );
    }
    const cfg = loadStack(o.stack);
    const unsimulated = unsimulatedPools(cfg);
    if (unsimulated.length > 0)
        throw new Error(
            `stack ${o.stack}: pools ${unsimulated.join(", ")} are not simulated; only simulated pools run locally`,
        );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `local-${o.stack}-`));
    const children: ChildProcess[] = [];
    const servers: http.Server[] = [];
    const write = (name: string, obj: unknown) => {
        const f = path.join(dir, name);
        fs.mkdirSync(path.dirname(f), { recursive: true });
        fs.writeFileSync(f, typeof obj === "string" ? obj : JSON.stringify(obj, null, 2));
        return f;
    };
    log(`working folder ${dir}; writing the program the pods run`);
    // What the pods run: the loader and the gzipped bundle of the script ConfigMap (components/node-app.ts).
    const script = writeProgram(path.join(dir, "program"));
    const run = (name: string, args: string[]) => {
        const out = fs.openSync(path.join(dir, `${name}.log`), "a");
        const p = spawn(args[0], args.slice(1), { stdio: ["ignore", out, out] });
        children.push(p);
        return p;
    };
    const cleanupOnError = async (e: unknown) => {
        for (const c of children) c.kill("SIGKILL");
        for (const s of servers) s.close();
        fs.rmSync(dir, { recursive: true, force: true });
        throw e;
    };
    try {
        // Target, simulators, gateways.
        log("starting the target (the destinations' stand-in)");
        const target = targetFileConfig();
        const t = { http: await freePort(), https: await freePort(), metrics: await freePort() };
        run("target", [
            "node",
            script,
            "target",
            "--config",
            write("target.json", {
                ...target,
                listen: { host: HOST, httpPort: t.http, httpsPort: t.https, metricsPort: t.metrics },
            }),
        ]);
        const simulators: Record<string, number> = {};
        const gateways: Record<string, number> = {};
        const gatewayMetrics: number[] = [];
        const simMetrics: number[] = [];
        const simProxies: number[] = [];
        const proxyPorts: Record<string, number> = {};
        for (const v of cfg.vendors) {
            const pools: { name: string; port: number }[] = [];
            for (const p of v.pools) {
                const user = `${v.name}-${p.name}`;
                const pass = crypto.randomBytes(12).toString("hex");
                write(`secrets/${v.name}/${p.name}.username`, user);
                write(`secrets/${v.name}/${p.name}.password`, pass);
                const port = await freePort();
                const metrics = await freePort();
                const sim = {
                    ...simulatorFileConfig(cfg, v, p, "/unused"),
                    usernameFile: undefined,
                    passwordFile: undefined,
                    username: user,
                    password: pass,
                };
                run(`sim-${v.name}-${p.name}`, [
                    "node",
                    script,
                    "vendor-sim",
                    "--config",
                    write(`sim-${v.name}-${p.name}.json`, {
                        ...sim,
                        listen: { host: HOST, proxyPort: port, metricsPort: metrics },
                        forward: `${HOST}:${t.http}`,
                        forwardTls: `${HOST}:${t.https}`,
                    }),
                ]);
                log(`starting vendor simulator ${v.name}/${p.name} on ${HOST}:${port}`);
                simulators[`${v.name}/${p.name}`] = metrics;
                simMetrics.push(metrics);
                pools.push({ name: p.name, port });
                simProxies.push(port);
            }
            const g = gatewayFileConfig(cfg, v, path.join(dir, "secrets", v.name));
            const proxyPort = await freePort();
            const metricsPort = await freePort();
            const file = {
                ...g,
                listen: { host: HOST, proxyPort, metricsPort },
                pools: g.pools.map((p) => ({ ...p, host: HOST, port: pools.find((x) => x.name === p.name)!.port })),
                probe: {
                    ...g.probe,
                    intervalMs: o.fast ? 1000 : g.probe.intervalMs,
                    destination: "probe.local:443",
                    failuresToDown: 2,
                    successesToUp: 2,
                },
                logSampleRate: 0,
            };
            log(`starting the ${v.name} gateway on ${HOST}:${proxyPort} (metrics :${metricsPort})`);
            run(`gateway-${v.name}`, ["node", script, "gateway", "--config", write(`gateway-${v.name}.json`, file)]);
            gateways[v.name] = metricsPort;
            gatewayMetrics.push(metricsPort);
            proxyPorts[v.name] = proxyPort;
        }
        // As readiness probes would in a cluster: no crawler traffic before every listener is up, or the first
        // requests fail as if the vendors had (and burn the error budgets of healthy vendors).
        const listeners = [
            t.http,
            t.https,
            ...Object.values(proxyPorts),
            ...gatewayMetrics,
            ...simMetrics,
            ...simProxies,
        ];
        log(`waiting for ${listeners.length} listeners to accept connections`);
        for (const port of listeners) await waitListening(port, 30_000);
        for (const [pool, n] of Object.entries(o.degradedExitIps ?? {})) {
            if (simulators[pool] === undefined) throw new Error(`degradedExitIps: ${pool} is not a simulated pool`);
            const status = await httpPost(simulators[pool], `/admin/exit-ips?degradedTo=${n}`);
            if (status !== 200) throw new Error(`degradedExitIps: ${pool} answered ${status}`);
            log(`${pool} serves only ${n} exit IPs from the start`);
        }

        // The load generator, as a crawler with HTTP(S)_PROXY pointing at the local gateways.
        const pattern = generatorPattern(cfg);
        const lgMetrics = await freePort();
        log(`starting the load generator at ${o.requestsPerSecond ?? pattern.rate.requestsPerSecond} requests/s`);
        run("loadgen", [
            "node",
            script,
            "generate",
            "--config",
            write("pattern.json", {
                ...pattern,
                vendors: pattern.vendors.map((v) => ({ ...v, proxyUrl: `http://${HOST}:${proxyPorts[v.name]}` })),
                rate: {
                    ...pattern.rate,
                    schedule: "constant",
                    requestsPerSecond: o.requestsPerSecond ?? pattern.rate.requestsPerSecond,
                },
                // Enough connections to hold the rate through the slowest (mobile) simulator.
                concurrency: Math.max(pattern.concurrency, o.requestsPerSecond ?? 0),
                // The gateway sees one CONNECT for all the requests of a kept-alive tunnel, but every plain-HTTP
                // request: with `fast`, half are plain HTTP, so the series counted per gateway request (exit-IP
                // samples, ban reports, which ride on plain-HTTP requests) fill in minutes.
                httpsShare: o.fast ? 0.5 : pattern.httpsShare,
                insecureTls: true,
                metricsPort: lgMetrics,
            }),
        ]);

        // Emulators: Istio's TCP series as the gateways' sidecars would report them (bytes follow the gateways' own
        // counts), and the Kubernetes exporters' series of the generator's pod.
        const started = Date.now();
        const istio = http.createServer(async (_req, res) => {
            const lines: string[] = [
                "# TYPE istio_tcp_sent_bytes_total counter",
                "# TYPE istio_tcp_received_bytes_total counter",
                "# TYPE istio_tcp_connections_opened_total counter",
            ];
            for (const v of cfg.vendors) {
                const m = await httpGet(gateways[v.name], "/metrics").catch(() => ({ body: "" }));
                const sum = (dir: string) =>
                    m.body
                        .split("\n")
                        .filter((l) => l.startsWith("proxy_bandwidth_bytes_total{") && l.includes(`direction="${dir}"`))
                        .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
                const count = m.body
                    .split("\n")
                    .filter((l) => l.startsWith("proxy_requests_total{") && l.includes('protocol="CONNECT"'))
                    .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
                const labels = `reporter="destination",source_workload_namespace="${cfg.loadGenerator.namespace}",source_workload="loadgen",destination_workload="${v.name}-gateway"`;
                lines.push(
                    `istio_tcp_sent_bytes_total{${labels}} ${sum("ingress")}`,
                    `istio_tcp_received_bytes_total{${labels}} ${sum("egress")}`,
                    `istio_tcp_connections_opened_total{${labels}} ${count}`,
                );
            }
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
            res.end(lines.join("\n") + "\n");
        });
        const kube = http.createServer((_req, res) => {
            const s = (Date.now() - started) / 1000;
            const ns = cfg.loadGenerator.namespace;
            const pod = `namespace="${ns}",pod="loadgen-0"`;
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
            res.end(
                [
                    `kube_pod_status_phase{${pod},phase="Running"} 1`,
                    `kube_pod_status_phase{${pod},phase="Pending"} 0`,
                    `kube_pod_container_status_restarts_total{${pod},container="generate"} 0`,
                    `kube_deployment_status_replicas_available{namespace="${ns}",deployment="loadgen"} 1`,
                    `kube_horizontalpodautoscaler_status_current_replicas{namespace="${ns}",horizontalpodautoscaler="loadgen"} 1`,
                    `kube_horizontalpodautoscaler_spec_max_replicas{namespace="${ns}",horizontalpodautoscaler="loadgen"} ${cfg.loadGenerator.maxReplicas}`,
                    `container_cpu_usage_seconds_total{${pod},container="generate"} ${(s * 0.1).toFixed(3)}`,
                    `container_memory_working_set_bytes{${pod},container="generate"} 100000000`,
                    `container_cpu_cfs_throttled_periods_total{${pod},container="generate"} 0`,
                    "",
                ].join("\n"),
            );
        });
        const notifications: Notification[] = [];
        const webhook = http.createServer((req, res) => {
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
        for (const s of [istio, kube, webhook]) {
            await new Promise<void>((r) => s.listen(0, HOST, () => r()));
            servers.push(s);
        }
        const portOf = (s: http.Server) => (s.address() as net.AddressInfo).port;

        // Alertmanager with the generated config, its receivers replaced by the local webhook.
        const amPort = await freePort();
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
        const am = buildAlertmanagerConfig(amCfg, { local: `http://${HOST}:${portOf(webhook)}/` }) as { route: Route };
        if (o.fast) {
            am.route = { ...am.route, group_wait: "1s", group_interval: "2s", repeat_interval: "1m" };
            am.route.routes = am.route.routes.map((r) => ({
                ...r,
                group_wait: "1s",
                group_interval: "2s",
                repeat_interval: "1m",
            }));
        }
        log(`starting Alertmanager on ${HOST}:${amPort}`);
        run("alertmanager", [
            "prometheus-alertmanager",
            `--config.file=${write("alertmanager.yml", YAML.stringify(am))}`,
            `--storage.path=${path.join(dir, "am-data")}`,
            `--web.listen-address=${HOST}:${amPort}`,
            "--cluster.listen-address=",
        ]);

        // Prometheus with the generated scrape config, recording and alert rules.
        const promPort = await freePort();
        const interval = o.fast ? "2s" : cfg.prometheus.scrapeInterval;
        const local = {
            ...cfg,
            prometheus: { ...cfg.prometheus, scrapeInterval: interval, evaluationInterval: interval },
        };
        const generated = toStaticTargets(
            buildScrapeConfig(local, { replicaLabel: false }),
            {
                "proxy-gateways": [{ targets: gatewayMetrics.map((p) => `${HOST}:${p}`) }],
                "istio-gateways": [{ targets: [`${HOST}:${portOf(istio)}`] }],
                "kubelet-cadvisor": [{ targets: [`${HOST}:${portOf(kube)}`] }],
                "kube-state-metrics": [{ targets: [`${HOST}:${portOf(kube)}`] }],
                prometheus: [{ targets: [`${HOST}:${promPort}`] }],
                alertmanager: [{ targets: [`${HOST}:${amPort}`] }],
                "load-generator": [{ targets: [`${HOST}:${lgMetrics}`] }],
                "vendor-simulators": [{ targets: simMetrics.map((p) => `${HOST}:${p}`) }],
            },
            [`${HOST}:${amPort}`],
        ) as { scrape_configs: Record<string, unknown>[]; rule_files?: string[] };
        // The emulators serve both exporters' series on one port: their metrics_path is /metrics.
        for (const j of generated.scrape_configs) if (j.job_name === "kubelet-cadvisor") j.metrics_path = "/metrics";
        write("rules/recording.yaml", YAML.stringify(fastRules(buildRecordingRules(local), o.fast)));
        write("rules/alerts.yaml", YAML.stringify(fastRules(buildAlertRules(local), o.fast)));
        generated.rule_files = [path.join(dir, "rules", "*.yaml")];
        const promConfig = write("prometheus.yml", YAML.stringify(generated));
        const promArgs = [
            `--config.file=${promConfig}`,
            `--storage.tsdb.path=${path.join(dir, "prom-data")}`,
            `--web.listen-address=${HOST}:${promPort}`,
        ];
        log(`starting Prometheus on ${HOST}:${promPort} (scrape and evaluation every ${interval})`);
        let prom = run("prometheus", ["prometheus", ...promArgs]);

        const ready = (port: number) => async () => (await httpGet(port, "/-/ready")).status === 200;
        await waitFor(ready(promPort), 30_000, "Prometheus");
        await waitFor(ready(amPort), 30_000, "Alertmanager");
        log(`pipeline running in ${dir}: Prometheus http://${HOST}:${promPort}, Alertmanager http://${HOST}:${amPort}`);

        const query = async (q: string) => {
            const r = await httpGet(promPort, `/api/v1/query?query=${encodeURIComponent(q)}`);
            const body = JSON.parse(r.body);
            if (body.status !== "success") throw new Error(`${q}: ${r.body}`);
            return body.data.result;
        };
        return {
            cfg,
            prometheusPort: promPort,
            alertmanagerPort: amPort,
            simulators,
            gateways,
            notifications,
            query,
            async restartPrometheus() {
                const exited = new Promise((r) => prom.once("exit", r));
                prom.kill("SIGTERM");
                await exited;
                prom = run("prometheus", ["prometheus", ...promArgs]);
                await waitFor(ready(promPort), 30_000, "Prometheus after restart");
            },
            async stop() {
                const exits = children
                    .filter((c) => c.exitCode === null)
                    .map((c) => new Promise((r) => c.once("exit", r)));
                for (const c of children) c.kill("SIGTERM");
                await Promise.race([Promise.all(exits), new Promise((r) => setTimeout(r, 10_000))]);
                for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
                for (const s of servers) {
                    s.closeAllConnections();
                    s.close();
                }
                fs.rmSync(dir, { recursive: true, force: true });
            },
        };
    } catch (e) {
        return cleanupOnError(e);
    }
}
