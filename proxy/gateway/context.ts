/** What the gateway's parts share: config, metrics, pools, the outcome account and the in-flight count. */
import * as http from "http";
import * as net from "net";
import { performance } from "perf_hooks";
import { CAUSE_FAULT, Cause } from "../../catalog/datamodel";
import { GATEWAY_POOL, PROXY_STATUS_NAME, REFUSAL_HEADER } from "../../catalog/gateway";
import { Logger } from "../common/log";
import { FailureReason } from "./classify";
import { GatewayFileConfig } from "./config";
import { Target } from "./destinations";
import { ExitIpTracker } from "./exit-ips";
import { GatewayMetrics } from "./metrics";
import { PoolState, Pools } from "./pools";
import { profileSpellsSessions, sessionAuthorization } from "./sessions";

export const REASONS: Record<number, string> = {
    200: "Connection Established",
    400: "Bad Request",
    403: "Forbidden",
    407: "Proxy Authentication Required",
    413: "Payload Too Large",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
};

/** RFC 9209 error types of the gateway's own refusals, by refusal reason (REFUSAL_HEADER). */
const OWN_ERROR_TYPES: Record<string, string> = {
    "crawler-auth": "http_request_denied",
    "not-allowed": "http_request_denied",
    "port-not-allowed": "http_request_denied",
    "internal-address": "destination_ip_prohibited",
    "internal-name": "http_request_denied",
    "ambiguous-url": "http_request_error",
    "non-canonical-host": "http_request_error",
    "invalid-url": "http_request_error",
    "bad-request": "http_request_error",
    "bad-session": "http_request_error",
    "header-too-large": "http_request_error",
    "body-too-large": "http_request_error",
    "stale-connection": "connection_terminated",
};

/**
 * The gateway's RFC 9209 `Proxy-Status` member for an answer it gives itself: refusals are http_request_denied or
 * http_request_error; capacity, draining and no pool are proxy_internal_response (answered without trying a pool).
 */
export function ownProxyStatus(reason: string): string {
    return `${PROXY_STATUS_NAME}; error=${OWN_ERROR_TYPES[reason] ?? "proxy_internal_response"}; details="${reason}"`;
}

/** RFC 9209 error types for a failure reaching a pool (the next hop). */
const FAILURE_ERROR_TYPES: Record<FailureReason, string> = {
    connect_error: "connection_refused",
    timeout: "connection_timeout",
    reset: "connection_terminated",
    bad_response: "http_protocol_error",
    body_timeout: "http_response_timeout",
    response_aborted: "http_response_incomplete",
};

/**
 * The gateway's `Proxy-Status` member when it relays a pool's failure or fails to reach it: the error type of the
 * failure reaching it, or the status the pool sent, and the cause the profile read (no pool address, no secret).
 */
export function relayProxyStatus(cause: Cause, failure?: FailureReason, receivedStatus?: number): string {
    const error = failure ? `; error=${FAILURE_ERROR_TYPES[failure]}` : "";
    const received = receivedStatus !== undefined ? `; received-status=${receivedStatus}` : "";
    return `${PROXY_STATUS_NAME}${error}${received}; details="${cause}"`;
}

/**
 * How often the timeout sweeps run (tunnel.ts, forward.ts): a quarter of the shortest timeout, between 25 ms and a
 * second, so a timeout fires at most that late.
 */
export function sweepEvery(t: { connectMs: number; idleMs: number; totalMs: number }): number {
    return Math.max(25, Math.min(1000, Math.floor(Math.min(t.connectMs, t.idleMs, t.totalMs) / 4)));
}

export class GatewayContext {
    /** Open tunnels and plain-HTTP requests (the tunnel limit counts both). */
    active = 0;
    /** Finished exchanges are logged (a share `logSampleRate` of them): callers skip building the fields when not. */
    readonly sampling: boolean;

    constructor(
        readonly cfg: GatewayFileConfig,
        readonly metrics: GatewayMetrics,
        readonly pools: Pools,
        readonly log: Logger,
        private readonly random: () => number,
        /** Exit IPs learned from the pools' answers (pool quality). */
        readonly exitIps: ExitIpTracker = new ExitIpTracker(cfg.exitIp, []),
    ) {
        this.sampling = cfg.logSampleRate > 0;
        // The in-flight gauge reads `active` when it is collected (the hot path never calls prom-client).
        metrics.countInflight(() => this.active);
    }

    /**
     * The pool's Proxy-Authorization for the crawler's session: in the profile's spelling when it has one (vendor
     * profiles), else in `exitIp.sessionUsername` when `exitIp.sessionPattern` reads sessions (pool quality).
     */
    upstreamAuthorization(pool: PoolState, session: string | undefined): string {
        if (session === undefined || profileSpellsSessions(this.cfg.profile) || !this.cfg.exitIp.sessionPattern)
            return sessionAuthorization(this.cfg.profile, pool.authorization, session);
        return this.exitIps.authorization(pool.authorization, session);
    }

    /** One outcome of a pool, by the cause its profile read: the SLO counter, the cause counter, passive health. */
    account(pool: PoolState, cause: Cause, target: Target): void {
        const fault = CAUSE_FAULT[cause];
        this.metrics.outcome(pool.config.name, fault, cause);
        this.pools.record(pool, fault, target.authority, cause === "vendor_error");
    }

    /** A failure reaching a pool or relaying its answer (diagnostics; charging is `account`'s). */
    failure(pool: PoolState, reason: FailureReason): void {
        this.metrics.failure(pool.config.name, reason);
    }

    /** An answer the gateway gives itself (pool="none", fault="gateway"), on a raw socket. */
    refuseSocket(
        client: net.Socket,
        status: number,
        destination: string,
        t0: number,
        reason: string,
        protocol = "CONNECT",
    ): void {
        this.metrics.request(GATEWAY_POOL, destination, status, protocol, performance.now() - t0);
        this.metrics.gatewayOutcome();
        const auth = status === 407 ? 'Proxy-Authenticate: Basic realm="proxy-monitor"\r\n' : "";
        if (!client.destroyed && client.writable) {
            client.end(
                `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n${auth}${REFUSAL_HEADER}: ${reason}\r\nProxy-Status: ${ownProxyStatus(reason)}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
            );
        }
        client.destroySoon?.();
        this.sampleLog({ kind: protocol, pool: GATEWAY_POOL, destination, status, reason });
    }

    /** An answer the gateway gives itself (pool="none", fault="gateway") on a plain-HTTP exchange. */
    answerHttp(res: http.ServerResponse, status: number, destination: string, t0: number, reason: string): void {
        this.metrics.request(GATEWAY_POOL, destination, status, "HTTP/1.1", performance.now() - t0);
        this.metrics.gatewayOutcome();
        if (!res.headersSent && !res.destroyed) {
            const headers: http.OutgoingHttpHeaders = {
                "content-length": 0,
                connection: "close",
                [REFUSAL_HEADER]: reason,
                "proxy-status": ownProxyStatus(reason),
            };
            if (status === 407) headers["proxy-authenticate"] = 'Basic realm="proxy-monitor"';
            res.writeHead(status, headers);
            res.end();
        } else if (!res.writableFinished) {
            res.destroy();
        }
        this.sampleLog({ kind: "http", pool: GATEWAY_POOL, destination, status, reason });
    }

    begin(): void {
        this.active++;
    }

    end(): void {
        this.active--;
    }

    sampleLog(fields: Record<string, unknown>): void {
        if (this.sampling && this.random() < this.cfg.logSampleRate) {
            this.log.info("finished", { vendor: this.cfg.vendor, ...fields });
        }
    }
}
