/**
 * The data model: the series every vendor gateway exports and every cluster Prometheus holds.
 *
 * This file is the contract between the gateway (which produces these series), the scrape config (which keeps
 * them), the recording rules, the alerts, the dashboards and the load generator. Nothing else spells these names:
 * import them from here.
 */

/** Label names of the data model. */
export const L = {
    vendor: "vendor",
    pool: "pool",
    destination: "destination",
    status: "status",
    protocol: "protocol",
    direction: "direction",
    le: "le",
    /** Added to every series by the scrape config (target relabelling) and as an external label. */
    cluster: "cluster",
    /** External label of each member of an HA Prometheus pair; dropped by deduplicating readers. */
    replica: "replica",
    /** Added by recording rules: `2xx`, `3xx`, `4xx`, `5xx`, or `403`, `407`, `429` kept apart. */
    statusClass: "status_class",
    /** Added by recording rules for latency quantiles: `0.5`, `0.95`, `0.99`. */
    quantile: "quantile",
    /** The quantile label of the compatibility series `proxy_request_duration_seconds`: `50`, `95`, `99`. */
    percentile: "percentile",
    /** The crawler namespace on Istio-derived series (renamed from `source_workload_namespace`). */
    crawlerNamespace: "crawler_namespace",
    /** The crawler workload on Istio-derived series (renamed from `source_workload`; a Deployment, not a pod). */
    crawlerWorkload: "crawler_workload",
    /** Who an outcome is charged to: one of FAULTS (DESIGN.md, "Failure semantics"). */
    fault: "fault",
    /** Why an outcome is charged as it is: one of CAUSES, decided by the vendor's profile (docs/data-model.md). */
    cause: "cause",
} as const;

/**
 * Who an outcome is charged to. The gateway decides (one classifier in proxy/gateway), rules and alerts read it:
 * - `none`: the vendor carried the request (a CONNECT 2xx; a plain-HTTP response of any status).
 * - `vendor`: the pool could not be reached, timed out, reset before answering, refused the credentials, or
 *   answered with its own error. Only these count against the vendor's SLO and toward ejecting a pool.
 * - `destination`: the destination's doing (a plain-HTTP response status; a CONNECT the vendor reports as the
 *   destination being unreachable). Shown per destination, never charged to the vendor.
 * - `gateway`: answered by the gateway itself without a vendor (`pool="none"`: refused by policy, bad request,
 *   at capacity). Its own alerts.
 */
export const FAULTS = ["none", "vendor", "destination", "gateway"] as const;
export type Fault = (typeof FAULTS)[number];

/**
 * Why: the cause of an outcome, read by the vendor's profile from its answer (status, RFC 9209 `Proxy-Status`, its
 * own error headers). A fixed set, never free text; each maps to one fault (CAUSE_FAULT):
 * - `none`: carried. `destination`: the destination failed (unreachable, TLS, its own error, a ban the vendor saw).
 * - `vendor_error`: the vendor's infrastructure failed (no connection, timeout, reset, its own 5xx, a peer error).
 *   The only cause the SLO counts; toward ejecting the pool, and retried once on another pool.
 * - `session_lost`: the sticky session's exit is gone (Bright Data "No peers available", Oxylabs "exit node not
 *   found"). Retried on another pool; never ejects a pool nor burns the SLO (sessions end).
 * - `vendor_policy`: the vendor refuses the destination by its own policy (Bright Data `policy_2xxxx`, RFC 9209
 *   `http_request_denied`, Zyte `domain_forbidden`). Charged to the destination (a crawler causes it at will).
 * - `client`: the vendor refuses our account or request (credentials, 407, rate limit 429, quota). Our side must act:
 *   the refusal and auth alerts say it, the SLO does not count it; never ejects a pool (every pool shares the
 *   account) and is not retried.
 * - `gateway`: the gateway answered itself (`pool="none"`).
 */
export const CAUSES = [
    "none",
    "vendor_error",
    "session_lost",
    "vendor_policy",
    "client",
    "destination",
    "gateway",
] as const;
export type Cause = (typeof CAUSES)[number];

/** The fault each cause is charged as. */
export const CAUSE_FAULT: Readonly<Record<Cause, Fault>> = {
    none: "none",
    vendor_error: "vendor",
    session_lost: "vendor",
    vendor_policy: "destination",
    client: "vendor",
    destination: "destination",
    gateway: "gateway",
};

/** Vendor profiles: how a vendor says whose fault a failure is (proxy/gateway/profiles.ts, docs/data-model.md). */
export const PROFILES = ["rfc9209", "brightdata", "oxylabs", "zyte", "soax", "generic"] as const;
export type Profile = (typeof PROFILES)[number];

/** Values of the `protocol` label. */
export const PROTOCOLS = ["HTTP/1.1", "HTTP/2", "CONNECT"] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** Values of the `direction` label. `egress` is crawler to destination, `ingress` destination to crawler. */
export const DIRECTIONS = ["ingress", "egress"] as const;
export type Direction = (typeof DIRECTIONS)[number];

/** The `destination` value of every host that the configured allowlist does not name. */
export const OTHER_DESTINATION = "other";

/**
 * Proxy-level statuses that count against a vendor: refusals (403), authentication (401, 407; some proxies answer
 * CONNECT with 401), rate limiting (429) and
 * every 5xx. A plain-HTTP 404 from a destination is the destination's answer, not the vendor's failure.
 */
export const VENDOR_ERROR_STATUS_REGEX = "401|403|407|429|5..";

/**
 * Buckets of `proxy_request_duration_milliseconds`, in milliseconds. Chosen for proxy answers (CONNECT replies
 * and plain-HTTP responses), which range from a few milliseconds (datacenter) to tens of seconds (mobile).
 * 14 buckets: +Inf, _sum and _count make 17 series per vendor, pool and gateway replica.
 */
export const DURATION_BUCKETS_MS = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 20000, 30000, 60000];

/**
 * The buckets a vendor's gateway exports: DURATION_BUCKETS_MS plus a bucket at each latency SLA value (ms), so that
 * "slower than the SLA" is a bucket boundary (`le="<sla>"`), read exactly rather than interpolated.
 */
export function durationBucketsMs(slaMs: readonly number[]): number[] {
    return [...new Set([...DURATION_BUCKETS_MS, ...slaMs])].sort((a, b) => a - b);
}

export interface MetricSpec {
    readonly name: string;
    readonly type: "counter" | "gauge" | "histogram";
    readonly help: string;
    readonly labels: readonly string[];
}

/** The data-model series of DESIGN.md. `name` is the name in the exposition (counters end in `_total`). */
export const DATA_MODEL = {
    requests: {
        name: "proxy_requests_total",
        type: "counter",
        help: "Requests and tunnels through the vendor gateway, by the proxy-level answer.",
        labels: [L.vendor, L.pool, L.destination, L.status, L.protocol],
    },
    duration: {
        name: "proxy_request_duration_milliseconds",
        type: "histogram",
        help: "Time from the crawler's request to the proxy's answer (CONNECT reply or response headers), in ms.",
        labels: [L.vendor, L.pool],
    },
    bandwidth: {
        name: "proxy_bandwidth_bytes_total",
        type: "counter",
        help: "Bytes relayed through the vendor, by direction (egress: to the destination; ingress: back).",
        labels: [L.vendor, L.pool, L.direction],
    },
    poolHealth: {
        name: "proxy_pool_health",
        type: "gauge",
        help: "1 when the gateway's last probes of the pool succeeded, 0 when the pool is considered down.",
        labels: [L.vendor, L.pool],
    },
    /**
     * The SLO's counter: every request and tunnel by who its outcome is charged to. The gateway creates the
     * `none`, `vendor` and `destination` children of every configured pool at start (at 0), so that `rate()` sees
     * a pool's first failure; `fault="gateway"` has `pool="none"`. A few series per pool and replica.
     */
    outcomes: {
        name: "proxy_pool_outcomes_total",
        type: "counter",
        help: "Requests and tunnels per pool, by who the outcome is charged to (none, vendor, destination, gateway).",
        labels: [L.vendor, L.pool, L.fault],
    },
    /**
     * The outcomes again, by cause (CAUSES) rather than fault, created at 0 for every pool and cause at start (the
     * gateway's own, `pool="none", cause="gateway"`, too). Kept apart from proxy_pool_outcomes_total so that the SLO
     * rules keep their series count; at most 7 series per pool and replica.
     */
    causes: {
        name: "proxy_pool_causes_total",
        type: "counter",
        help: "Requests and tunnels per pool, by the cause the vendor's profile read from its answer (see docs/data-model.md).",
        labels: [L.vendor, L.pool, L.cause],
    },
    /**
     * Bans crawlers reported (inside a tunnel only the crawler sees the destination's answer), per pool and
     * tracked destination (others are `other`); `pool="none"` when the crawler did not say which pool.
     */
    bans: {
        name: "proxy_crawler_bans_total",
        type: "counter",
        help: "Destination bans reported by crawlers (X-Proxy-Monitor-Ban header or POST /ban on the metrics port), by pool and destination.",
        labels: [L.vendor, L.pool, L.destination],
    },
    destinationBandwidth: {
        name: "proxy_destination_bandwidth_bytes_total",
        type: "counter",
        help: "Bytes relayed per destination (allowlist-bucketed), by direction; for top-destination views.",
        labels: [L.vendor, L.destination, L.direction],
    },
} as const satisfies Record<string, MetricSpec>;

/** The series a histogram produces in the exposition. */
export function histogramSeries(name: string): string[] {
    return [`${name}_bucket`, `${name}_sum`, `${name}_count`];
}
