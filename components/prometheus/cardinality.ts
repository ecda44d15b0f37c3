/**
 * The active series the configuration can be expected to produce, computed from the stack config, and the check
 * against `seriesBudget`. docs/data-model.md states the same formula with a worked example.
 */
import { CAUSES, PROTOCOLS, durationBucketsMs } from "../../catalog/datamodel";
import { GATEWAY_METRICS, POOL_QUALITY_METRICS } from "../../catalog/gateway";
import { StackConfig } from "../config";
import { EXIT_IP_WINDOWS } from "../../proxy/gateway/exit-ips";
import { ISTIO_KEPT_METRICS, KEPT, queueDepthNamespaces } from "./scrape";

/** The stack settings the series estimate reads. */
export type CardinalityStackConfig = Pick<
    StackConfig,
    "prometheus" | "vendors" | "crawlers" | "destinations" | "gateway" | "autoscaling"
>;

/** Distinct proxy-level statuses a gateway answers with in practice (200, 400, 401, 403, 407, 429, 502, 503, 504). */
export const EXPECTED_STATUSES = 9;
/** Containers per crawler pod that cAdvisor reports (the crawler and its Istio sidecar). */
export const CONTAINERS_PER_POD = 2;
/** kube-state-metrics series per crawler pod kept: restarts per container, and 5 pod phases. */
export const KSM_SERIES_PER_POD = CONTAINERS_PER_POD + 5;
/** Series of the stack's own components (Prometheus, Alertmanager, Grafana, kube-state-metrics deployments, HPAs). */
export const FIXED_INFRA_SERIES = 2_000;
/** Crawler workloads (Deployments) per crawler namespace assumed for the Istio series. */
export const WORKLOADS_PER_NAMESPACE = 10;
/** Series Prometheus adds per scrape target (up, scrape_duration_seconds, scrape_samples_*, scrape_series_added). */
export const SERIES_PER_TARGET = 5;
/** Process metrics kept per gateway replica. */
const GATEWAY_PROCESS_SERIES = 3;
/** Pool-quality series per pool of a vendor that learns exit IPs: 3 windows x 3 gauges + 2 session counters. */
export const POOL_QUALITY_SERIES_PER_POOL =
    3 * Object.values(POOL_QUALITY_METRICS).filter((m) => m.type === "gauge").length +
    Object.values(POOL_QUALITY_METRICS).filter((m) => m.type === "counter").length;

/**
 * Recorded pool-quality series per pool of a vendor that learns exit IPs: distinct, samples and reuse per window,
 * and the sticky-break ratio; plus the floor's `:config` series per vendor that sets one.
 */
export const POOL_QUALITY_RECORDED_PER_POOL = 3 * EXIT_IP_WINDOWS.length + 1;
/**
 * Recorded cause and ban series (components/prometheus/rules.ts, "causes" group). Per pool: its 6 causes (all but
 * `gateway`), its bans and ban ratio. Per vendor: the gateway's own cause on `pool="none"`, 7 causes, 6 cause ratios,
 * the vendor-fault ratio, bans without a pool, bans and the ban ratio; and its bans per destination.
 */
export const CAUSES_RECORDED = {
    perPool: CAUSES.length - 1 + 2,
    perVendor: 1 + CAUSES.length + (CAUSES.length - 1) + 4,
};

export interface SeriesEstimate {
    /** Per part, the series count and the formula that gave it. */
    readonly parts: Record<string, { series: number; formula: string }>;
    readonly total: number;
    readonly budget: number;
}

export function estimateActiveSeries(cfg: CardinalityStackConfig): SeriesEstimate {
    const vendors = cfg.vendors.length;
    const pools = cfg.vendors.reduce((s, v) => s + v.pools.length, 0);
    const learning = cfg.vendors.reduce((s, v) => s + (v.exitIp ? v.pools.length : 0), 0);
    const floors = cfg.vendors.filter((v) => v.exitIp && v.exitIp.minDistinctPerHour > 0).length;
    const replicas = cfg.gateway.maxReplicas;
    const destinations = cfg.destinations.tracked.length + 1;
    const protocols = PROTOCOLS.length - 1; // a gateway speaks CONNECT and HTTP/1.1
    // The default buckets plus one at the vendor's SLA (the largest count of any vendor), +Inf, _sum, _count.
    const bucketCount = Math.max(...cfg.vendors.map((v) => durationBucketsMs([v.sla.p95LatencyMs]).length));
    const buckets = bucketCount + 3;
    const poolsWithNone = pools + vendors; // each vendor's gateway also answers for itself (pool="none")
    const namespaces = cfg.crawlers.namespaces.length;
    const pods = cfg.crawlers.expectedPods;
    const queuePods = queueDepthNamespaces(cfg).length > 0 ? pods : 0;
    const extrasPerPool = 1 + 4 + 2 + 1; // retries, failures by 4 reasons, probes by 2 results, probe duration
    const parts: SeriesEstimate["parts"] = {
        requests: {
            series: poolsWithNone * destinations * EXPECTED_STATUSES * protocols * replicas,
            formula: `(pools ${pools} + vendors ${vendors}) x destinations ${destinations} x statuses ${EXPECTED_STATUSES} x protocols ${protocols} x max gateway replicas ${replicas}`,
        },
        duration: {
            series: poolsWithNone * buckets * replicas,
            formula: `(pools + vendors) ${poolsWithNone} x (buckets ${bucketCount} + 3) x replicas ${replicas}`,
        },
        outcomes: {
            series: (pools * 3 + vendors) * replicas,
            formula: `(pools ${pools} x 3 faults + vendors ${vendors} for fault="gateway") x replicas ${replicas}`,
        },
        crawlerQueueDepth: {
            series: queuePods * (SERIES_PER_TARGET + vendors),
            formula: `crawler pods scraped for the HPA's queue depth ${queuePods} x (${SERIES_PER_TARGET} per target + vendors ${vendors})`,
        },
        bandwidth: {
            series: (pools * 2 + vendors * destinations * 2) * replicas,
            formula: `(pools ${pools} x 2 directions + vendors ${vendors} x destinations ${destinations} x 2) x replicas ${replicas}`,
        },
        poolHealthAndGatewayOwn: {
            series:
                (pools * (1 + extrasPerPool) +
                    vendors * (Object.keys(GATEWAY_METRICS).length - 5 + GATEWAY_PROCESS_SERIES)) *
                replicas,
            formula: `(pools x ${1 + extrasPerPool} + vendors x ${Object.keys(GATEWAY_METRICS).length - 5 + GATEWAY_PROCESS_SERIES}) x replicas`,
        },
        // proxy_pool_causes_total (every cause but `gateway` per pool, `gateway` per vendor), the retries by their
        // two retried causes, and reported bans per pool (and `none`) and destination.
        causesAndBans: {
            series: (pools * (CAUSES.length - 1 + 2 + destinations) + vendors * (1 + destinations)) * replicas,
            formula: `(pools ${pools} x (${CAUSES.length - 1} causes + 2 retried causes + destinations ${destinations}) + vendors ${vendors} x (1 + destinations ${destinations})) x replicas ${replicas}`,
        },
        poolQuality: {
            series: learning * POOL_QUALITY_SERIES_PER_POOL * replicas,
            formula: `pools of vendors with exitIp ${learning} x ${POOL_QUALITY_SERIES_PER_POOL} x replicas ${replicas} (never per exit IP)`,
        },
        istioPerNamespace: {
            series: vendors * namespaces * WORKLOADS_PER_NAMESPACE * ISTIO_KEPT_METRICS.length * replicas,
            formula: `vendors ${vendors} x crawler namespaces ${namespaces} x workloads ${WORKLOADS_PER_NAMESPACE} x ${ISTIO_KEPT_METRICS.length} TCP series x replicas ${replicas}`,
        },
        cadvisorPerPod: {
            series: pods * CONTAINERS_PER_POD * KEPT.cadvisor.length,
            formula: `crawler pods ${pods} x containers ${CONTAINERS_PER_POD} x ${KEPT.cadvisor.length} series`,
        },
        kubeStateMetricsPerPod: {
            series: pods * KSM_SERIES_PER_POD,
            formula: `crawler pods ${pods} x ${KSM_SERIES_PER_POD}`,
        },
        infrastructure: {
            series: FIXED_INFRA_SERIES,
            formula: "Prometheus, Alertmanager, Grafana, kube-state-metrics, HPAs",
        },
        recordedPoolQuality: {
            series: learning * POOL_QUALITY_RECORDED_PER_POOL + floors,
            formula: `pools of vendors with exitIp ${learning} x ${POOL_QUALITY_RECORDED_PER_POOL} + vendors with a floor ${floors}`,
        },
        recordedCausesAndBans: {
            series: pools * CAUSES_RECORDED.perPool + vendors * (CAUSES_RECORDED.perVendor + destinations),
            formula: `pools ${pools} x ${CAUSES_RECORDED.perPool} + vendors ${vendors} x (${CAUSES_RECORDED.perVendor} + destinations ${destinations})`,
        },
        recorded: {
            // Per pool: rates, 7 status classes, errors, success, 17 buckets, 6 quantiles, 2 directions, cost, health.
            // Per vendor: the same at vendor level, 8 SLO windows, 4 config series, and 2 per destination.
            series: pools * 40 + vendors * (70 + 2 * destinations) + namespaces * vendors * 3,
            formula: `pools ${pools} x 40 + vendors ${vendors} x (70 + 2 x destinations ${destinations}) + crawler namespaces x vendors x 3`,
        },
    };
    const total = Object.values(parts).reduce((s, p) => s + p.series, 0);
    return { parts, total, budget: cfg.prometheus.seriesBudget };
}

/** A message naming the numbers when the estimate exceeds the budget; undefined when it fits. */
export function budgetProblem(e: SeriesEstimate): string | undefined {
    if (e.total <= e.budget) return undefined;
    const top = Object.entries(e.parts)
        .sort((a, b) => b[1].series - a[1].series)
        .slice(0, 3)
        .map(([k, p]) => `${k} ${p.series.toLocaleString("en-US")} (${p.formula})`)
        .join("; ");
    return (
        `expected active series ${e.total.toLocaleString("en-US")} exceed proxy-monitor:seriesBudget ` +
        `${e.budget.toLocaleString("en-US")}. Largest parts: ${top}. Track fewer destinations, lower ` +
        `gatewayMaxReplicas, or raise seriesBudget (and Prometheus memory: about 3 kB per series).`
    );
}
