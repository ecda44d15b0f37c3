/**
 * The gateway's own metrics, beside the data model: capacity, retries, probes and shutdown. Dashboards and alerts
 * may read these; the HPA's custom metric reads `proxy_inflight_requests`.
 */
import { L, MetricSpec } from "./datamodel";

/** `pool` value of answers the gateway gives itself (400, 403 not allowed, 407, 503 no healthy pool or at capacity). */
export const GATEWAY_POOL = "none";

/**
 * Response header on every answer the gateway gives itself, naming why (`internal-address`, `port-not-allowed`,
 * `not-allowed`, `ambiguous-url`, `non-canonical-host`, `invalid-url`, `crawler-auth`, `header-too-large`, ...).
 */
export const REFUSAL_HEADER = "x-proxy-monitor-refusal";

/** RFC 9209 proxy name of the gateway in the `Proxy-Status` of its answers. */
export const PROXY_STATUS_NAME = "proxy-monitor";

/** Request header a crawler sends to keep one pool (and the vendor's sticky session) across requests. */
export const SESSION_HEADER = "x-proxy-monitor-session";
/** Request header with which a crawler reports a ban: `<host>` or `<host>; pool=<pool>`. Not forwarded. */
export const BAN_HEADER = "x-proxy-monitor-ban";
/** Optional response headers (gateway `responseHeaders: true`): the pool that served and the retries it took. */
export const POOL_HEADER = "x-proxy-monitor-pool";
export const RETRIES_HEADER = "x-proxy-monitor-retries";

export const GATEWAY_METRICS = {
    inflight: {
        name: "proxy_inflight_requests",
        type: "gauge",
        help: "Open tunnels and plain-HTTP requests in flight on this gateway replica.",
        labels: [L.vendor],
    },
    retries: {
        name: "proxy_upstream_retries_total",
        type: "counter",
        help: "Requests and CONNECTs retried on another pool after the first pool failed (a vendor fault) before the crawler's request was committed.",
        labels: [L.vendor, L.pool],
    },
    retriesByCause: {
        name: "proxy_upstream_retries_by_cause_total",
        type: "counter",
        help: "Retries on another pool by the cause of the failed attempt (vendor_error, session_lost); the pool is the one that failed.",
        labels: [L.vendor, L.pool, L.cause],
    },
    upstreamFailures: {
        name: "proxy_upstream_failures_total",
        type: "counter",
        help: "Failures reaching a pool or relaying its answer, by reason (connect_error, timeout, reset, bad_response, body_timeout, response_aborted).",
        labels: [L.vendor, L.pool, "reason"],
    },
    probes: {
        name: "proxy_pool_probes_total",
        type: "counter",
        help: "Health probes of each pool by result (success, failure).",
        labels: [L.vendor, L.pool, "result"],
    },
    probeDuration: {
        name: "proxy_pool_probe_duration_milliseconds",
        type: "gauge",
        help: "Duration of the last health probe of each pool, ms.",
        labels: [L.vendor, L.pool],
    },
    panic: {
        name: "proxy_pool_panic",
        type: "gauge",
        help: "1 while no pool of the vendor is available and the gateway spreads traffic over all of them anyway (panic mode).",
        labels: [L.vendor],
    },
    staleRetries: {
        name: "proxy_upstream_stale_retries_total",
        type: "counter",
        help: "Plain-HTTP requests retried on a fresh connection after a reused keep-alive connection to the pool failed before any answer (not a vendor fault).",
        labels: [L.vendor, L.pool],
    },
    cutAtShutdown: {
        name: "proxy_tunnels_cut_total",
        type: "counter",
        help: "Tunnels and requests still open when the shutdown drain deadline passed, and cut.",
        labels: [L.vendor],
    },
} as const satisfies Record<string, MetricSpec>;

/** Label of the pool-quality gauges: the sliding window they cover (`5m`, `1h`, `24h`). */
export const WINDOW_LABEL = "window";

/**
 * Pool quality: how many distinct exit IPs each pool rotates through, counted in a HyperLogLog sketch per pool
 * (proxy/gateway/exit-ips.ts) so that an IP never becomes a label. Exported only by gateways that learn exit IPs
 * (`exitIp.header` set); a constant number of series per pool: 3 windows x 3 gauges + 2 session counters.
 */
export const POOL_QUALITY_METRICS = {
    distinct: {
        name: "proxy_pool_exit_ips_distinct",
        type: "gauge",
        help: "Distinct exit IPs the pool used in the window (HyperLogLog estimate, 1.6 % standard error).",
        labels: [L.vendor, L.pool, WINDOW_LABEL],
    },
    samples: {
        name: "proxy_pool_exit_ip_samples",
        type: "gauge",
        help: "Requests and tunnels whose exit IP the gateway learned in the window (exact).",
        labels: [L.vendor, L.pool, WINDOW_LABEL],
    },
    reuse: {
        name: "proxy_pool_exit_ip_reuse_ratio",
        type: "gauge",
        help: "Share of the window's samples whose exit IP was already seen in the window: 1 - distinct / samples.",
        labels: [L.vendor, L.pool, WINDOW_LABEL],
    },
    sessionRequests: {
        name: "proxy_pool_sticky_session_requests_total",
        type: "counter",
        help: "Requests and tunnels of a sticky session (a session in the crawler's username) with a learned exit IP.",
        labels: [L.vendor, L.pool],
    },
    sessionBreaks: {
        name: "proxy_pool_sticky_session_breaks_total",
        type: "counter",
        help: "Sticky-session requests and tunnels whose exit IP differed from the session's previous one.",
        labels: [L.vendor, L.pool],
    },
} as const satisfies Record<string, MetricSpec>;
