/**
 * CONNECT tunnels: the pool is asked to CONNECT to the checked, canonical authority with the pool's credentials;
 * its answer is classified (classify.ts) and relayed; a 2xx becomes a socket-to-socket tunnel.
 *
 * A vendor error or lost session (the profile's cause) before the crawler sent any payload is retried once on
 * another available pool (the session's next pool when it has a key); a destination fault never is. Bytes are read from
 * the upstream socket's own counters (minus the CONNECT exchange) and flushed to the metrics every few seconds, so
 * long tunnels show up while they run.
 */
import * as net from "net";
import { performance } from "perf_hooks";
import { CAUSE_FAULT, Cause } from "../../catalog/datamodel";
import { POOL_HEADER, RETRIES_HEADER } from "../../catalog/gateway";
import { FailureReason, VENDOR_HEADERS, classify } from "./classify";
import { GatewayContext, REASONS, relayProxyStatus, sweepEvery } from "./context";
import { Target } from "./destinations";
import { PoolState } from "./pools";
import { ProxyResponseHead, marksOfHead, onProxyResponseHead } from "./upstream";

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
    /** Wall-clock ms: when the tunnel opened, when the sweep last saw its byte counters move. */
    readonly openedAt: number;
    lastActive: number;
    /** The upstream socket's bytes read + written when the sweep last looked. */
    lastBytes: number;
    readonly timeout: () => void;
}

/** A tunnel waiting for its pool's answer to CONNECT, until `deadline` (wall-clock ms). */
interface Connecting {
    readonly deadline: number;
    readonly expire: () => void;
}

export class Tunnels {
    private readonly open = new Set<Tunnel>();
    private readonly connecting = new Set<Connecting>();
    /** One timer for every tunnel's timeouts (connect, idle, total), rather than up to three per tunnel. */
    private readonly sweeper: NodeJS.Timeout;

    constructor(private readonly ctx: GatewayContext) {
        this.sweeper = setInterval(() => this.sweep(), sweepEvery(ctx.cfg.timeouts));
        this.sweeper.unref();
    }

    /**
     * Times out what is due: no answer to CONNECT within connectMs, a tunnel whose upstream byte counters have not
     * moved for idleMs (either direction moves them), a tunnel open for totalMs. Fires within one sweep interval.
     */
    private sweep(): void {
        const now = Date.now();
        for (const c of this.connecting) if (now >= c.deadline) c.expire();
        const { idleMs, totalMs } = this.ctx.cfg.timeouts;
        for (const t of this.open) {
            const bytes = t.upstream.bytesRead + t.upstream.bytesWritten;
            if (bytes !== t.lastBytes) {
                t.lastBytes = bytes;
                t.lastActive = now;
            } else if (now - t.lastActive >= idleMs) {
                t.timeout();
                continue;
            }
            if (now - t.openedAt >= totalMs) t.timeout();
        }
    }

    /**
     * Tunnels `client` to `target` through `pool` (admission is done; the caller has counted it in flight), with the
     * crawler's session key passed on in the vendor's spelling. `retries` counts the pools already tried.
     */
    connect(
        pool: PoolState,
        target: Target,
        client: net.Socket,
        head: Buffer,
        destination: string,
        t0: number,
        /** The crawler's session key (sessions.ts), passed on in the pool's username and tracked for exit IPs. */
        session?: string,
        retries = 0,
    ): void {
        const ctx = this.ctx;
        const name = pool.config.name;
        const authorization = ctx.upstreamAuthorization(pool, session);
        const request = `CONNECT ${target.authority} HTTP/1.1\r\nHost: ${target.authority}\r\nProxy-Authorization: ${authorization}\r\n\r\n`;
        const upstream = net.connect({ host: pool.config.host, port: pool.config.port, noDelay: true });
        let connected = false;
        let settled = false;
        const pending: Connecting = {
            deadline: Date.now() + ctx.cfg.timeouts.connectMs,
            expire: () => fail("timeout", "vendor_error"),
        };
        this.connecting.add(pending);
        const settle = () => {
            settled = true;
            this.connecting.delete(pending);
        };
        /**
         * A failure charged to the vendor: counted; a vendor error or lost session is retried once on another pool
         * when the crawler sent nothing yet, else (and for `client`) answered.
         */
        const fail = (reason: FailureReason | undefined, cause: Cause, status?: number, rawHead?: Buffer) => {
            if (settled) return;
            settle();
            upstream.destroy();
            if (reason) ctx.failure(pool, reason);
            ctx.account(pool, cause, target);
            if (client.destroyed) return ctx.end();
            const retryable = cause === "vendor_error" || cause === "session_lost";
            if (retryable && retries === 0 && head.length === 0 && client.readableLength === 0) {
                const other = session === undefined ? ctx.pools.pick(pool) : ctx.pools.pickFor(session, pool);
                if (other && other.pool !== pool) {
                    ctx.metrics.retry(name);
                    ctx.metrics.retryCause(name, cause);
                    return this.connect(other.pool, target, client, head, destination, t0, session, retries + 1);
                }
            }
            const own = relayProxyStatus(cause, reason, rawHead ? status : undefined);
            this.answer(
                client,
                status ?? (reason === "timeout" ? 504 : 502),
                name,
                destination,
                t0,
                own,
                retries,
                rawHead,
            );
        };
        /** The pool's answer to our CONNECT: refused (classified and relayed), or a 2xx that becomes the tunnel. */
        const answered = (answer: ProxyResponseHead) => {
            if (settled) return;
            const status = answer.status;
            // A 2xx to CONNECT is "none" under every profile, whatever it carries: its head is read only otherwise.
            const ok = status >= 200 && status < 300;
            const cause = ok ? "none" : classify(ctx.cfg.profile, "connect", status, marksOfHead(answer));
            // The pool's own error (5xx), a lost session, or its refusal of us (401, 407, 429).
            if (CAUSE_FAULT[cause] === "vendor")
                return fail(
                    status >= 500 && cause === "vendor_error" ? "bad_response" : undefined,
                    cause,
                    status,
                    answer.head,
                );
            settle();
            ctx.account(pool, cause, target);
            if (cause !== "none") {
                upstream.destroy();
                const own = relayProxyStatus(cause, undefined, status);
                return this.answer(client, status, name, destination, t0, own, retries, answer.head);
            }
            if (client.destroyed) {
                upstream.destroy();
                return ctx.end();
            }
            const exitIp = ctx.exitIps.readsHeader ? headerOf(answer.head, ctx.cfg.exitIp.header) : undefined;
            if (exitIp !== undefined) ctx.exitIps.learn(name, exitIp, session);
            const kept =
                exitIp !== undefined && !ctx.cfg.exitIp.stripHeader ? `${ctx.cfg.exitIp.header}: ${exitIp}\r\n` : "";
            client.write(`HTTP/1.1 200 Connection Established\r\n${kept}${this.served(name, retries)}\r\n`);
            ctx.metrics.request(name, destination, 200, "CONNECT", performance.now() - t0);
            if (head.length > 0) upstream.write(head);
            if (answer.rest.length > 0) client.write(answer.rest);
            tunnel = this.pipe(client, upstream, name, destination, Buffer.byteLength(request), answer.headBytes, t0);
        };
        // One error listener for the socket's whole life: a failure to charge before the tunnel opens, a close after.
        let tunnel: (() => void) | undefined;
        upstream.on("error", (e: NodeJS.ErrnoException) => {
            if (tunnel) return tunnel();
            fail(!connected ? "connect_error" : e.code === "ECONNRESET" ? "reset" : "bad_response", "vendor_error");
        });
        upstream.once("connect", () => {
            connected = true;
            upstream.write(request);
            onProxyResponseHead(upstream, ctx.cfg.limits.maxHeaderBytes, answered, (e: Error) => {
                const reason = /closed/.test(e.message) || (e as NodeJS.ErrnoException).code === "ECONNRESET";
                fail(reason ? "reset" : "bad_response", "vendor_error");
            });
        });
    }

    /** The optional X-Proxy-Monitor-Pool/-Retries header lines (responseHeaders), each ending in CRLF. */
    private served(pool: string, retries: number): string {
        return this.ctx.cfg.responseHeaders ? `${POOL_HEADER}: ${pool}\r\n${RETRIES_HEADER}: ${retries}\r\n` : "";
    }

    /**
     * Answers a failure: the pool's status line and its marks (Proxy-Status, the vendor's error headers) when it
     * answered, then the gateway's own Proxy-Status member, and ends the exchange.
     */
    private answer(
        client: net.Socket,
        status: number,
        pool: string,
        destination: string,
        t0: number,
        proxyStatus: string,
        retries: number,
        raw?: Buffer,
    ) {
        const ctx = this.ctx;
        ctx.metrics.request(pool, destination, status, "CONNECT", performance.now() - t0);
        if (!client.destroyed && client.writable) {
            const head = raw ? relayHead(raw, status) : `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n`;
            client.end(
                `${head}Proxy-Status: ${proxyStatus}\r\n${this.served(pool, retries)}Content-Length: 0\r\nConnection: close\r\n\r\n`,
            );
        }
        ctx.sampleLog({ kind: "tunnel", pool, destination, status, ms: Math.round(performance.now() - t0) });
        ctx.end();
    }

    /** Relays the tunnel both ways; returns what closes it (for the upstream's error listener). */
    private pipe(
        client: net.Socket,
        upstream: net.Socket,
        pool: string,
        destination: string,
        requestBytes: number,
        headBytes: number,
        t0: number,
    ): () => void {
        const ctx = this.ctx;
        let timedOut = false;
        const now = Date.now();
        const t: Tunnel = {
            client,
            upstream,
            pool,
            destination,
            requestBytes,
            headBytes,
            countedEgress: 0,
            countedIngress: 0,
            openedAt: now,
            lastActive: now,
            lastBytes: upstream.bytesRead + upstream.bytesWritten,
            timeout: () => {
                timedOut = true;
                client.destroy();
            },
        };
        this.open.add(t);
        client.setNoDelay(true);
        let closed = false;
        const close = () => {
            if (closed) return;
            closed = true;
            client.destroy();
            upstream.destroy();
            this.flush(t);
            this.open.delete(t);
            if (timedOut) ctx.metrics.failure(pool, "body_timeout");
            ctx.end();
            if (ctx.sampling)
                ctx.sampleLog({
                    kind: "tunnel",
                    pool,
                    destination,
                    status: 200,
                    egress: t.countedEgress,
                    ingress: t.countedIngress,
                    ms: Math.round(performance.now() - t0),
                });
        };
        client.on("error", close);
        upstream.on("close", close);
        client.on("close", close);
        relay(client, upstream);
        relay(upstream, client);
        return close;
    }

    private flush(t: Tunnel): void {
        const egress = Math.max(0, t.upstream.bytesWritten - t.requestBytes);
        const ingress = Math.max(0, t.upstream.bytesRead - t.headBytes);
        this.ctx.metrics.bytes(t.pool, t.destination, egress - t.countedEgress, ingress - t.countedIngress);
        t.countedEgress = egress;
        t.countedIngress = ingress;
    }

    /** Flushes the bytes of every open tunnel to the metrics. */
    flushAll(): void {
        for (const t of this.open) this.flush(t);
    }

    /** Cuts every open tunnel (shutdown deadline) and stops the sweep. */
    destroyAll(): void {
        clearInterval(this.sweeper);
        for (const c of [...this.connecting]) c.expire();
        for (const t of [...this.open]) {
            t.client.destroy();
            t.upstream.destroy();
        }
    }
}

/**
 * Relays `from`'s bytes to `to` with backpressure, and its end (a half-close: the other way stays open until its
 * own end), without pipe()'s listeners and bookkeeping, which cost as much as the rest of a short tunnel.
 */
function relay(from: net.Socket, to: net.Socket): void {
    from.on("data", (chunk: Buffer) => {
        if (!to.write(chunk)) from.pause();
    });
    to.on("drain", () => from.resume());
    from.on("end", () => to.end());
    from.resume();
}

/** Headers of a pool's failure relayed to the crawler: the marks the profiles read, and what to retry after. */
const RELAYED = new RegExp(
    `^(proxy-status|x-squid-error|proxy-authenticate|retry-after|${VENDOR_HEADERS.join("|")}):`,
    "i",
);

/** The status line and the classifier-relevant headers of a pool's answer, for the crawler. */
function relayHead(raw: Buffer, status: number): string {
    const text = raw.toString("latin1");
    const line = /^HTTP\/1\.[01] [0-9]{3}[^\r]*/.exec(text)?.[0]?.replace(/^HTTP\/1\.0/, "HTTP/1.1");
    const keep = text
        .split("\r\n")
        .slice(1)
        .filter((h) => RELAYED.test(h));
    return `${line ?? `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}`}\r\n${keep.map((h) => h + "\r\n").join("")}`;
}

/** The value of header `name` (lower case) in a raw response head, or undefined. */
export function headerOf(raw: Buffer, name: string): string | undefined {
    const text = raw.toString("latin1");
    for (const line of text.split("\r\n").slice(1)) {
        const colon = line.indexOf(":");
        if (colon > 0 && line.slice(0, colon).trim().toLowerCase() === name) return line.slice(colon + 1).trim();
    }
    return undefined;
}
