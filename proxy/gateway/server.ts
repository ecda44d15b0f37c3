/**
 * The vendor gateway: an HTTP forward proxy for one vendor. CONNECT tunnels and absolute-form HTTP requests from
 * crawlers go to one of the vendor's pools (weighted, healthy), with the pool's credentials; every answer is
 * measured in the data model.
 *
 * Bytes are counted from the upstream socket's own counters (no copy, no per-chunk listener on tunnels), minus the
 * CONNECT exchange, and flushed to the metrics every few seconds so long tunnels show up while they run.
 */
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import { performance } from "perf_hooks";
import { OTHER_DESTINATION } from "../../catalog/datamodel";
import { GATEWAY_POOL } from "../../catalog/gateway";
import { Logger, silentLogger } from "../common/log";
import { portOf, startOpsServer } from "../common/ops-server";
import { GatewayFileConfig, GatewayPool } from "./config";
import { Destinations, parseAuthority } from "./destinations";
import { GatewayMetrics } from "./metrics";
import { PoolState, Pools, probePool, readCredentials } from "./pools";
import { readProxyResponseHead } from "./upstream";

const REASONS: Record<number, string> = {
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

/** Headers that describe one hop and are not forwarded. */
const HOP_BY_HOP = new Set([
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "upgrade",
]);

const BYTES_FLUSH_MS = 5000;

export interface GatewayOptions {
    readonly logger?: Logger;
    /** Credentials of a pool (tests pass them in; in pods they come from the mounted Secret's files). */
    readonly credentials?: (pool: GatewayPool) => string;
    readonly random?: () => number;
    /** Register the process metrics (off in tests that start many gateways). */
    readonly processMetrics?: boolean;
}

interface Tunnel {
    readonly client: net.Socket;
    readonly upstream: net.Socket;
    readonly pool: string;
    readonly destination: string;
    /** Bytes of our CONNECT request and of the pool's answer head: not payload. */
    readonly requestBytes: number;
    readonly headBytes: number;
    countedEgress: number;
    countedIngress: number;
}

export class Gateway {
    readonly metrics: GatewayMetrics;
    readonly pools: Pools;
    private readonly dest: Destinations;
    private readonly log: Logger;
    private readonly random: () => number;
    private readonly crawlerAuth?: Set<string>;
    private readonly agents = new Map<PoolState, http.Agent>();
    private readonly tunnels = new Set<Tunnel>();
    private readonly requests = new Set<http.ServerResponse>();
    private readonly probing = new Set<PoolState>();
    private proxyServer?: http.Server;
    private opsServer?: http.Server;
    private timers: NodeJS.Timeout[] = [];
    /** Open tunnels and plain-HTTP requests (the tunnel limit counts both). */
    private active = 0;
    private draining = false;

    constructor(
        readonly cfg: GatewayFileConfig,
        opts: GatewayOptions = {},
    ) {
        this.log = opts.logger ?? silentLogger;
        this.random = opts.random ?? Math.random;
        this.metrics = new GatewayMetrics(cfg.vendor, opts.processMetrics ?? true, cfg.metrics);
        this.dest = new Destinations(cfg.destinations.tracked, cfg.destinations.allowed);
        this.pools = new Pools(
            cfg.pools,
            cfg.probe,
            (pool, up) => {
                this.metrics.setHealth(pool, up);
                if (this.proxyServer) this.log.warn(up ? "pool up" : "pool down", { vendor: cfg.vendor, pool });
            },
            opts.credentials ?? readCredentials,
            this.random,
        );
        for (const p of this.pools.all) {
            this.agents.set(
                p,
                new http.Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, scheduling: "lifo" }),
            );
        }
        if (cfg.crawlerAuthFile) {
            const lines = fs.readFileSync(cfg.crawlerAuthFile, "utf8").split(/\r?\n/).filter(Boolean);
            this.crawlerAuth = new Set(lines.map((l) => "Basic " + Buffer.from(l).toString("base64")));
        }
    }

    /** Listens on the proxy and metrics ports; returns the ports (useful with port 0). */
    async start(): Promise<{ proxyPort: number; metricsPort: number }> {
        const server = http.createServer({
            maxHeaderSize: this.cfg.limits.maxHeaderBytes,
            headersTimeout: this.cfg.timeouts.connectMs,
            requestTimeout: this.cfg.timeouts.totalMs,
            keepAliveTimeout: this.cfg.timeouts.idleMs,
            // Node enforces headersTimeout on this timer (30 s by default), which would let a slowloris hold a socket.
            connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(this.cfg.timeouts.connectMs / 2))),
        });
        server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) =>
            this.onConnect(req, socket, head),
        );
        server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
        server.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => this.onClientError(err, socket));
        this.proxyServer = server;
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(this.cfg.listen.proxyPort, this.cfg.listen.host, () => resolve());
        });
        this.opsServer = await startOpsServer(this.cfg.listen.metricsPort, this.cfg.listen.host, {
            registry: this.metrics.registry,
            ready: () => !this.draining && this.pools.anyUp(),
        });
        this.timers.push(setInterval(() => this.flushBytes(), BYTES_FLUSH_MS));
        this.timers.push(setInterval(() => this.probeAll(), this.cfg.probe.intervalMs));
        this.probeAll();
        const ports = { proxyPort: portOf(server), metricsPort: portOf(this.opsServer) };
        this.log.info("gateway listening", { vendor: this.cfg.vendor, ...ports, pools: this.cfg.pools.length });
        return ports;
    }

    /** Probes every pool once (not a pool whose previous probe is still running). */
    probeAll(): Promise<void> {
        return Promise.all(
            this.pools.all.map(async (p) => {
                if (this.probing.has(p)) return;
                this.probing.add(p);
                const t0 = performance.now();
                try {
                    const ok = await probePool(p, this.cfg.probe.destination, this.cfg.probe.timeoutMs);
                    this.metrics.probe(p.config.name, ok, performance.now() - t0);
                    this.pools.record(p, ok);
                } finally {
                    this.probing.delete(p);
                }
            }),
        ).then(() => undefined);
    }

    /**
     * Stops accepting, lets tunnels and requests drain up to `graceMs`, then cuts what is left (counted in
     * proxy_tunnels_cut_total). Resolves with the number cut.
     */
    async stop(graceMs = this.cfg.shutdownGraceMs): Promise<number> {
        this.draining = true;
        for (const t of this.timers) clearInterval(t);
        this.timers = [];
        const closed = new Promise<void>((resolve) =>
            this.proxyServer ? this.proxyServer.close(() => resolve()) : resolve(),
        );
        this.proxyServer?.closeIdleConnections();
        const deadline = Date.now() + graceMs;
        while (this.active > 0 && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
        }
        const cut = this.active;
        if (cut > 0) {
            this.metrics.cutTunnels(cut);
            this.log.warn("drain deadline passed, cutting", { vendor: this.cfg.vendor, cut });
        }
        for (const t of [...this.tunnels]) {
            t.client.destroy();
            t.upstream.destroy();
        }
        for (const r of [...this.requests]) r.destroy();
        this.proxyServer?.closeAllConnections();
        await closed;
        this.flushBytes();
        for (const a of this.agents.values()) a.destroy();
        await new Promise<void>((resolve) => (this.opsServer ? this.opsServer.close(() => resolve()) : resolve()));
        return cut;
    }

    // ---- CONNECT ----

    private onConnect(req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
        const t0 = performance.now();
        client.on("error", () => client.destroy());
        const target = parseAuthority(req.url ?? "");
        if (!target) return this.refuse(client, 400, OTHER_DESTINATION, "CONNECT", t0);
        const destination = this.dest.label(target.host);
        if (!this.authorized(req)) return this.refuse(client, 407, destination, "CONNECT", t0);
        if (!this.dest.allowed(target.host)) return this.refuse(client, 403, destination, "CONNECT", t0);
        if (this.draining || this.active >= this.cfg.limits.maxTunnels) {
            return this.refuse(client, 503, destination, "CONNECT", t0);
        }
        const pool = this.pools.pick();
        if (!pool) return this.refuse(client, 503, destination, "CONNECT", t0);
        this.begin();
        this.connectVia(pool, req.url as string, client, head, destination, t0, false);
    }

    private connectVia(
        pool: PoolState,
        authority: string,
        client: net.Socket,
        head: Buffer,
        destination: string,
        t0: number,
        retried: boolean,
    ): void {
        const request = `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${pool.authorization}\r\n\r\n`;
        const upstream = net.connect({ host: pool.config.host, port: pool.config.port, noDelay: true });
        let settled = false;
        const timer = setTimeout(() => fail("timeout"), this.cfg.timeouts.connectMs);
        /** `status`: the pool's own answer, relayed when no other pool is tried. */
        const fail = (reason: string, status?: number) => {
            if (settled) return;
            settled = true;
            clearTimeout(timer);
            upstream.destroy();
            this.metrics.failure(pool.config.name, reason);
            this.pools.record(pool, false);
            if (client.destroyed) return this.end();
            if (!retried && head.length === 0 && client.readableLength === 0) {
                const other = this.pools.pick(pool);
                if (other) {
                    this.metrics.retry(pool.config.name);
                    return this.connectVia(other, authority, client, head, destination, t0, true);
                }
            }
            this.refuse(
                client,
                status ?? (reason === "timeout" ? 504 : 502),
                destination,
                "CONNECT",
                t0,
                pool.config.name,
            );
            this.end();
        };
        upstream.on("error", (e: NodeJS.ErrnoException) => fail(e.code === "ECONNRESET" ? "reset" : "connect_error"));
        upstream.once("connect", () => {
            upstream.write(request);
            readProxyResponseHead(upstream, this.cfg.limits.maxHeaderBytes).then(
                (answer) => {
                    if (settled) return;
                    const status = answer.status;
                    if (status >= 200 && status < 300) {
                        settled = true;
                        clearTimeout(timer);
                        this.pools.record(pool, true);
                        if (client.destroyed) {
                            upstream.destroy();
                            return this.end();
                        }
                        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
                        this.metrics.request(pool.config.name, destination, 200, "CONNECT", performance.now() - t0);
                        if (head.length > 0) upstream.write(head);
                        if (answer.rest.length > 0) client.write(answer.rest);
                        this.tunnel(
                            client,
                            upstream,
                            pool.config.name,
                            destination,
                            Buffer.byteLength(request),
                            answer.headBytes,
                            t0,
                        );
                        return;
                    }
                    if ((status === 502 || status === 503) && !retried) {
                        // The pool itself is failing: count it against the pool and try another.
                        return fail("bad_response", status);
                    }
                    settled = true;
                    clearTimeout(timer);
                    // 403, 407, 429 and other refusals are the vendor's answer: relay the status.
                    this.pools.record(pool, status < 500);
                    upstream.destroy();
                    this.refuse(client, status, destination, "CONNECT", t0, pool.config.name);
                    this.end();
                },
                (e: Error) => fail(/closed/.test(e.message) ? "reset" : "bad_response"),
            );
        });
    }

    private tunnel(
        client: net.Socket,
        upstream: net.Socket,
        pool: string,
        destination: string,
        requestBytes: number,
        headBytes: number,
        t0: number,
    ): void {
        const t: Tunnel = {
            client,
            upstream,
            pool,
            destination,
            requestBytes,
            headBytes,
            countedEgress: 0,
            countedIngress: 0,
        };
        this.tunnels.add(t);
        client.setNoDelay(true);
        client.setTimeout(this.cfg.timeouts.idleMs, () => client.destroy());
        const total = setTimeout(() => client.destroy(), this.cfg.timeouts.totalMs);
        let closed = false;
        const close = () => {
            if (closed) return;
            closed = true;
            clearTimeout(total);
            client.destroy();
            upstream.destroy();
            this.flushTunnel(t);
            this.tunnels.delete(t);
            this.end();
            this.sampleLog({
                kind: "tunnel",
                pool,
                destination,
                status: 200,
                egress: t.countedEgress,
                ingress: t.countedIngress,
                ms: Math.round(performance.now() - t0),
            });
        };
        upstream.removeAllListeners("error");
        upstream.on("error", close);
        client.on("error", close);
        upstream.on("close", close);
        client.on("close", close);
        client.pipe(upstream);
        upstream.pipe(client);
        upstream.resume();
    }

    private flushTunnel(t: Tunnel): void {
        const egress = Math.max(0, t.upstream.bytesWritten - t.requestBytes);
        const ingress = Math.max(0, t.upstream.bytesRead - t.headBytes);
        this.metrics.bytes(t.pool, t.destination, egress - t.countedEgress, ingress - t.countedIngress);
        t.countedEgress = egress;
        t.countedIngress = ingress;
    }

    private flushBytes(): void {
        for (const t of this.tunnels) this.flushTunnel(t);
    }

    // ---- absolute-form HTTP ----

    private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
        const t0 = performance.now();
        const url = req.url ?? "";
        let target: URL | undefined;
        try {
            target = url.startsWith("http://") ? new URL(url) : undefined;
        } catch {
            target = undefined;
        }
        if (!target || !target.hostname) return this.answer(res, 400, OTHER_DESTINATION, t0);
        const destination = this.dest.label(target.hostname);
        if (!this.authorized(req)) {
            res.setHeader("proxy-authenticate", 'Basic realm="proxy-monitor"');
            return this.answer(res, 407, destination, t0);
        }
        if (!this.dest.allowed(target.hostname)) return this.answer(res, 403, destination, t0);
        const length = Number(req.headers["content-length"] ?? 0);
        if (length > this.cfg.limits.maxBodyBytes) return this.answer(res, 413, destination, t0);
        if (this.draining || this.active >= this.cfg.limits.maxTunnels) return this.answer(res, 503, destination, t0);
        const pool = this.pools.pick();
        if (!pool) return this.answer(res, 503, destination, t0);
        this.begin();
        this.requests.add(res);
        let ended = false;
        const done = () => {
            if (ended) return;
            ended = true;
            this.requests.delete(res);
            this.end();
        };
        res.once("close", done);
        this.forward(pool, req, res, destination, t0, false);
    }

    private forward(
        pool: PoolState,
        req: http.IncomingMessage,
        res: http.ServerResponse,
        destination: string,
        t0: number,
        retried: boolean,
    ): void {
        const headers: http.OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(req.headers)) if (!HOP_BY_HOP.has(k)) headers[k] = v;
        headers["proxy-authorization"] = pool.authorization;
        let egress = 0;
        let answered = false;
        const upReq = http.request({
            host: pool.config.host,
            port: pool.config.port,
            method: req.method,
            path: req.url,
            headers,
            agent: this.agents.get(pool),
        });
        const timer = setTimeout(() => upReq.destroy(new TimeoutError()), this.cfg.timeouts.connectMs);
        upReq.on("response", (upRes) => {
            clearTimeout(timer);
            answered = true;
            const status = upRes.statusCode ?? 502;
            this.pools.record(pool, status !== 502 && status !== 503);
            this.metrics.request(pool.config.name, destination, status, "HTTP/1.1", performance.now() - t0);
            const out: http.OutgoingHttpHeaders = {};
            for (const [k, v] of Object.entries(upRes.headers)) if (!HOP_BY_HOP.has(k)) out[k] = v;
            res.writeHead(status, out);
            let ingress = 0;
            upRes.on("data", (c: Buffer) => (ingress += c.length));
            upRes.on("end", () => {
                this.metrics.bytes(pool.config.name, destination, egress, ingress);
                this.sampleLog({
                    kind: "http",
                    pool: pool.config.name,
                    destination,
                    status,
                    egress,
                    ingress,
                    ms: Math.round(performance.now() - t0),
                });
            });
            upRes.on("error", () => res.destroy());
            upRes.pipe(res);
        });
        upReq.on("error", (e: Error) => {
            clearTimeout(timer);
            if (answered || res.headersSent) return res.destroy();
            const timeout = e instanceof TimeoutError;
            this.metrics.failure(pool.config.name, timeout ? "timeout" : "connect_error");
            this.pools.record(pool, false);
            const idempotent = req.method === "GET" || req.method === "HEAD";
            if (!retried && idempotent && egress === 0 && !timeout) {
                const other = this.pools.pick(pool);
                if (other) {
                    this.metrics.retry(pool.config.name);
                    return this.forward(other, req, res, destination, t0, true);
                }
            }
            this.answer(res, timeout ? 504 : 502, destination, t0, pool.config.name);
        });
        if (retried) {
            upReq.end();
            return;
        }
        req.on("data", (c: Buffer) => {
            egress += c.length;
            if (egress > this.cfg.limits.maxBodyBytes) {
                upReq.destroy();
                if (!res.headersSent) this.answer(res, 413, destination, t0);
            }
        });
        req.pipe(upReq);
    }

    // ---- answers the gateway gives itself ----

    private authorized(req: http.IncomingMessage): boolean {
        if (!this.crawlerAuth) return true;
        const h = req.headers["proxy-authorization"];
        return typeof h === "string" && this.crawlerAuth.has(h);
    }

    private refuse(
        client: net.Socket,
        status: number,
        destination: string,
        protocol: string,
        t0: number,
        pool = GATEWAY_POOL,
    ): void {
        this.metrics.request(pool, destination, status, protocol, performance.now() - t0);
        const extra =
            status === 407 && pool === GATEWAY_POOL ? 'Proxy-Authenticate: Basic realm="proxy-monitor"\r\n' : "";
        if (!client.destroyed) {
            client.end(
                `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n${extra}Content-Length: 0\r\nConnection: close\r\n\r\n`,
            );
        }
        this.sampleLog({ kind: "tunnel", pool, destination, status, ms: Math.round(performance.now() - t0) });
    }

    private answer(
        res: http.ServerResponse,
        status: number,
        destination: string,
        t0: number,
        pool = GATEWAY_POOL,
    ): void {
        this.metrics.request(pool, destination, status, "HTTP/1.1", performance.now() - t0);
        if (!res.headersSent) {
            res.writeHead(status, { "content-length": 0, connection: "close" });
            res.end();
        }
        this.sampleLog({ kind: "http", pool, destination, status, ms: Math.round(performance.now() - t0) });
    }

    private onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
        const status = err.code === "HPE_HEADER_OVERFLOW" ? 431 : 400;
        if (err.code === "ECONNRESET" || !socket.writable) {
            socket.destroy();
            return;
        }
        this.metrics.request(GATEWAY_POOL, OTHER_DESTINATION, status, "HTTP/1.1", 0);
        socket.end(`HTTP/1.1 ${status} ${REASONS[status]}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`);
        socket.destroySoon?.();
    }

    private begin(): void {
        this.active++;
        this.metrics.inflight.labels(this.cfg.vendor).inc();
    }

    private end(): void {
        this.active--;
        this.metrics.inflight.labels(this.cfg.vendor).dec();
    }

    private sampleLog(fields: Record<string, unknown>): void {
        if (this.cfg.logSampleRate > 0 && this.random() < this.cfg.logSampleRate) {
            this.log.info("finished", { vendor: this.cfg.vendor, ...fields });
        }
    }

    /** Open tunnels and requests (tests). */
    get open(): number {
        return this.active;
    }
}

class TimeoutError extends Error {
    constructor() {
        super("upstream timeout");
    }
}
