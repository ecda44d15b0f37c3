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
import { Cause, Fault, Profile } from "../../catalog/datamodel";

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
    /** The vendors' own error headers (VENDOR_HEADERS), by lower-case name, when present. */
    readonly vendor?: Readonly<Record<string, string>>;
}

/** The vendors' own error headers the profiles read (and the gateway relays to the crawler on a failure). */
export const VENDOR_HEADERS = [
    "x-brd-err-code",
    "x-brd-error",
    "x-brd-err-msg",
    "x-luminati-error",
    "x-error-description",
    "x-crawlera-error",
    "zyte-error-type",
    "x-soax-error",
    "x-soax-detail",
] as const;

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

/** The cause of a fault as the generic heuristics (status codes, RFC 9209 marks, squid, tinyproxy) see it. */
function genericCause(fault: Fault): Cause {
    return fault === "vendor" ? "vendor_error" : fault === "destination" ? "destination" : "none";
}

/** RFC 9209 error types that are the vendor refusing the request by its policy, or refusing our request. */
const RFC_POLICY = new Set(["http_request_denied", "destination_ip_prohibited"]);
const RFC_CLIENT = new Set(["http_request_error", "proxy_configuration_error"]);

/** RFC 9209: the error type names the layer; `details` mentioning a session is a lost session. */
function rfc9209(status: number, m: AnswerMarks): Cause | undefined {
    if (status === 407 || status === 401 || status === 429) return "client";
    const e = proxyStatusError(m.proxyStatus);
    if (!e) return undefined;
    if (RFC_POLICY.has(e)) return "vendor_policy";
    if (DESTINATION_ERRORS.has(e)) return "destination";
    if (RFC_CLIENT.has(e)) return "client";
    if (/details="[^"]*session/i.test(m.proxyStatus ?? "")) return "session_lost";
    return "vendor_error";
}

/**
 * Bright Data: `x-brd-err-code` names the layer by its prefix (client_1xxxx, policy_2xxxx, peer_3xxxx,
 * target_4xxxx); a 502 "No peers available" (x-brd-error or the older X-Luminati-Error) is a session's peer gone.
 */
function brightdata(status: number, m: AnswerMarks): Cause | undefined {
    const v = m.vendor ?? {};
    const text = `${v["x-brd-error"] ?? ""} ${v["x-brd-err-msg"] ?? ""} ${v["x-luminati-error"] ?? ""}`;
    if (/no peers? available/i.test(text)) return "session_lost";
    // Since October 2025 also RFC 9209, with the layer's code first in `details` ("client-10060: ...").
    const layer = (/^(client|policy|peer|target)_/i.exec(v["x-brd-err-code"] ?? "") ??
        /details="(client|policy|peer|target)-[0-9]/i.exec(m.proxyStatus ?? ""))?.[1]?.toLowerCase();
    if (layer === "client") return "client";
    if (layer === "policy") return "vendor_policy";
    if (layer === "peer") return "vendor_error";
    if (layer === "target") return "destination";
    if (status === 407 || status === 401 || status === 429) return "client";
    return text.trim() ? "vendor_error" : undefined;
}

/**
 * Oxylabs: `X-Error-Description` only on its own (infrastructure) errors and never when the target failed; "exit
 * node not found" is a session ended. Without it, a 5xx (522, 525...) is the target's.
 */
function oxylabs(status: number, m: AnswerMarks): Cause | undefined {
    const d = m.vendor?.["x-error-description"];
    if (status === 407 || status === 401 || status === 429) return "client";
    // 525 "No Exit Found": no exit node for the request, the vendor's side even without the header.
    if (d === undefined) return status === 525 ? "vendor_error" : status >= 500 ? "destination" : undefined;
    if (/exit node|session/i.test(d)) return "session_lost";
    if (status === 403) return "vendor_policy";
    return "vendor_error";
}

/** Zyte Smart Proxy Manager `X-Crawlera-Error` values that are the target's side (after Zyte's own retries). */
const ZYTE_DESTINATION =
    /^(banned|nxdomain|ehostunreach|econnrefused|econnreset|socket_closed_remotely|ssl_tunnel_error|timeout|msgtimeout)$/;
/** ...and ones that refuse our account or request. */
const ZYTE_CLIENT =
    /^(bad_proxy_auth|user_suspended|header_auth|user_session_limit|too_many_conns|invalid_request|bad_uri|bad_header|bad_endpoint|data_error|client_conn_closed)$/;

/**
 * Zyte Smart Proxy Manager (`X-Crawlera-Error`) and Zyte API proxy mode (`Zyte-Error-Type`, a problem-type path
 * such as `/download/temporary-error`, read by keyword).
 */
function zyte(status: number, m: AnswerMarks): Cause | undefined {
    const e = (m.vendor?.["x-crawlera-error"] ?? m.vendor?.["zyte-error-type"] ?? "").trim().toLowerCase();
    if (!e) return status === 407 || status === 401 || status === 429 ? "client" : undefined;
    if (ZYTE_DESTINATION.test(e) || /website|ban|dns/.test(e)) return "destination";
    if (e === "bad_session_id" || /session/.test(e)) return "session_lost";
    if (e === "domain_forbidden" || /forbidden/.test(e)) return "vendor_policy";
    if (ZYTE_CLIENT.test(e) || /auth|limits|account|request/.test(e)) return "client";
    return "vendor_error";
}

/** SOAX: `X-SOAX-Error` on its errors, `X-SOAX-Detail` saying what (read by keyword: SOAX publishes no code list). */
function soax(status: number, m: AnswerMarks): Cause | undefined {
    const e = m.vendor?.["x-soax-error"];
    if (status === 407 || status === 401 || status === 429) return "client";
    if (e === undefined) return undefined;
    const text = `${e} ${m.vendor?.["x-soax-detail"] ?? ""}`;
    if (/session/i.test(text)) return "session_lost";
    if (/target|destination|host unreachable|dns/i.test(text)) return "destination";
    if (/blocked|forbidden|restricted/i.test(text)) return "vendor_policy";
    if (/auth|balance|limit|traffic/i.test(text)) return "client";
    return "vendor_error";
}

const PROFILE_READERS: Record<Profile, ((status: number, m: AnswerMarks) => Cause | undefined) | undefined> = {
    rfc9209,
    brightdata,
    oxylabs,
    zyte,
    soax,
    generic: undefined,
};

/**
 * The cause of an answer under a vendor's profile: the profile's reading of the vendor's own marks where it has
 * one, else the generic heuristics (connectFault / responseFault). Every profile also reads RFC 9209
 * `Proxy-Status` (Bright Data announced it to replace its own headers).
 */
export function classify(profile: Profile, kind: "connect" | "response", status: number, m: AnswerMarks = {}): Cause {
    const ok = kind === "connect" ? status >= 200 && status < 300 : status < 400;
    const generic = genericCause(kind === "connect" ? connectFault(status, m) : responseFault(status, m));
    if (profile === "generic") return generic;
    // Unmarked plain-HTTP answers are the destination's (its 401, 429 or 5xx relayed), but for the proxy's 407.
    const marked = m.proxyStatus !== undefined || Object.keys(m.vendor ?? {}).length > 0;
    if (kind === "response" && !marked && status !== 407) return generic;
    const own = PROFILE_READERS[profile]?.(status, m) ?? (profile !== "rfc9209" ? rfc9209(status, m) : undefined);
    if (own === undefined) return generic;
    // A plain-HTTP 4xx without a vendor mark is the destination's answer; a mark on a 2xx/3xx is ignored.
    if (ok) return "none";
    if (kind === "response" && own === "destination" && status < 500) return "none";
    return own;
}
