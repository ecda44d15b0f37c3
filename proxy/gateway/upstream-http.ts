/**
 * The gateway's plain-HTTP hop to a pool: kept-alive connections per pool, one request at a time on each, the
 * request head written as one string and the answer read by the HTTP/1.1 reader the generator also uses
 * (common/http1-reader.ts), relaying its head and body here. It replaces an undici Pool: the same handler calls
 * (onConnect with an abort, onHeaders with a resume, onData, onComplete, onError, onBodySent), at a little less CPU
 * per exchange than undici (0.96 against 1.02 s per 10,000 measured) and without undici's memory (about 8 MB, and a
 * peak while its WebAssembly parser compiled).
 *
 * What it writes: `METHOD path HTTP/1.1`, the headers given (already end-to-end, with Host and the pool's
 * credentials), `connection: keep-alive` (or `close` on a fresh connection of its own), and for a body without a
 * length `transfer-encoding: chunked` with the body framed as it streams; a POST, PUT or PATCH without a body says
 * `content-length: 0`. Header names and values with bytes HTTP forbids (CR, LF, NUL, other controls) are refused
 * (code UND_ERR_INVALID_ARG) before anything is sent.
 *
 * Errors: a connection that fails before it connects gives the socket's error (ECONNREFUSED...) and no onConnect; one
 * that closes or fails afterwards, before the answer is complete, gives its error or `other side closed`
 * (UND_ERR_SOCKET), marked with the bytes the connection had read before this request (READ_BEFORE: above 0, it was
 * a reused connection that the pool dropped meanwhile). Timeouts are the caller's (forward.ts's sweep aborts), but for
 * a connection that does not connect at all, given up after `connectTimeoutMs`.
 */
import * as http from "http";
import * as net from "net";
import { ResponseReader, ResponseSink, undiciError } from "../common/http1-reader";

/** Bytes a pool connection had read before the request that failed on it: above 0, a reused connection. */
export const READ_BEFORE = Symbol("bytes read before the request");
export type UpstreamError = Error & { [READ_BEFORE]?: number; code?: string };

export interface UpstreamRequest {
    readonly method: string;
    /** Absolute-form target (a proxy request). */
    readonly path: string;
    /** Flat list of names and values, written as given. */
    readonly headers: readonly string[];
    /** The crawler's request, streamed as the body; null for none. */
    readonly body: http.IncomingMessage | null;
    /** On a connection of its own, closed after the answer (a retry after a stale kept-alive one). */
    readonly fresh: boolean;
}

export interface UpstreamHandler {
    /** The request is being written; `abort` ends it (the connection is closed) with onError(err). */
    onConnect(abort: (err?: Error) => void): void;
    onBodySent(chunk: Buffer): void;
    /** The answer's head; false pauses the answer until `resume` (not to be called after the exchange ended). */
    onHeaders(status: number, rawHeaders: string[], resume: () => void, statusText: string): boolean;
    /** Answer body bytes (owned by the callee); false pauses until the head's `resume`. */
    onData(chunk: Buffer): boolean;
    onComplete(): void;
    onError(err: UpstreamError): void;
}

/** Header names and values: no CR, LF, NUL or other control bytes but tab (what undici refuses to send too). */
// eslint-disable-next-line no-control-regex -- the control bytes are what it looks for
const FORBIDDEN = /[\x00-\x08\x0a-\x1f\x7f]/;
const WITH_PAYLOAD = new Set(["POST", "PUT", "PATCH"]);

/**
 * The request head and whether its body goes chunked (a body without a Content-Length), or undefined when a header
 * cannot be sent.
 */
function requestHead(req: UpstreamRequest): { head: string; chunked: boolean } | undefined {
    let head = `${req.method} ${req.path} HTTP/1.1\r\n`;
    let length = false;
    const h = req.headers;
    for (let i = 0; i < h.length; i += 2) {
        const name = h[i];
        const value = h[i + 1];
        if (FORBIDDEN.test(name) || FORBIDDEN.test(value) || name.length === 0) return undefined;
        if (name.length === 14 && name.toLowerCase() === "content-length") {
            // Two lengths are a message no one can frame (undici refuses it too).
            if (length) return undefined;
            length = true;
        }
        head += `${name}: ${value}\r\n`;
    }
    const chunked = req.body !== null && !length;
    if (chunked) head += "transfer-encoding: chunked\r\n";
    else if (!req.body && !length && WITH_PAYLOAD.has(req.method)) head += "content-length: 0\r\n";
    return { head: head + (req.fresh ? "connection: close\r\n\r\n" : "connection: keep-alive\r\n\r\n"), chunked };
}

/** One connection to the pool: the exchange it carries, if any, and how its answer is read. */
class Link implements ResponseSink {
    readonly reader = new ResponseReader();
    /** The exchange being carried (from onConnect to its end). */
    handler?: UpstreamHandler;
    /** An exchange waiting for this connection to connect. */
    waiting?: { req: UpstreamRequest; handler: UpstreamHandler };
    connected = false;
    closed = false;
    error?: Error;
    /** socket.bytesRead when the current exchange started. */
    readBefore = 0;
    /** Wall-clock ms after which the idle connection is closed, or the connecting one given up. */
    idleUntil = 0;
    /** The exchange's answer is paused (the crawler's socket is full). */
    paused = false;
    /** What to undo on the crawler's request body when the exchange ends early. */
    detachBody?: () => void;
    /** The whole request body was written (a connection with a body cut short cannot carry another request). */
    bodySent = true;
    /** Resumes a paused answer (one function per connection: the handler must not call it once it has ended). */
    readonly resume = (): void => {
        if (this.paused && this.handler) {
            this.paused = false;
            this.socket.resume();
        }
    };

    constructor(
        readonly socket: net.Socket,
        readonly fresh: boolean,
    ) {
        this.reader.sink = this;
    }

    head(status: number, reason: string, raw: string[]): void {
        const h = this.handler;
        if (h && !h.onHeaders(status, raw, this.resume, reason) && this.handler === h) this.paused = true;
    }

    body(b: Buffer, s: number, e: number): void {
        const h = this.handler;
        if (h && e > s && !h.onData(b.subarray(s, e)) && this.handler === h) this.paused = true;
    }
}

/** Kept-alive connections to one pool's proxy (host, port). */
export class UpstreamConnections {
    private readonly links = new Set<Link>();
    private readonly idle: Link[] = [];
    private readonly queue: { req: UpstreamRequest; handler: UpstreamHandler }[] = [];
    private destroyed = false;

    constructor(
        readonly host: string,
        readonly port: number,
        private readonly opts: {
            /** Connections at most; requests beyond them wait. */
            readonly connections: number;
            /** How long an idle connection is kept when the pool gives no Keep-Alive hint, ms. */
            readonly keepAliveMs: number;
            /**
             * How long a connection may take to connect, ms: past it, it is closed (code UND_ERR_CONNECT_TIMEOUT), so
             * that a pool that drops SYNs does not hold connections and queue requests until the kernel gives up.
             */
            readonly connectTimeoutMs: number;
        },
    ) {}

    dispatch(req: UpstreamRequest, handler: UpstreamHandler): void {
        if (this.destroyed) return handler.onError(undiciError("UND_ERR_DESTROYED", "The client is destroyed"));
        if (req.fresh) return this.connect(true, req, handler);
        const link = this.idle.pop();
        if (link) return this.start(link, req, handler);
        if (this.links.size < this.opts.connections) return this.connect(false, req, handler);
        this.queue.push({ req, handler });
    }

    /** Closes idle connections past their keep-alive time and connections still connecting past the timeout. */
    sweep(now: number): void {
        for (let i = this.idle.length - 1; i >= 0; i--)
            if (now >= this.idle[i].idleUntil) this.idle[i].socket.destroy();
        for (const l of this.links)
            if (!l.connected && now >= l.idleUntil) {
                l.error ??= undiciError("UND_ERR_CONNECT_TIMEOUT", "Connect Timeout Error");
                l.socket.destroy();
            }
    }

    /** Closes every connection; what is waiting or carried ends with an error. */
    destroy(): void {
        this.destroyed = true;
        for (const w of this.queue.splice(0))
            w.handler.onError(undiciError("UND_ERR_DESTROYED", "The client is destroyed"));
        for (const l of [...this.links]) l.socket.destroy();
    }

    private connect(fresh: boolean, req: UpstreamRequest, handler: UpstreamHandler): void {
        const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
        const link = new Link(socket, fresh);
        link.waiting = { req, handler };
        link.idleUntil = Date.now() + this.opts.connectTimeoutMs;
        this.links.add(link);
        socket.once("connect", () => {
            link.connected = true;
            const w = link.waiting;
            link.waiting = undefined;
            if (w) this.start(link, w.req, w.handler);
        });
        socket.on("data", (chunk: Buffer) => this.onData(link, chunk));
        socket.on("error", (err: Error) => (link.error ??= err));
        socket.on("end", () => this.onEnd(link));
        socket.on("close", () => this.onClose(link));
    }

    /** Writes `req` on the connected `link` and streams its body. */
    private start(link: Link, req: UpstreamRequest, handler: UpstreamHandler): void {
        const body = req.body;
        const out = requestHead(req);
        if (out === undefined) {
            this.release(link);
            return handler.onError(undiciError("UND_ERR_INVALID_ARG", "invalid request header"));
        }
        link.handler = handler;
        link.readBefore = link.socket.bytesRead;
        link.paused = false;
        link.reader.reset(req.method === "HEAD");
        let written = false;
        const abort = (err?: Error) => {
            if (link.handler !== handler) return;
            this.end(link);
            // Nothing written yet (an attempt that ended while it waited): the connection is still clean.
            if (written) link.socket.destroy();
            else {
                link.idleUntil = Date.now() + this.opts.keepAliveMs;
                this.release(link);
            }
            handler.onError(err ?? new Error("aborted"));
        };
        link.bodySent = body === null;
        handler.onConnect(abort);
        // Aborted in onConnect (the attempt had ended meanwhile): nothing more to write.
        if (link.handler !== handler) return;
        written = true;
        link.socket.write(out.head, "latin1");
        if (body) this.stream(link, handler, body, out.chunked);
    }

    /** Streams the crawler's request body on `link`, chunked when it has no length, with backpressure both ways. */
    private stream(link: Link, handler: UpstreamHandler, body: http.IncomingMessage, chunked: boolean): void {
        const socket = link.socket;
        const resume = () => body.resume();
        const onData = (chunk: Buffer) => {
            if (link.handler !== handler) return;
            let ok: boolean;
            if (chunked) {
                socket.cork();
                socket.write(`${chunk.length.toString(16)}\r\n`, "latin1");
                socket.write(chunk);
                ok = socket.write("\r\n", "latin1");
                socket.uncork();
            } else ok = socket.write(chunk);
            handler.onBodySent(chunk);
            if (!ok && link.handler === handler) body.pause();
        };
        const onEnd = () => {
            if (link.handler === handler) {
                if (chunked) socket.write("0\r\n\r\n", "latin1");
                link.bodySent = true;
            }
            detach();
        };
        const detach = () => {
            body.off("data", onData);
            body.off("end", onEnd);
            socket.off("drain", resume);
            link.detachBody = undefined;
        };
        link.detachBody = detach;
        body.on("data", onData);
        body.on("end", onEnd);
        socket.on("drain", resume);
        body.resume();
    }

    private onData(link: Link, chunk: Buffer): void {
        const handler = link.handler;
        if (!handler) {
            // Bytes nothing asked for: the connection cannot be trusted any more.
            link.socket.destroy();
            return;
        }
        let left: number;
        try {
            left = link.reader.feed(chunk, 0, chunk.length);
        } catch (e) {
            this.end(link);
            link.socket.destroy();
            return handler.onError(e as Error);
        }
        if (link.handler !== handler) return;
        if (left >= 0) return this.complete(link, left === 0 && link.reader.keepAlive && link.bodySent && !link.fresh);
        if (link.paused) link.socket.pause();
    }

    private onEnd(link: Link): void {
        if (link.handler && link.reader.eof()) this.complete(link, false);
        else link.socket.destroy();
    }

    private onClose(link: Link): void {
        link.closed = true;
        this.links.delete(link);
        const i = this.idle.indexOf(link);
        if (i >= 0) this.idle.splice(i, 1);
        const w = link.waiting;
        link.waiting = undefined;
        // Never connected: the socket's own error (ECONNREFUSED...), before any onConnect.
        if (w) w.handler.onError(link.error ?? undiciError("UND_ERR_SOCKET", "other side closed"));
        const handler = link.handler;
        if (handler) {
            this.end(link);
            const err: UpstreamError = link.error ?? undiciError("UND_ERR_SOCKET", "other side closed");
            err[READ_BEFORE] = link.readBefore;
            handler.onError(err);
        }
        // A place is free: the next waiting request gets a connection.
        const q = this.queue.shift();
        if (q) this.dispatch(q.req, q.handler);
    }

    /** The answer is complete: the connection goes back to the idle ones (or is closed), then the handler hears. */
    private complete(link: Link, reuse: boolean): void {
        const handler = link.handler as UpstreamHandler;
        this.end(link);
        if (reuse) {
            const hint = link.reader.keepAliveMs;
            const keepMs = hint >= 0 ? Math.min(hint - 2000, 600_000) : this.opts.keepAliveMs;
            if (keepMs > 0) {
                link.idleUntil = Date.now() + keepMs;
                this.release(link);
            } else link.socket.destroy();
        } else link.socket.destroy();
        handler.onComplete();
    }

    /** Ends the exchange on `link` (its body stream detached, its answer no longer paused). */
    private end(link: Link): void {
        link.handler = undefined;
        link.detachBody?.();
        if (link.paused) {
            link.paused = false;
            link.socket.resume();
        }
    }

    /** `link` is free: to the next waiting request, or idle. */
    private release(link: Link): void {
        if (link.closed) return;
        if (link.fresh) {
            link.socket.destroy();
            return;
        }
        const q = this.queue.shift();
        if (q) this.start(link, q.req, q.handler);
        else this.idle.push(link);
    }
}
