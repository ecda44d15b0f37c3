/**
 * The generator's fast path for plain HTTP: prepared request bytes written to raw `net` sockets kept alive, one
 * request at a time per connection, and a minimal response reader that counts and drops the body. What it reads:
 * the status line, Content-Length, Transfer-Encoding (chunked, with extensions and trailers), Connection and
 * Keep-Alive, and the gateway's refusal header; bodies by length, chunked or to the end of the connection; no body
 * after HEAD, 204 and 304; 1xx heads skipped. Errors are those undici raises for the same events (codes and
 * messages), so the generator classifies both paths alike. HTTPS (CONNECT tunnels, TLS, HTTP/2) stays on undici.
 */
import * as net from "net";
import { REFUSAL_HEADER } from "../../catalog/gateway";

/** Longest response head (status line and headers) and trailer section accepted: undici's default, 16 KiB. */
const MAX_HEAD = 16 * 1024;
/** Longest chunk-size line (hex digits and extensions). */
const MAX_CHUNK_LINE = 4096;
const CR = 13;
const LF = 10;
const HEAD_END = Buffer.from("\r\n\r\n", "latin1");

/** A response that is not HTTP/1.x as we read it (undici's parser raises HTTPParserError). */
export class ResponseParseError extends Error {
    readonly code = "HPE_INVALID_RESPONSE";
    constructor(reason: string) {
        super(`Parse Error: ${reason}`);
    }
}

/** undici's error for the same event: code and message are what the generator classifies by. */
export function undiciError(code: string, message: string): Error & { code: string } {
    return Object.assign(new Error(message), { code });
}

const enum State {
    Head,
    Length,
    ChunkSize,
    ChunkExt,
    ChunkSizeLf,
    ChunkData,
    ChunkDataCr,
    ChunkDataLf,
    Trailer,
    Close,
    Done,
}

const lower = (b: Buffer, s: number, e: number) => b.toString("latin1", s, e).toLowerCase();

/** Where a reader that relays (the gateway's) sends what it reads; the generator's reader has none and only counts. */
export interface ResponseSink {
    /** The final head (1xx heads are skipped): status, reason phrase, header names and values as sent, trimmed. */
    head(status: number, reason: string, raw: string[]): void;
    /** Body bytes b[s, e): the data, without chunked framing. */
    body(b: Buffer, s: number, e: number): void;
}

/**
 * Reads one HTTP/1.x response at a time from bytes as they arrive, however they are split. `feed` returns how
 * many of the bytes given follow the response when it completes (0 normally), or -1 when it needs more bytes; `eof` tells whether the end of
 * the connection completes it (a close-delimited body). Throws ResponseParseError on a malformed response.
 */
export class ResponseReader {
    status = 0;
    refused = false;
    /** Body bytes (chunked: the data, without the framing). */
    bytes = 0;
    /** Whether the connection may carry the next request after this response. */
    keepAlive = true;
    /** The server's Keep-Alive timeout hint in ms (-1: none). */
    keepAliveMs = -1;
    /** Whether the response head has arrived (the body timeout applies from then on). */
    headDone = false;
    private state = State.Head;
    private head = false;
    private carry?: Buffer;
    private remaining = 0;
    private lineLength = 0;
    private digits = 0;
    /** Set by a relaying reader: receives the head and the body bytes. */
    sink?: ResponseSink;

    /** Prepares for the response to the next request (`head`: a HEAD request, whose response has no body). */
    reset(head = false): void {
        this.status = 0;
        this.refused = false;
        this.bytes = 0;
        this.keepAlive = true;
        this.keepAliveMs = -1;
        this.headDone = false;
        this.state = State.Head;
        this.head = head;
        this.carry = undefined;
        this.remaining = 0;
    }

    get done(): boolean {
        return this.state === State.Done;
    }

    feed(chunk: Buffer, start: number, end: number): number {
        let b = chunk;
        let i = start;
        let e = end;
        // Bounded: every pass consumes at least one byte or returns.
        while (i < e) {
            switch (this.state) {
                case State.Head: {
                    if (this.carry) {
                        const from = Math.max(0, this.carry.length - 3);
                        b = Buffer.concat([this.carry, b.subarray(i, e)]);
                        i = 0;
                        e = b.length;
                        this.carry = undefined;
                        const at = b.indexOf(HEAD_END, from);
                        if (at < 0) return this.keep(b, 0, e);
                        this.parseHead(b, 0, at + 2);
                        i = at + 4;
                    } else {
                        // (b may be a reused read buffer: search only the bytes given.)
                        const at = e === b.length ? b.indexOf(HEAD_END, i) : b.subarray(0, e).indexOf(HEAD_END, i);
                        if (at < 0) return this.keep(b, i, e);
                        this.parseHead(b, i, at + 2);
                        i = at + 4;
                    }
                    break;
                }
                case State.Length: {
                    const n = Math.min(this.remaining, e - i);
                    this.sink?.body(b, i, i + n);
                    this.bytes += n;
                    this.remaining -= n;
                    i += n;
                    if (this.remaining === 0) this.state = State.Done;
                    break;
                }
                case State.Close:
                    this.sink?.body(b, i, e);
                    this.bytes += e - i;
                    return -1;
                case State.ChunkData: {
                    const n = Math.min(this.remaining, e - i);
                    this.sink?.body(b, i, i + n);
                    this.bytes += n;
                    this.remaining -= n;
                    i += n;
                    if (this.remaining === 0) this.state = State.ChunkDataCr;
                    break;
                }
                case State.Done:
                    return e - i;
                default:
                    i = this.framing(b, i, e);
            }
            if (this.state === State.Done) return e - i;
        }
        return this.state === State.Done ? 0 : -1;
    }

    /** Whether the connection's end completes the response (it does only for a close-delimited body). */
    eof(): boolean {
        if (this.state === State.Close) {
            this.state = State.Done;
            this.keepAlive = false;
        }
        return this.state === State.Done;
    }

    private keep(b: Buffer, s: number, e: number): number {
        if (e - s > MAX_HEAD) throw new ResponseParseError("response head larger than 16 KiB");
        this.carry = Buffer.from(b.subarray(s, e));
        return -1;
    }

    /** Chunked framing, byte by byte: size line, extensions, CRLFs after data, trailer section. */
    private framing(b: Buffer, i: number, e: number): number {
        for (; i < e; i++) {
            const c = b[i];
            switch (this.state) {
                case State.ChunkSize: {
                    const v =
                        c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
                    if (v >= 0) {
                        if (++this.digits > 12) throw new ResponseParseError("chunk size too large");
                        this.remaining = this.remaining * 16 + v;
                    } else if (this.digits === 0) throw new ResponseParseError("invalid chunk size");
                    else if (c === CR) this.state = State.ChunkSizeLf;
                    else if (c === 59 || c === 32 || c === 9) {
                        this.state = State.ChunkExt;
                        this.lineLength = 0;
                    } else throw new ResponseParseError("invalid chunk size");
                    break;
                }
                case State.ChunkExt:
                    if (c === CR) this.state = State.ChunkSizeLf;
                    else if (++this.lineLength > MAX_CHUNK_LINE)
                        throw new ResponseParseError("chunk extension too long");
                    break;
                case State.ChunkSizeLf:
                    if (c !== LF) throw new ResponseParseError("expected LF after chunk size");
                    if (this.remaining === 0) {
                        this.state = State.Trailer;
                        this.lineLength = 0;
                        this.digits = 0;
                    } else {
                        this.state = State.ChunkData;
                        return i + 1;
                    }
                    break;
                case State.ChunkDataCr:
                    if (c !== CR) throw new ResponseParseError("expected CRLF after chunk data");
                    this.state = State.ChunkDataLf;
                    break;
                case State.ChunkDataLf:
                    if (c !== LF) throw new ResponseParseError("expected CRLF after chunk data");
                    this.startChunk();
                    break;
                case State.Trailer:
                    // lineLength counts the current trailer line; digits counts the whole section (bounded).
                    if (++this.digits > MAX_HEAD) throw new ResponseParseError("trailers larger than 16 KiB");
                    if (c === LF) {
                        if (this.lineLength === 0) {
                            this.state = State.Done;
                            return i + 1;
                        }
                        this.lineLength = 0;
                    } else if (c !== CR) this.lineLength++;
                    break;
                default:
                    return i;
            }
        }
        return i;
    }

    private startChunk(): void {
        this.state = State.ChunkSize;
        this.remaining = 0;
        this.digits = 0;
    }

    /** Parses the head in b[s, e) (e just past the last header line's CRLF) and sets the body's framing. */
    private parseHead(b: Buffer, s: number, e: number): void {
        // "HTTP/1.x SSS" then a reason phrase or nothing.
        if (
            e - s < 14 ||
            b.toString("latin1", s, s + 7) !== "HTTP/1." ||
            (b[s + 7] !== 49 && b[s + 7] !== 48) ||
            b[s + 8] !== 32
        )
            throw new ResponseParseError("invalid status line");
        let status = 0;
        for (let k = s + 9; k < s + 12; k++) {
            if (b[k] < 48 || b[k] > 57) throw new ResponseParseError("invalid status code");
            status = status * 10 + b[k] - 48;
        }
        if (status < 100 || (b[s + 12] !== 32 && b[s + 12] !== CR)) throw new ResponseParseError("invalid status code");
        let keepAlive = b[s + 7] === 49;
        const raw: string[] | undefined = this.sink && status >= 200 ? [] : undefined;
        let length = -1;
        let chunked = false;
        let encoded = false;
        let i = b.indexOf(LF, s) + 1;
        // One header line per pass; bounded by the head's length.
        while (i < e) {
            const eol = b.indexOf(LF, i);
            if (eol < 0 || eol >= e || b[eol - 1] !== CR) throw new ResponseParseError("invalid header line");
            const colon = b.indexOf(58, i);
            if (colon < 0 || colon > eol || colon === i || b[i] === 32 || b[i] === 9)
                throw new ResponseParseError("invalid header line");
            const n = colon - i;
            if (raw) {
                let vs = colon + 1;
                let ve = eol - 1;
                while (vs < ve && (b[vs] === 32 || b[vs] === 9)) vs++;
                while (ve > vs && (b[ve - 1] === 32 || b[ve - 1] === 9)) ve--;
                raw.push(b.toString("latin1", i, colon), b.toString("latin1", vs, ve));
            }
            // Only the header names we read get decoded: compare lengths first.
            if (n === 14 || n === 17 || n === 10 || n === REFUSAL_HEADER.length) {
                const name = lower(b, i, colon);
                const value = () => b.toString("latin1", colon + 1, eol - 1).trim();
                if (name === "content-length") {
                    const v = value();
                    if (!/^[0-9]{1,15}$/.test(v) || (length >= 0 && Number(v) !== length))
                        throw new ResponseParseError("invalid content-length");
                    length = Number(v);
                } else if (name === "transfer-encoding") {
                    encoded = true;
                    const codings = value().toLowerCase().split(",");
                    chunked = codings[codings.length - 1].trim() === "chunked";
                } else if (name === "connection") {
                    const tokens = value().toLowerCase().split(",");
                    for (const t of tokens) {
                        if (t.trim() === "close") keepAlive = false;
                        else if (t.trim() === "keep-alive" && b[s + 7] === 48) keepAlive = true;
                    }
                } else if (name === "keep-alive") {
                    const m = /(?:^|[,\s])timeout=([0-9]{1,9})/i.exec(value());
                    if (m) this.keepAliveMs = Number(m[1]) * 1000;
                } else if (name === REFUSAL_HEADER) this.refused = true;
            }
            i = eol + 1;
        }
        if (status < 200) {
            // 1xx: an interim head, skipped; the final head follows. 101 only answers an upgrade we never ask for.
            if (status === 101) throw new ResponseParseError("unexpected 101 Switching Protocols");
            this.refused = false;
            this.keepAliveMs = -1;
            return;
        }
        this.status = status;
        this.keepAlive = keepAlive;
        this.headDone = true;
        if (raw) {
            const lineEnd = b.indexOf(CR, s + 12);
            (this.sink as ResponseSink).head(status, b.toString("latin1", s + 13, Math.max(s + 13, lineEnd)), raw);
        }
        if (this.head || status === 204 || status === 304) this.state = State.Done;
        else if (encoded) {
            // Transfer-Encoding wins over Content-Length; a message with both cannot be trusted for reuse.
            if (length >= 0) this.keepAlive = false;
            if (chunked) this.startChunk();
            else this.toClose();
        } else if (length === 0) this.state = State.Done;
        else if (length > 0) {
            this.state = State.Length;
            this.remaining = length;
        } else this.toClose();
    }

    private toClose(): void {
        this.state = State.Close;
        this.keepAlive = false;
    }
}

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
