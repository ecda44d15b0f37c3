/**
 * Alert rules in the mixin style: CamelCase names, `severity` (critical pages, warning tickets, info), a static
 * summary, a templated description and a runbook_url to the alert's heading in docs/troubleshooting.md. Vendor
 * thresholds come from the recorded `:config` series (one per vendor), so each alert covers every vendor.
 */
import { R, vendorErrorRatio } from "../../catalog";
import { GATEWAY_POOL } from "../../catalog/gateway";
import { StackConfig } from "../config";
import { promqlString, regexOneOf } from "../prometheus/escape";

export interface AlertRule {
    alert: string;
    expr: string;
    for?: string;
    labels: { severity: "critical" | "warning" | "info" };
    annotations: { summary: string; description: string; runbook_url: string };
}
export interface AlertGroup {
    name: string;
    rules: AlertRule[];
}

const ON = "on (cluster, vendor)";

/** SRE-workbook burn-rate pairs: (long window, short window, burn rate). */
export const PAGE_BURNS = [
    ["1h", "5m", 14.4],
    ["6h", "30m", 6],
] as const;
export const TICKET_BURNS = [
    ["1d", "2h", 3],
    ["3d", "6h", 1],
] as const;

/** Anchor of an alert's runbook heading (GitHub's slug of a one-word heading: its lower case). */
export function runbookAnchor(alert: string): string {
    return alert.toLowerCase();
}

function burnExpr(pairs: readonly (readonly [string, string, number])[]): string {
    const budget = `(1 - ${R.vendorSuccessObjective})`;
    return pairs
        .map(
            ([long, short, rate]) =>
                `(${vendorErrorRatio(long as never)} > ${ON} group_left () (${rate} * ${budget}) ` +
                `and ${vendorErrorRatio(short as never)} > ${ON} group_left () (${rate} * ${budget}))`,
        )
        .join(" or ");
}

/** Alert rules of the cluster Prometheus. */
export function buildAlertRules(cfg: StackConfig): { groups: AlertGroup[] } {
    const url = (alert: string) => `${cfg.alerting.runbookBaseUrl}#${runbookAnchor(alert)}`;
    const rule = (
        alert: string,
        severity: AlertRule["labels"]["severity"],
        expr: string,
        forDuration: string | undefined,
        summary: string,
        description: string,
    ): AlertRule => ({
        alert,
        expr,
        ...(forDuration ? { for: forDuration } : {}),
        labels: { severity },
        annotations: { summary, description, runbook_url: url(alert) },
    });
    const crawlerNs = regexOneOf(cfg.crawlers.namespaces.map((n) => n.name));
    const budgetBytes = (size: string) => {
        const m = /^([0-9]+)(B|KB|MB|GB|TB|PB|EB)$/.exec(size)!;
        return Number(m[1]) * 1000 ** ["B", "KB", "MB", "GB", "TB", "PB", "EB"].indexOf(m[2]);
    };
    const statusShare = (classes: string) =>
        `sum by (cluster, vendor) (${R.vendorStatusClassRequests}{status_class=~"${classes}"}) / ${ON} (${R.vendorRequests} > 0)`;

    const slo: AlertRule[] = [
        rule(
            "VendorErrorBudgetBurnFast",
            "critical",
            burnExpr(PAGE_BURNS),
            "2m",
            "A vendor is burning its success-ratio error budget fast.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} is failing {{ $value | humanizePercentage }} of requests over the last hour or six, 6 to 14.4 times its error budget: at this rate a 30-day budget is gone in days.",
        ),
        rule(
            "VendorErrorBudgetBurnSlow",
            "warning",
            burnExpr(TICKET_BURNS),
            "1h",
            "A vendor is burning its success-ratio error budget faster than it refills.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} has failed {{ $value | humanizePercentage }} of requests over a day or three, at least its whole error budget's rate.",
        ),
        rule(
            "VendorLatencyHigh",
            "warning",
            `${R.vendorLatencyQuantile}{quantile="0.95"} > ${ON} group_left () ${R.vendorLatencyObjectiveMs}`,
            "10m",
            "A vendor's p95 time to answer is above its SLA.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} answers at p95 in {{ $value | humanize }} ms, above its SLA.",
        ),
        rule(
            "VendorServerErrorsHigh",
            "warning",
            `${statusShare("5xx")} > 0.05`,
            "10m",
            "More than 5% of a vendor's answers are 5xx.",
            "{{ $labels.vendor }} in {{ $labels.cluster }}: {{ $value | humanizePercentage }} of answers are 5xx (the pool failed or timed out).",
        ),
        rule(
            "VendorRefusalsHigh",
            "warning",
            `${statusShare("403|429")} > 0.05`,
            "10m",
            "More than 5% of a vendor's answers are refusals or rate limits (403, 429).",
            "{{ $labels.vendor }} in {{ $labels.cluster }}: {{ $value | humanizePercentage }} of answers are 403 or 429 from the vendor.",
        ),
        rule(
            "VendorAuthErrors",
            "warning",
            `${statusShare("401|407")} > 0.01`,
            "5m",
            "A vendor rejects the gateway's credentials (401, 407).",
            "{{ $labels.vendor }} in {{ $labels.cluster }}: {{ $value | humanizePercentage }} of answers are 401 or 407: the pool's credentials are wrong, expired or out of plan.",
        ),
        rule(
            "VendorTrafficStopped",
            "critical",
            `(${R.vendorRequests} == 0) and on (cluster) (sum by (cluster) (kube_pod_status_phase{phase="Running", namespace=~"${crawlerNs}"}) > 0)`,
            "10m",
            "Traffic to a vendor stopped while crawlers run.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} has had no request for 10 minutes while crawler pods are running.",
        ),
    ];
    const cost: AlertRule[] = [
        rule(
            "VendorBandwidthBudgetProjected",
            "warning",
            `${R.vendorBandwidth} * 86400 > ${ON} group_left () ${R.vendorDailyBudgetBytes}`,
            "30m",
            "At its current rate a vendor will exceed its daily bandwidth budget.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} would move {{ $value | humanize1024 }}B a day at the current rate, above its daily budget.",
        ),
        rule(
            "VendorBandwidthBudgetExceeded",
            "critical",
            `${R.vendorBandwidthIncrease1d} > ${ON} group_left () ${R.vendorDailyBudgetBytes}`,
            "5m",
            "A vendor's bandwidth over the last 24 hours exceeds its daily budget.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} moved {{ $value | humanize1024 }}B in the last 24 hours, above its daily budget.",
        ),
        rule(
            "VendorCostAnomaly",
            "warning",
            `avg_over_time(${R.vendorCostPerHour}[1h]) > 2 * avg_over_time(${R.vendorCostPerHour}[7d]) and avg_over_time(${R.vendorCostPerHour}[1h]) > 0.01`,
            "1h",
            "A vendor's hourly cost is more than twice its 7-day average.",
            "{{ $labels.vendor }} in {{ $labels.cluster }} costs {{ $value | humanize }} per hour over the last hour, more than twice its 7-day average.",
        ),
    ];
    const floor = R.vendorMinExitIpsPerHour;
    const pools: AlertRule[] = [
        rule(
            "PoolExitIpDiversityLow",
            "critical",
            // Only a pool busy enough to show its rotation: at least twice the floor in samples over the hour.
            `(${R.vendorPoolWindowExitIps}{window="1h"} < ${ON} group_left () ${floor}) ` +
                `and on (cluster, vendor, pool) ` +
                `(${R.vendorPoolWindowExitIpSamples}{window="1h"} >= ${ON} group_left () (2 * ${floor}))`,
            "15m",
            "A pool rotates through fewer exit IPs per hour than contracted.",
            "Pool {{ $labels.pool }} of {{ $labels.vendor }} in {{ $labels.cluster }} used about {{ $value }} distinct exit IPs in the last hour, below the vendor's floor (vendors[].exitIp.minDistinctPerHour): crawlers reuse the same few IPs and get banned.",
        ),
        rule(
            "VendorPoolDown",
            "warning",
            `${R.vendorPoolHealth} < 0.5`,
            "5m",
            "A vendor pool fails the gateways' health probes.",
            "Pool {{ $labels.pool }} of {{ $labels.vendor }} in {{ $labels.cluster }} is down for {{ $value | humanizePercentage }} of gateway replicas' probes; traffic goes to the other pools.",
        ),
        rule(
            "VendorAllPoolsDown",
            "critical",
            `${R.vendorHealthyPools} == 0 and ${ON} ${R.vendorPools} > 0`,
            "2m",
            "Every pool of a vendor is down.",
            "No pool of {{ $labels.vendor }} in {{ $labels.cluster }} passes the gateways' probes: its gateway answers 503.",
        ),
        rule(
            "GatewayServiceUnavailable",
            "critical",
            `sum by (cluster, vendor) (rate(proxy_requests_total{pool=${promqlString(GATEWAY_POOL)}, status="503"}[5m])) > 0.1`,
            "5m",
            "A vendor gateway answers 503: no healthy pool, or at its tunnel limit.",
            "The {{ $labels.vendor }} gateway in {{ $labels.cluster }} answers {{ $value | humanize }} requests/s with 503 by itself.",
        ),
    ];
    const budget = cfg.prometheus.seriesBudget;
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
            "PrometheusSeriesNearBudget",
            "warning",
            `prometheus_tsdb_head_series > ${Math.round(budget * 0.9)}`,
            "15m",
            "Active series are above 90% of the configured series budget.",
            `Prometheus {{ $labels.instance }} in {{ $labels.cluster }} holds {{ $value }} series; the budget is ${budget}.`,
        ),
        rule(
            "PrometheusStorageFilling",
            "warning",
            `prometheus_tsdb_storage_blocks_bytes > ${Math.round(budgetBytes(cfg.prometheus.retentionSize) * 0.9)}`,
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
            { name: "proxy-monitor-stack.rules", rules: stack },
        ],
    };
}

/** Alert rules of the global Prometheus: federation failing. */
export function buildGlobalAlertRules(cfg: StackConfig): { groups: AlertGroup[] } {
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
export function allAlertNames(cfg: StackConfig): string[] {
    return [...buildAlertRules(cfg).groups, ...buildGlobalAlertRules(cfg).groups].flatMap((g) =>
        g.rules.map((r) => r.alert),
    );
}
