/**
 * Plain-HTTP forwarding: the checked request goes to the pool as an absolute-form request rebuilt from the parsed
 * URL (destinations.ts), with the pool's credentials, over kept-alive connections per pool (upstream-http.ts: raw
 * sockets and a small HTTP/1.1 reader, no ClientRequest, IncomingMessage or agent per exchange, and the answer's
 * head, body and end reach the crawler's socket in one write when they arrive together).
 *
 * - Headers: hop-by-hop headers and every header named in `Connection` are removed both ways; duplicates are kept
 *   as sent (raw header lists, never combined), and the answer's head is written from a flat list.
 * - Streams: the request body is streamed to the pool with backpressure (chunked when the crawler sent no length),
 *   counted per chunk as it is sent and cut at the body limit; the answer's body is written to the crawler chunk by
 *   chunk, counted as it passes (an interrupted download counts what was relayed), paused while the crawler's socket
 *   is full. A crawler that leaves aborts the upstream request; a pool that cuts the answer cuts the crawler's. The answer has an idle timeout (idleMs) and the exchange a total one (totalMs), both
 *   from the one sweep.
 * - A request that fails on a reused keep-alive connection (one that had already carried an answer) before any
 *   answer (the pool closed it meanwhile, as HTTP/1.0-style proxies such as tinyproxy do without `Connection:
 *   close`) is retried once on a fresh connection when it is idempotent and has no body; that is not a vendor fault
 *   and is counted apart.
 * - A vendor fault on a fresh connection (classify.ts) is charged to the pool and, for an idempotent request
 *   without a body, retried once on another pool.
 */
import * as http from "http";
import { performance } from "perf_hooks";
import { Cause } from "../../catalog/datamodel";
import { BAN_HEADER, POOL_HEADER, RETRIES_HEADER, SESSION_HEADER } from "../../catalog/gateway";
import { AnswerMarks, FailureReason, VENDOR_HEADERS, classify } from "./classify";
import { GatewayContext, relayProxyStatus, sweepEvery } from "./context";
import { Target } from "./destinations";
import { PoolState } from "./pools";
import { READ_BEFORE, UpstreamConnections, UpstreamError, UpstreamHandler } from "./upstream-http";

/** Headers that describe one hop (RFC 9110 §7.6.1) and are never forwarded, plus ones we set ourselves. */
const HOP_BY_HOP = new Set([
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "expect",
    "host",
    // The gateway's own request headers (sessions.ts, ban feedback): for us, never for the destination.
    SESSION_HEADER,
    BAN_HEADER,
]);

const RETRYABLE = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "DELETE", "PUT"]);

/** Header names a raw header list's `Connection` (and `Proxy-Connection`) headers name, lower case. */
function connectionNamed(raw: readonly string[]): Set<string> | undefined {
    let named: Set<string> | undefined;
    for (let i = 0; i < raw.length; i += 2) {
        const k = raw[i].toLowerCase();
        if (k === "connection" || k === "proxy-connection") {
            named ??= new Set();
            for (const n of raw[i + 1].split(",")) named.add(n.trim().toLowerCase());
        }
    }
    return named;
}

/** The request headers admission and forwarding read; Node's `req.headers` object is never built for them. */
const ADMISSION_FIRST = new Set(["proxy-authorization", "content-length"]);
const ADMISSION_JOINED = new Set(["transfer-encoding", SESSION_HEADER, BAN_HEADER]);

/**
 * The headers admission reads, from the raw list in one pass, as Node would give them in `req.headers`: the first
 * `Proxy-Authorization` and `Content-Length`, the others' values joined with ", ".
 */
export function admissionHeaders(raw: readonly string[]): http.IncomingHttpHeaders {
    const out: Record<string, string> = {};
    for (let i = 0; i < raw.length; i += 2) {
        const k = raw[i].toLowerCase();
        if (ADMISSION_FIRST.has(k)) out[k] ??= raw[i + 1];
        else if (ADMISSION_JOINED.has(k)) out[k] = out[k] === undefined ? raw[i + 1] : `${out[k]}, ${raw[i + 1]}`;
    }
    return out;
}

/** A raw header list (name, value, name, value...) without hop-by-hop headers and the ones `Connection` names. */
export function endToEnd(raw: readonly string[]): string[] {
    const named = connectionNamed(raw);
    const out: string[] = [];
    for (let i = 0; i < raw.length; i += 2) {
        const k = raw[i].toLowerCase();
        if (!HOP_BY_HOP.has(k) && !named?.has(k)) out.push(raw[i], raw[i + 1]);
    }
    return out;
}

class UpstreamTimeout extends Error {
    constructor() {
        super("upstream timeout");
    }
}

function bytesReadBefore(err: UpstreamError): number {
    return err[READ_BEFORE] ?? 0;
}

/** Kept-alive connections per pool beyond which requests wait (one request at a time on each). */
const CONNECTIONS_PER_POOL = 1024;
/** How long an idle pool connection is kept when the pool gives no Keep-Alive hint, ms. */
const KEEP_ALIVE_MS = 4000;

export class Forwarder {
    /** Each pool's kept-alive connections, made with the first request to it. */
    private readonly upstreams = new Map<PoolState, UpstreamConnections>();
    /** Exchanges in flight, swept for their timeouts (one timer for all, rather than three per request). */
    private readonly live = new Set<Exchange>();
    private readonly sweeper: NodeJS.Timeout;

    constructor(readonly ctx: GatewayContext) {
        this.sweeper = setInterval(() => this.sweep(), sweepEvery(ctx.cfg.timeouts));
        this.sweeper.unref();
    }

    /**
     * Times out what is due: no answer within connectMs (the attempt), a response body idle for idleMs, an exchange
     * open for totalMs. Fires within a quarter of the shortest timeout (at most a second) of the deadline.
     */
    private sweep(): void {
        const now = Date.now();
        const { idleMs, totalMs } = this.ctx.cfg.timeouts;
        for (const x of this.live) {
            const total = now - x.startedAt > totalMs;
            const due = x.answered ? now - x.lastActivity > idleMs : now > x.answerBy;
            if (!total && !due) continue;
            x.timedOut = true;
            x.attempt?.cut(new UpstreamTimeout());
            if (total) x.res.destroy();
        }
        for (const u of this.upstreams.values()) u.sweep(now);
    }

    /** Forwards `req` to `target` through `pool` (admission is done; the caller has counted it in flight). */
    forward(
        pool: PoolState,
        req: http.IncomingMessage,
        res: http.ServerResponse,
        target: Target,
        destination: string,
        t0: number,
        session?: string,
        /** What admission read (admissionHeaders). */
        seen: http.IncomingHttpHeaders = admissionHeaders(req.rawHeaders),
    ): void {
        const ctx = this.ctx;
        const hasBody =
            (seen["content-length"] !== undefined && seen["content-length"] !== "0") ||
            seen["transfer-encoding"] !== undefined;
        // A body without a length goes chunked (upstream-http.ts adds the Transfer-Encoding this list never has).
        const headers = endToEnd(req.rawHeaders);
        headers.push("Host", target.authority.endsWith(":80") ? target.authority.slice(0, -3) : target.authority);
        // The pool's credentials go last, set by each attempt before it is written.
        headers.push("Proxy-Authorization", "");
        const x: Exchange = {
            req,
            res,
            target,
            destination,
            t0,
            headers,
            hasBody,
            retryable: !hasBody && RETRYABLE.has(req.method ?? ""),
            clientGone: false,
            timedOut: false,
            attempt: undefined,
            startedAt: Date.now(),
            answerBy: 0,
            answered: false,
            lastActivity: 0,
            session,
            retries: 0,
        };
        this.live.add(x);
        // "close" comes once: a plain listener, not once()'s wrapper.
        res.on("close", () => {
            this.live.delete(x);
            if (!res.writableFinished) {
                // The crawler left (or a timeout cut it): abort the upstream request and release its connection.
                if (!x.timedOut) x.clientGone = true;
                x.attempt?.cut();
            }
            ctx.end();
        });
        this.attempt(pool, x, { fresh: false, otherPool: false });
    }

    /** One try of `x` on `pool`: on its kept-alive connections, or on a connection of its own (`fresh`). */
    attempt(pool: PoolState, x: Exchange, tried: Tried): void {
        const a = new Attempt(this, pool, x, tried);
        x.attempt = a;
        x.answerBy = Date.now() + this.ctx.cfg.timeouts.connectMs;
        x.headers[x.headers.length - 1] = this.ctx.upstreamAuthorization(pool, x.session);
        this.upstream(pool).dispatch(
            {
                method: x.req.method ?? "GET",
                path: x.target.url ?? "/",
                headers: x.headers,
                body: x.hasBody ? x.req : null,
                fresh: tried.fresh,
            },
            a,
        );
    }

    private upstream(pool: PoolState): UpstreamConnections {
        let u = this.upstreams.get(pool);
        if (!u) {
            const { host, port } = pool.config;
            u = new UpstreamConnections(host, port, {
                connections: CONNECTIONS_PER_POOL,
                keepAliveMs: KEEP_ALIVE_MS,
                // Later than the sweep's own deadline (connectMs), so that the sweep names the timeout first.
                connectTimeoutMs: 2 * this.ctx.cfg.timeouts.connectMs + 1000,
            });
            this.upstreams.set(pool, u);
        }
        return u;
    }

    /** Retries `x` once on another pool (the session's next one) after `pool` failed with `cause`; false if none. */
    retryElsewhere(pool: PoolState, x: Exchange, cause: Cause): boolean {
        const ctx = this.ctx;
        const other = x.session === undefined ? ctx.pools.pick(pool) : ctx.pools.pickFor(x.session, pool);
        if (!other || other.pool === pool) return false;
        ctx.metrics.retry(pool.config.name);
        ctx.metrics.retryCause(pool.config.name, cause);
        x.timedOut = false;
        x.answered = false;
        x.retries++;
        this.attempt(other.pool, x, { fresh: false, otherPool: true });
        return true;
    }

    /** Cuts every open exchange (shutdown deadline) and closes the pools' kept-alive connections. */
    destroyAll(): void {
        clearInterval(this.sweeper);
        for (const x of [...this.live]) x.res.destroy();
        for (const u of this.upstreams.values()) u.destroy();
        this.upstreams.clear();
    }
}

interface Tried {
    readonly fresh: boolean;
    readonly otherPool: boolean;
}

/**
 * One attempt of an exchange on one pool: the handler the pool's connections call (onConnect, onHeaders, onData,
 * onComplete or onError; onBodySent per request-body chunk). Only its first ending acts.
 */
class Attempt implements UpstreamHandler {
    /** The abort for this request, once it is being written on a connection. */
    private abort?: (err?: Error) => void;
    private resume?: () => void;
    private finished = false;
    private answered = false;
    private status = 0;
    private ingress = 0;
    private egress = 0;
    // The connection's resume is shared by its later exchanges: only this attempt's own answer is resumed.
    private readonly onDrain = () => {
        if (!this.finished) this.resume?.();
    };

    constructor(
        private readonly fw: Forwarder,
        private readonly pool: PoolState,
        private readonly x: Exchange,
        private readonly tried: Tried,
    ) {}

    private get ctx(): GatewayContext {
        return this.fw.ctx;
    }

    /** Ends the attempt from outside (a timeout, the crawler gone): aborts it, or fails it before it is written. */
    cut(err: Error = new Error("aborted")): void {
        if (this.finished) return;
        if (this.abort) this.abort(err);
        else this.onError(err);
    }

    private end(): void {
        this.finished = true;
    }

    onConnect(abort: (err?: Error) => void): void {
        // Ended before it was written (a timeout while connecting, the crawler gone): never send it.
        if (this.finished) return abort();
        this.abort = abort;
    }

    onBodySent(chunk: Buffer): void {
        if (this.finished) return;
        const { ctx, x } = this;
        this.egress += chunk.length;
        ctx.metrics.bytes(this.pool.config.name, x.destination, chunk.length, 0);
        if (this.egress > ctx.cfg.limits.maxBodyBytes) {
            this.end();
            this.abort?.();
            ctx.answerHttp(x.res, 413, x.destination, x.t0, "body-too-large");
        }
    }

    onHeaders(status: number, rawHeaders: string[], resume: () => void, statusText: string): boolean {
        if (this.finished) return false;
        // 1xx answers are not relayed (as Node's client never did): the final one follows.
        if (status < 200) return true;
        const { ctx, x, pool } = this;
        const name = pool.config.name;
        const head = readAnswerHead(rawHeaders, statusText, ctx.exitIps.readsHeader ? ctx.cfg.exitIp.header : "");
        this.answered = true;
        x.answered = true;
        x.lastActivity = Date.now();
        this.status = status;
        this.resume = resume;
        const cause = classify(ctx.cfg.profile, "response", status, head.marks);
        ctx.account(pool, cause, x.target);
        if (
            (cause === "vendor_error" || cause === "session_lost") &&
            x.retryable &&
            !this.tried.otherPool &&
            !x.clientGone &&
            this.fw.retryElsewhere(pool, x, cause)
        ) {
            this.end();
            this.abort?.();
            return false;
        }
        ctx.metrics.request(name, x.destination, status, "HTTP/1.1", performance.now() - x.t0);
        if (x.clientGone) {
            this.end();
            this.abort?.();
            return false;
        }
        if (head.exitIp !== undefined) ctx.exitIps.learn(name, head.exitIp, x.session);
        const out = relayed(head, ctx.exitIps.readsHeader && ctx.cfg.exitIp.stripHeader ? ctx.cfg.exitIp.header : "");
        if (cause !== "none") out.push("Proxy-Status", relayProxyStatus(cause, undefined, status));
        if (ctx.cfg.responseHeaders) out.push(POOL_HEADER, name, RETRIES_HEADER, String(x.retries));
        try {
            x.res.writeHead(status, statusText, out);
        } catch {
            // A response head we cannot relay (invalid characters): the vendor's garbage.
            ctx.failure(pool, "bad_response");
            this.end();
            this.abort?.();
            x.res.destroy();
            return false;
        }
        return true;
    }

    onData(chunk: Buffer): boolean {
        if (this.finished) return false;
        const { x } = this;
        this.ingress += chunk.length;
        x.lastActivity = Date.now();
        this.ctx.metrics.bytes(this.pool.config.name, x.destination, 0, chunk.length);
        if (x.res.write(chunk)) return true;
        x.res.once("drain", this.onDrain);
        return false;
    }

    onComplete(): void {
        if (this.finished) return;
        this.end();
        this.x.res.end();
        this.log();
    }

    onError(err: UpstreamError): void {
        if (this.finished) return;
        this.end();
        const { ctx, x, pool, tried } = this;
        const name = pool.config.name;
        const { res, destination, t0 } = x;
        if (this.answered) {
            // The answer was cut upstream (or by a timeout): cut the crawler's.
            if (!x.clientGone) ctx.failure(pool, x.timedOut ? "body_timeout" : "response_aborted");
            res.destroy();
            this.log();
            return;
        }
        if (x.clientGone) return;
        if (x.timedOut && res.destroyed) return; // the total timeout cut everything
        // A header Node's parser let in but that cannot be sent (control bytes, a repeated length).
        if (!this.abort && err.code === "UND_ERR_INVALID_ARG")
            return ctx.answerHttp(res, 400, destination, t0, "bad-request");
        if (!tried.fresh && this.abort && !x.timedOut && bytesReadBefore(err) > 0) {
            // The pool dropped a kept-alive connection: not its fault; once more on a fresh one, if we may.
            if (x.retryable) {
                ctx.metrics.staleRetry(name);
                return this.fw.attempt(pool, x, { ...tried, fresh: true });
            }
            return ctx.answerHttp(res, 502, destination, t0, "stale-connection");
        }
        const reason: FailureReason = x.timedOut
            ? "timeout"
            : !this.abort || err.code === "ECONNREFUSED"
              ? "connect_error"
              : "reset";
        ctx.failure(pool, reason);
        ctx.account(pool, "vendor_error", x.target);
        if (x.retryable && !tried.otherPool && this.fw.retryElsewhere(pool, x, "vendor_error")) return;
        const status = reason === "timeout" ? 504 : 502;
        ctx.metrics.request(name, destination, status, "HTTP/1.1", performance.now() - t0);
        if (!res.headersSent) {
            const headers: http.OutgoingHttpHeaders = {
                "content-length": 0,
                connection: "close",
                "proxy-status": relayProxyStatus("vendor_error", reason),
            };
            if (ctx.cfg.responseHeaders) {
                headers[POOL_HEADER] = name;
                headers[RETRIES_HEADER] = String(x.retries);
            }
            res.writeHead(status, headers);
            res.end();
        }
    }

    private log(): void {
        const { ctx, x } = this;
        if (ctx.sampling)
            ctx.sampleLog({
                kind: "http",
                pool: this.pool.config.name,
                destination: x.destination,
                status: this.status,
                ingress: this.ingress,
                ms: Math.round(performance.now() - x.t0),
            });
    }
}

/** One crawler request and what its attempts share. */
interface Exchange {
    readonly req: http.IncomingMessage;
    readonly res: http.ServerResponse;
    readonly target: Target;
    readonly destination: string;
    readonly t0: number;
    /** End-to-end request headers (raw list) with our Host. */
    readonly headers: string[];
    readonly hasBody: boolean;
    /** Idempotent and without a body: may be replayed. */
    readonly retryable: boolean;
    clientGone: boolean;
    /** Wall-clock ms: start, the current attempt's answer deadline, the last response byte. */
    readonly startedAt: number;
    answerBy: number;
    answered: boolean;
    lastActivity: number;
    timedOut: boolean;
    attempt: Attempt | undefined;
    /** The crawler's session key (sessions.ts), if any: routed by pickFor, passed on, tracked for exit IPs. */
    readonly session: string | undefined;
    /** Attempts on another pool so far. */
    retries: number;
}

const MARKED = new Set(["proxy-status", "x-squid-error", ...VENDOR_HEADERS]);

/** A pool's answer head, read in one pass: the raw list as strings, its names in lower case, and what is read. */
interface AnswerHead {
    readonly raw: string[];
    readonly lower: string[];
    /** Names the answer's `Connection` headers list (removed with the hop-by-hop ones). */
    readonly named: Set<string> | undefined;
    /** What the profiles read (classify.ts): repeated headers joined with ", ", as Node joins them. */
    readonly marks: AnswerMarks;
    /** The exit-IP header's value, when one is read (`exitIpHeader`). */
    readonly exitIp: string | undefined;
}

/** Reads the pool's raw answer head (names and values as sent) once, lower-casing each name once. */
export function readAnswerHead(raw: string[], reasonPhrase: string, exitIpHeader: string): AnswerHead {
    const n = raw.length;
    const lower: string[] = new Array(n >> 1);
    let named: Set<string> | undefined;
    let found: Record<string, string> | undefined;
    let exitIp: string | undefined;
    for (let i = 0; i < n; i += 2) {
        const value = raw[i + 1];
        const k = raw[i].toLowerCase();
        lower[i >> 1] = k;
        if (k === "connection" || k === "proxy-connection") {
            named ??= new Set();
            for (const v of value.split(",")) named.add(v.trim().toLowerCase());
        } else if (MARKED.has(k)) {
            found ??= {};
            found[k] = found[k] === undefined ? value : `${found[k]}, ${value}`;
        }
        if (k === exitIpHeader) exitIp = exitIp === undefined ? value : `${exitIp}, ${value}`;
    }
    let vendor: Record<string, string> | undefined;
    if (found)
        for (const name of VENDOR_HEADERS) {
            const v = found[name];
            if (v !== undefined) (vendor ??= {})[name] = v;
        }
    const marks = { reasonPhrase, proxyStatus: found?.["proxy-status"], squidError: found?.["x-squid-error"], vendor };
    return { raw, lower, named, marks, exitIp };
}

/** The end-to-end part of an answer head as a flat list for `writeHead`, without `strip` (an exit-IP header). */
function relayed(head: AnswerHead, strip: string): string[] {
    const out: string[] = [];
    const { raw, lower, named } = head;
    for (let i = 0; i < lower.length; i++) {
        const k = lower[i];
        if (!HOP_BY_HOP.has(k) && !named?.has(k) && k !== strip) out.push(raw[2 * i], raw[2 * i + 1]);
    }
    return out;
}
