/**
 * The one classifier of the gateway: who an outcome is charged to (catalog FAULTS). Its answer feeds both
 * `proxy_pool_outcomes_total{fault}` and passive ejection, so a pool is only ever blamed for the vendor's faults.
 *
 * - A CONNECT 2xx, or a plain-HTTP response below 500 that the vendor did not mark as its own error: `none`.
 * - The vendor's: no connection to the pool, no answer within the connect timeout, a reset or close before any
 *   answer on a fresh connection, an answer that is not HTTP; on CONNECT the pool's 401, 407, 429 and 5xx unless
 *   the vendor marks them as the destination's; on plain HTTP a 407, or an error the vendor marks as its own (RFC
 *   9209 `Proxy-Status` with a proxy-side error type).
 * - The destination's: a plain-HTTP 5xx the vendor relays (no own-error mark); a CONNECT the vendor reports as the
 *   destination being unreachable (RFC 9209 destination error types, squid's ERR_CONNECT_FAIL/ERR_DNS_FAIL,
 *   tinyproxy's "Unable to connect"); and a 403, or any other 4xx but 401/407/429, on CONNECT: vendors answer 403
 *   for a destination they will not serve (their policy for that host), which one crawler can cause at will.
 * - A request refused on a reused keep-alive socket before any answer is no outcome at all: it is retried on a
 *   fresh connection (see forward.ts), and only the retry's outcome counts.
 */
import { Fault } from "../../catalog/datamodel";

/** Values of the `reason` label of proxy_upstream_failures_total. */
export type FailureReason =
    /** No TCP connection to the pool (refused, unreachable, DNS). */
    | "connect_error"
    /** No answer within the connect timeout. */
    | "timeout"
    /** Reset or closed by the pool after the request was sent, before any answer, on a fresh connection. */
    | "reset"
    /** An answer that is not HTTP, or a head over the size limit. */
    | "bad_response"
    /** A response body (or a tunnel) idle past idleMs or open past totalMs. */
    | "body_timeout"
    /** The response was cut by the upstream after its headers. */
    | "response_aborted";

/** The parts of an upstream answer the classifier reads. */
export interface AnswerMarks {
    /** RFC 9209 Proxy-Status header, if any. */
    readonly proxyStatus?: string;
    /** squid's X-Squid-Error header, if any. */
    readonly squidError?: string;
    /** The reason phrase of the status line. */
    readonly reasonPhrase?: string;
}

/** RFC 9209 error types that describe the destination's side of the vendor. */
const DESTINATION_ERRORS = new Set([
    "dns_timeout",
    "dns_error",
    "destination_not_found",
    "destination_unavailable",
    "destination_ip_prohibited",
    "destination_ip_unroutable",
    "connection_refused",
    "connection_terminated",
    "connection_timeout",
    "connection_read_timeout",
    "connection_write_timeout",
    "connection_limit_reached",
    "tls_protocol_error",
    "tls_certificate_error",
    "tls_alert_received",
    "http_response_incomplete",
    "http_response_header_section_size",
    "http_response_header_size",
    "http_response_body_size",
    "http_response_transfer_coding",
    "http_response_content_coding",
    "http_response_timeout",
]);

/** squid's error pages that say the destination could not be reached or did not answer. */
const SQUID_DESTINATION = /^ERR_(CONNECT_FAIL|DNS_FAIL|READ_TIMEOUT|READ_ERROR|ZERO_SIZE_OBJECT|INVALID_RESP)\b/;
/** tinyproxy's reason phrase when it cannot reach the destination. */
const TINYPROXY_DESTINATION = /^Unable to connect/i;

/** The error type of a Proxy-Status header (the last member's, the one closest to us), if any. */
export function proxyStatusError(value: string | undefined): string | undefined {
    if (!value) return undefined;
    const members = value.split(",");
    return /;\s*error=("?)([a-z_]+)\1/i.exec(members[members.length - 1] ?? "")?.[2]?.toLowerCase();
}

/** Does the vendor say the destination failed? */
function destinationMarked(m: AnswerMarks): boolean {
    const e = proxyStatusError(m.proxyStatus);
    if (e && DESTINATION_ERRORS.has(e)) return true;
    if (m.squidError && SQUID_DESTINATION.test(m.squidError)) return true;
    return m.reasonPhrase !== undefined && TINYPROXY_DESTINATION.test(m.reasonPhrase);
}

/** Does the vendor mark the answer as its own error (RFC 9209 error of a type not about the destination)? */
function vendorMarked(m: AnswerMarks): boolean {
    const e = proxyStatusError(m.proxyStatus);
    return e !== undefined && !DESTINATION_ERRORS.has(e);
}

/** Who a pool's answer to a CONNECT is charged to. */
export function connectFault(status: number, m: AnswerMarks = {}): Fault {
    if (status >= 200 && status < 300) return "none";
    if (destinationMarked(m)) return "destination";
    if (status === 401 || status === 407 || status === 429 || status >= 500) return "vendor";
    return "destination";
}

/** Who a plain-HTTP response (relayed by the pool) is charged to. */
export function responseFault(status: number, m: AnswerMarks = {}): Fault {
    if (status === 407) return "vendor";
    if (destinationMarked(m)) return status >= 500 ? "destination" : "none";
    if (vendorMarked(m) && status !== 403) return "vendor";
    return status >= 500 ? "destination" : "none";
}
