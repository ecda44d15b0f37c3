/**
 * The cluster Prometheus configuration (prometheus.yml) built from the stack config: scrape jobs with cardinality
 * guards, the vendor attribution of Istio's TCP series, alerting, rule files. Only what both Debian's promtool 2.42
 * and the pinned image (2.53) accept.
 */
import { DATA_MODEL, ISTIO_TCP_METRICS, L } from "../../catalog";
import { GATEWAY_METRICS, POOL_QUALITY_METRICS } from "../../catalog/gateway";
import { LOADGEN_METRICS } from "../../catalog/loadgen";
import { SIMULATOR_METRICS } from "../../catalog/simulator";
import { StackConfig } from "../config";
import { APP, METRICS_PORT_NAME, NAMES, PORTS } from "../names";
import { durationMs } from "../validate";
import { regexOneOf } from "./escape";
import { withLongTermStorage } from "./remote-write";

/** The stack settings the scrape config reads. */
export type ScrapeStackConfig = Pick<
    StackConfig,
    "cluster" | "namespaces" | "prometheus" | "vendors" | "crawlers" | "loadGenerator" | "autoscaling" | "secrets"
>;

export type Obj = Record<string, unknown>;

/** Where the pod mounts rule files and the service-account token. */
export const RULES_DIR = "/etc/prometheus/rules";
const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Istio series the attribution keeps (the Telemetry resource keeps exactly these on the gateways). */
export const ISTIO_KEPT_METRICS = ISTIO_TCP_METRICS;

/** Series kept per job: everything else is dropped at scrape time (nothing reads it). */
export const KEPT = {
    gateway: [
        ...Object.values(DATA_MODEL).flatMap((m) =>
            m.type === "histogram" ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name],
        ),
        ...Object.values(GATEWAY_METRICS).map((m) => m.name),
        ...Object.values(POOL_QUALITY_METRICS).map((m) => m.name),
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "nodejs_eventloop_lag_p99_seconds",
    ],
    cadvisor: [
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "container_cpu_cfs_throttled_periods_total",
    ],
    kubeStateMetrics: [
        "kube_pod_container_status_restarts_total",
        "kube_pod_status_phase",
        "kube_deployment_status_replicas_available",
        "kube_horizontalpodautoscaler_status_current_replicas",
        "kube_horizontalpodautoscaler_spec_max_replicas",
    ],
    prometheus: [
        "prometheus_tsdb_head_series",
        "prometheus_tsdb_head_samples_appended_total",
        "prometheus_tsdb_storage_blocks_bytes",
        "prometheus_rule_evaluation_failures_total",
        "prometheus_rule_group_last_duration_seconds",
        "prometheus_target_scrapes_exceeded_sample_limit_total",
        "prometheus_target_scrape_pool_exceeded_label_limits_total",
        "prometheus_notifications_dropped_total",
        "prometheus_notifications_errors_total",
        "prometheus_notifications_alertmanagers_discovered",
        "prometheus_config_last_reload_successful",
        "prometheus_engine_query_duration_seconds",
        "prometheus_sd_discovered_targets",
        "process_resident_memory_bytes",
    ],
    alertmanager: [
        "alertmanager_notifications_total",
        "alertmanager_notifications_failed_total",
        "alertmanager_cluster_members",
        "alertmanager_config_last_reload_successful",
    ],
    /** What the crawler HPA's custom metric reads (prometheus-adapter, components/autoscaling.ts). */
    crawlerPods: [LOADGEN_METRICS.queueDepth.name],
    grafana: ["grafana_http_request_duration_seconds_count", "process_resident_memory_bytes"],
    simulator: [...Object.values(SIMULATOR_METRICS).map((m) => m.name), "process_cpu_seconds_total"],
};

const keep = (names: readonly string[]): Obj => ({
    source_labels: ["__name__"],
    regex: regexOneOf(names),
    action: "keep",
});

export interface ScrapeOptions {
    /** The external label telling the members of an HA pair apart (expanded per pod from the POD_NAME env). */
    readonly replicaLabel: boolean;
    /** Alertmanager to send alerts to. Defaults to the stack's. */
    readonly alertmanagerNamespace?: string;
}

/** In-cluster DNS name of a Service (resolved through the pod's search path, whatever the cluster domain). */
export function svcDns(name: string, namespace: string): string {
    return `${name}.${namespace}.svc`;
}

/** The `cluster` target label every job sets, standalone (relabel_configs) and in operator mode (relabelings). */
export function clusterLabel(cfg: Pick<StackConfig, "cluster">): Obj {
    return { target_label: L.cluster, replacement: cfg.cluster, action: "replace" };
}

/**
 * Targets found by DNS: the A records of headless Services (one per pod), or a regular Service's address. No
 * Kubernetes API access is needed, and Debian's Prometheus build (without Kubernetes discovery) accepts it.
 */
function dnsTargets(cfg: ScrapeStackConfig, names: string[], port: number, extra: Obj[] = []): Obj {
    return {
        dns_sd_configs: [{ names, type: "A", port, refresh_interval: "30s" }],
        relabel_configs: [...extra, clusterLabel(cfg)],
    };
}

/** The per-scrape cardinality guards of a job: sample, label count and label value length limits. */
export function guards(cfg: ScrapeStackConfig, sampleLimit = cfg.prometheus.sampleLimit): Obj {
    return {
        sample_limit: sampleLimit,
        label_limit: cfg.prometheus.labelLimit,
        label_value_length_limit: cfg.prometheus.labelValueLengthLimit,
    };
}

/**
 * A job over pods the program runs (gateways, their sidecars, the load generator, the simulators): the one source of
 * both renderings, a prometheus.yml job found by DNS (standalone, `podJobConfig`) and a PodMonitor for the Prometheus
 * Operator (components/operator). Name, path, limits, relabelling and keep lists are defined once, here.
 */
export interface PodJob {
    /** The `job` label value (rules and dashboards read it). */
    readonly job: string;
    /** Namespace and `app.kubernetes.io/name` of the pods (operator mode selects them by these). */
    readonly namespace: string;
    readonly app: string;
    /** Headless Services whose A records are the pods (standalone). */
    readonly dnsNames: readonly string[];
    readonly port: number;
    /**
     * The container port's name (PodMonitor `port`). Absent for the Istio sidecar's merged-metrics port, which the
     * sidecar does not declare: operator mode keeps the `istio-proxy` container and addresses that port itself.
     */
    readonly portName?: string;
    readonly path?: string;
    /** sample_limit, label_limit and label_value_length_limit (`guards`). */
    readonly limits: Obj;
    /** metric_relabel_configs: keep lists and label rewriting. */
    readonly metricRelabel: readonly Obj[];
}

/** The pod jobs of the stack, in the order the standalone config lists them. */
export function podJobs(cfg: ScrapeStackConfig): PodJob[] {
    const gw = cfg.namespaces.gateways;
    const vendors = regexOneOf(cfg.vendors.map((v) => v.name));
    const gatewayNames = cfg.vendors.map((v) => svcDns(NAMES.gatewayPods(v.name), gw));
    const jobs: PodJob[] = [
        {
            job: "proxy-gateways",
            namespace: gw,
            app: APP.gateway,
            dnsNames: gatewayNames,
            port: PORTS.proxyMetrics,
            portName: METRICS_PORT_NAME,
            limits: guards(cfg),
            metricRelabel: [
                keep(KEPT.gateway),
                // Only configured vendors' series: a stray gateway cannot add a vendor nothing reads.
                { source_labels: [L.vendor], regex: `(${vendors})?`, action: "keep" },
            ],
        },
        {
            job: "istio-gateways",
            namespace: gw,
            app: APP.gateway,
            dnsNames: gatewayNames,
            port: PORTS.istioMergedMetrics,
            path: "/stats/prometheus",
            limits: guards(cfg),
            metricRelabel: istioAttribution(cfg),
        },
    ];
    if (cfg.loadGenerator.enabled) {
        jobs.push({
            job: "load-generator",
            namespace: cfg.loadGenerator.namespace,
            app: APP.loadGenerator,
            dnsNames: [svcDns(NAMES.loadGeneratorPods, cfg.loadGenerator.namespace)],
            port: PORTS.proxyMetrics,
            portName: METRICS_PORT_NAME,
            limits: guards(cfg),
            metricRelabel: [],
        });
    }
    const simulated = cfg.vendors.flatMap((v) =>
        v.pools.filter((p) => p.simulator).map((p) => NAMES.simulator(p.host)),
    );
    if (cfg.loadGenerator.simulators && simulated.length > 0) {
        jobs.push({
            job: "vendor-simulators",
            namespace: cfg.namespaces.simulators,
            app: APP.simulator,
            dnsNames: simulated.map((s) => svcDns(s, cfg.namespaces.simulators)),
            port: PORTS.proxyMetrics,
            portName: METRICS_PORT_NAME,
            limits: guards(cfg),
            metricRelabel: [keep(KEPT.simulator)],
        });
    }
    return jobs;
}

/** A pod job as a standalone prometheus.yml job, its pods found by DNS. */
export function podJobConfig(cfg: ScrapeStackConfig, j: PodJob): Obj {
    return {
        job_name: j.job,
        ...(j.path ? { metrics_path: j.path } : {}),
        ...j.limits,
        ...dnsTargets(cfg, [...j.dnsNames], j.port),
        ...(j.metricRelabel.length > 0 ? { metric_relabel_configs: [...j.metricRelabel] } : {}),
    };
}

/**
 * The Istio job's metric relabelling: keep the TCP series the Telemetry keeps, reported by the gateways
 * (reporter destination) with a gateway as destination workload; map the workload to `vendor`; rename the source
 * namespace and workload to `crawler_namespace` and `crawler_workload`; drop every other label. Bytes per crawler
 * namespace per vendor are then stored at a cost independent of the number of crawler pods.
 */
export function istioAttribution(cfg: ScrapeStackConfig): Obj[] {
    const vendors = regexOneOf(cfg.vendors.map((v) => v.name));
    return [
        keep(ISTIO_KEPT_METRICS),
        { source_labels: ["reporter"], regex: "destination", action: "keep" },
        { source_labels: ["destination_workload"], regex: `(${vendors})-gateway`, action: "keep" },
        {
            source_labels: ["destination_workload"],
            regex: `(${vendors})-gateway`,
            target_label: L.vendor,
            replacement: "$1",
            action: "replace",
        },
        { source_labels: ["source_workload_namespace"], target_label: L.crawlerNamespace, action: "replace" },
        // The workload stays: Prometheus cannot sum at scrape time, so dropping it would collapse the series of two
        // workloads into duplicates and lose bytes. Workloads are Deployments, not pods: the cost stays flat in pods.
        { source_labels: ["source_workload"], target_label: L.crawlerWorkload, action: "replace" },
        {
            regex: `__name__|${L.vendor}|${L.crawlerNamespace}|${L.crawlerWorkload}|${L.cluster}|job|instance`,
            action: "labelkeep",
        },
    ];
}

export function buildScrapeConfig(cfg: ScrapeStackConfig, opts: ScrapeOptions): Obj {
    const mon = cfg.namespaces.monitoring;
    const gw = cfg.namespaces.gateways;
    const crawlerNs = cfg.crawlers.namespaces.map((n) => n.name);
    const [gateways, istio, ...workloads] = podJobs(cfg).map((j) => podJobConfig(cfg, j));
    const jobs: Obj[] = [
        gateways,
        istio,
        {
            job_name: "kubelet-cadvisor",
            scheme: "https",
            metrics_path: "/metrics/cadvisor",
            ...guards(cfg, Math.max(cfg.prometheus.sampleLimit, 50_000)),
            authorization: { credentials_file: `${SA_DIR}/token` },
            // Kubelet serving certificates are often self-signed per node; the token still authenticates us.
            tls_config: { ca_file: `${SA_DIR}/ca.crt`, insecure_skip_verify: true },
            kubernetes_sd_configs: [{ role: "node" }],
            relabel_configs: [
                clusterLabel(cfg),
                { source_labels: ["__meta_kubernetes_node_name"], target_label: "node", action: "replace" },
            ],
            metric_relabel_configs: [
                keep(KEPT.cadvisor),
                // Containers of crawler pods and of this stack only; the pod sandbox (container="" or POD) and
                // per-cgroup ids carry nothing the dashboards read.
                {
                    source_labels: ["namespace"],
                    regex: regexOneOf([...crawlerNs, mon, gw, cfg.namespaces.simulators]),
                    action: "keep",
                },
                { source_labels: ["container"], regex: "(POD|)", action: "drop" },
                { regex: "id|name|image", action: "labeldrop" },
            ],
        },
        {
            job_name: "kube-state-metrics",
            ...guards(cfg, Math.max(cfg.prometheus.sampleLimit, 50_000)),
            static_configs: [{ targets: [`${svcDns(NAMES.kubeStateMetrics, mon)}:${PORTS.kubeStateMetrics}`] }],
            relabel_configs: [clusterLabel(cfg)],
            metric_relabel_configs: [
                keep(KEPT.kubeStateMetrics),
                // Objects of crawler namespaces and of this stack only, as for cAdvisor.
                {
                    source_labels: ["namespace"],
                    regex: regexOneOf([...crawlerNs, mon, gw, cfg.namespaces.simulators]),
                    action: "keep",
                },
            ],
        },
        {
            job_name: "prometheus",
            ...guards(cfg),
            static_configs: [{ targets: [`localhost:${PORTS.prometheus}`] }],
            relabel_configs: [clusterLabel(cfg)],
            metric_relabel_configs: [keep(KEPT.prometheus)],
        },
        {
            job_name: "alertmanager",
            ...guards(cfg),
            ...dnsTargets(cfg, [svcDns(NAMES.alertmanagerPeers, mon)], PORTS.alertmanager),
            metric_relabel_configs: [keep(KEPT.alertmanager)],
        },
        {
            job_name: "grafana",
            ...guards(cfg),
            ...dnsTargets(cfg, [svcDns(NAMES.grafana, mon)], PORTS.grafana),
            metric_relabel_configs: [keep(KEPT.grafana)],
        },
    ];
    jobs.push(...workloads);
    const queueNs = queueDepthNamespaces(cfg);
    if (queueNs.length > 0) {
        // The crawler HPA's custom metric: prometheus-adapter asks for it per namespace and pod, so the pods are
        // found through the API (namespaced Roles grant pods list/watch there) and only that one series is kept.
        jobs.push({
            job_name: "crawler-pods",
            ...guards(cfg),
            kubernetes_sd_configs: [{ role: "pod", namespaces: { names: queueNs } }],
            relabel_configs: [
                {
                    source_labels: ["__meta_kubernetes_pod_container_port_name"],
                    regex: METRICS_PORT_NAME,
                    action: "keep",
                },
                { source_labels: ["__meta_kubernetes_pod_phase"], regex: "Running", action: "keep" },
                { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace", action: "replace" },
                { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod", action: "replace" },
                clusterLabel(cfg),
            ],
            metric_relabel_configs: [keep(KEPT.crawlerPods)],
        });
    }
    const amNs = opts.alertmanagerNamespace ?? mon;
    return withLongTermStorage(cfg, {
        global: {
            scrape_interval: cfg.prometheus.scrapeInterval,
            evaluation_interval: cfg.prometheus.evaluationInterval,
            scrape_timeout: `${Math.min(10, Math.floor(durationMs(cfg.prometheus.scrapeInterval) / 1000))}s`,
            external_labels: { [L.cluster]: cfg.cluster, ...(opts.replicaLabel ? { [L.replica]: "${POD_NAME}" } : {}) },
        },
        alerting: {
            // The members of an HA pair send the same alerts: without their replica label Alertmanager sees one.
            ...(opts.replicaLabel ? { alert_relabel_configs: [{ regex: L.replica, action: "labeldrop" }] } : {}),
            alertmanagers: [
                {
                    dns_sd_configs: [
                        { names: [svcDns(NAMES.alertmanagerPeers, amNs)], type: "A", port: PORTS.alertmanager },
                    ],
                },
            ],
        },
        rule_files: [`${RULES_DIR}/*.yaml`],
        scrape_configs: jobs,
    });
}

/** Namespaces of the crawler workloads whose HPA scales on the queue depth (custom metric), sorted. */
export function queueDepthNamespaces(cfg: Pick<StackConfig, "autoscaling">): string[] {
    if (!cfg.autoscaling.customMetrics) return [];
    return [...new Set(cfg.autoscaling.workloads.filter((w) => w.targetQueueDepth > 0).map((w) => w.namespace))].sort();
}

/**
 * The one documented transformation from in-cluster discovery to fixed targets, for running the generated config
 * outside a cluster (tests, `npm run local`): every job's DNS or Kubernetes discovery becomes `static_configs` with the
 * given targets (and labels), discovery-based relabelling is dropped, and the `cluster` label is kept; jobs without
 * targets are removed. Alertmanagers likewise, from `alertmanagers`.
 */
export function toStaticTargets(
    config: Obj,
    targetsByJob: Record<string, { targets: string[]; labels?: Record<string, string> }[]>,
    alertmanagers: string[] = [],
): Obj {
    const copy = JSON.parse(JSON.stringify(config)) as Obj;
    const jobs = (copy.scrape_configs as Obj[]).filter((j) => targetsByJob[j.job_name as string]);
    for (const j of jobs) {
        delete j.kubernetes_sd_configs;
        delete j.dns_sd_configs;
        delete j.authorization;
        delete j.tls_config;
        j.scheme = "http";
        j.static_configs = targetsByJob[j.job_name as string];
        j.relabel_configs = ((j.relabel_configs as Obj[]) ?? []).filter(
            (r) => !(r.source_labels as string[] | undefined)?.some((l) => l.startsWith("__meta_")),
        );
    }
    copy.scrape_configs = jobs;
    const relabel = (copy.alerting as Obj | undefined)?.alert_relabel_configs;
    copy.alerting =
        alertmanagers.length > 0
            ? {
                  ...(relabel ? { alert_relabel_configs: relabel } : {}),
                  alertmanagers: [{ static_configs: [{ targets: alertmanagers }] }],
              }
            : undefined;
    if (!copy.alerting) delete copy.alerting;
    return copy;
}
