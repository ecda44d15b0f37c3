/**
 * generate: crawler-like traffic through the vendor gateways, as crawlers send it with HTTP(S)_PROXY set: plain
 * HTTP as absolute-form requests, HTTPS as CONNECT then TLS (HTTP/2 inside when the destination offers it). Vendors
 * by weight, destinations by a Zipf law, a rate schedule, bounded concurrency with a queue, timeouts, and retries
 * with backoff. Counts the proxy's and the destination's answers (crawler_upstream_responses_total is the data
 * model's optional crawler-side metric). Plain HTTP goes out as prepared request bytes on raw kept-alive sockets
 * (http1.ts); HTTPS through undici. Counts are plain numbers on the hot path, added to the metrics when scraped.
 */
import * as http from "http";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type * as Undici from "undici";
import { OTHER_DESTINATION } from "../../catalog/datamodel";
import { BAN_HEADER, REFUSAL_HEADER, SESSION_HEADER } from "../../catalog/gateway";
import { LOADGEN_METRICS } from "../../catalog/loadgen";
import { Logger, silentLogger } from "../common/log";
import { Http1Agent, Http1Callback, Http1Pool } from "./http1";
import { portOf, startOpsServer } from "../common/ops-server";
import { Pattern, pickCumulative, rateAt, zipfCumulative } from "./pattern";

export type Outcome = "ok" | "http_error" | "proxy_error" | "timeout" | "network_error";
const OUTCOMES: readonly Outcome[] = ["ok", "http_error", "proxy_error", "timeout", "network_error"];

export interface Summary {
    readonly seconds: number;
    readonly started: number;
    readonly finished: number;
    /** Due requests dropped because the queue was full. */
    readonly shed: number;
    readonly byVendor: Record<string, Partial<Record<Outcome, number>>>;
    readonly statuses: Record<string, Record<string, number>>;
}

const TICK_MS = 10;

/**
 * undici, loaded when the first HTTPS request is made: the gateway, the simulator and the target run the same
 * bundle and never use it (loading it costs each of them about 10 MB of resident memory), nor does plain HTTP.
 */
let loaded: typeof Undici | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const undici = (): typeof Undici => (loaded ??= require("undici") as typeof Undici);
const RETRYABLE = new Set([502, 503, 504]);
/** A proxy's own refusal as undici raises it: a CONNECT answered with an error, or a 407 to plain HTTP. */
const PROXY_REFUSAL = /Proxy response \(([0-9]{3})\)|Proxy Authentication Required \((407)\)/;

type Failure = (Error & { code?: string }) | undefined;

/** A count kept in a plain number on the hot path; `added` of it is already in the prom-client metric. */
interface Tally {
    n: number;
    added: number;
    readonly labels: readonly string[];
}

interface Vendor {
    readonly name: string;
    readonly index: number;
    readonly proxyUrl: string;
    /** The proxy crawlers set (none when direct), and its proxy-authorization header from the URL's credentials. */
    readonly proxy?: { readonly host: string; readonly port: number; readonly auth?: string };
    /** Without a session first, then one per session key (proxies only). */
    readonly vias: Via[];
    queued: number;
    inflight: number;
    bytes: number;
    bytesAdded: number;
    retries: number;
    retriesAdded: number;
}

/** A vendor and a session key (or none): what connections, dispatchers and ban feedback are per. */
interface Via {
    readonly vendor: Vendor;
    readonly session?: string;
    dispatcher?: Undici.Dispatcher;
    /** The raw pool to the proxy; direct vendors have one per destination index in `direct`. */
    pool?: Http1Pool;
    readonly direct: (Http1Pool | undefined)[];
    /** Prepared plain-HTTP request bytes, by destination index * sizes + size index. */
    readonly prepared: (Buffer | undefined)[];
    /**
     * A destination that banned us, to report on the next plain-HTTP request of the same vendor and session (ban
     * feedback: the gateway charges it to the session's pool).
     */
    ban?: string;
}

/** One request, across its attempts. */
interface Job {
    readonly via: Via;
    readonly dest: number;
    readonly size: number;
    readonly https: boolean;
    attempt: number;
}

export class Generator {
    readonly registry = new Registry();
    private readonly vendors: Vendor[];
    private readonly vendorCumulative: number[];
    private readonly destCumulative: number[];
    /** Destination label values by destination index: the host when tracked, else `other`. */
    private readonly labels: string[];
    /** Due requests waiting for a slot: vendor indexes. */
    private readonly queue: number[] = [];
    private readonly requestTallies = new Map<number, Tally>();
    private readonly statusTallies = new Map<number, Tally>();
    private readonly log: Logger;
    private readonly random: () => number;
    private readonly fastHttp: boolean;
    private http1?: Http1Agent;
    private timer?: NodeJS.Timeout;
    private ops?: http.Server;
    private startedAt = 0;
    private credit = 0;
    private inflight = 0;
    private started = 0;
    private finished = 0;
    private shed = 0;
    private stopping = false;
    private idle?: () => void;
    private doneResolve?: () => void;
    /** This process's session keys (the same for every vendor); a prefix per process keeps pods' keys apart. */
    private readonly sessionKeys: string[];

    constructor(
        readonly pattern: Pattern,
        opts: {
            logger?: Logger;
            random?: () => number;
            processMetrics?: boolean;
            /** Plain HTTP on raw sockets (default); false sends it through undici like HTTPS (tests compare both). */
            fastHttp?: boolean;
        } = {},
    ) {
        this.log = opts.logger ?? silentLogger;
        this.random = opts.random ?? Math.random;
        this.fastHttp = opts.fastHttp ?? true;
        const r = [this.registry];
        const m = LOADGEN_METRICS;
        const spec = (s: { name: string; help: string; labels: readonly string[] }, collect: () => void) => ({
            name: s.name,
            help: s.help,
            labelNames: [...s.labels],
            registers: r,
            collect,
        });
        // The counts go into the metrics when they are read (scrape), not per request.
        const added = (c: Counter<string>, tallies: Iterable<Tally>) => () => {
            for (const t of tallies)
                if (t.n > t.added) {
                    c.labels(...t.labels).inc(t.n - t.added);
                    t.added = t.n;
                }
        };
        const requests: Counter<string> = new Counter(
            spec(m.requests, () => added(requests, this.requestTallies.values())()),
        );
        const upstream: Counter<string> = new Counter(
            spec(m.upstreamResponses, () => added(upstream, this.statusTallies.values())()),
        );
        const perVendor =
            (c: Counter<string>, total: "bytes" | "retries", done: "bytesAdded" | "retriesAdded") => () => {
                for (const v of this.vendors) {
                    c.labels(v.name).inc(v[total] - v[done]);
                    v[done] = v[total];
                }
            };
        const retries: Counter<string> = new Counter(
            spec(m.retries, () => perVendor(retries, "retries", "retriesAdded")()),
        );
        const bytes: Counter<string> = new Counter(spec(m.bytes, () => perVendor(bytes, "bytes", "bytesAdded")()));
        const gauge = (g: Gauge<string>, field: "queued" | "inflight") => () => {
            for (const v of this.vendors) g.labels(v.name).set(v[field]);
        };
        const queueDepth: Gauge<string> = new Gauge(spec(m.queueDepth, () => gauge(queueDepth, "queued")()));
        const inflight: Gauge<string> = new Gauge(spec(m.inflight, () => gauge(inflight, "inflight")()));
        if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
        // In a pod, the series carry its name and namespace: prometheus-adapter maps per-pod custom metrics
        // (queue depth, request rate) to pods by these labels.
        if (process.env.POD_NAME && process.env.POD_NAMESPACE) {
            this.registry.setDefaultLabels({ pod: process.env.POD_NAME, namespace: process.env.POD_NAMESPACE });
        }
        const total = pattern.vendors.reduce((s, v) => s + v.weight, 0);
        let acc = 0;
        this.vendorCumulative = pattern.vendors.map((v) => (acc += v.weight / total));
        this.destCumulative = zipfCumulative(pattern.destinations.length, pattern.zipfExponent);
        const tracked = new Set(pattern.trackedDestinations);
        this.labels = pattern.destinations.map((d) => (tracked.has(d) ? d : OTHER_DESTINATION));
        const prefix = pattern.sessions.share > 0 ? `lg${Math.floor(this.random() * 36 ** 6).toString(36)}` : "";
        this.sessionKeys = prefix ? Array.from({ length: pattern.sessions.keys }, (_, i) => `${prefix}_${i}`) : [];
        this.vendors = pattern.vendors.map((v, index) => {
            const vendor: Vendor = {
                name: v.name,
                index,
                proxyUrl: v.proxyUrl,
                proxy: v.proxyUrl === "direct" ? undefined : proxyOf(v.proxyUrl),
                vias: [],
                queued: 0,
                inflight: 0,
                bytes: 0,
                bytesAdded: 0,
                retries: 0,
                retriesAdded: 0,
            };
            // One via per session: its key goes on every CONNECT and plain-HTTP request to the proxy.
            for (const session of [undefined, ...(vendor.proxy ? this.sessionKeys : [])])
                vendor.vias.push({ vendor, session, direct: [], prepared: [] });
            return vendor;
        });
    }

    private dispatcherFor(proxyUrl: string, session?: string): Undici.Dispatcher {
        const { Agent, ProxyAgent } = undici();
        const tls = { rejectUnauthorized: !this.pattern.insecureTls };
        const common = { connections: this.pattern.concurrency, allowH2: this.pattern.http2, keepAliveTimeout: 30_000 };
        if (proxyUrl === "direct") return new Agent({ ...common, connect: tls });
        // allowH2 on the tunnelled TLS connector offers h2 by ALPN inside CONNECT tunnels.
        return new ProxyAgent({
            uri: proxyUrl,
            proxyTunnel: false,
            requestTls: { ...tls, allowH2: this.pattern.http2 } as object,
            ...(session === undefined ? {} : { headers: { [SESSION_HEADER]: session } }),
            ...common,
        });
    }
    /** Starts the metrics port and the schedule; resolves with the metrics port. */
    async start(): Promise<number> {
        this.ops = await startOpsServer(this.pattern.metricsPort, "0.0.0.0", {
            registry: this.registry,
            ready: () => !this.stopping,
        });
        this.startedAt = performance.now();
        let last = this.startedAt;
        this.timer = setInterval(() => {
            const now = performance.now();
            const t = (now - this.startedAt) / 1000;
            if (this.pattern.durationSeconds > 0 && t >= this.pattern.durationSeconds) {
                void this.stop();
                return;
            }
            this.credit += (rateAt(this.pattern.rate, t) * (now - last)) / 1000;
            last = now;
            this.schedule();
        }, TICK_MS);
        this.log.info("generator started", { vendors: this.pattern.vendors.length, metricsPort: portOf(this.ops) });
        return portOf(this.ops);
    }

    /** Resolves when the generator has stopped (duration reached or stop()). */
    done(): Promise<void> {
        return new Promise((resolve) => (this.doneResolve = resolve));
    }

    private schedule(): void {
        const queueCap = this.pattern.concurrency * 10;
        while (this.credit >= 1) {
            this.credit -= 1;
            if (this.queue.length >= queueCap) {
                this.shed++;
                continue;
            }
            const v = pickCumulative(this.vendorCumulative, this.random());
            this.queue.push(v);
            this.vendors[v].queued++;
        }
        this.drain();
    }

    /** Starts queued requests while slots are free. */
    private drain(): void {
        while (this.queue.length > 0 && this.inflight < this.pattern.concurrency) {
            const vendor = this.vendors[this.queue.shift() as number];
            vendor.queued--;
            this.launch(vendor);
        }
    }

    private launch(vendor: Vendor): void {
        const dest = pickCumulative(this.destCumulative, this.random());
        const https = this.random() < this.pattern.httpsShare;
        const size = Math.floor(this.random() * this.pattern.responseBytes.length);
        this.inflight++;
        this.started++;
        vendor.inflight++;
        const vias = vendor.vias;
        const via =
            vias.length > 1 && this.random() < this.pattern.sessions.share
                ? vias[1 + Math.floor(this.random() * (vias.length - 1))]
                : vias[0];
        this.attempt({ via, dest, size, https, attempt: 0 });
    }

    /** One attempt of a job: plain HTTP on a raw socket (or undici when asked), HTTPS through undici. */
    private attempt(job: Job): void {
        const via = job.via;
        // Ban feedback, as crawlers should give it: a ban seen inside a tunnel (only we see it) is reported to the
        // gateway on our next plain-HTTP request through it (request headers of HTTPS go inside the tunnel), in
        // the same session, so that the gateway charges it to the session's pool.
        const ban = job.https ? undefined : via.ban;
        if (ban !== undefined) via.ban = undefined;
        const done: Http1Callback = (err, status, refused, bytes) => this.settle(job, err, status, refused, bytes);
        if (!job.https && this.fastHttp) {
            const p = this.pattern;
            const k = job.dest * p.responseBytes.length + job.size;
            const bytes =
                ban === undefined
                    ? (via.prepared[k] ??= this.requestBytes(via, job))
                    : this.requestBytes(via, job, ban);
            const pool = via.vendor.proxy
                ? (via.pool ??= this.agent().pool(via.vendor.proxy.host, via.vendor.proxy.port))
                : (via.direct[job.dest] ??= this.agent().pool(p.destinations[job.dest], p.ports.http));
            pool.request(bytes, false, done);
        } else this.dispatch(via, job, ban, done);
    }

    private agent(): Http1Agent {
        return (this.http1 ??= new Http1Agent({
            connections: this.pattern.concurrency,
            timeoutMs: this.pattern.timeoutMs,
            keepAliveMs: 30_000,
        }));
    }

    /**
     * The request bytes undici would write for the job: absolute-form through a proxy (with the session and
     * proxy-authorization headers), origin-form direct; `connection: keep-alive`; the ban report; a POST body.
     */
    private requestBytes(via: Via, job: Job, ban?: string): Buffer {
        const p = this.pattern;
        const dest = p.destinations[job.dest];
        const port = p.ports.http;
        const path = `/bytes/${p.responseBytes[job.size]}`;
        const proxy = via.vendor.proxy;
        const method = p.requestBytes > 0 ? "POST" : "GET";
        let head = `${method} ${proxy ? `http://${dest}:${port}${path}` : path} HTTP/1.1\r\nhost: ${dest}${port === 80 ? "" : `:${port}`}\r\nconnection: keep-alive\r\n`;
        if (proxy && via.session !== undefined) head += `${SESSION_HEADER}: ${via.session}\r\n`;
        if (proxy?.auth) head += `proxy-authorization: ${proxy.auth}\r\n`;
        if (ban !== undefined) head += `${BAN_HEADER}: ${ban}\r\n`;
        if (p.requestBytes > 0) head += `content-length: ${p.requestBytes}\r\n`;
        const bytes = Buffer.alloc(Buffer.byteLength(head, "latin1") + 2 + p.requestBytes, 97);
        bytes.write(`${head}\r\n`, "latin1");
        return bytes;
    }

    /** One request on undici's lower-level dispatch API: the body counted and dropped, no promise or stream. */
    private dispatch(via: Via, job: Job, ban: string | undefined, done: Http1Callback): void {
        const p = this.pattern;
        const port = job.https ? p.ports.https : p.ports.http;
        let status = 0;
        let refused = false;
        let bytes = 0;
        // Once: undici's plain-HTTP proxy wrapper calls onError on a 407 and then lets the response complete.
        let settled = false;
        const once: Http1Callback = (err, s, r, n) => {
            if (!settled) done(err, s, r, n);
            settled = true;
        };
        (via.dispatcher ??= this.dispatcherFor(via.vendor.proxyUrl, via.session)).dispatch(
            {
                origin: `${job.https ? "https" : "http"}://${p.destinations[job.dest]}:${port}`,
                path: `/bytes/${p.responseBytes[job.size]}`,
                method: p.requestBytes > 0 ? "POST" : "GET",
                body: p.requestBytes > 0 ? Buffer.alloc(p.requestBytes, 97) : undefined,
                headers: ban === undefined ? undefined : { [BAN_HEADER]: ban },
                headersTimeout: p.timeoutMs,
                bodyTimeout: p.timeoutMs,
            },
            // The handler interface undici's core Client takes (onConnect ... onComplete / onError).
            {
                onConnect() {},
                onHeaders(statusCode: number, rawHeaders: Buffer[]) {
                    status = statusCode;
                    for (let i = 0; i < rawHeaders.length; i += 2)
                        if (
                            rawHeaders[i].length === REFUSAL_HEADER.length &&
                            rawHeaders[i].toString("latin1").toLowerCase() === REFUSAL_HEADER
                        )
                            refused = true;
                    return true;
                },
                onData(chunk: Buffer) {
                    bytes += chunk.length;
                    return true;
                },
                onComplete() {
                    once(undefined, status, refused, bytes);
                },
                onError(err: Error) {
                    once(err, 0, false, 0);
                },
            } as unknown as Undici.Dispatcher.DispatchHandler,
        );
    }

    /** An attempt's end: counts it, then retries the job or finishes it with its outcome. */
    private settle(job: Job, err: Failure, status: number, refused: boolean, bytes: number): void {
        const via = job.via;
        const vendor = via.vendor;
        const more = job.attempt < this.pattern.retries;
        let outcome: Outcome;
        // A proxy's 407 to plain HTTP is its own refusal (undici raises it as an error): a proxy_error either way.
        const proxyRefusal = err
            ? PROXY_REFUSAL.exec(err.message)
            : status === 407 && !job.https && vendor.proxy
              ? ["", "407"]
              : null;
        if (!err && !proxyRefusal) {
            vendor.bytes += bytes;
            this.countStatus(vendor, job.dest, status);
            // A site's 403 or 429 to a proxy exit is a ban; over plain HTTP the gateway saw it too, but not
            // that the crawler took it as one.
            if ((status === 403 || status === 429) && (job.https || !refused))
                via.ban = this.pattern.destinations[job.dest];
            // Plain HTTP goes through the proxy, whose own 5xx arrive as responses: retry those.
            if (!job.https && RETRYABLE.has(status) && more) return this.retry(job);
            outcome = status < 400 ? "ok" : "http_error";
        } else if (proxyRefusal) {
            outcome = "proxy_error";
            if (RETRYABLE.has(Number(proxyRefusal[1] ?? proxyRefusal[2])) && more) return this.retry(job);
        } else {
            const e = err as Error & { code?: string };
            outcome = /Timeout/i.test(e.code ?? "") || /timeout/i.test(e.message) ? "timeout" : "network_error";
            if (outcome === "network_error" && more && !this.stopping) return this.retry(job);
        }
        this.finish(job, outcome);
    }

    private retry(job: Job): void {
        job.via.vendor.retries++;
        job.attempt++;
        const delay = this.pattern.backoffMs * 2 ** (job.attempt - 1) * (0.5 + this.random());
        setTimeout(() => this.attempt(job), delay);
    }

    private finish(job: Job, outcome: Outcome): void {
        const vendor = job.via.vendor;
        const o = OUTCOMES.indexOf(outcome);
        const key = ((vendor.index * this.labels.length + job.dest) * 2 + (job.https ? 1 : 0)) * OUTCOMES.length + o;
        let t = this.requestTallies.get(key);
        if (!t) {
            const labels = [vendor.name, this.labels[job.dest], job.https ? "https" : "http", outcome];
            this.requestTallies.set(key, (t = { n: 0, added: 0, labels }));
        }
        t.n++;
        vendor.inflight--;
        this.inflight--;
        this.finished++;
        // A slot is free: start the next queued request now rather than at the next tick.
        if (!this.stopping) this.drain();
        else if (this.inflight === 0) this.idle?.();
    }

    private countStatus(vendor: Vendor, dest: number, status: number): void {
        const key = (vendor.index * this.labels.length + dest) * 1000 + status;
        let t = this.statusTallies.get(key);
        if (!t)
            this.statusTallies.set(
                key,
                (t = { n: 0, added: 0, labels: [vendor.name, this.labels[dest], String(status)] }),
            );
        t.n++;
    }

    /** Stops scheduling, lets in-flight requests finish (up to `graceMs`), and returns the summary. */
    async stop(graceMs = 10_000): Promise<Summary> {
        if (!this.stopping) {
            this.stopping = true;
            if (this.timer) clearInterval(this.timer);
            for (const v of this.queue.splice(0)) this.vendors[v].queued--;
            if (this.inflight > 0) {
                const deadline = new Promise((r) => setTimeout(r, graceMs).unref());
                await Promise.race([new Promise<void>((r) => (this.idle = r)), deadline]);
            }
            const dispatchers = this.vendors.flatMap((v) => v.vias.map((x) => x.dispatcher));
            await Promise.all(dispatchers.map((d) => d?.close().catch(() => undefined)));
            await this.http1?.close();
            await new Promise<void>((r) => (this.ops ? this.ops.close(() => r()) : r()));
            this.doneResolve?.();
        }
        return this.summary();
    }

    summary(): Summary {
        const byVendor: Summary["byVendor"] = {};
        const statuses: Summary["statuses"] = {};
        for (const t of this.requestTallies.values()) {
            const v = (byVendor[t.labels[0]] ??= {});
            const o = t.labels[3] as Outcome;
            v[o] = (v[o] ?? 0) + t.n;
        }
        for (const t of this.statusTallies.values()) {
            const s = (statuses[t.labels[0]] ??= {});
            s[t.labels[2]] = (s[t.labels[2]] ?? 0) + t.n;
        }
        return {
            seconds: Math.round((performance.now() - this.startedAt) / 100) / 10,
            started: this.started,
            finished: this.finished,
            shed: this.shed,
            byVendor,
            statuses,
        };
    }
}

/** Host, port and proxy-authorization header (from the URL's credentials, as undici builds it) of a proxy URL. */
function proxyOf(proxyUrl: string): { host: string; port: number; auth?: string } {
    const u = new URL(proxyUrl);
    const auth =
        u.username && u.password
            ? `Basic ${Buffer.from(`${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`).toString("base64")}`
            : undefined;
    return { host: u.hostname.replace(/^\[(.*)\]$/, "$1"), port: Number(u.port || 80), auth };
}
