/** Metrics of the load generator (`generate`) and the destination emulator (`target`). */
import { L, MetricSpec } from "./datamodel";

export const LOADGEN_METRICS = {
    requests: {
        name: "loadgen_requests_total",
        type: "counter",
        help: "Requests the generator finished, by vendor, destination, scheme (http, https) and outcome (ok, http_error, proxy_error, timeout, network_error).",
        labels: [L.vendor, L.destination, "scheme", "outcome"],
    },
    /**
     * The optional crawler-side metric of the data model: the destination's own HTTP status, seen inside the tunnel
     * (a site banning a proxy exit IP answers 403 or 429 here, while the proxy answered 200).
     */
    upstreamResponses: {
        name: "crawler_upstream_responses_total",
        type: "counter",
        help: "Responses from destinations as the crawler sees them (inner HTTPS status), by vendor, destination and status.",
        labels: [L.vendor, L.destination, L.status],
    },
    queueDepth: {
        name: "loadgen_queue_depth",
        type: "gauge",
        help: "Requests due by the rate schedule but waiting for a connection slot (the custom autoscaling metric).",
        labels: [L.vendor],
    },
    inflight: {
        name: "loadgen_inflight_requests",
        type: "gauge",
        help: "Requests in flight.",
        labels: [L.vendor],
    },
    retries: {
        name: "loadgen_retries_total",
        type: "counter",
        help: "Requests retried after a network error or a 502, 503 or 504.",
        labels: [L.vendor],
    },
    bytes: {
        name: "loadgen_response_bytes_total",
        type: "counter",
        help: "Response body bytes received.",
        labels: [L.vendor],
    },
} as const satisfies Record<string, MetricSpec>;

export const TARGET_METRICS = {
    requests: {
        name: "target_requests_total",
        type: "counter",
        help: "Requests the destination emulator answered, by status and protocol (h1, h2) and scheme.",
        labels: [L.status, L.protocol, "scheme"],
    },
} as const satisfies Record<string, MetricSpec>;
