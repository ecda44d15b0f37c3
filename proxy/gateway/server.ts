/**
 * The vendor gateway: an HTTP forward proxy for one vendor. This file is the listener and admission: crawler
 * authentication, header limits on raw bytes, the destination policy (destinations.ts), capacity and draining; what
 * is admitted goes to a pool chosen by pools.ts, as a CONNECT tunnel (tunnel.ts) or a plain-HTTP exchange
 * (forward.ts). Every outcome is charged by one classifier (classify.ts) and measured (metrics.ts).
 *
 * Answers the gateway gives itself are `pool="none"`, `fault="gateway"`, with the reason in a response header.
 * Readiness (/readyz) is about this process only: a vendor with every pool down is the alerts' business, and a
 * gateway that stays in service still answers with the vendor's real errors (panic mode) rather than
 * disappearing from the Service.
 */
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import { performance } from "perf_hooks";
import { OTHER_DESTINATION } from "../../catalog/datamodel";
import { Logger, silentLogger } from "../common/log";
import { portOf, startOpsServer } from "../common/ops-server";
import { GatewayFileConfig, GatewayPool } from "./config";
import { GatewayContext, REASONS, ownProxyStatus, sweepEvery } from "./context";
import { DestinationPolicy, Refusal } from "./destinations";
import { ExitIpTracker, echoProbe } from "./exit-ips";
import { Forwarder, admissionHeaders } from "./forward";
import { GatewayMetrics } from "./metrics";
import { Pools, probePool, readCredentials } from "./pools";
import { Tunnels } from "./tunnel";
import { BAN_HEADER, GATEWAY_POOL, REFUSAL_HEADER } from "../../catalog/gateway";
import { CrawlerSession, SESSION_KEY, crawlerSession } from "./sessions";
import { parseConnectHead } from "./connect-head";

const BYTES_FLUSH_MS = 5000;
const HEALTH_REFRESH_MS = 1000;

export interface GatewayOptions {
    readonly logger?: Logger;
    /** Credentials of a pool (tests pass them in; in pods they come from the mounted Secret's files). */
    readonly credentials?: (pool: GatewayPool) => string;
    readonly random?: () => number;
    /** Register the process metrics (off in tests that start many gateways). */
    readonly processMetrics?: boolean;
}

/** Bytes of a request head as sent: request line, each header line with its `: ` and CRLF, the blank line. */
function headBytes(req: http.IncomingMessage): number {
    let n = (req.method?.length ?? 0) + (req.url?.length ?? 0) + 12;
    for (let i = 0; i < req.rawHeaders.length; i++) n += req.rawHeaders[i].length + 2;
    return n + 2;
}

/** What admission reads of a CONNECT request, from Node's parser or the lean reader (connect-head.ts). */
interface ConnectRequest {
    readonly url: string;
    readonly headers: http.IncomingHttpHeaders;
    /** Bytes of the head as sent. */
    readonly headBytes: number;
}

const REFUSAL_STATUS: Record<Refusal, number> = {
    "invalid-url": 400,
    "ambiguous-url": 403,
    "non-canonical-host": 403,
    "port-not-allowed": 403,
    "internal-address": 403,
    "internal-name": 403,
    "not-allowed": 403,
};

export class Gateway {
    readonly metrics: GatewayMetrics;
    readonly pools: Pools;
    private readonly ctx: GatewayContext;
    private readonly policy: DestinationPolicy;
    private readonly tunnels: Tunnels;
    private readonly forwarder: Forwarder;
    private readonly log: Logger;
    private readonly crawlerAuth?: Set<string>;
    private readonly probing = new Set<string>();
    private proxyServer?: http.Server;
    private opsServer?: http.Server;
    private timers: NodeJS.Timeout[] = [];
    private draining = false;
    /** Accepted sockets whose first bytes have not arrived, with the time they were accepted (wall-clock ms). */
    private readonly greeting = new Map<net.Socket, number>();

    constructor(
        readonly cfg: GatewayFileConfig,
        opts: GatewayOptions = {},
    ) {
        this.log = opts.logger ?? silentLogger;
        const random = opts.random ?? Math.random;
        this.metrics = new GatewayMetrics(cfg.vendor, opts.processMetrics ?? true, cfg.metrics, cfg.durationBucketsMs);
        this.metrics.createOutcomes(cfg.pools.map((p) => p.name));
        this.policy = new DestinationPolicy(cfg.destinations);
        this.pools = new Pools(
            cfg.pools,
            cfg.probe,
            cfg.health,
            (pool, up, why) => {
                this.metrics.setHealth(pool, up);
                if (this.proxyServer) this.log.warn(up ? "pool up" : "pool down", { vendor: cfg.vendor, pool, why });
            },
            (panic) => {
                this.metrics.setPanic(panic);
                if (this.proxyServer)
                    this.log.warn(panic ? "panic mode: no pool available, using all" : "panic mode over", {
                        vendor: cfg.vendor,
                    });
            },
            opts.credentials ?? readCredentials,
            random,
        );
        const exitIps = new ExitIpTracker(
            cfg.exitIp,
            cfg.pools.map((p) => p.name),
        );
        this.metrics.exportExitIps(exitIps);
        this.ctx = new GatewayContext(cfg, this.metrics, this.pools, this.log, random, exitIps);
        this.tunnels = new Tunnels(this.ctx);
        this.forwarder = new Forwarder(this.ctx);
        if (cfg.crawlerAuthFile) {
            const lines = fs.readFileSync(cfg.crawlerAuthFile, "utf8").split(/\r?\n/).filter(Boolean);
            this.crawlerAuth = new Set(lines.map((l) => "Basic " + Buffer.from(l).toString("base64")));
        }
    }

    /** Listens on the proxy and metrics ports; returns the ports (useful with port 0). */
    async start(): Promise<{ proxyPort: number; metricsPort: number }> {
        const server = http.createServer({
            // Node counts header names and values only; the raw head is checked in admission (headBytes).
            maxHeaderSize: this.cfg.limits.maxHeaderBytes,
            headersTimeout: Math.min(this.cfg.timeouts.connectMs, this.cfg.timeouts.totalMs),
            requestTimeout: this.cfg.timeouts.totalMs,
            keepAliveTimeout: this.cfg.timeouts.idleMs,
            // Node enforces headersTimeout on this timer (30 s by default), which would let a slowloris hold a socket.
            connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(this.cfg.timeouts.connectMs / 2))),
        });
        // Every header is kept (none silently dropped past 2,000), so the raw-size check sees them all.
        server.maxHeadersCount = 0;
        // Node's own connection handling, run for every socket the lean CONNECT reader does not take.
        const handOff = server.listeners("connection") as ((socket: net.Socket) => void)[];
        server.removeAllListeners("connection");
        server.on("connection", (socket: net.Socket) =>
            this.onSocket(socket, (s) => handOff.forEach((l) => l.call(server, s))),
        );
        server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) =>
            this.onConnect({ url: req.url ?? "", headers: req.headers, headBytes: headBytes(req) }, socket, head),
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
            // Ready while serving: pools being down is the vendor's problem, shown by metrics and alerts.
            ready: () => !this.draining,
            routes: { "/ban": (req, res, url) => this.banRoute(req, res, url) },
        });
        const headersMs = Math.min(this.cfg.timeouts.connectMs, this.cfg.timeouts.totalMs);
        this.timers.push(setInterval(() => this.sweepGreetings(headersMs), sweepEvery(this.cfg.timeouts)));
        this.timers.push(setInterval(() => this.tunnels.flushAll(), BYTES_FLUSH_MS));
        this.timers.push(setInterval(() => this.pools.refresh(), HEALTH_REFRESH_MS));
        this.timers.push(setInterval(() => this.probeAll(), this.cfg.probe.intervalMs));
        if (this.cfg.exitIp.echo.url) {
            this.timers.push(setInterval(() => void this.echoAll(), this.cfg.exitIp.echo.intervalMs));
            void this.echoAll();
        }
        this.probeAll();
        const ports = { proxyPort: portOf(server), metricsPort: portOf(this.opsServer) };
        this.log.info("gateway listening", { vendor: this.cfg.vendor, ...ports, pools: this.cfg.pools.length });
        return ports;
    }

    /** The IP-echo probe of every pool once; each address learned counts as one sample of its pool. */
    async echoAll(): Promise<void> {
        await Promise.all(
            this.pools.all.map(async (p) => {
                try {
                    const ip = await echoProbe(
                        { host: p.config.host, port: p.config.port, authorization: p.authorization },
                        this.cfg.exitIp.echo,
                        this.cfg.probe.timeoutMs,
                    );
                    this.ctx.exitIps.learn(p.config.name, ip);
                } catch (e) {
                    this.log.warn("exit-IP echo probe failed", {
                        vendor: this.cfg.vendor,
                        pool: p.config.name,
                        error: (e as Error).message,
                    });
                }
            }),
        );
    }

    /** Probes every pool once (not a pool whose previous probe is still running). */
    probeAll(): Promise<void> {
        return Promise.all(
            this.pools.all.map(async (p) => {
                const name = p.config.name;
                if (this.probing.has(name)) return;
                this.probing.add(name);
                const t0 = performance.now();
                try {
                    const ok = await probePool(p, this.cfg.probe.destination, this.cfg.probe.timeoutMs);
                    this.metrics.probe(name, ok, performance.now() - t0);
                    if (!this.draining) this.pools.recordProbe(p, ok);
                } finally {
                    this.probing.delete(name);
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
        while (this.ctx.active > 0 && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, Math.min(50, Math.max(1, deadline - Date.now()))));
        }
        const cut = this.ctx.active;
        if (cut > 0) {
            this.metrics.cutTunnels(cut);
            this.log.warn("drain deadline passed, cutting", { vendor: this.cfg.vendor, cut });
        }
        for (const s of this.greeting.keys()) s.destroy();
        this.tunnels.destroyAll();
        this.forwarder.destroyAll();
        this.proxyServer?.closeAllConnections();
        await closed;
        this.tunnels.flushAll();
        await new Promise<void>((resolve) => (this.opsServer ? this.opsServer.close(() => resolve()) : resolve()));
        return cut;
    }

    // ---- admission ----

    /**
     * A new connection: its first bytes, when they are a whole CONNECT head (connect-head.ts), are admitted here
     * directly; anything else is handed, bytes unread, to Node's HTTP server.
     */
    private onSocket(socket: net.Socket, handOff: (socket: net.Socket) => void): void {
        this.greeting.set(socket, Date.now());
        const gone = () => this.greeting.delete(socket);
        const first = (chunk: Buffer) => {
            socket.off("data", first);
            socket.off("close", gone);
            gone();
            socket.pause();
            const head = parseConnectHead(chunk, this.cfg.limits.maxHeaderBytes);
            if (head) {
                this.onConnect(
                    { url: head.url, headers: head.headers, headBytes: head.bytes },
                    socket,
                    chunk.subarray(head.bytes),
                );
                return;
            }
            socket.unshift(chunk);
            handOff(socket);
            socket.resume();
        };
        socket.on("data", first);
        socket.once("close", gone);
        socket.on("error", () => socket.destroy());
    }

    /** Closes connections that sent nothing within the header timeout (Node's timeout covers them once handed off). */
    private sweepGreetings(headersMs: number): void {
        const now = Date.now();
        for (const [socket, at] of this.greeting) if (now - at > headersMs) socket.destroy();
    }

    private onConnect(req: ConnectRequest, client: net.Socket, head: Buffer): void {
        const t0 = performance.now();
        // Its error listener was added when it connected (onSocket).
        const refuse = (status: number, reason: string, destination = OTHER_DESTINATION) =>
            this.ctx.refuseSocket(client, status, destination, t0, reason);
        if (req.headBytes > this.cfg.limits.maxHeaderBytes) return refuse(431, "header-too-large");
        const target = this.policy.connectTarget(req.url);
        if (typeof target === "string") return refuse(REFUSAL_STATUS[target], target);
        const destination = this.policy.label(target.host);
        const session = this.session(req);
        if (!this.authorized(session)) return refuse(407, "crawler-auth", destination);
        if (session.invalid) return refuse(400, "bad-session", destination);
        this.reportedBan(req, session.key);
        if (this.draining) return refuse(503, "draining", destination);
        if (this.ctx.active >= this.cfg.limits.maxTunnels) return refuse(503, "capacity", destination);
        const choice = session.key === undefined ? this.pools.pick() : this.pools.pickFor(session.key);
        if (!choice) return refuse(503, "no-pool", destination);
        this.ctx.begin();
        this.tunnels.connect(choice.pool, target, client, head, destination, t0, session.key);
    }

    private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
        const t0 = performance.now();
        const answer = (status: number, reason: string, destination = OTHER_DESTINATION) =>
            this.ctx.answerHttp(res, status, destination, t0, reason);
        if (headBytes(req) > this.cfg.limits.maxHeaderBytes) return answer(431, "header-too-large");
        const target = this.policy.httpTarget(req.url ?? "");
        if (typeof target === "string") return answer(REFUSAL_STATUS[target], target);
        const destination = this.policy.label(target.host);
        // The few headers admission reads, in one pass over the raw list (Node's req.headers is never built).
        const seen = { headers: admissionHeaders(req.rawHeaders) };
        const session = this.session(seen);
        if (!this.authorized(session)) return answer(407, "crawler-auth", destination);
        if (session.invalid) return answer(400, "bad-session", destination);
        this.reportedBan(seen, session.key);
        const length = Number(seen.headers["content-length"] ?? 0);
        if (length > this.cfg.limits.maxBodyBytes) return answer(413, "body-too-large", destination);
        if (this.draining) return answer(503, "draining", destination);
        if (this.ctx.active >= this.cfg.limits.maxTunnels) return answer(503, "capacity", destination);
        const choice = session.key === undefined ? this.pools.pick() : this.pools.pickFor(session.key);
        if (!choice) return answer(503, "no-pool", destination);
        this.ctx.begin();
        this.forwarder.forward(choice.pool, req, res, target, destination, t0, session.key, seen.headers);
    }

    /** Crawler authentication on the credentials without a session suffix (sessions.ts). */
    private authorized(session: CrawlerSession): boolean {
        if (!this.crawlerAuth) return true;
        return session.authorization !== undefined && this.crawlerAuth.has(session.authorization);
    }

    /**
     * The crawler's session (sessions.ts: the header or a `-session-` username suffix), else the one
     * `exitIp.sessionPattern` reads from its username, with the credentials compared without it.
     */
    private session(req: { headers: http.IncomingHttpHeaders }): CrawlerSession {
        const session = crawlerSession(req);
        if (session.key !== undefined || session.invalid) return session;
        const auth = req.headers["proxy-authorization"];
        const key = this.ctx.exitIps.session(auth);
        if (key === undefined) return session;
        const authorization = this.ctx.exitIps.withoutSession(auth);
        return SESSION_KEY.test(key) ? { key, authorization } : { authorization, invalid: true };
    }

    /**
     * A ban the crawler reports on this request (`X-Proxy-Monitor-Ban: <host>[; pool=<pool>]`): counted for the
     * pool it names, else its session's pool, else `none`; the host bucketed by the tracked list.
     */
    private reportedBan(req: { headers: http.IncomingHttpHeaders }, session: string | undefined): void {
        const h = req.headers[BAN_HEADER];
        if (typeof h !== "string") return;
        const m = /^\s*([A-Za-z0-9.-]{1,253})(?::[0-9]{1,5})?\s*(?:;\s*pool=([a-z0-9-]{1,63}))?\s*$/.exec(h);
        if (!m) return;
        const pool = m[2] ?? (session === undefined ? undefined : this.pools.pickFor(session)?.pool.config.name);
        this.ban(m[1], pool);
    }

    /** Counts a reported ban; an unknown pool counts as `none`. */
    private ban(host: string, pool: string | undefined): void {
        const known = pool !== undefined && this.cfg.pools.some((p) => p.name === pool);
        this.metrics.ban(known ? pool : GATEWAY_POOL, this.policy.label(host.toLowerCase()));
    }

    /**
     * POST /ban?destination=<host>&pool=<pool> on the metrics port: a ban reported outside the proxy path,
     * authenticated like crawlers (`Authorization` or `Proxy-Authorization` with the crawler credentials).
     */
    private banRoute(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
        if (req.method !== "POST") {
            res.writeHead(405, { allow: "POST" });
            res.end();
            return;
        }
        const auth = req.headers["authorization"] ?? req.headers["proxy-authorization"];
        if (this.crawlerAuth && !(typeof auth === "string" && this.crawlerAuth.has(auth))) {
            res.writeHead(401, { "www-authenticate": 'Basic realm="proxy-monitor"' });
            res.end();
            return;
        }
        const host = url.searchParams.get("destination") ?? "";
        if (!/^[A-Za-z0-9.-]{1,253}$/.test(host)) {
            res.writeHead(400, { "content-type": "text/plain" });
            res.end("destination must be a host name\n");
            return;
        }
        this.ban(host, url.searchParams.get("pool") ?? undefined);
        res.writeHead(204);
        res.end();
    }

    private onClientError(err: NodeJS.ErrnoException, socket: net.Socket): void {
        if (err.code === "ECONNRESET" || !socket.writable) {
            socket.destroy();
            return;
        }
        const overflow = err.code === "HPE_HEADER_OVERFLOW";
        const status = overflow ? 431 : 400;
        const reason = overflow ? "header-too-large" : err.code === "HPE_INVALID_URL" ? "invalid-url" : "bad-request";
        this.metrics.request("none", OTHER_DESTINATION, status, "HTTP/1.1", 0);
        this.metrics.gatewayOutcome();
        socket.end(
            `HTTP/1.1 ${status} ${REASONS[status]}\r\n${REFUSAL_HEADER}: ${reason}\r\nProxy-Status: ${ownProxyStatus(reason)}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        );
        socket.destroySoon?.();
    }

    /** Open tunnels and requests (tests). */
    get open(): number {
        return this.ctx.active;
    }
}
