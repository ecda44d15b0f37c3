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
import { METRICS_PORT_NAME, NAMES, PORTS } from "../names";
import { durationMs } from "../validate";
import { regexOneOf } from "./escape";

/** The stack settings the scrape config reads. */
export type ScrapeStackConfig = Pick<
    StackConfig,
    "cluster" | "namespaces" | "prometheus" | "vendors" | "crawlers" | "loadGenerator" | "autoscaling"
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

/**
 * Targets found by DNS: the A records of headless Services (one per pod), or a regular Service's address. No
 * Kubernetes API access is needed, and Debian's Prometheus build (without Kubernetes discovery) accepts it.
 */
function dnsTargets(cfg: ScrapeStackConfig, names: string[], port: number, extra: Obj[] = []): Obj {
    return {
        dns_sd_configs: [{ names, type: "A", port, refresh_interval: "30s" }],
        relabel_configs: [...extra, { target_label: L.cluster, replacement: cfg.cluster, action: "replace" }],
    };
}

function guards(cfg: ScrapeStackConfig, sampleLimit = cfg.prometheus.sampleLimit): Obj {
    return {
        sample_limit: sampleLimit,
        label_limit: cfg.prometheus.labelLimit,
        label_value_length_limit: cfg.prometheus.labelValueLengthLimit,
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
    const vendors = regexOneOf(cfg.vendors.map((v) => v.name));
    const gatewayNames = cfg.vendors.map((v) => svcDns(NAMES.gatewayPods(v.name), gw));
    const crawlerNs = cfg.crawlers.namespaces.map((n) => n.name);
    const jobs: Obj[] = [
        {
            job_name: "proxy-gateways",
            ...guards(cfg),
            ...dnsTargets(cfg, gatewayNames, PORTS.proxyMetrics),
            metric_relabel_configs: [
                keep(KEPT.gateway),
                // Only configured vendors' series: a stray gateway cannot add a vendor nothing reads.
                { source_labels: [L.vendor], regex: `(${vendors})?`, action: "keep" },
            ],
        },
        {
            job_name: "istio-gateways",
            metrics_path: "/stats/prometheus",
            ...guards(cfg),
            ...dnsTargets(cfg, gatewayNames, PORTS.istioMergedMetrics),
            metric_relabel_configs: istioAttribution(cfg),
        },
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
                { target_label: L.cluster, replacement: cfg.cluster, action: "replace" },
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
            relabel_configs: [{ target_label: L.cluster, replacement: cfg.cluster, action: "replace" }],
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
            relabel_configs: [{ target_label: L.cluster, replacement: cfg.cluster, action: "replace" }],
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
    if (cfg.loadGenerator.enabled) {
        jobs.push({
            job_name: "load-generator",
            ...guards(cfg),
            ...dnsTargets(cfg, [svcDns(NAMES.loadGeneratorPods, cfg.loadGenerator.namespace)], PORTS.proxyMetrics),
        });
    }
    const simulated = cfg.vendors.flatMap((v) =>
        v.pools.filter((p) => p.simulator).map((p) => NAMES.simulator(p.host)),
    );
    if (cfg.loadGenerator.simulators && simulated.length > 0) {
        jobs.push({
            job_name: "vendor-simulators",
            ...guards(cfg),
            ...dnsTargets(
                cfg,
                simulated.map((s) => svcDns(s, cfg.namespaces.simulators)),
                PORTS.proxyMetrics,
            ),
            metric_relabel_configs: [keep(KEPT.simulator)],
        });
    }
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
                { target_label: L.cluster, replacement: cfg.cluster, action: "replace" },
            ],
            metric_relabel_configs: [keep(KEPT.crawlerPods)],
        });
    }
    const amNs = opts.alertmanagerNamespace ?? mon;
    return {
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
    };
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
