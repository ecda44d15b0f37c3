/**
 * Series the dashboards read that are not the data model: kept by the scrape config from cAdvisor,
 * kube-state-metrics, Prometheus and Alertmanager (components/prometheus/scrape.ts `KEPT` lists them), and the
 * series Prometheus makes itself for every target and alert rule.
 */
export const PROMETHEUS_SYNTHETIC = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_post_metric_relabeling",
    "ALERTS",
] as const;

/** Labels Istio's TCP metrics keep on the gateways: what the per-namespace cost view needs, and the reporter. */
export const KEPT_ISTIO_LABELS = ["reporter", "source_workload_namespace", "source_workload", "destination_workload"];

/** Istio's standard labels (TCP metrics carry all but response_code and grpc_response_status). */
export const ISTIO_STANDARD_LABELS = [
    "reporter",
    "source_workload",
    "source_canonical_service",
    "source_canonical_revision",
    "source_workload_namespace",
    "source_principal",
    "source_app",
    "source_version",
    "source_cluster",
    "destination_workload",
    "destination_workload_namespace",
    "destination_principal",
    "destination_app",
    "destination_version",
    "destination_service",
    "destination_canonical_service",
    "destination_canonical_revision",
    "destination_service_name",
    "destination_service_namespace",
    "destination_cluster",
    "request_protocol",
    "response_code",
    "grpc_response_status",
    "response_flags",
    "connection_security_policy",
];

/** Istio's TCP series the gateways' sidecars export (TCP_SENT_BYTES, TCP_RECEIVED_BYTES, TCP_OPENED_CONNECTIONS). */
export const ISTIO_TCP_METRICS = [
    "istio_tcp_sent_bytes_total",
    "istio_tcp_received_bytes_total",
    "istio_tcp_connections_opened_total",
];

/**
 * Labels of the series other programs export that the scrape config keeps (components/prometheus/scrape.ts `KEPT`),
 * as those programs expose them, before our relabelling: kubelet's cAdvisor endpoint, kube-state-metrics v2,
 * Prometheus 2.5x, Alertmanager 0.27, Grafana 10/11, Istio's standard TCP metrics, and the process and Node.js
 * series of prom-client. The label test (tests/labels.test.ts) applies each job's relabelling to these to know what
 * Prometheus stores, and checks every rule, alert, route and dashboard against that.
 */
export const EXPORTED_LABELS: Readonly<Record<string, readonly string[]>> = {
    // kubelet /metrics/cadvisor (`cpu` only on older kubelets).
    container_cpu_usage_seconds_total: ["container", "cpu", "id", "image", "name", "namespace", "pod"],
    container_memory_working_set_bytes: ["container", "id", "image", "name", "namespace", "pod"],
    container_cpu_cfs_throttled_periods_total: ["container", "id", "image", "name", "namespace", "pod"],
    // kube-state-metrics v2.
    kube_pod_container_status_restarts_total: ["namespace", "pod", "uid", "container"],
    kube_pod_status_phase: ["namespace", "pod", "uid", "phase"],
    kube_deployment_status_replicas_available: ["namespace", "deployment"],
    kube_horizontalpodautoscaler_status_current_replicas: ["namespace", "horizontalpodautoscaler"],
    kube_horizontalpodautoscaler_spec_max_replicas: ["namespace", "horizontalpodautoscaler"],
    // Prometheus.
    prometheus_tsdb_head_series: [],
    prometheus_tsdb_head_samples_appended_total: ["type"],
    prometheus_tsdb_storage_blocks_bytes: [],
    prometheus_rule_evaluation_failures_total: ["rule_group"],
    prometheus_rule_group_last_duration_seconds: ["rule_group"],
    prometheus_target_scrapes_exceeded_sample_limit_total: [],
    prometheus_target_scrape_pool_exceeded_label_limits_total: [],
    prometheus_notifications_dropped_total: [],
    prometheus_notifications_errors_total: ["alertmanager"],
    prometheus_notifications_alertmanagers_discovered: [],
    prometheus_config_last_reload_successful: [],
    prometheus_engine_query_duration_seconds: ["slice", "quantile"],
    prometheus_sd_discovered_targets: ["config", "name"],
    // Alertmanager.
    alertmanager_notifications_total: ["integration"],
    alertmanager_notifications_failed_total: ["integration", "reason"],
    alertmanager_cluster_members: [],
    alertmanager_config_last_reload_successful: [],
    // Grafana.
    grafana_http_request_duration_seconds_count: ["handler", "method", "status_code"],
    // Istio's TCP metrics on the gateways: the Telemetry resource (components/mesh.ts) removes every other tag.
    ...Object.fromEntries(ISTIO_TCP_METRICS.map((n) => [n, KEPT_ISTIO_LABELS])),
    // prom-client's default series (and Prometheus', Grafana's own process series).
    process_cpu_seconds_total: [],
    process_resident_memory_bytes: [],
    nodejs_eventloop_lag_p99_seconds: [],
};
