/**
 * The generator's fast path for plain HTTP: prepared request bytes written to raw `net` sockets kept alive, one
 * request at a time per connection, read by the shared response reader (proxy/common/http1-reader.ts), which counts
 * and drops the body. HTTPS (CONNECT tunnels, TLS, HTTP/2) stays on undici.
 */
import * as net from "net";
import { ResponseReader, undiciError } from "../common/http1-reader";

/** Called once per request: an error (as undici raises it), or the status, refusal header and body bytes. */
export type Http1Callback = (
    err: (Error & { code?: string }) | undefined,
    status: number,
    refused: boolean,
    bytes: number,
) => void;

export interface Http1Options {
    /** Connections per pool at most (undici's `connections`); requests beyond them wait for one. */
    readonly connections: number;
    /** Headers timeout (from the request written) and body timeout (between body reads), ms: undici's two. */
    readonly timeoutMs: number;
    /** How long an idle connection is kept without a server hint, ms (undici's keepAliveTimeout). */
    readonly keepAliveMs: number;
    /** undici's defaults: 10 s to connect, and 2 s less than the server's Keep-Alive hint. */
    readonly connectTimeoutMs?: number;
    readonly keepAliveThresholdMs?: number;
}

/** A kept-alive connection carrying one request at a time. */
class Conn {
    readonly reader = new ResponseReader();
    cb?: Http1Callback;
    /** Coarse-clock time at which the current wait (connect, head or next body bytes) times out. */
    deadline = 0;
    timeoutCode = "UND_ERR_CONNECT_TIMEOUT";
    /** Coarse-clock time after which an idle connection is closed. */
    idleUntil = 0;
    connected = false;
    closed = false;
    error?: Error;

    constructor(
        readonly pool: Http1Pool,
        readonly socket: net.Socket,
    ) {}
}

/**
 * Connections to one host and port (the destination when direct, the proxy otherwise). A finished response frees
 * its connection for the next request, unless the server closes it or asked to (Connection: close, HTTP/1.0); idle
 * connections close after the server's Keep-Alive hint less 2 s, or keepAliveMs. A request written on a connection
 * the server closes before answering fails with undici's "other side closed": the generator retries it as it does
 * undici's.
 */
export class Http1Pool {
    readonly conns = new Set<Conn>();
    private readonly idle: Conn[] = [];
    private readonly waiting: { bytes: Buffer; head: boolean; cb: Http1Callback }[] = [];

    constructor(
        readonly agent: Http1Agent,
        readonly host: string,
        readonly port: number,
    ) {}

    /** Sends the prepared request bytes (a HEAD request when `head`) and calls back once with its response. */
    request(bytes: Buffer, head: boolean, cb: Http1Callback): void {
        if (this.agent.closed) {
            cb(undiciError("UND_ERR_DESTROYED", "The client is destroyed"), 0, false, 0);
            return;
        }
        const c = this.idle.pop() ?? (this.conns.size < this.agent.opts.connections ? this.connect() : undefined);
        if (c) this.send(c, bytes, head, cb);
        else this.waiting.push({ bytes, head, cb });
    }

    private send(c: Conn, bytes: Buffer, head: boolean, cb: Http1Callback): void {
        c.cb = cb;
        c.reader.reset(head);
        if (c.connected) {
            c.timeoutCode = "UND_ERR_HEADERS_TIMEOUT";
            c.deadline = this.agent.after(this.agent.opts.timeoutMs);
        }
        c.socket.write(bytes);
    }

    private connect(): Conn {
        const agent = this.agent;
        const socket: net.Socket = net.connect({
            host: this.host,
            port: this.port,
            noDelay: true,
            keepAlive: true,
            keepAliveInitialDelay: 60_000,
            onread: {
                buffer: agent.readBuffer,
                callback: (n: number, buf: Uint8Array): boolean => this.onRead(c, buf as Buffer, n),
            },
        });
        const c: Conn = new Conn(this, socket);
        c.deadline = agent.after(agent.opts.connectTimeoutMs ?? 10_000);
        this.conns.add(c);
        socket.once("connect", () => {
            c.connected = true;
            if (c.cb) {
                c.timeoutCode = "UND_ERR_HEADERS_TIMEOUT";
                c.deadline = agent.after(agent.opts.timeoutMs);
            }
        });
        socket.on("error", (err: Error) => (c.error ??= err));
        socket.on("end", () => this.onEnd(c));
        socket.on("close", () => this.onClose(c));
        return c;
    }

    /** Bytes read into the agent's buffer: counted now (the buffer is reused for the next read). */
    private onRead(c: Conn, buf: Buffer, n: number): boolean {
        if (!c.cb) {
            // Bytes on an idle connection answer nothing we sent: the connection cannot be trusted any more.
            this.destroy(c);
            return false;
        }
        let left: number;
        try {
            left = c.reader.feed(buf, 0, n);
        } catch (e) {
            this.fail(c, e as Error);
            return false;
        }
        if (left < 0) {
            if (c.reader.headDone) {
                c.timeoutCode = "UND_ERR_BODY_TIMEOUT";
                c.deadline = this.agent.after(this.agent.opts.timeoutMs);
            }
        } else this.complete(c, left === 0 && c.reader.keepAlive);
        return true;
    }

    private onEnd(c: Conn): void {
        if (c.cb && c.reader.eof()) this.complete(c, false);
        else this.destroy(c);
    }

    private onClose(c: Conn): void {
        c.closed = true;
        this.conns.delete(c);
        const i = this.idle.indexOf(c);
        if (i >= 0) this.idle.splice(i, 1);
        if (c.cb) {
            this.finish(c, c.error ?? undiciError("UND_ERR_SOCKET", "other side closed"));
        }
        // A place is free: a waiting request gets a new connection.
        const w = this.waiting.shift();
        if (w) this.request(w.bytes, w.head, w.cb);
    }

    /** The response is complete: frees the connection (or closes it), then calls back. */
    private complete(c: Conn, reuse: boolean): void {
        const cb = c.cb as Http1Callback;
        const r = c.reader;
        // Read before the connection goes to a waiting request (which resets the reader).
        const { status, refused, bytes } = r;
        c.cb = undefined;
        if (reuse) {
            const threshold = this.agent.opts.keepAliveThresholdMs ?? 2000;
            const keepMs =
                r.keepAliveMs >= 0 ? Math.min(r.keepAliveMs - threshold, 600_000) : this.agent.opts.keepAliveMs;
            if (keepMs <= 0) this.destroy(c);
            else {
                c.idleUntil = this.agent.now + keepMs;
                c.deadline = 0;
                const w = this.waiting.shift();
                if (w) this.send(c, w.bytes, w.head, w.cb);
                else this.idle.push(c);
            }
        } else this.destroy(c);
        cb(undefined, status, refused, bytes);
    }

    private fail(c: Conn, err: Error): void {
        this.finish(c, err);
        this.destroy(c);
    }

    private finish(c: Conn, err: Error): void {
        const cb = c.cb;
        c.cb = undefined;
        cb?.(err, 0, false, 0);
    }

    private destroy(c: Conn): void {
        if (!c.closed) c.socket.destroy();
    }

    /** Called by the agent's sweep: times out waits, closes connections idle too long. */
    sweep(now: number): void {
        for (const c of this.conns) {
            if (c.cb && c.deadline > 0 && now >= c.deadline) {
                const code = c.timeoutCode;
                const message =
                    code === "UND_ERR_CONNECT_TIMEOUT"
                        ? "Connect Timeout Error"
                        : code === "UND_ERR_HEADERS_TIMEOUT"
                          ? "Headers Timeout Error"
                          : "Body Timeout Error";
                this.fail(c, undiciError(code, message));
            } else if (!c.cb && now >= c.idleUntil) this.destroy(c);
        }
    }

    close(): void {
        for (const w of this.waiting.splice(0))
            w.cb(undiciError("UND_ERR_DESTROYED", "The client is destroyed"), 0, false, 0);
        for (const c of this.conns) this.destroy(c);
    }
}

/**
 * The pools of one generator, one read buffer for all of them (bytes are counted as they are read, never kept) and
 * one coarse clock swept on an interval for every timeout (no timer per request).
 */
export class Http1Agent {
    readonly readBuffer = Buffer.allocUnsafe(64 * 1024);
    private readonly pools = new Map<string, Http1Pool>();
    private readonly sweeper: NodeJS.Timeout;
    /** performance.now() as of the last sweep (at most one tick old). */
    now = performance.now();
    private readonly tick: number;
    closed = false;

    constructor(readonly opts: Http1Options) {
        const tick = (this.tick = Math.max(5, Math.min(250, opts.timeoutMs / 4)));
        this.sweeper = setInterval(() => {
            this.now = performance.now();
            for (const p of this.pools.values()) p.sweep(this.now);
        }, tick);
        this.sweeper.unref();
    }

    /**
     * The coarse-clock deadline `ms` from now: one tick later than `now + ms`, as `now` may be a tick old, so that a
     * timeout never fires early (it fires up to two ticks late, like undici's own coarse timers).
     */
    after(ms: number): number {
        return this.now + ms + this.tick;
    }

    pool(host: string, port: number): Http1Pool {
        const key = `${host}:${port}`;
        let p = this.pools.get(key);
        if (!p) this.pools.set(key, (p = new Http1Pool(this, host, port)));
        return p;
    }

    /** Fails waiting requests and closes every connection; resolves when they are closed (at most 2 s). */
    async close(): Promise<void> {
        this.closed = true;
        clearInterval(this.sweeper);
        const conns: Conn[] = [];
        for (const p of this.pools.values()) {
            conns.push(...p.conns);
            p.close();
        }
        await Promise.race([
            Promise.all(conns.map((c) => (c.closed ? undefined : new Promise((r) => c.socket.once("close", r))))),
            new Promise((r) => setTimeout(r, 2000).unref()),
        ]);
    }
}
