/** What the gateway's parts share: config, metrics, pools, the outcome account and the in-flight count. */
import * as http from "http";
import * as net from "net";
import { performance } from "perf_hooks";
import { Fault } from "../../catalog/datamodel";
import { GATEWAY_POOL, REFUSAL_HEADER } from "../../catalog/gateway";
import { Logger } from "../common/log";
import { FailureReason } from "./classify";
import { GatewayFileConfig } from "./config";
import { Target } from "./destinations";
import { ExitIpTracker } from "./exit-ips";
import { GatewayMetrics } from "./metrics";
import { PoolState, Pools } from "./pools";

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

export class GatewayContext {
    /** Open tunnels and plain-HTTP requests (the tunnel limit counts both). */
    active = 0;

    constructor(
        readonly cfg: GatewayFileConfig,
        readonly metrics: GatewayMetrics,
        readonly pools: Pools,
        readonly log: Logger,
        private readonly random: () => number,
        /** Exit IPs learned from the pools' answers (pool quality). */
        readonly exitIps: ExitIpTracker = new ExitIpTracker(cfg.exitIp, []),
    ) {}

    /** One outcome of a pool, as the classifier charged it: the SLO counter and passive health. */
    account(pool: PoolState, fault: Fault, target: Target): void {
        this.metrics.outcome(pool.config.name, fault);
        this.pools.record(pool, fault, target.authority);
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
                `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n${auth}${REFUSAL_HEADER}: ${reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
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
        this.metrics.inflight.labels(this.cfg.vendor).inc();
    }

    end(): void {
        this.active--;
        this.metrics.inflight.labels(this.cfg.vendor).dec();
    }

    sampleLog(fields: Record<string, unknown>): void {
        if (this.cfg.logSampleRate > 0 && this.random() < this.cfg.logSampleRate) {
            this.log.info("finished", { vendor: this.cfg.vendor, ...fields });
        }
    }
}
