/**
 * Recording rules, `level:metric:operations`, for every view the dashboards and alerts read (catalog/recorded.ts
 * names them; a test checks that every name there is recorded here). Vendor configuration (price, objectives,
 * budgets) is recorded as constant series per vendor, so alerts and dashboards join thresholds `on(cluster, vendor)`.
 */
import { Cause, DATA_MODEL, Fault, L, QUANTILES, R, SLO_WINDOWS, by, vendorErrorRatio } from "../../catalog";
import { GATEWAY_METRICS, GATEWAY_POOL, POOL_QUALITY_METRICS, WINDOW_LABEL } from "../../catalog/gateway";
import { StackConfig } from "../config";
import { promqlString, regexOneOf } from "./escape";

/** The stack settings the recording rules read. */
export type RulesStackConfig = Pick<StackConfig, "cluster" | "prometheus" | "vendors" | "crawlers">;

export interface RecordingRule {
    record: string;
    expr: string;
    labels?: Record<string, string>;
}
export interface RuleGroup {
    name: string;
    interval?: string;
    rules: RecordingRule[];
}

const C = L.cluster;
const V = L.vendor;
const P = L.pool;
const REQ = DATA_MODEL.requests.name;
const DUR = DATA_MODEL.duration.name;
const BW = DATA_MODEL.bandwidth.name;
const GW = promqlString(GATEWAY_POOL);

/** Status classes: 2xx, 3xx, 4xx, 5xx, with the proxy-level refusals 401, 403, 407 and 429 kept apart. */
export const STATUS_CLASS_APART = "401|403|407|429";

const OUT = DATA_MODEL.outcomes.name;
const CAUSE = DATA_MODEL.causes.name;
const BANS = DATA_MODEL.bans.name;
const faults = (...f: Fault[]) => `${L.fault}=~"${f.join("|")}"`;
/** Outcomes charged to the vendor's side: its errors, lost sessions, refusals of our account (CAUSE_FAULT). */
const VENDOR_FAULTS = faults("vendor");
/** The cause the SLO counts: the vendor's own fault, not a lost session nor a refusal of our account. */
export const SLO_CAUSE: Cause = "vendor_error";
/**
 * Outcomes of a vendor's pools (the SLO's requests): what the vendor carried, what it failed, and what the destination
 * failed through it. The gateway's own answers (fault="gateway", pool="none") are in neither.
 */
const POOL_OUTCOMES = faults("none", "vendor", "destination");

/** num / den where den > 0; 0 where den > 0 but num has no series (no errors at all); nothing where den is 0. */
function ratioOrZero(num: string, den: string): string {
    return `(${num} / (${den} > 0)) or (0 * (${den} > 0))`;
}

/**
 * The SLO's errors per second summed by `labels`: the vendor's own faults by cause where the gateways export causes
 * (proxy_pool_causes_total, created at 0 for every pool), else the outcomes charged to the vendor (an older gateway).
 */
function sloErrors(labels: string[]): string {
    return (
        `sum ${by(...labels)} (rate(${CAUSE}{${L.cause}="${SLO_CAUSE}"}[5m])) ` +
        `or sum ${by(...labels)} (rate(${OUT}{${VENDOR_FAULTS}}[5m]))`
    );
}

export function buildRecordingRules(cfg: RulesStackConfig): { groups: RuleGroup[] } {
    const requests: RecordingRule[] = [
        { record: R.vendorPoolRequests, expr: `sum ${by(C, V, P)} (rate(${REQ}[5m]))` },
        { record: R.vendorRequests, expr: `sum ${by(C, V)} (${R.vendorPoolRequests})` },
        { record: R.clusterRequests, expr: `sum ${by(C)} (${R.vendorRequests})` },
        {
            record: R.vendorPoolStatusClassRequests,
            expr:
                `sum ${by(C, V, P, L.statusClass)} (label_replace(label_replace(rate(${REQ}[5m]), ` +
                `"${L.statusClass}", "\${1}xx", "${L.status}", "([0-9])[0-9][0-9]"), ` +
                `"${L.statusClass}", "$1", "${L.status}", "(${STATUS_CLASS_APART})"))`,
        },
        {
            record: R.vendorStatusClassRequests,
            expr: `sum ${by(C, V, L.statusClass)} (${R.vendorPoolStatusClassRequests})`,
        },
        { record: R.vendorDestinationRequests, expr: `sum ${by(C, V, L.destination)} (rate(${REQ}[5m]))` },
        { record: R.vendorProtocolRequests, expr: `sum ${by(C, V, L.protocol)} (rate(${REQ}[5m]))` },
        {
            record: R.vendorPoolAnswersStatusClass,
            expr:
                `sum ${by(C, V, L.statusClass)} (label_replace(label_replace(rate(${REQ}{pool!=${GW}}[5m]), ` +
                `"${L.statusClass}", "\${1}xx", "${L.status}", "([0-9])[0-9][0-9]"), ` +
                `"${L.statusClass}", "$1", "${L.status}", "(${STATUS_CLASS_APART})"))`,
        },
        { record: R.vendorPoolErrors, expr: sloErrors([C, V, P]) },
    ];
    // A pool that answered without a single error has no error series: its success ratio is 1, not "no data".
    requests.push({
        record: R.vendorPoolSuccessRatio,
        expr: `1 - (${ratioOrZero(R.vendorPoolErrors, `sum ${by(C, V, P)} (rate(${OUT}{${POOL_OUTCOMES}}[5m]))`)})`,
    });
    // SLO ratios: the 5m numerator and denominator are recorded from the raw series; every longer window sums those
    // recorded series over time (a request-weighted ratio), so a 3-day window reads 3 x 17,280 samples per vendor
    // instead of every raw series' 3 days. An error ratio over a window with requests but no errors is 0.
    const errors5m = R.vendorSloErrors;
    const requests5m = R.vendorSloRequests;
    const slo: RecordingRule[] = [
        { record: errors5m, expr: sloErrors([C, V]) },
        { record: requests5m, expr: `sum ${by(C, V)} (rate(${OUT}{${POOL_OUTCOMES}}[5m]))` },
        {
            record: R.vendorFaultRatio,
            expr: ratioOrZero(`sum ${by(C, V)} (rate(${OUT}{${VENDOR_FAULTS}}[5m]))`, requests5m),
        },
        ...SLO_WINDOWS.map((w) => {
            const [e, r] =
                w === "5m" ? [errors5m, requests5m] : [errors5m, requests5m].map((x) => `sum_over_time(${x}[${w}])`);
            return { record: vendorErrorRatio(w), expr: ratioOrZero(e, r) };
        }),
    ];
    slo.push({ record: R.vendorSuccessRatio, expr: `1 - ${vendorErrorRatio("5m")}` });

    const latency: RecordingRule[] = [
        { record: R.vendorPoolLatencyBuckets, expr: `sum ${by(C, V, P, L.le)} (rate(${DUR}_bucket{pool!=${GW}}[5m]))` },
        { record: R.vendorLatencyBuckets, expr: `sum ${by(C, V, L.le)} (${R.vendorPoolLatencyBuckets})` },
        // An idle pool has all-zero bucket rates: its quantile would be NaN. Only pools (vendors) that answered
        // (buckets are cumulative: any bucket above 0 means an answer).
        ...QUANTILES.map((q) => ({
            record: R.vendorPoolLatencyQuantile,
            expr: `histogram_quantile(${q}, ${R.vendorPoolLatencyBuckets} and on (${C}, ${V}, ${P}) (sum ${by(C, V, P)} (${R.vendorPoolLatencyBuckets}) > 0))`,
            labels: { [L.quantile]: q },
        })),
        ...QUANTILES.map((q) => ({
            record: R.vendorLatencyQuantile,
            expr: `histogram_quantile(${q}, ${R.vendorLatencyBuckets} and on (${C}, ${V}) (sum ${by(C, V)} (${R.vendorLatencyBuckets}) > 0))`,
            labels: { [L.quantile]: q },
        })),
        // Per vendor, the share slower than its SLA, at the bucket its gateway exports at the SLA value.
        ...cfg.vendors.map((v) => {
            // le="800" as Prometheus 2 stores it, or "800.0" as Prometheus 3 normalises it.
            const sel = (le: string) =>
                `${R.vendorLatencyBuckets}{${V}=${promqlString(v.name)}, le=~${promqlString(le)}}`;
            return {
                record: R.vendorLatencySlowRatio,
                expr: `1 - ${sel(`${v.sla.p95LatencyMs}(\\.0)?`)} / ignoring (le) (${sel("\\+Inf")} > 0)`,
                labels: { [V]: v.name },
            };
        }),
        {
            record: R.vendorLatencyMean,
            expr: `sum ${by(C, V)} (rate(${DUR}_sum{pool!=${GW}}[5m])) / (sum ${by(C, V)} (rate(${DUR}_count{pool!=${GW}}[5m])) > 0)`,
        },
        ...QUANTILES.map((q) => ({
            record: R.durationSecondsByPercentile,
            expr: `max without (${L.quantile}) (${R.vendorPoolLatencyQuantile}{${L.quantile}="${q}"}) / 1000`,
            labels: { [L.percentile]: String(Math.round(Number(q) * 100)) },
        })),
    ];

    const perGb = `* 3600 / 1e9 * on (${C}, ${V}) group_left ${R.vendorPricePerGb}`;
    const bandwidth: RecordingRule[] = [
        { record: R.vendorPoolDirectionBandwidth, expr: `sum ${by(C, V, P, L.direction)} (rate(${BW}[5m]))` },
        {
            record: R.vendorDirectionBandwidth,
            expr: `sum ${by(C, V, L.direction)} (${R.vendorPoolDirectionBandwidth})`,
        },
        { record: R.vendorBandwidth, expr: `sum ${by(C, V)} (${R.vendorDirectionBandwidth})` },
        { record: R.vendorBandwidthIncrease1d, expr: `sum ${by(C, V)} (increase(${BW}[1d]))` },
        {
            record: R.vendorDestinationBandwidth,
            expr: `sum ${by(C, V, L.destination)} (rate(${DATA_MODEL.destinationBandwidth.name}[5m]))`,
        },
        { record: R.vendorCostPerHour, expr: `${R.vendorBandwidth} ${perGb}` },
        { record: R.vendorPoolCostPerHour, expr: `sum ${by(C, V, P)} (${R.vendorPoolDirectionBandwidth}) ${perGb}` },
        {
            record: R.vendorCostIncrease1d,
            expr: `${R.vendorBandwidthIncrease1d} / 1e9 * on (${C}, ${V}) group_left ${R.vendorPricePerGb}`,
        },
    ];

    const health: RecordingRule[] = [
        { record: R.vendorPoolHealth, expr: `avg ${by(C, V, P)} (${DATA_MODEL.poolHealth.name})` },
        { record: R.vendorHealthyPools, expr: `sum ${by(C, V)} (${R.vendorPoolHealth} >= bool 0.5)` },
        { record: R.vendorPools, expr: `count ${by(C, V)} (${R.vendorPoolHealth})` },
    ];

    const NS = L.crawlerNamespace;
    const istio: RecordingRule[] = [
        {
            record: R.namespaceVendorBandwidth,
            // rate() drops the metric name, so sent and received are told apart by a label before the union.
            expr:
                `sum ${by(C, NS, V)} (label_replace(rate(istio_tcp_sent_bytes_total[5m]), "${L.direction}", "sent", "", "") ` +
                `or label_replace(rate(istio_tcp_received_bytes_total[5m]), "${L.direction}", "received", "", ""))`,
        },
        { record: R.namespaceVendorCostPerHour, expr: `${R.namespaceVendorBandwidth} ${perGb}` },
        {
            record: R.namespaceVendorConnections,
            expr: `sum ${by(C, NS, V)} (rate(istio_tcp_connections_opened_total[5m]))`,
        },
    ];

    const constant = (record: string, vendor: string, value: number): RecordingRule => ({
        record,
        expr: `vector(${value})`,
        labels: { [C]: cfg.cluster, [V]: vendor },
    });
    const config: RecordingRule[] = [
        ...cfg.vendors.flatMap((v) => [
            constant(R.vendorPricePerGb, v.name, v.pricePerGb),
            constant(R.vendorSuccessObjective, v.name, v.sla.successObjective),
            constant(R.vendorLatencyObjectiveMs, v.name, v.sla.p95LatencyMs),
            ...(v.dailyBudgetGb > 0 ? [constant(R.vendorDailyBudgetBytes, v.name, v.dailyBudgetGb * 1e9)] : []),
            ...(v.exitIp && v.exitIp.minDistinctPerHour > 0
                ? [constant(R.vendorMinExitIpsPerHour, v.name, v.exitIp.minDistinctPerHour)]
                : []),
        ]),
        { record: R.seriesBudget, expr: `vector(${cfg.prometheus.seriesBudget})`, labels: { [C]: cfg.cluster } },
    ];
    // Per vendor, the crawler pods running in the namespaces configured to use it (crawlers.namespaces[].vendors).
    const crawlersOf = (vendor: string) =>
        cfg.crawlers.namespaces.filter((n) => n.vendors.includes(vendor)).map((n) => n.name);
    const crawlers: RecordingRule[] = cfg.vendors
        .filter((v) => crawlersOf(v.name).length > 0)
        .map((v) => ({
            record: R.vendorCrawlerPodsRunning,
            expr: `sum ${by(C)} (kube_pod_status_phase{phase="Running", namespace=~${promqlString(regexOneOf(crawlersOf(v.name)))}})`,
            labels: { [V]: v.name },
        }));
    const W = WINDOW_LABEL;
    const q = POOL_QUALITY_METRICS;
    const poolQuality: RecordingRule[] = [
        { record: R.vendorPoolWindowExitIps, expr: `max ${by(C, V, P, W)} (${q.distinct.name})` },
        { record: R.vendorPoolWindowExitIpSamples, expr: `sum ${by(C, V, P, W)} (${q.samples.name})` },
        {
            record: R.vendorPoolWindowExitIpReuse,
            expr: `sum ${by(C, V, P, W)} (${q.reuse.name} * ${q.samples.name}) / ${by(C, V, P, W).replace("by", "on")} (${R.vendorPoolWindowExitIpSamples} > 0)`,
        },
        {
            record: R.vendorPoolStickyBreaks,
            expr: `sum ${by(C, V, P)} (rate(${q.sessionBreaks.name}[5m])) / ${by(C, V, P).replace("by", "on")} (sum ${by(C, V, P)} (rate(${q.sessionRequests.name}[5m])) > 0)`,
        },
    ];

    // Causes and reported bans (issue 19). The gateway's own answers (cause="gateway", pool="none") are no pool's.
    const GWC = `${L.cause}!="gateway"`;
    const poolRequests = `sum ${by(C, V, P)} (rate(${REQ}{pool!=${GW}}[5m]))`;
    const causesAndBans: RecordingRule[] = [
        { record: R.vendorPoolCauses, expr: `sum ${by(C, V, P, L.cause)} (rate(${CAUSE}[5m]))` },
        { record: R.vendorCauses, expr: `sum ${by(C, V, L.cause)} (${R.vendorPoolCauses})` },
        {
            record: R.vendorCauseRatio,
            expr: `${R.vendorCauses}{${GWC}} / on (${C}, ${V}) group_left () (sum ${by(C, V)} (${R.vendorCauses}{${GWC}}) > 0)`,
        },
        { record: R.vendorPoolBans, expr: `sum ${by(C, V, P)} (rate(${BANS}[5m]))` },
        { record: R.vendorDestinationBans, expr: `sum ${by(C, V, L.destination)} (rate(${BANS}[5m]))` },
        { record: R.vendorBans, expr: `sum ${by(C, V)} (${R.vendorPoolBans})` },
        {
            record: R.vendorPoolBanRatio,
            expr: `${R.vendorPoolBans}{pool!=${GW}} / ${by(C, V, P).replace("by", "on")} (${poolRequests} > 0)`,
        },
        {
            // Every ban of the vendor, those without a pool too, over what its pools carried.
            record: R.vendorBanRatio,
            expr: `${R.vendorBans} / ${by(C, V).replace("by", "on")} (sum ${by(C, V)} (rate(${REQ}{pool!=${GW}}[5m])) > 0)`,
        },
    ];

    const infra: RecordingRule[] = [
        {
            record: R.namespaceCpu,
            expr: `sum ${by(C, "namespace")} (rate(container_cpu_usage_seconds_total{container!=""}[5m]))`,
        },
        {
            record: R.namespaceMemory,
            expr: `sum ${by(C, "namespace")} (container_memory_working_set_bytes{container!=""})`,
        },
        {
            record: R.namespaceRestarts,
            expr: `sum ${by(C, "namespace")} (increase(kube_pod_container_status_restarts_total[5m]))`,
        },
        {
            record: R.namespacePodsRunning,
            expr: `sum ${by(C, "namespace")} (kube_pod_status_phase{phase="Running"})`,
        },
        { record: R.jobScrapeDuration, expr: `max ${by(C, "job")} (scrape_duration_seconds)` },
        { record: R.jobSamplesPerScrape, expr: `sum ${by(C, "job")} (scrape_samples_post_metric_relabeling)` },
        { record: R.jobTargetsUp, expr: `sum ${by(C, "job")} (up)` },
        { record: R.jobTargets, expr: `count ${by(C, "job")} (up)` },
        ...crawlers,
        { record: R.instanceHeadSeries, expr: `max ${by(C, "instance")} (prometheus_tsdb_head_series)` },
        {
            record: R.instanceSamplesAppended,
            expr: `sum ${by(C, "instance")} (rate(prometheus_tsdb_head_samples_appended_total[5m]))`,
        },
        { record: R.instanceStorageBytes, expr: `max ${by(C, "instance")} (prometheus_tsdb_storage_blocks_bytes)` },
        {
            record: R.instanceSampleLimitHits,
            expr: `sum ${by(C, "instance")} (increase(prometheus_target_scrapes_exceeded_sample_limit_total[1h]))`,
        },
        {
            record: R.clusterRuleFailures,
            expr: `sum ${by(C)} (increase(prometheus_rule_evaluation_failures_total[10m]))`,
        },
        { record: R.clusterRuleGroupDuration, expr: `max ${by(C)} (prometheus_rule_group_last_duration_seconds)` },
        {
            record: R.integrationNotifications,
            expr: `sum ${by(C, "integration")} (rate(alertmanager_notifications_total[5m]))`,
        },
        {
            record: R.integrationNotificationsFailed,
            expr: `sum ${by(C, "integration")} (rate(alertmanager_notifications_failed_total[5m]))`,
        },
        ...(
            [
                [R.hpaCurrentReplicas, "kube_horizontalpodautoscaler_status_current_replicas"],
                [R.hpaMaxReplicas, "kube_horizontalpodautoscaler_spec_max_replicas"],
            ] as const
        ).map(([record, m]) => ({ record, expr: `max ${by(C, "namespace", "horizontalpodautoscaler")} (${m})` })),
        {
            record: R.gatewayCpu,
            expr: `sum ${by(C, "instance")} (rate(process_cpu_seconds_total{job="proxy-gateways"}[5m]))`,
        },
        { record: R.gatewayInflight, expr: `sum ${by(C, V, "instance")} (${GATEWAY_METRICS.inflight.name})` },
        {
            // Alerts without a cluster label (Watchdog) get this cluster's, so the cluster filter holds for all.
            record: R.firingAlerts,
            expr: `max by (${C}, alertname, severity, ${V}, ${P}) (label_replace(ALERTS{alertstate="firing"}, "${C}", ${promqlString(cfg.cluster)}, "${C}", ""))`,
        },
    ];

    return {
        groups: [
            { name: "proxy-monitor-config.rules", rules: config },
            { name: "proxy-monitor-infra.rules", rules: infra },
            { name: "proxy-monitor-requests.rules", rules: requests },
            { name: "proxy-monitor-slo.rules", rules: slo },
            { name: "proxy-monitor-latency.rules", rules: latency },
            { name: "proxy-monitor-bandwidth.rules", rules: [...bandwidth, ...istio] },
            { name: "proxy-monitor-health.rules", rules: health },
            { name: "proxy-monitor-pool-quality.rules", rules: poolQuality },
            { name: "proxy-monitor-causes.rules", rules: causesAndBans },
        ],
    };
}
