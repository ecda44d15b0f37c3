/**
 * An emulated crawler fleet for `npm run bench:fleet`: the series a Prometheus would scrape from N crawler pods, their
 * gateways and the Kubernetes exporters, served over HTTP on 127.0.0.1, one path per scrape target.
 *
 * Every value is a function of time (counters grow linearly from `t0`, gauges are constant), so an hour of history can
 * be written for any series from one scraped sample. The fleet model:
 * - pods are spread evenly over the stack's crawler namespaces, `WORKLOADS_PER_NAMESPACE` Deployments each; a pod uses
 *   every pool of the vendors its namespace may use;
 * - answers are 200, 403, 429, 502 and 503; gateway protocols are the catalog's; destinations are the tracked list
 *   plus `other`, every combination seen (the pessimistic case at fleet scale);
 * - one gateway replica per `PODS_PER_GATEWAY_REPLICA` crawler pods per vendor, within the stack's replica bounds;
 * - cAdvisor and kube-state-metrics report what they report for any pod (about 26 cAdvisor metric names over four
 *   cgroups, 30 kube-state-metrics series per pod); one cAdvisor target per pod, as the benchmark's issue asks;
 * - the anchor's sidecars report Istio's standard metrics with every default label (`reporter="source"`), Istio's
 *   default buckets, a destination tag on `istio_requests_total`, and 400 Envoy stats; our gateways' sidecars report
 *   Istio's TCP series (`reporter="destination"`) per crawler workload, and the same Envoy stats (dropped at scrape).
 */
import * as http from "http";
import * as net from "net";
import {
    CAUSES,
    Cause,
    DATA_MODEL,
    DIRECTIONS,
    DURATION_BUCKETS_MS,
    FAULTS,
    OTHER_DESTINATION,
    PROTOCOLS,
} from "../catalog/datamodel";
import { GATEWAY_METRICS, GATEWAY_POOL, POOL_QUALITY_METRICS } from "../catalog/gateway";
import { EXIT_IP_WINDOWS } from "../proxy/gateway/exit-ips";
import { StackConfig } from "../components/config";

export const WORKLOADS_PER_NAMESPACE = 4;
export const PODS_PER_GATEWAY_REPLICA = 250;
export const STATUSES = [
    { code: "200", share: 0.93 },
    { code: "403", share: 0.02 },
    { code: "429", share: 0.02 },
    { code: "502", share: 0.02 },
    { code: "503", share: 0.01 },
];
/** Requests per second per crawler pod. */
/** Share of a pool's requests per cause in the emulated fleet (the rest of CAUSES: none seen). */
const CAUSE_SHARE: Partial<Record<Cause, number>> = {
    none: 0.96,
    vendor_error: 0.008,
    session_lost: 0.001,
    client: 0.001,
    vendor_policy: 0.005,
    destination: 0.025,
};

export const POD_RPS = 2;
/** Istio's default buckets: request duration (ms) and request/response size (bytes). */
export const ISTIO_DURATION_BUCKETS = [
    0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];
export const ISTIO_BYTES_BUCKETS = [1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000];
const ENVOY_STATS = 400;

/** One series: the exposition prefix (`name{labels} `), and a counter rate per second or a gauge value. */
interface Series {
    readonly prefix: string;
    readonly rate: number;
    readonly counter: boolean;
}

export interface FleetPod {
    readonly name: string;
    readonly namespace: string;
    readonly workload: string;
    readonly index: number;
}

const labelText = (labels: Record<string, string>) =>
    Object.entries(labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(",");
const counter = (name: string, labels: Record<string, string>, rate: number): Series => ({
    prefix: `${name}{${labelText(labels)}} `,
    rate,
    counter: true,
});
const gauge = (name: string, labels: Record<string, string>, value: number): Series => ({
    prefix: `${name}{${labelText(labels)}} `,
    rate: value,
    counter: false,
});

/** A histogram's series with a log-normal-ish spread of observations around `median`. */
function histogram(
    name: string,
    labels: Record<string, string>,
    buckets: number[],
    rate: number,
    median: number,
): Series[] {
    const cdf = (x: number) => 1 / (1 + Math.pow(median / x, 2));
    return [
        ...buckets.map((le) => counter(`${name}_bucket`, { ...labels, le: String(le) }, rate * cdf(le))),
        counter(`${name}_bucket`, { ...labels, le: "+Inf" }, rate),
        counter(`${name}_sum`, labels, rate * median * 1.3),
        counter(`${name}_count`, labels, rate),
    ];
}

const CADVISOR = {
    counters: [
        "container_cpu_usage_seconds_total",
        "container_cpu_user_seconds_total",
        "container_cpu_system_seconds_total",
        "container_cpu_cfs_periods_total",
        "container_cpu_cfs_throttled_periods_total",
        "container_cpu_cfs_throttled_seconds_total",
        "container_fs_reads_bytes_total",
        "container_fs_writes_bytes_total",
        "container_fs_reads_total",
        "container_fs_writes_total",
        "container_memory_failcnt",
    ],
    gauges: [
        "container_memory_working_set_bytes",
        "container_memory_rss",
        "container_memory_cache",
        "container_memory_usage_bytes",
        "container_memory_max_usage_bytes",
        "container_memory_swap",
        "container_spec_memory_limit_bytes",
        "container_spec_cpu_shares",
        "container_spec_cpu_quota",
        "container_start_time_seconds",
        "container_last_seen",
        "container_threads",
        "container_file_descriptors",
        "container_sockets",
        "container_processes",
    ],
    network: [
        "container_network_receive_bytes_total",
        "container_network_transmit_bytes_total",
        "container_network_receive_packets_total",
        "container_network_transmit_packets_total",
        "container_network_receive_errors_total",
        "container_network_transmit_errors_total",
    ],
};

export class Fleet {
    readonly pods: FleetPod[] = [];
    readonly gatewayReplicas: number;
    private readonly anchorTemplates = new Map<string, Series[]>();
    private readonly cadvisor: Series[][] = [];
    private readonly ksm: Series[] = [];
    private readonly gateways = new Map<string, Series[]>();
    private readonly gatewaySidecars = new Map<string, Series[]>();
    private server?: http.Server;

    constructor(
        readonly cfg: StackConfig,
        readonly podCount: number,
        /** Counters are zero at t0 (seconds since the epoch). */
        readonly t0: number,
    ) {
        const namespaces = cfg.crawlers.namespaces.map((n) => n.name);
        for (let i = 0; i < podCount; i++) {
            const namespace = namespaces[i % namespaces.length];
            const w = Math.floor(i / namespaces.length) % WORKLOADS_PER_NAMESPACE;
            const workload = `crawler-${w}`;
            this.pods.push({ name: `${workload}-${(i * 2654435761) % 0xfffff}-${i}`, namespace, workload, index: i });
        }
        this.gatewayReplicas = Math.min(
            cfg.gateway.maxReplicas,
            Math.max(cfg.gateway.replicas, Math.ceil(podCount / PODS_PER_GATEWAY_REPLICA)),
        );
        for (const p of this.pods) this.cadvisor.push(this.cadvisorSeries(p));
        this.ksm = this.pods.flatMap((p) => this.ksmSeries(p));
        for (const v of cfg.vendors)
            for (let r = 0; r < this.gatewayReplicas; r++) {
                this.gateways.set(`${v.name}/${r}`, this.gatewaySeries(v.name));
                this.gatewaySidecars.set(`${v.name}/${r}`, this.gatewaySidecarSeries(v.name, r));
            }
    }

    private vendorsOf(namespace: string): readonly string[] {
        const ns = this.cfg.crawlers.namespaces.find((n) => n.name === namespace);
        return ns && ns.vendors.length > 0 ? ns.vendors : this.cfg.vendors.map((v) => v.name);
    }

    private destinations(): string[] {
        return [...this.cfg.destinations.tracked, OTHER_DESTINATION];
    }

    private cadvisorSeries(p: FleetPod): Series[] {
        const out: Series[] = [];
        const uid = `${p.index.toString(16).padStart(8, "0")}-0000-4000-8000-000000000000`;
        const base = `/kubepods/burstable/pod${uid}`;
        for (const container of ["crawler", "istio-proxy", "POD", ""]) {
            const id = container === "" ? base : `${base}/${container}${p.index}`;
            const labels = {
                container,
                id,
                image: container === "" ? "" : `registry.example/${container || "pause"}:1`,
                name: container === "" ? "" : `k8s_${container}_${p.name}`,
                namespace: p.namespace,
                pod: p.name,
            };
            for (const m of CADVISOR.counters) out.push(counter(m, labels, 0.05 + (p.index % 7) * 0.01));
            for (const m of CADVISOR.gauges) out.push(gauge(m, labels, 50_000_000 + (p.index % 13) * 1_000_000));
            if (container === "POD")
                for (const m of CADVISOR.network) out.push(counter(m, { ...labels, interface: "eth0" }, 20_000));
        }
        return out;
    }

    private ksmSeries(p: FleetPod): Series[] {
        const pod = { namespace: p.namespace, pod: p.name };
        const uid = `uid-${p.index}`;
        const out: Series[] = [
            gauge("kube_pod_info", { ...pod, uid, node: `node-${p.index % 50}`, created_by_kind: "ReplicaSet" }, 1),
            gauge("kube_pod_labels", { ...pod, uid, label_app: p.workload }, 1),
            gauge("kube_pod_owner", { ...pod, uid, owner_kind: "ReplicaSet", owner_name: `${p.workload}-rs` }, 1),
            gauge("kube_pod_start_time", { ...pod, uid }, this.t0),
            gauge("kube_pod_created", { ...pod, uid }, this.t0),
        ];
        for (const phase of ["Pending", "Running", "Succeeded", "Failed", "Unknown"])
            out.push(gauge("kube_pod_status_phase", { ...pod, uid, phase }, phase === "Running" ? 1 : 0));
        for (const condition of ["true", "false", "unknown"]) {
            out.push(gauge("kube_pod_status_ready", { ...pod, uid, condition }, condition === "true" ? 1 : 0));
            out.push(gauge("kube_pod_status_scheduled", { ...pod, uid, condition }, condition === "true" ? 1 : 0));
        }
        for (const container of ["crawler", "istio-proxy"]) {
            const c = { ...pod, uid, container };
            out.push(gauge("kube_pod_container_info", { ...c, image: `registry.example/${container}:1` }, 1));
            out.push(gauge("kube_pod_container_status_ready", c, 1));
            out.push(gauge("kube_pod_container_status_running", c, 1));
            out.push(counter("kube_pod_container_status_restarts_total", c, 0));
            for (const resource of ["cpu", "memory"]) {
                const unit = resource === "cpu" ? "core" : "byte";
                out.push(gauge("kube_pod_container_resource_requests", { ...c, resource, unit }, 1));
                out.push(gauge("kube_pod_container_resource_limits", { ...c, resource, unit }, 2));
            }
        }
        return out;
    }

    /** The gateway's exposition as catalog/datamodel.ts and catalog/gateway.ts define it, per replica. */
    private gatewaySeries(vendor: string): Series[] {
        const v = this.cfg.vendors.find((x) => x.name === vendor)!;
        const weight = v.pools.reduce((s, p) => s + p.weight, 0);
        // Each pod spreads its requests evenly over the vendors its namespace may use.
        const fleetRps = this.pods
            .filter((p) => this.vendorsOf(p.namespace).includes(vendor))
            .reduce((s, p) => s + POD_RPS / this.vendorsOf(p.namespace).length, 0);
        const rps = fleetRps / this.gatewayReplicas;
        const dests = this.destinations();
        const out: Series[] = [];
        for (const p of v.pools) {
            const poolRps = (rps * p.weight) / weight;
            const l = { vendor, pool: p.name };
            for (const d of dests)
                for (const s of STATUSES)
                    for (const protocol of PROTOCOLS)
                        out.push(
                            counter(
                                DATA_MODEL.requests.name,
                                { ...l, destination: d, status: s.code, protocol },
                                (poolRps * s.share) / dests.length / PROTOCOLS.length,
                            ),
                        );
            out.push(...histogram(DATA_MODEL.duration.name, l, DURATION_BUCKETS_MS, poolRps, 400));
            for (const direction of DIRECTIONS)
                out.push(counter(DATA_MODEL.bandwidth.name, { ...l, direction }, poolRps * 60_000));
            out.push(gauge(DATA_MODEL.poolHealth.name, l, 1));
            out.push(counter(GATEWAY_METRICS.retries.name, l, poolRps * 0.001));
            for (const reason of ["timeout", "connect_error"])
                out.push(counter(GATEWAY_METRICS.upstreamFailures.name, { ...l, reason }, poolRps * 0.001));
            for (const result of ["success", "failure"])
                out.push(counter(GATEWAY_METRICS.probes.name, { ...l, result }, result === "success" ? 0.2 : 0));
            out.push(gauge(GATEWAY_METRICS.probeDuration.name, l, 120));
            out.push(counter(GATEWAY_METRICS.staleRetries.name, l, poolRps * 0.0001));
            // As the gateway creates them at start (proxy/gateway/metrics.ts): every fault and cause of every pool,
            // bans of untracked destinations; retries by cause and bans of tracked destinations as they happen.
            const charged = { none: 0.97, vendor: 0.01, destination: 0.02 } as Record<string, number>;
            for (const fault of FAULTS)
                if (fault !== "gateway")
                    out.push(counter(DATA_MODEL.outcomes.name, { ...l, fault }, poolRps * (charged[fault] ?? 0)));
            for (const cause of CAUSES)
                if (cause !== "gateway")
                    out.push(counter(DATA_MODEL.causes.name, { ...l, cause }, poolRps * (CAUSE_SHARE[cause] ?? 0)));
            for (const cause of ["vendor_error", "session_lost"])
                out.push(counter(GATEWAY_METRICS.retriesByCause.name, { ...l, cause }, poolRps * 0.0005));
            for (const d of [...dests.filter((x) => x !== OTHER_DESTINATION).slice(0, 3), OTHER_DESTINATION])
                out.push(counter(DATA_MODEL.bans.name, { ...l, destination: d }, poolRps * 0.001));
            // Pool quality: a few gauges per pool and window however many exit IPs the pool rotates through.
            if (v.exitIp) {
                const q = POOL_QUALITY_METRICS;
                for (const w of EXIT_IP_WINDOWS) {
                    const samples = Math.round((poolRps * w.bucketMs * w.buckets) / 1000);
                    const distinct = Math.min(samples, 5000);
                    out.push(gauge(q.distinct.name, { ...l, window: w.window }, distinct));
                    out.push(gauge(q.samples.name, { ...l, window: w.window }, samples));
                    out.push(gauge(q.reuse.name, { ...l, window: w.window }, samples ? 1 - distinct / samples : 0));
                }
                out.push(counter(q.sessionRequests.name, l, poolRps * 0.1));
                out.push(counter(q.sessionBreaks.name, l, poolRps * 0.001));
            }
        }
        for (const d of dests)
            for (const direction of DIRECTIONS)
                out.push(
                    counter(DATA_MODEL.destinationBandwidth.name, { vendor, destination: d, direction }, rps * 6000),
                );
        out.push(gauge(GATEWAY_METRICS.inflight.name, { vendor }, 20));
        out.push(gauge(GATEWAY_METRICS.panic.name, { vendor }, 0));
        out.push(counter(DATA_MODEL.outcomes.name, { vendor, pool: GATEWAY_POOL, fault: "gateway" }, rps * 0.001));
        out.push(counter(DATA_MODEL.causes.name, { vendor, pool: GATEWAY_POOL, cause: "gateway" }, rps * 0.001));
        out.push(counter(GATEWAY_METRICS.cutAtShutdown.name, { vendor }, 0));
        out.push(counter("process_cpu_seconds_total", {}, 0.3));
        out.push(gauge("process_resident_memory_bytes", {}, 90_000_000));
        out.push(gauge("nodejs_eventloop_lag_p99_seconds", {}, 0.012));
        // prom-client's other default metrics, which the scrape config drops.
        for (let i = 0; i < 30; i++) out.push(gauge(`nodejs_default_metric_${i}`, {}, i));
        return out;
    }

    private envoyStats(): Series[] {
        const out: Series[] = [];
        for (let i = 0; i < ENVOY_STATS; i++)
            out.push(counter(`envoy_cluster_stat_${i % 40}_total`, { cluster_name: `outbound|${i % 10}` }, 1));
        return out;
    }

    private istioLabels(o: {
        reporter: string;
        sourceWorkload: string;
        sourceNamespace: string;
        destWorkload: string;
        destNamespace: string;
        destService: string;
        code: string;
    }): Record<string, string> {
        return {
            reporter: o.reporter,
            source_workload: o.sourceWorkload,
            source_workload_namespace: o.sourceNamespace,
            source_principal: `spiffe://cluster.local/ns/${o.sourceNamespace}/sa/crawler`,
            source_app: o.sourceWorkload,
            source_version: "unknown",
            source_cluster: this.cfg.cluster,
            source_canonical_service: o.sourceWorkload,
            source_canonical_revision: "latest",
            destination_workload: o.destWorkload,
            destination_workload_namespace: o.destNamespace,
            destination_principal: "unknown",
            destination_app: "unknown",
            destination_version: "unknown",
            destination_service: o.destService,
            destination_service_name: o.destService,
            destination_service_namespace: o.destNamespace,
            destination_canonical_service: "unknown",
            destination_canonical_revision: "latest",
            destination_cluster: "unknown",
            request_protocol: o.code === "" ? "tcp" : "http",
            response_code: o.code || "0",
            grpc_response_status: "",
            response_flags: "-",
            connection_security_policy: o.reporter === "destination" ? "mutual_tls" : "unknown",
        };
    }

    /** The Envoy sidecar of one gateway replica: Istio's TCP series per crawler workload, reporter destination. */
    private gatewaySidecarSeries(vendor: string, replica: number): Series[] {
        const out = this.envoyStats();
        for (const ns of this.cfg.crawlers.namespaces) {
            if (!this.vendorsOf(ns.name).includes(vendor)) continue;
            for (let w = 0; w < WORKLOADS_PER_NAMESPACE; w++) {
                const labels = this.istioLabels({
                    reporter: "destination",
                    sourceWorkload: `crawler-${w}`,
                    sourceNamespace: ns.name,
                    destWorkload: `${vendor}-gateway`,
                    destNamespace: this.cfg.namespaces.gateways,
                    destService: `${vendor}-gateway.${this.cfg.namespaces.gateways}.svc.cluster.local`,
                    code: "",
                });
                const rate = 1 + replica * 0.01;
                out.push(counter("istio_tcp_sent_bytes_total", labels, rate * 60_000));
                out.push(counter("istio_tcp_received_bytes_total", labels, rate * 6_000));
                out.push(counter("istio_tcp_connections_opened_total", labels, rate));
                out.push(counter("istio_tcp_connections_closed_total", labels, rate));
            }
        }
        return out;
    }

    /** The anchor: a crawler sidecar reporting Istio's standard metrics with every default label. */
    private anchorSidecarSeries(namespace: string, workload: string): Series[] {
        const key = `${namespace}/${workload}`;
        const cached = this.anchorTemplates.get(key);
        if (cached) return cached;
        const out = this.envoyStats();
        const dests = this.destinations();
        for (const vendor of this.vendorsOf(namespace)) {
            const v = this.cfg.vendors.find((x) => x.name === vendor)!;
            for (const p of v.pools) {
                const common = {
                    reporter: "source",
                    sourceWorkload: workload,
                    sourceNamespace: namespace,
                    destWorkload: "unknown",
                    destNamespace: "unknown",
                    destService: p.host,
                };
                for (const s of STATUSES) {
                    const l = this.istioLabels({ ...common, code: s.code });
                    for (const d of dests)
                        out.push(
                            counter("istio_requests_total", { ...l, destination_host: d }, s.share / dests.length),
                        );
                    out.push(
                        ...histogram("istio_request_duration_milliseconds", l, ISTIO_DURATION_BUCKETS, s.share, 400),
                    );
                    out.push(...histogram("istio_request_bytes", l, ISTIO_BYTES_BUCKETS, s.share, 800));
                    out.push(...histogram("istio_response_bytes", l, ISTIO_BYTES_BUCKETS, s.share, 60_000));
                }
                const tcp = this.istioLabels({ ...common, code: "" });
                out.push(counter("istio_tcp_sent_bytes_total", tcp, 6_000));
                out.push(counter("istio_tcp_received_bytes_total", tcp, 60_000));
                out.push(counter("istio_tcp_connections_opened_total", tcp, 0.5));
                out.push(counter("istio_tcp_connections_closed_total", tcp, 0.5));
            }
        }
        this.anchorTemplates.set(key, out);
        return out;
    }

    /** Series per anchor sidecar of a namespace (for sizing the anchor before running it). */
    anchorSeriesPerPod(): number {
        const counts = this.cfg.crawlers.namespaces.map(
            (n) => this.anchorSidecarSeries(n.name, "crawler-0").length + this.cadvisor[0].length + 30,
        );
        return Math.max(...counts);
    }

    private render(series: Series[], scale: number, t: number): string {
        const dt = t - this.t0;
        let s = "";
        for (const x of series) s += x.prefix + (x.counter ? (x.rate * scale * dt).toFixed(3) : String(x.rate)) + "\n";
        return s;
    }

    /** The exposition of one target at time `t` (seconds), or undefined for an unknown path. */
    exposition(path: string, t: number): string | undefined {
        const m = path.split("/").filter(Boolean);
        if (m[0] === "pod" && m.length === 3) {
            const p = this.pods[Number(m[1])];
            if (!p) return undefined;
            const scale = 0.8 + (p.index % 5) * 0.1;
            if (m[2] === "cadvisor") return this.render(this.cadvisor[p.index], 1, t);
            if (m[2] === "sidecar") return this.render(this.anchorSidecarSeries(p.namespace, p.workload), scale, t);
        }
        if (m[0] === "gateway" && m.length === 4) {
            const key = `${m[1]}/${m[2]}`;
            if (m[3] === "metrics" && this.gateways.has(key)) return this.render(this.gateways.get(key)!, 1, t);
            if (m[3] === "envoy" && this.gatewaySidecars.has(key))
                return this.render(this.gatewaySidecars.get(key)!, 1, t);
        }
        if (m[0] === "kube-state-metrics") return this.render(this.ksm, 1, t);
        return undefined;
    }

    async listen(): Promise<number> {
        this.server = http.createServer((req, res) => {
            const body = this.exposition(req.url ?? "/", Date.now() / 1000);
            if (body === undefined) {
                res.writeHead(404);
                res.end();
                return;
            }
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
            res.end(body);
        });
        await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", () => r()));
        return (this.server.address() as net.AddressInfo).port;
    }

    async close(): Promise<void> {
        if (!this.server) return;
        this.server.closeAllConnections();
        await new Promise<void>((r) => this.server!.close(() => r()));
    }
}
