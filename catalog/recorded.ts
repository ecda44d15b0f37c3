/**
 * Names of the recorded series (`level:metric:operations`). The recording-rule builder must produce every name here
 * (a test checks it), and alerts and dashboards read these names rather than raw series wherever one exists.
 *
 * Labels: every recorded series keeps `cluster`; `vendor_pool:` series keep `vendor` and `pool`, `vendor:` series
 * keep `vendor`, and so on: the level names the labels. Extra labels are listed per series.
 */

/** Windows over which the error ratio is recorded, for the multi-window multi-burn-rate SLO alerts. */
export const SLO_WINDOWS = ["5m", "30m", "1h", "2h", "6h", "1d", "3d"] as const;
export type SloWindow = (typeof SLO_WINDOWS)[number];

/** The SLO period: error budget remaining is shown over it (dashboards), the burn rates are relative to it. */
export const SLO_PERIOD = "30d";

/** Latency quantiles recorded (label `quantile`). */
export const QUANTILES = ["0.5", "0.95", "0.99"] as const;

export const R = {
    // Request rates (requests per second).
    vendorPoolRequests: "vendor_pool:proxy_requests:rate5m",
    vendorRequests: "vendor:proxy_requests:rate5m",
    clusterRequests: "cluster:proxy_requests:rate5m",
    /** Extra label `status_class`: 2xx, 3xx, 4xx, 5xx, with 403, 407 and 429 kept apart from 4xx. */
    vendorPoolStatusClassRequests: "vendor_pool_status_class:proxy_requests:rate5m",
    vendorStatusClassRequests: "vendor_status_class:proxy_requests:rate5m",
    /** Extra label `destination`. */
    vendorDestinationRequests: "vendor_destination:proxy_requests:rate5m",
    /** Extra label `protocol`. */
    vendorProtocolRequests: "vendor_protocol:proxy_requests:rate5m",

    /**
     * Answers of a vendor's pools (not the gateway's own, `pool="none"`), by `status_class`. The refusal, auth and 5xx
     * alerts read these, gated by the share of outcomes charged to the vendor: a status alone does not say whether
     * the vendor or the destination gave it.
     */
    vendorPoolAnswersStatusClass: "vendor_status_class:proxy_pool_answers:rate5m",

    // The vendor's own faults (`proxy_pool_causes_total{cause="vendor_error"}`, falling back to
    // `proxy_pool_outcomes_total{fault="vendor"}` where a gateway exports no causes) and success ratios.
    vendorPoolErrors: "vendor_pool:proxy_request_errors:rate5m",
    /**
     * SLO numerator (the vendor's own faults: `cause="vendor_error"`, or `fault="vendor"` from a gateway that exports
     * no causes) and denominator (every outcome of a pool: none, vendor, destination) over 5m; the gateway's own
     * answers (pool="none") are in neither. The longer SLO windows are sums over time of these.
     */
    vendorSloErrors: "vendor:proxy_slo_errors:rate5m",
    vendorSloRequests: "vendor:proxy_slo_requests:rate5m",
    vendorPoolSuccessRatio: "vendor_pool:proxy_request_success:ratio_rate5m",
    vendorSuccessRatio: "vendor:proxy_request_success:ratio_rate5m",
    /**
     * Share of a vendor's pool outcomes charged to its side (`fault="vendor"`: its errors, lost sessions and refusals
     * of our account), wider than the SLO's errors (`cause="vendor_error"` only): the refusal, auth and 5xx alerts are
     * gated by it, since a 407 or 429 is the vendor's answer even when the SLO does not count it.
     */
    vendorFaultRatio: "vendor:proxy_vendor_faults:ratio_rate5m",

    // Causes (extra label `cause`, one of CAUSES), as the vendor's profile read each outcome.
    vendorPoolCauses: "vendor_pool_cause:proxy_pool_causes:rate5m",
    vendorCauses: "vendor_cause:proxy_pool_causes:rate5m",
    /** Share of a vendor's pool outcomes per cause (the gateway's own answers, `cause="gateway"`, not included). */
    vendorCauseRatio: "vendor_cause:proxy_pool_causes:ratio_rate5m",

    // Bans crawlers reported (proxy_crawler_bans_total), per second; `pool="none"` when the crawler did not say.
    vendorPoolBans: "vendor_pool:proxy_crawler_bans:rate5m",
    /** Extra label `destination`. */
    vendorDestinationBans: "vendor_destination:proxy_crawler_bans:rate5m",
    vendorBans: "vendor:proxy_crawler_bans:rate5m",
    /** Bans reported per request or tunnel a pool carried (the ban-rate panel and alert). */
    vendorPoolBanRatio: "vendor_pool:proxy_crawler_bans:ratio_rate5m",
    vendorBanRatio: "vendor:proxy_crawler_bans:ratio_rate5m",

    // Latency, in milliseconds (extra label `quantile`).
    vendorPoolLatencyBuckets: "vendor_pool_le:proxy_request_duration_milliseconds_bucket:rate5m",
    vendorLatencyBuckets: "vendor_le:proxy_request_duration_milliseconds_bucket:rate5m",
    vendorPoolLatencyQuantile: "vendor_pool:proxy_request_duration_milliseconds:quantile5m",
    vendorLatencyQuantile: "vendor:proxy_request_duration_milliseconds:quantile5m",
    /** Mean latency, ms. */
    vendorLatencyMean: "vendor:proxy_request_duration_milliseconds:mean5m",
    /**
     * The latency SLO: the share of a vendor's answers slower than its p95 SLA, read at the bucket the gateway
     * exports at the SLA value (`le="<sla>"`). The SLA holds while this stays at or below 5%.
     */
    vendorLatencySlowRatio: "vendor:proxy_requests_slower_than_sla:ratio_rate5m",
    /**
     * Latency by `percentile` ("50", "95", "99") per vendor and pool, in seconds:
     * `proxy_request_duration_seconds{vendor, pool, percentile}`. Not in `level:metric:operations` form on purpose: it
     * keeps the name and labels existing queries use (docs/data-model.md lists these compatibility names).
     */
    durationSecondsByPercentile: "proxy_request_duration_seconds",

    // Bandwidth, bytes per second (extra label `direction` where named).
    vendorPoolDirectionBandwidth: "vendor_pool_direction:proxy_bandwidth_bytes:rate5m",
    vendorDirectionBandwidth: "vendor_direction:proxy_bandwidth_bytes:rate5m",
    vendorBandwidth: "vendor:proxy_bandwidth_bytes:rate5m",
    /** Bytes over the trailing 24 hours, both directions: what the daily budget is compared against. */
    vendorBandwidthIncrease1d: "vendor:proxy_bandwidth_bytes:increase1d",
    /** Extra label `destination`, both directions. */
    vendorDestinationBandwidth: "vendor_destination:proxy_bandwidth_bytes:rate5m",

    // Cost: bandwidth (both directions) x the vendor's price per GB (10^9 bytes), in currency units per hour.
    vendorCostPerHour: "vendor:proxy_cost_per_hour:rate5m",
    vendorPoolCostPerHour: "vendor_pool:proxy_cost_per_hour:rate5m",
    /** Cost over the trailing 24 hours. */
    vendorCostIncrease1d: "vendor:proxy_cost:increase1d",

    // Pool health.
    /** Fraction of gateway replicas that see the pool healthy (0..1). */
    vendorPoolHealth: "vendor_pool:proxy_pool_health:avg",
    /** Number of healthy pools of the vendor (a pool counts when at least half the replicas see it healthy). */
    vendorHealthyPools: "vendor:proxy_pools_healthy:count",
    /** Number of configured pools of the vendor that report health. */
    vendorPools: "vendor:proxy_pools:count",

    // Per crawler namespace, from Istio's TCP metrics on the crawler-to-gateway hop (label `crawler_namespace`).
    namespaceVendorBandwidth: "crawler_namespace_vendor:istio_tcp_bytes:rate5m",
    namespaceVendorCostPerHour: "crawler_namespace_vendor:proxy_cost_per_hour:rate5m",
    namespaceVendorConnections: "crawler_namespace_vendor:istio_tcp_connections_opened:rate5m",

    // Infrastructure, per Kubernetes namespace (label `namespace`) and per scrape job (label `job`): the
    // infrastructure dashboard reads these, so an hour-long panel does not read every pod's and target's series.
    namespaceCpu: "namespace:container_cpu_usage_seconds:rate5m",
    namespaceMemory: "namespace:container_memory_working_set_bytes:sum",
    namespaceRestarts: "namespace:kube_pod_container_status_restarts:increase5m",
    namespacePodsRunning: "namespace:kube_pod_status_phase_running:sum",
    jobScrapeDuration: "job:scrape_duration_seconds:max",
    jobSamplesPerScrape: "job:scrape_samples_post_metric_relabeling:sum",
    jobTargetsUp: "job:up:sum",
    jobTargets: "job:up:count",

    // Pool quality (extra label `window`: 5m, 1h, 24h). Each gateway replica counts its own traffic: the largest
    // replica's distinct count is a lower bound of the pool's; reuse is the replicas' sample-weighted mean.
    vendorPoolWindowExitIps: "vendor_pool_window:proxy_pool_exit_ips_distinct:max",
    vendorPoolWindowExitIpSamples: "vendor_pool_window:proxy_pool_exit_ip_samples:sum",
    vendorPoolWindowExitIpReuse: "vendor_pool_window:proxy_pool_exit_ip_reuse:ratio",
    /** Share of sticky-session requests whose exit IP changed mid-session. */
    vendorPoolStickyBreaks: "vendor_pool:proxy_pool_sticky_session_breaks:ratio_rate5m",

    // Configuration as series (constant, one per vendor), so alerts and dashboards join thresholds by `vendor`.
    vendorPricePerGb: "vendor:proxy_price_per_gb:config",
    vendorSuccessObjective: "vendor:proxy_sla_success_objective:config",
    vendorLatencyObjectiveMs: "vendor:proxy_sla_latency_p95_milliseconds:config",
    vendorDailyBudgetBytes: "vendor:proxy_bandwidth_budget_bytes_per_day:config",
    /** `vendors[].exitIp.minDistinctPerHour`, when above 0. */
    vendorMinExitIpsPerHour: "vendor:proxy_pool_exit_ips_min_per_hour:config",
    /** The configured `seriesBudget` of this cluster's Prometheus. */
    seriesBudget: "cluster:prometheus_series_budget:config",

    // Silence: crawlers configured for a vendor (namespaces whose `vendors` name it) that are running.
    vendorCrawlerPodsRunning: "vendor:crawler_pods_running:sum",

    // The stack's own health, recorded so that the global Prometheus federates what the dashboards read.
    instanceHeadSeries: "instance:prometheus_tsdb_head_series:max",
    instanceSamplesAppended: "instance:prometheus_tsdb_head_samples_appended:rate5m",
    instanceStorageBytes: "instance:prometheus_tsdb_storage_blocks_bytes:max",
    instanceSampleLimitHits: "instance:prometheus_target_scrapes_exceeded_sample_limit:increase1h",
    clusterRuleFailures: "cluster:prometheus_rule_evaluation_failures:increase10m",
    clusterRuleGroupDuration: "cluster:prometheus_rule_group_last_duration_seconds:max",
    /** Extra label `integration`. */
    integrationNotifications: "integration:alertmanager_notifications:rate5m",
    integrationNotificationsFailed: "integration:alertmanager_notifications_failed:rate5m",
    /** Labels `namespace`, `horizontalpodautoscaler`. */
    hpaCurrentReplicas: "horizontalpodautoscaler:kube_horizontalpodautoscaler_status_current_replicas:max",
    hpaMaxReplicas: "horizontalpodautoscaler:kube_horizontalpodautoscaler_spec_max_replicas:max",
    /** Labels `vendor`, `instance`. */
    gatewayCpu: "instance:proxy_gateway_cpu_seconds:rate5m",
    gatewayInflight: "instance:proxy_inflight_requests:sum",
    /** Firing alerts (labels alertname, severity, vendor, pool), every one with a `cluster`. */
    firingAlerts: "alertname:alerts_firing:max",
} as const;

/** `vendor:proxy_request_errors:ratio_rate<window>`: errors counted against the vendor over all requests. */
export function vendorErrorRatio(window: SloWindow): string {
    return `vendor:proxy_request_errors:ratio_rate${window}`;
}

/** Every recorded series name, including the error ratios of every SLO window. */
export function allRecordedSeries(): string[] {
    return [...Object.values(R), ...SLO_WINDOWS.map(vendorErrorRatio)];
}
