/**
 * CONNECT tunnels: the pool is asked to CONNECT to the checked, canonical authority with the pool's credentials;
 * its answer is classified (classify.ts) and relayed; a 2xx becomes a socket-to-socket tunnel.
 *
 * A vendor fault before the crawler sent any payload is retried once on another available pool. Bytes are read from
 * the upstream socket's own counters (minus the CONNECT exchange) and flushed to the metrics every few seconds, so
 * long tunnels show up while they run.
 */
import * as net from "net";
import { performance } from "perf_hooks";
import { FailureReason, connectFault } from "./classify";
import { GatewayContext, REASONS } from "./context";
import { Target } from "./destinations";
import { PoolState } from "./pools";
import { readProxyResponseHead } from "./upstream";

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

export class Tunnels {
    private readonly open = new Set<Tunnel>();

    constructor(private readonly ctx: GatewayContext) {}

    /**
     * Tunnels `client` to `target` through `pool` (admission is done; the caller has counted it in flight);
     * `retried` on the second pool after a vendor fault.
     */
    connect(
        pool: PoolState,
        target: Target,
        client: net.Socket,
        head: Buffer,
        destination: string,
        t0: number,
        /** The crawler's sticky session (exitIp.sessionPattern), passed on in the pool's username. */
        session?: string,
        retried = false,
    ): void {
        const ctx = this.ctx;
        const name = pool.config.name;
        const authorization = ctx.exitIps.authorization(pool.authorization, session);
        const request = `CONNECT ${target.authority} HTTP/1.1\r\nHost: ${target.authority}\r\nProxy-Authorization: ${authorization}\r\n\r\n`;
        const upstream = net.connect({ host: pool.config.host, port: pool.config.port, noDelay: true });
        let connected = false;
        let settled = false;
        const timer = setTimeout(() => fail("timeout"), ctx.cfg.timeouts.connectMs);
        const settle = () => {
            settled = true;
            clearTimeout(timer);
        };
        /** A vendor fault: counted, retried on another pool when nothing was committed, else answered. */
        const fail = (reason: FailureReason | undefined, status?: number, rawHead?: Buffer) => {
            if (settled) return;
            settle();
            upstream.destroy();
            if (reason) ctx.failure(pool, reason);
            ctx.account(pool, "vendor", target);
            if (client.destroyed) return ctx.end();
            if (!retried && head.length === 0 && client.readableLength === 0) {
                const other = ctx.pools.pick(pool);
                if (other && other.pool !== pool) {
                    ctx.metrics.retry(name);
                    return this.connect(other.pool, target, client, head, destination, t0, session, true);
                }
            }
            this.answer(client, status ?? (reason === "timeout" ? 504 : 502), name, destination, t0, rawHead);
        };
        upstream.on("error", (e: NodeJS.ErrnoException) =>
            fail(!connected ? "connect_error" : e.code === "ECONNRESET" ? "reset" : "bad_response"),
        );
        upstream.once("connect", () => {
            connected = true;
            upstream.write(request);
            readProxyResponseHead(upstream, ctx.cfg.limits.maxHeaderBytes).then(
                (answer) => {
                    if (settled) return;
                    const status = answer.status;
                    const fault = connectFault(status, answer.marks);
                    // The pool's own error (5xx) or refusal of us (401, 407, 429).
                    if (fault === "vendor")
                        return fail(status >= 500 ? "bad_response" : undefined, status, answer.head);
                    settle();
                    ctx.account(pool, fault, target);
                    if (fault !== "none") {
                        upstream.destroy();
                        return this.answer(client, status, name, destination, t0, answer.head);
                    }
                    if (client.destroyed) {
                        upstream.destroy();
                        return ctx.end();
                    }
                    const exitIp = ctx.exitIps.readsHeader ? headerOf(answer.head, ctx.cfg.exitIp.header) : undefined;
                    if (exitIp !== undefined) ctx.exitIps.learn(name, exitIp, session);
                    const kept =
                        exitIp !== undefined && !ctx.cfg.exitIp.stripHeader
                            ? `${ctx.cfg.exitIp.header}: ${exitIp}\r\n`
                            : "";
                    client.write(`HTTP/1.1 200 Connection Established\r\n${kept}\r\n`);
                    ctx.metrics.request(name, destination, 200, "CONNECT", performance.now() - t0);
                    if (head.length > 0) upstream.write(head);
                    if (answer.rest.length > 0) client.write(answer.rest);
                    this.pipe(client, upstream, name, destination, Buffer.byteLength(request), answer.headBytes, t0);
                },
                (e: Error) => {
                    const reason = /closed/.test(e.message) || (e as NodeJS.ErrnoException).code === "ECONNRESET";
                    fail(reason ? "reset" : "bad_response");
                },
            );
        });
    }

    /** Relays a pool's non-2xx answer (its status line and headers, without a body) and ends the exchange. */
    private answer(client: net.Socket, status: number, pool: string, destination: string, t0: number, raw?: Buffer) {
        const ctx = this.ctx;
        ctx.metrics.request(pool, destination, status, "CONNECT", performance.now() - t0);
        if (!client.destroyed && client.writable) {
            // The pool's own reason phrase and marks (Proxy-Status, X-Squid-Error) tell the crawler what happened.
            const head = raw ? relayHead(raw, status) : `HTTP/1.1 ${status} ${REASONS[status] ?? "Error"}\r\n`;
            client.end(`${head}Content-Length: 0\r\nConnection: close\r\n\r\n`);
        }
        ctx.sampleLog({ kind: "tunnel", pool, destination, status, ms: Math.round(performance.now() - t0) });
        ctx.end();
    }

    private pipe(
        client: net.Socket,
        upstream: net.Socket,
        pool: string,
        destination: string,
        requestBytes: number,
        headBytes: number,
        t0: number,
    ): void {
        const ctx = this.ctx;
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
        this.open.add(t);
        client.setNoDelay(true);
        let timedOut = false;
        const timeout = () => {
            timedOut = true;
            client.destroy();
        };
        client.setTimeout(ctx.cfg.timeouts.idleMs, timeout);
        const total = setTimeout(timeout, ctx.cfg.timeouts.totalMs);
        let closed = false;
        const close = () => {
            if (closed) return;
            closed = true;
            clearTimeout(total);
            client.destroy();
            upstream.destroy();
            this.flush(t);
            this.open.delete(t);
            if (timedOut) ctx.metrics.failure(pool, "body_timeout");
            ctx.end();
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
        upstream.removeAllListeners("error");
        upstream.on("error", close);
        client.on("error", close);
        upstream.on("close", close);
        client.on("close", close);
        client.pipe(upstream);
        upstream.pipe(client);
        upstream.resume();
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

    /** Cuts every open tunnel (shutdown deadline). */
    destroyAll(): void {
        for (const t of [...this.open]) {
            t.client.destroy();
            t.upstream.destroy();
        }
    }
}

/** The status line and the classifier-relevant headers of a pool's answer, for the crawler. */
function relayHead(raw: Buffer, status: number): string {
    const text = raw.toString("latin1");
    const line = /^HTTP\/1\.[01] [0-9]{3}[^\r]*/.exec(text)?.[0]?.replace(/^HTTP\/1\.0/, "HTTP/1.1");
    const keep = text
        .split("\r\n")
        .slice(1)
        .filter((h) => /^(proxy-status|x-squid-error|proxy-authenticate|retry-after):/i.test(h));
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
