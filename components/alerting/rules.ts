/**
 * Alert rules in the mixin style: CamelCase names, `severity` (critical pages, warning tickets, info), a static
 * summary, a templated description and a runbook_url to the alert's heading in docs/troubleshooting.md. Vendor
 * thresholds come from the recorded `:config` series (one per vendor), so each alert covers every vendor.
 */
import { DATA_MODEL, L, ON_VENDOR, R, by, eq, inWindow, on, re, vendorErrorRatio } from "../../catalog";
import { GATEWAY_POOL } from "../../catalog/gateway";
import { StackConfig } from "../config";
import { NAMES } from "../names";
import { promqlString, regexOneOf } from "../prometheus/escape";

/** The stack settings the alert rules read. */
export type AlertRulesStackConfig = Pick<StackConfig, "alerting" | "namespaces" | "prometheus" | "vendors">;

/**
 * What an alert is about, beside its vendor: Alertmanager's "critical inhibits warning" holds only within one symptom
 * of one vendor (kube-prometheus' `equal` on namespace and alertname), so a bandwidth alert never hides an auth one.
 */
export type Symptom =
    | "errors"
    | "refusals"
    | "auth"
    | "latency"
    | "traffic"
    | "silence"
    | "bandwidth"
    | "cost"
    | "pools"
    | "bans"
    | "gateway";

export interface AlertRule {
    alert: string;
    expr: string;
    for?: string;
    labels: { severity: "critical" | "warning" | "info"; symptom?: Symptom };
    annotations: { summary: string; description: string; runbook_url: string };
}
export interface AlertGroup {
    name: string;
    rules: AlertRule[];
}

const ON = ON_VENDOR;

/** SRE-workbook burn-rate pairs: (long window, short window, burn rate). */
export const PAGE_BURNS = [
    ["1h", "5m", 14.4],
    ["6h", "30m", 6],
] as const;
export const TICKET_BURNS = [
    ["1d", "2h", 3],
    ["3d", "6h", 1],
] as const;
/**
 * The cap on a burn-rate threshold (an error ratio): 14.4 x a 5% budget is 72%, a ratio a vendor reaches over an hour
 * only 43 minutes into a total outage. Capped, the page tier stays reachable for low objectives.
 */
export const MAX_BURN_ERROR_RATIO = 0.5;
/**
 * A total outage pages on the 5-minute ratio alone, whatever the objective: more than this share of a vendor's
 * requests failing (with at least OUTAGE_MIN_REQUESTS of them in 5 minutes, so that three requests cannot page).
 */
export const OUTAGE_ERROR_RATIO = 0.5;
export const OUTAGE_MIN_REQUESTS = 20;
/** The latency SLA is a p95: it holds while at most 5% of answers are slower than the SLA value. */
export const LATENCY_SLOW_SHARE = 0.05;
/**
 * Bans crawlers report, per request or tunnel the vendor's pools carried, above which VendorBanRateHigh warns; with
 * at least BAN_MIN_REPORTS reports in 5 minutes, so that a handful of bans on a quiet vendor does not.
 */
export const BAN_RATIO_HIGH = 0.05;
export const BAN_MIN_REPORTS = 10;

/** Anchor of an alert's runbook heading (GitHub's slug of a one-word heading: its lower case). */
export function runbookAnchor(alert: string): string {
    return alert.toLowerCase();
}

/** Bytes in a Prometheus size (`--storage.tsdb.retention.size`): its units are powers of 1024 ("90GB" is 90 GiB). */
export function prometheusSizeBytes(size: string): number {
    const m = /^([0-9]+)(B|KB|MB|GB|TB|PB|EB)$/.exec(size);
    if (!m) throw new Error(`not a Prometheus size: ${JSON.stringify(size)}`);
    return Number(m[1]) * 1024 ** ["B", "KB", "MB", "GB", "TB", "PB", "EB"].indexOf(m[2]);
}

function burnExpr(pairs: readonly (readonly [string, string, number])[]): string {
    const budget = `(1 - ${R.vendorSuccessObjective})`;
    return pairs
        .map(([long, short, rate]) => {
            const threshold = `clamp_max(${rate} * ${budget}, ${MAX_BURN_ERROR_RATIO})`;
            return (
                `(${vendorErrorRatio(long as never)} > ${ON} group_left () ${threshold} ` +
                `and ${vendorErrorRatio(short as never)} > ${ON} group_left () ${threshold})`
            );
        })
        .join(" or ");
}

/** Alert rules of the cluster Prometheus. */
export function buildAlertRules(cfg: AlertRulesStackConfig): { groups: AlertGroup[] } {
    const url = (alert: string) => `${cfg.alerting.runbookBaseUrl}#${runbookAnchor(alert)}`;
    const rule = (
        alert: string,
        severity: AlertRule["labels"]["severity"],
        expr: string,
        forDuration: string | undefined,
        summary: string,
        description: string,
        symptom?: Symptom,
    ): AlertRule => ({
        alert,
        expr,
        ...(forDuration ? { for: forDuration } : {}),
        labels: { severity, ...(symptom ? { symptom } : {}) },
        annotations: { summary, description, runbook_url: url(alert) },
    });
    // Statuses of the answers of the vendor's pools, and the share of outcomes charged to its side (which gates them:
    // a 407 or 429 is a refusal of our account, the vendor's answer though not the SLO's error).
    const connectShare = (classes: string) =>
        `sum ${by(L.cluster, L.vendor)} (${R.vendorPoolAnswersStatusClass}{${re(L.statusClass, classes)}}) / ${ON} (sum ${by(L.cluster, L.vendor)} (${R.vendorPoolAnswersStatusClass}) > 0)`;
    const chargedAbove = (ratio: number) => `and ${ON} (${R.vendorFaultRatio} > ${ratio})`;
    const gatewayDeployments = regexOneOf(cfg.vendors.map((v) => NAMES.gateway(v.name)));

    const slo: AlertRule[] = [
        rule(
            "VendorErrorBudgetBurnFast",
            "critical",
            `${burnExpr(PAGE_BURNS)} or (${vendorErrorRatio("5m")} > ${OUTAGE_ERROR_RATIO} and ${ON} ${R.vendorSloRequests} * 300 >= ${OUTAGE_MIN_REQUESTS})`,
            "2m",
            "A vendor is burning its success-ratio error budget fast.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} fails {{ $value | humanizePercentage }} of requests (its own faults): over an hour or six at 6 to 14.4 times its error budget, or most requests over 5 minutes.",
            "errors",
        ),
        rule(
            "VendorErrorBudgetBurnSlow",
            "warning",
            burnExpr(TICKET_BURNS),
            "1h",
            "A vendor is burning its success-ratio error budget faster than it refills.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} has failed {{ $value | humanizePercentage }} of requests over a day or three, at least its whole error budget's rate.",
            "errors",
        ),
        rule(
            "VendorLatencyHigh",
            "warning",
            `${R.vendorLatencySlowRatio} > ${LATENCY_SLOW_SHARE}`,
            "10m",
            "More than 5% of a vendor's answers are slower than its p95 SLA.",
            "{{ $labels.vendor }} in {{ $labels.cluster }}: {{ $value | humanizePercentage }} of answers are slower than its p95 latency SLA.",
            "latency",
        ),
        rule(
            "VendorServerErrorsHigh",
            "warning",
            `${connectShare("5xx")} > 0.05 ${chargedAbove(0.05)}`,
            "10m",
            "More than 5% of a vendor's answers are 5xx, and charged to it.",
            "{{ $labels.vendor }} in {{ $labels.cluster }}: {{ $value | humanizePercentage }} of its pools' answers are 5xx (the pool failed or timed out).",
            "errors",
        ),
        rule(
            "VendorRefusalsHigh",
            "warning",
            `${connectShare("403|429")} > 0.05 ${chargedAbove(0.05)}`,
            "10m",
            "More than 5% of a vendor's answers are refusals or rate limits (403, 429).",
            "{{ $labels.vendor }} in {{ $labels.cluster }}: {{ $value | humanizePercentage }} of its pools' answers are 403 or 429 from the vendor.",
            "refusals",
        ),
        rule(
            "VendorAuthErrors",
            "warning",
            `${connectShare("401|407")} > 0.01 ${chargedAbove(0.01)}`,
            "5m",
            "A vendor rejects the gateway's credentials (401, 407).",
            "{{ $labels.vendor }} in {{ $labels.cluster }}: {{ $value | humanizePercentage }} of its pools' answers are 401 or 407: the pool's credentials are wrong, expired or out of plan.",
            "auth",
        ),
        rule(
            "VendorTrafficStopped",
            "critical",
            `(${R.vendorCrawlerPodsRunning} > 0) unless ${ON} (${R.vendorRequests} > 0)`,
            "10m",
            "Traffic to a vendor stopped while the crawlers configured for it run.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} has had no request for 10 minutes while {{ $value }} crawler pods configured to use it are running.",
            "traffic",
        ),
        rule(
            "VendorNoData",
            "critical",
            `${R.vendorSuccessObjective} unless ${ON} ${R.vendorPools}`,
            "5m",
            "A configured vendor has no data: no gateway of it is scraped.",
            "{{ $labels.vendor }} is configured in {{ $labels.cluster }}, but no gateway reports its pools: its gateways are gone from scraping, so its pools, errors and traffic are unseen.",
            "silence",
        ),
        rule(
            "GatewayNoAvailableReplica",
            "critical",
            `label_replace(kube_deployment_status_replicas_available{namespace=${promqlString(cfg.namespaces.gateways)}, deployment=~${promqlString(gatewayDeployments)}}, "vendor", "$1", "deployment", "(.+)-gateway") == 0`,
            "5m",
            "A vendor gateway Deployment has no available replica.",
            "The {{ $labels.vendor }} gateway Deployment in {{ $labels.cluster }} has had no available replica for 5 minutes: crawlers using it cannot connect.",
            "silence",
        ),
    ];
    const cost: AlertRule[] = [
        rule(
            "VendorBandwidthBudgetProjected",
            "warning",
            `${R.vendorBandwidth} * 86400 > ${ON} group_left () ${R.vendorDailyBudgetBytes}`,
            "30m",
            "At its current rate a vendor will exceed its daily bandwidth budget.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} would move {{ $value | humanize }}B a day at the current rate, above its daily budget.",
            "bandwidth",
        ),
        rule(
            "VendorBandwidthBudgetExceeded",
            "warning",
            `${R.vendorBandwidthIncrease1d} > ${ON} group_left () ${R.vendorDailyBudgetBytes}`,
            "5m",
            "A vendor's bandwidth over the last 24 hours exceeds its daily budget.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} moved {{ $value | humanize }}B in the last 24 hours, above its daily budget.",
            "bandwidth",
        ),
        rule(
            "VendorCostAnomaly",
            "warning",
            `avg_over_time(${R.vendorCostPerHour}[1h]) > 2 * avg_over_time(${R.vendorCostPerHour}[7d]) and avg_over_time(${R.vendorCostPerHour}[1h]) > 0.01`,
            "1h",
            "A vendor's hourly cost is more than twice its 7-day average.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} costs {{ $value | humanize }} per hour over the last hour, more than twice its 7-day average.",
            "cost",
        ),
    ];
    const bans: AlertRule[] = [
        rule(
            "VendorBanRateHigh",
            "warning",
            `${R.vendorBanRatio} > ${BAN_RATIO_HIGH} and ${ON} ${R.vendorBans} * 300 >= ${BAN_MIN_REPORTS}`,
            "15m",
            "Crawlers report destination bans on more than 5% of a vendor's requests.",
            "Crawlers using {{ $labels.vendor }} in {{ $labels.cluster }} report a ban on {{ $value | humanizePercentage }} of its requests (X-Proxy-Monitor-Ban, POST /ban): sites block its exit IPs.",
            "bans",
        ),
    ];
    const floor = R.vendorMinExitIpsPerHour;
    const pools: AlertRule[] = [
        rule(
            "PoolExitIpDiversityLow",
            "critical",
            // Only a pool busy enough to show its rotation: at least twice the floor in samples over the hour.
            `(${R.vendorPoolWindowExitIps}{${inWindow("1h")}} < ${ON} group_left () ${floor}) ` +
                `and ${on(L.cluster, L.vendor, L.pool)} ` +
                `(${R.vendorPoolWindowExitIpSamples}{${inWindow("1h")}} >= ${ON} group_left () (2 * ${floor}))`,
            "15m",
            "A pool rotates through fewer exit IPs per hour than contracted.",
            "Pool {{ $labels.pool }} of {{ $labels.vendor }} in {{ $labels.cluster }} used about {{ $value }} distinct exit IPs in the last hour, below the vendor's floor (vendors[].exitIp.minDistinctPerHour): crawlers reuse the same few IPs and get banned.",
        ),
        rule(
            "VendorPoolDown",
            "warning",
            `1 - ${R.vendorPoolHealth} > 0.5`,
            "5m",
            "A vendor pool fails the gateways' health probes.",
            "Pool {{ $labels.pool }} of {{ $labels.vendor }} in {{ $labels.cluster }} is seen down by {{ $value | humanizePercentage }} of the gateway replicas; traffic goes to the other pools.",
            "pools",
        ),
        rule(
            "VendorAllPoolsDown",
            "critical",
            `${R.vendorHealthyPools} == 0 and ${ON} ${R.vendorPools} > 0`,
            "2m",
            "Every pool of a vendor is down.",
            "No pool of {{ $labels.vendor }} in {{ $labels.cluster }} passes the gateways' probes: its gateway tries them all (panic mode) or answers 503.",
            "pools",
        ),
        rule(
            "GatewayServiceUnavailable",
            "critical",
            `sum ${by(L.cluster, L.vendor)} (rate(${DATA_MODEL.requests.name}{${L.pool}=${promqlString(GATEWAY_POOL)}, ${eq(L.status, "503")}}[5m])) > 0.1`,
            "5m",
            "A vendor gateway answers 503: no healthy pool, or at its tunnel limit.",
            "The {{ $labels.vendor }} gateway in {{ $labels.cluster }} answers {{ $value | humanize }} requests/s with 503 by itself.",
            "gateway",
        ),
    ];
    const stack: AlertRule[] = [
        rule(
            "PrometheusTargetDown",
            "warning",
            `up == 0`,
            "10m",
            "A scrape target is down.",
            "{{ $labels.job }} target {{ $labels.instance }} in {{ $labels.cluster }} has been down for 10 minutes.",
        ),
        rule(
            "PrometheusSampleLimitHit",
            "warning",
            `increase(prometheus_target_scrapes_exceeded_sample_limit_total[10m]) > 0`,
            undefined,
            "A scrape hit its sample limit and was dropped whole.",
            "Prometheus {{ $labels.instance }} in {{ $labels.cluster }} dropped {{ $value }} scrapes over their sample limit in 10 minutes.",
        ),
        rule(
            "PrometheusLabelLimitHit",
            "warning",
            `increase(prometheus_target_scrape_pool_exceeded_label_limits_total[10m]) > 0`,
            undefined,
            "A scrape broke a label limit (count or value length) and was dropped whole.",
            "Prometheus {{ $labels.instance }} in {{ $labels.cluster }} dropped {{ $value }} scrapes over their label limits in 10 minutes.",
        ),
        rule(
            "PrometheusSeriesNearBudget",
            "warning",
            `prometheus_tsdb_head_series > ${on(L.cluster)} group_left () 0.9 * ${R.seriesBudget}`,
            "15m",
            "Active series are above 90% of the configured series budget.",
            `Prometheus {{ $labels.instance }} in {{ $labels.cluster }} holds {{ $value }} series; the budget is ${cfg.prometheus.seriesBudget}.`,
        ),
        rule(
            "PrometheusStorageFilling",
            "warning",
            `prometheus_tsdb_storage_blocks_bytes > ${Math.round(prometheusSizeBytes(cfg.prometheus.retentionSize) * 0.9)}`,
            "30m",
            "Prometheus blocks take more than 90% of the retention size.",
            "Prometheus {{ $labels.instance }} in {{ $labels.cluster }} stores {{ $value | humanize1024 }}B, near its retention size: old data is being deleted early, or the volume fills.",
        ),
        rule(
            "PrometheusRuleEvaluationFailures",
            "warning",
            `increase(prometheus_rule_evaluation_failures_total[10m]) > 0`,
            undefined,
            "Prometheus fails to evaluate rules.",
            "Prometheus {{ $labels.instance }} in {{ $labels.cluster }} failed {{ $value }} rule evaluations in 10 minutes: recorded series or alerts are missing.",
        ),
        rule(
            "PrometheusConfigReloadFailed",
            "warning",
            `prometheus_config_last_reload_successful == 0`,
            "10m",
            "Prometheus failed to load its configuration.",
            "Prometheus {{ $labels.instance }} in {{ $labels.cluster }} runs an old configuration: its last reload failed.",
        ),
        rule(
            "PrometheusNotConnectedToAlertmanagers",
            "critical",
            `prometheus_notifications_alertmanagers_discovered < 1`,
            "10m",
            "Prometheus has no Alertmanager to send alerts to.",
            "Prometheus {{ $labels.instance }} in {{ $labels.cluster }} discovers {{ $value }} Alertmanagers: its alerts reach nobody.",
        ),
        rule(
            "PrometheusNotificationsFailing",
            "warning",
            `sum ${by(L.cluster, "instance")} (rate(prometheus_notifications_errors_total[5m])) > 0 or sum ${by(L.cluster, "instance")} (rate(prometheus_notifications_dropped_total[5m])) > 0`,
            "15m",
            "Prometheus fails to send alerts to Alertmanager, or drops them.",
            "Prometheus {{ $labels.instance }} in {{ $labels.cluster }} fails or drops {{ $value | humanize }} alert notifications per second.",
        ),
        rule(
            "AlertmanagerConfigReloadFailed",
            "warning",
            `alertmanager_config_last_reload_successful == 0`,
            "10m",
            "Alertmanager failed to load its configuration.",
            "Alertmanager {{ $labels.instance }} in {{ $labels.cluster }} runs an old configuration: its last reload failed.",
        ),
        rule(
            "AlertmanagerClusterMembersMissing",
            "warning",
            `min ${by(L.cluster)} (alertmanager_cluster_members) < ${cfg.alerting.replicas}`,
            "15m",
            "An Alertmanager sees fewer cluster peers than configured.",
            `An Alertmanager in {{ $labels.cluster }} sees {{ $value }} cluster members of ${cfg.alerting.replicas}: notifications may be sent twice, or silences not shared.`,
        ),
        rule(
            "AlertmanagerNotificationsFailing",
            "warning",
            `rate(alertmanager_notifications_failed_total[5m]) > 0`,
            "10m",
            "Alertmanager fails to send notifications.",
            "Alertmanager {{ $labels.instance }} in {{ $labels.cluster }} fails to notify {{ $labels.integration }}.",
        ),
        rule(
            "Watchdog",
            "info",
            "vector(1)",
            undefined,
            "Always firing: the alerting pipeline works end to end.",
            "This alert always fires. Route it to a dead man's switch, which pages when it stops arriving.",
        ),
    ];
    return {
        groups: [
            { name: "proxy-monitor-vendor-slo.rules", rules: slo },
            { name: "proxy-monitor-vendor-cost.rules", rules: cost },
            { name: "proxy-monitor-vendor-pools.rules", rules: pools },
            { name: "proxy-monitor-vendor-bans.rules", rules: bans },
            { name: "proxy-monitor-stack.rules", rules: stack },
        ],
    };
}

/** Alert rules of the global Prometheus: federation failing. */
export function buildGlobalAlertRules(cfg: AlertRulesStackConfig): { groups: AlertGroup[] } {
    return {
        groups: [
            {
                name: "proxy-monitor-federation.rules",
                rules: [
                    {
                        alert: "PrometheusFederationFailing",
                        expr: `up{job=~"federate-.*"} == 0`,
                        for: "10m",
                        labels: { severity: "warning" },
                        annotations: {
                            summary: "The global Prometheus cannot federate a cluster.",
                            description:
                                "Federation of {{ $labels.cluster }} ({{ $labels.job }}) has failed for 10 minutes: the global view misses that cluster.",
                            runbook_url: `${cfg.alerting.runbookBaseUrl}#${runbookAnchor("PrometheusFederationFailing")}`,
                        },
                    },
                ],
            },
        ],
    };
}

/** Every alert name, global ones included. */
export function allAlertNames(cfg: AlertRulesStackConfig): string[] {
    return [...buildAlertRules(cfg).groups, ...buildGlobalAlertRules(cfg).groups].flatMap((g) =>
        g.rules.map((r) => r.alert),
    );
}
