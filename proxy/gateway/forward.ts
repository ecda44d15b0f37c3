/**
 * Plain-HTTP forwarding: the checked request goes to the pool as an absolute-form request rebuilt from the parsed
 * URL (destinations.ts), with the pool's credentials, over a kept-alive connection per pool.
 *
 * - Headers: hop-by-hop headers and every header named in `Connection` are removed both ways; duplicates are kept
 *   as sent (raw header lists, never combined).
 * - Streams: `stream.pipeline` for request bodies and the same wiring by hand for responses, so a crawler that
 *   leaves aborts the upstream request and a pool that cuts the response cuts the crawler's; bytes are counted per
 *   chunk as they pass (an interrupted download counts what was relayed); the response body has an idle timeout
 *   (idleMs) and the exchange a total one (totalMs).
 * - A request that fails on a reused keep-alive connection before any answer (the pool closed it meanwhile, as
 *   HTTP/1.0-style proxies such as tinyproxy do without `Connection: close`) is retried once on a fresh connection
 *   when it is idempotent and has no body; that is not a vendor fault and is counted apart.
 * - A vendor fault on a fresh connection (classify.ts) is charged to the pool and, for an idempotent request
 *   without a body, retried once on another pool.
 */
import * as http from "http";
import { performance } from "perf_hooks";
import { pipeline } from "stream";
import { Cause } from "../../catalog/datamodel";
import { BAN_HEADER, POOL_HEADER, RETRIES_HEADER, SESSION_HEADER } from "../../catalog/gateway";
import { AnswerMarks, FailureReason, VENDOR_HEADERS, classify } from "./classify";
import { GatewayContext, relayProxyStatus, sweepEvery } from "./context";
import { Target } from "./destinations";
import { PoolState } from "./pools";

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

/**
 * The same as an object for `writeHead` (its fast path): a name sent more than once maps to the list of its
 * values, which Node writes as separate header lines, so duplicates are kept, never combined.
 */
export function endToEndObject(raw: readonly string[]): http.OutgoingHttpHeaders {
    const named = connectionNamed(raw);
    const out: Record<string, string | string[]> = {};
    for (let i = 0; i < raw.length; i += 2) {
        const name = raw[i];
        const k = name.toLowerCase();
        if (HOP_BY_HOP.has(k) || named?.has(k)) continue;
        const prev = out[name];
        if (prev === undefined) out[name] = raw[i + 1];
        else if (Array.isArray(prev)) prev.push(raw[i + 1]);
        else out[name] = [prev, raw[i + 1]];
    }
    return out;
}

class UpstreamTimeout extends Error {
    constructor() {
        super("upstream timeout");
    }
}

export class Forwarder {
    private readonly agents = new Map<PoolState, http.Agent>();
    /** Exchanges in flight, swept for their timeouts (one timer for all, rather than three per request). */
    private readonly live = new Set<Exchange>();
    private readonly sweeper: NodeJS.Timeout;

    constructor(private readonly ctx: GatewayContext) {
        for (const p of ctx.pools.all) {
            this.agents.set(
                p,
                new http.Agent({ keepAlive: true, maxSockets: 1024, maxFreeSockets: 256, scheduling: "lifo" }),
            );
        }
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
            x.upReq?.destroy(new UpstreamTimeout());
            if (total) x.res.destroy();
        }
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
        const headers = endToEnd(req.rawHeaders);
        headers.push("Host", target.authority.endsWith(":80") ? target.authority.slice(0, -3) : target.authority);
        if (seen["transfer-encoding"] !== undefined) headers.push("Transfer-Encoding", "chunked");
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
            upReq: undefined,
            startedAt: Date.now(),
            answerBy: 0,
            answered: false,
            lastActivity: 0,
            session,
            retries: 0,
        };
        this.live.add(x);
        res.once("close", () => {
            this.live.delete(x);
            if (!res.writableFinished) {
                // The crawler left (or a timeout cut it): abort the upstream request and release its socket.
                if (!x.timedOut) x.clientGone = true;
                x.upReq?.destroy();
            }
            ctx.end();
        });
        this.attempt(pool, x, { fresh: false, otherPool: false });
    }

    private attempt(pool: PoolState, x: Exchange, tried: { fresh: boolean; otherPool: boolean }): void {
        const { req, res, target, destination, t0 } = x;
        const ctx = this.ctx;
        const name = pool.config.name;
        let upReq: http.ClientRequest;
        try {
            upReq = http.request({
                host: pool.config.host,
                port: pool.config.port,
                method: req.method,
                path: target.url,
                headers: [...x.headers, "Proxy-Authorization", ctx.upstreamAuthorization(pool, x.session)],
                agent: tried.fresh ? false : this.agents.get(pool),
                setHost: false,
            });
        } catch {
            // A header Node's parser let in but its client will not send (invalid characters).
            return this.answerSelf(res, destination, t0, "bad-request", 400);
        }
        x.upReq = upReq;
        x.answerBy = Date.now() + ctx.cfg.timeouts.connectMs;
        let answered = false;
        upReq.on("response", (upRes: http.IncomingMessage) => {
            answered = true;
            x.answered = true;
            x.lastActivity = Date.now();
            const status = upRes.statusCode ?? 502;
            const cause = classify(ctx.cfg.profile, "response", status, marksOf(upRes.rawHeaders, upRes.statusMessage));
            ctx.account(pool, cause, target);
            if (
                (cause === "vendor_error" || cause === "session_lost") &&
                x.retryable &&
                !tried.otherPool &&
                !x.clientGone &&
                this.retryElsewhere(pool, x, cause)
            ) {
                upRes.destroy();
                return;
            }
            ctx.metrics.request(name, destination, status, "HTTP/1.1", performance.now() - t0);
            if (x.clientGone) {
                upRes.destroy();
                return;
            }
            const out = endToEndObject(upRes.rawHeaders);
            if (cause !== "none") appendHeader(out, "proxy-status", relayProxyStatus(cause, undefined, status));
            if (ctx.cfg.responseHeaders) {
                out[POOL_HEADER] = name;
                out[RETRIES_HEADER] = String(x.retries);
            }
            if (ctx.exitIps.readsHeader) this.learnExitIp(name, upRes, out, x.session);
            try {
                res.writeHead(status, upRes.statusMessage, out);
            } catch {
                // A response head we cannot relay (invalid characters): the vendor's garbage.
                ctx.failure(pool, "bad_response");
                upRes.destroy();
                res.destroy();
                return;
            }
            let ingress = 0;
            upRes.on("data", (c: Buffer) => {
                ingress += c.length;
                x.lastActivity = Date.now();
                ctx.metrics.bytes(name, destination, 0, c.length);
            });
            // pipeline's wiring, by hand: stream.pipeline allocates an AbortController and a DOMException per call,
            // which cost 5% of the plain-HTTP rate. A crawler that leaves destroys upReq (res "close" above); a
            // response cut upstream (or by a timeout) cuts the crawler's.
            upRes.on("error", () => undefined);
            upRes.once("close", () => {
                if (!upRes.complete) {
                    if (!x.clientGone) ctx.failure(pool, x.timedOut ? "body_timeout" : "response_aborted");
                    res.destroy();
                }
                if (ctx.sampling)
                    ctx.sampleLog({
                        kind: "http",
                        pool: name,
                        destination,
                        status,
                        ingress,
                        ms: Math.round(performance.now() - t0),
                    });
            });
            upRes.pipe(res);
        });
        upReq.on("error", (e: NodeJS.ErrnoException) => {
            if (answered || x.clientGone) return;
            if (x.timedOut && res.destroyed) return; // the total timeout cut everything
            if (upReq.reusedSocket && !x.timedOut) {
                // The pool dropped a kept-alive connection: not its fault; once more on a fresh one, if we may.
                if (x.retryable && !tried.fresh) {
                    ctx.metrics.staleRetry(name);
                    return this.attempt(pool, x, { ...tried, fresh: true });
                }
                return this.answerSelf(res, destination, t0, "stale-connection");
            }
            const reason: FailureReason = x.timedOut
                ? "timeout"
                : !upReq.socket || upReq.socket.bytesWritten === 0 || e.code === "ECONNREFUSED"
                  ? "connect_error"
                  : "reset";
            ctx.failure(pool, reason);
            ctx.account(pool, "vendor_error", target);
            if (x.retryable && !tried.otherPool && this.retryElsewhere(pool, x, "vendor_error")) return;
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
        });
        if (!x.hasBody) {
            upReq.end();
            return;
        }
        let egress = 0;
        req.on("data", (c: Buffer) => {
            egress += c.length;
            ctx.metrics.bytes(name, destination, c.length, 0);
            if (egress > ctx.cfg.limits.maxBodyBytes) {
                upReq.destroy();
                this.answerSelf(res, destination, t0, "body-too-large", 413);
            }
        });
        pipeline(req, upReq, () => undefined);
    }

    /** Reads the pool's exit-IP header and, if configured, strips it from what the crawler gets. */
    private learnExitIp(
        pool: string,
        upRes: http.IncomingMessage,
        relayed: http.OutgoingHttpHeaders,
        session: string | undefined,
    ): void {
        const name = this.ctx.cfg.exitIp.header;
        const ip = header(upRes.headers[name]);
        if (ip === undefined) return;
        this.ctx.exitIps.learn(pool, ip, session);
        if (this.ctx.cfg.exitIp.stripHeader)
            for (const k of Object.keys(relayed)) if (k.toLowerCase() === name) delete relayed[k];
    }

    /** Retries `x` once on another pool (the session's next one) after `pool` failed with `cause`; false if none. */
    private retryElsewhere(pool: PoolState, x: Exchange, cause: Cause): boolean {
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

    /** An answer of the gateway's own on a plain-HTTP exchange (pool="none", fault="gateway"). */
    private answerSelf(res: http.ServerResponse, destination: string, t0: number, reason: string, status = 502) {
        this.ctx.answerHttp(res, status, destination, t0, reason);
    }

    /** Cuts every open exchange (shutdown deadline) and closes the pools' kept-alive connections. */
    destroyAll(): void {
        clearInterval(this.sweeper);
        for (const x of [...this.live]) x.res.destroy();
        for (const a of this.agents.values()) a.destroy();
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
    upReq: http.ClientRequest | undefined;
    /** The crawler's session key (sessions.ts), if any: routed by pickFor, passed on, tracked for exit IPs. */
    readonly session: string | undefined;
    /** Attempts on another pool so far. */
    retries: number;
}

const MARKED = new Set(["proxy-status", "x-squid-error", ...VENDOR_HEADERS]);

/**
 * What the profiles read from a pool's plain-HTTP response, from its raw header list in one pass (Node's
 * `upRes.headers` object is not built): repeated headers joined with ", ", as Node joins them.
 */
function marksOf(raw: readonly string[], reasonPhrase: string | undefined): AnswerMarks {
    let found: Record<string, string> | undefined;
    for (let i = 0; i < raw.length; i += 2) {
        const k = raw[i].toLowerCase();
        if (!MARKED.has(k)) continue;
        found ??= {};
        found[k] = found[k] === undefined ? raw[i + 1] : `${found[k]}, ${raw[i + 1]}`;
    }
    let vendor: Record<string, string> | undefined;
    if (found)
        for (const name of VENDOR_HEADERS) {
            const v = found[name];
            if (v !== undefined) (vendor ??= {})[name] = v;
        }
    return { reasonPhrase, proxyStatus: found?.["proxy-status"], squidError: found?.["x-squid-error"], vendor };
}

/** Adds a header line after any the pool sent under the same name (a Proxy-Status member appended, RFC 9209). */
function appendHeader(out: http.OutgoingHttpHeaders, name: string, value: string): void {
    const key = Object.keys(out).find((k) => k.toLowerCase() === name) ?? name;
    const prev = out[key];
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
}

function header(v: string | string[] | undefined): string | undefined {
    return Array.isArray(v) ? v.join(", ") : v;
}
