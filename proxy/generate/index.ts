/**
 * generate: crawler-like traffic through the vendor gateways, as crawlers send it with HTTP(S)_PROXY set: plain
 * HTTP as absolute-form requests, HTTPS as CONNECT then TLS (HTTP/2 inside when the destination offers it). Vendors
 * by weight, destinations by a Zipf law, a rate schedule, bounded concurrency with a queue, timeouts, and retries
 * with backoff. Counts the proxy's and the destination's answers (crawler_upstream_responses_total is the data
 * model's optional crawler-side metric).
 */
import * as http from "http";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type * as Undici from "undici";
import { OTHER_DESTINATION } from "../../catalog/datamodel";
import { BAN_HEADER, REFUSAL_HEADER, SESSION_HEADER } from "../../catalog/gateway";
import { LOADGEN_METRICS } from "../../catalog/loadgen";
import { Logger, silentLogger } from "../common/log";
import { portOf, startOpsServer } from "../common/ops-server";
import { Pattern, pickCumulative, rateAt, zipfCumulative } from "./pattern";

export type Outcome = "ok" | "http_error" | "proxy_error" | "timeout" | "network_error";

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
 * undici, loaded when a generator is made: the gateway, the simulator and the target run the same bundle and never
 * use it (loading it costs each of them about 10 MB of resident memory).
 */
let loaded: typeof Undici | undefined;
// eslint-disable-next-line @typescript-eslint/no-require-imports
const undici = (): typeof Undici => (loaded ??= require("undici") as typeof Undici);
const RETRYABLE = new Set([502, 503, 504]);

/**
 * One request on the dispatcher's lower-level API: the status, whether the gateway refused it itself (its refusal
 * header), and the body counted and dropped as it arrives, with no response object, body stream or promise per chunk.
 */
function exchange(
    d: Undici.Dispatcher,
    opts: Undici.Dispatcher.DispatchOptions,
): Promise<{ status: number; refused: boolean; bytes: number }> {
    return new Promise((resolve, reject) => {
        let status = 0;
        let refused = false;
        let bytes = 0;
        // The handler interface undici's core Client takes (onConnect ... onComplete / onError).
        d.dispatch(opts, {
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
                resolve({ status, refused, bytes });
            },
            onError(err: Error) {
                reject(err);
            },
        } as unknown as Undici.Dispatcher.DispatchHandler);
    });
}

export class Generator {
    readonly registry = new Registry();
    private readonly requests: Counter<string>;
    private readonly upstream: Counter<string>;
    private readonly queueDepth: Gauge<string>;
    private readonly inflightGauge: Gauge<string>;
    private readonly retries: Counter<string>;
    private readonly bytes: Counter<string>;
    private readonly dispatchers = new Map<string, Undici.Dispatcher>();
    private readonly vendorCumulative: number[];
    private readonly destCumulative: number[];
    private readonly tracked: Set<string>;
    private readonly queue: string[] = [];
    private readonly pending = new Set<Promise<void>>();
    private readonly log: Logger;
    private readonly random: () => number;
    private timer?: NodeJS.Timeout;
    private ops?: http.Server;
    private startedAt = 0;
    private credit = 0;
    private inflight = 0;
    private started = 0;
    private finished = 0;
    private shed = 0;
    private stopping = false;
    private readonly byVendor: Record<string, Partial<Record<Outcome, number>>> = {};
    private readonly statuses: Record<string, Record<string, number>> = {};
    private doneResolve?: () => void;
    /** Label children by key: the hot path does a Map lookup, not prom-client's label hashing. */
    private readonly children = new Map<string, { inc(n?: number): void; dec(n?: number): void }>();
    /**
     * Per vendor and session (`vendor\0key`, `vendor\0` without one), a destination that banned us, to report on the
     * next plain-HTTP request of the same session (ban feedback: the gateway charges it to the session's pool).
     */
    private readonly pendingBans = new Map<string, string>();
    /** This process's session keys (the same for every vendor); a prefix per process keeps pods' keys apart. */
    private readonly sessionKeys: string[];

    constructor(
        readonly pattern: Pattern,
        opts: { logger?: Logger; random?: () => number; processMetrics?: boolean } = {},
    ) {
        this.log = opts.logger ?? silentLogger;
        this.random = opts.random ?? Math.random;
        const r = [this.registry];
        const m = LOADGEN_METRICS;
        const spec = (s: { name: string; help: string; labels: readonly string[] }) => ({
            name: s.name,
            help: s.help,
            labelNames: [...s.labels],
            registers: r,
        });
        this.requests = new Counter(spec(m.requests));
        this.upstream = new Counter(spec(m.upstreamResponses));
        this.queueDepth = new Gauge(spec(m.queueDepth));
        this.inflightGauge = new Gauge(spec(m.inflight));
        this.retries = new Counter(spec(m.retries));
        this.bytes = new Counter(spec(m.bytes));
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
        this.tracked = new Set(pattern.trackedDestinations);
        const prefix = pattern.sessions.share > 0 ? `lg${Math.floor(this.random() * 36 ** 6).toString(36)}` : "";
        this.sessionKeys = prefix ? Array.from({ length: pattern.sessions.keys }, (_, i) => `${prefix}_${i}`) : [];
        for (const v of pattern.vendors) {
            this.queueDepth.labels(v.name).set(0);
            this.inflightGauge.labels(v.name).set(0);
            this.dispatchers.set(v.name, this.dispatcherFor(v.proxyUrl));
            // One dispatcher per session: its key goes on every CONNECT and plain-HTTP request to the proxy.
            if (v.proxyUrl !== "direct")
                for (const key of this.sessionKeys)
                    this.dispatchers.set(`${v.name}\0${key}`, this.dispatcherFor(v.proxyUrl, key));
        }
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
            const vendor = this.pattern.vendors[pickCumulative(this.vendorCumulative, this.random())].name;
            this.queue.push(vendor);
            this.child(this.queueDepth, `q\0${vendor}`, vendor).inc();
        }
        this.drain();
    }

    /** Starts queued requests while slots are free. */
    private drain(): void {
        while (this.queue.length > 0 && this.inflight < this.pattern.concurrency) {
            const vendor = this.queue.shift() as string;
            this.child(this.queueDepth, `q\0${vendor}`, vendor).dec();
            this.launch(vendor);
        }
    }

    private launch(vendor: string): void {
        const dest = this.pattern.destinations[pickCumulative(this.destCumulative, this.random())];
        const https = this.random() < this.pattern.httpsShare;
        const size = this.pattern.responseBytes[Math.floor(this.random() * this.pattern.responseBytes.length)];
        this.inflight++;
        this.started++;
        const inflight = this.child(this.inflightGauge, `i\0${vendor}`, vendor);
        inflight.inc();
        const keys = this.sessionKeys;
        const session =
            keys.length > 0 &&
            this.dispatchers.has(`${vendor}\0${keys[0]}`) &&
            this.random() < this.pattern.sessions.share
                ? keys[Math.floor(this.random() * keys.length)]
                : undefined;
        const p = this.one(vendor, dest, https, size, session).finally(() => {
            this.inflight--;
            this.finished++;
            inflight.dec();
            this.pending.delete(p);
            // A slot is free: start the next queued request now rather than at the next tick.
            if (!this.stopping) this.drain();
        });
        this.pending.add(p);
    }

    private async one(vendor: string, dest: string, https: boolean, size: number, session?: string): Promise<void> {
        const via = session === undefined ? vendor : `${vendor}\0${session}`;
        const banKey = `${vendor}\0${session ?? ""}`;
        const label = this.tracked.has(dest) ? dest : OTHER_DESTINATION;
        const port = https ? this.pattern.ports.https : this.pattern.ports.http;
        const origin = `${https ? "https" : "http"}://${dest}:${port}`;
        const path = `/bytes/${size}`;
        const body = this.pattern.requestBytes > 0 ? Buffer.alloc(this.pattern.requestBytes, 97) : undefined;
        let outcome: Outcome = "network_error";
        for (let attempt = 0; attempt <= this.pattern.retries; attempt++) {
            if (attempt > 0) {
                this.retries.labels(vendor).inc();
                const delay = this.pattern.backoffMs * 2 ** (attempt - 1) * (0.5 + this.random());
                await new Promise((r) => setTimeout(r, delay));
            }
            // Ban feedback, as crawlers should give it: a ban seen inside a tunnel (only we see it) is reported to the
            // gateway on our next plain-HTTP request through it (request headers of HTTPS go inside the tunnel), in
            // the same session, so that the gateway charges it to the session's pool.
            const ban = https ? undefined : this.pendingBans.get(banKey);
            if (ban !== undefined) this.pendingBans.delete(banKey);
            try {
                const res = await exchange(this.dispatchers.get(via) as Undici.Dispatcher, {
                    origin,
                    path,
                    method: body ? "POST" : "GET",
                    body,
                    headers: ban === undefined ? undefined : { [BAN_HEADER]: ban },
                    headersTimeout: this.pattern.timeoutMs,
                    bodyTimeout: this.pattern.timeoutMs,
                });
                this.child(this.bytes, `b\0${vendor}`, vendor).inc(res.bytes);
                const status = res.status;
                this.countStatus(vendor, label, String(status));
                // A site's 403 or 429 to a proxy exit is a ban; over plain HTTP the gateway saw it too, but not
                // that the crawler took it as one.
                if ((status === 403 || status === 429) && (https || !res.refused)) this.pendingBans.set(banKey, dest);
                // Plain HTTP goes through the proxy, whose own 5xx arrive as responses: retry those.
                if (!https && RETRYABLE.has(status) && attempt < this.pattern.retries) continue;
                outcome = status < 400 ? "ok" : "http_error";
                break;
            } catch (e) {
                const err = e as Error & { code?: string };
                const proxyStatus = /Proxy response \(([0-9]{3})\)/.exec(err.message)?.[1];
                if (proxyStatus) {
                    outcome = "proxy_error";
                    if (RETRYABLE.has(Number(proxyStatus)) && attempt < this.pattern.retries) continue;
                    break;
                }
                outcome = /Timeout/i.test(err.code ?? "") || /timeout/i.test(err.message) ? "timeout" : "network_error";
                if (outcome === "network_error" && attempt < this.pattern.retries && !this.stopping) continue;
                break;
            }
        }
        const scheme = https ? "https" : "http";
        this.child(
            this.requests,
            `r\0${vendor}\0${label}\0${scheme}\0${outcome}`,
            vendor,
            label,
            scheme,
            outcome,
        ).inc();
        const v = (this.byVendor[vendor] ??= {});
        v[outcome] = (v[outcome] ?? 0) + 1;
    }

    private child(metric: Counter<string> | Gauge<string>, key: string, ...labels: string[]) {
        let c = this.children.get(key);
        if (!c) {
            c = metric.labels(...labels) as { inc(n?: number): void; dec(n?: number): void };
            this.children.set(key, c);
        }
        return c;
    }

    private countStatus(vendor: string, destination: string, status: string): void {
        this.child(this.upstream, `u\0${vendor}\0${destination}\0${status}`, vendor, destination, status).inc();
        const s = (this.statuses[vendor] ??= {});
        s[status] = (s[status] ?? 0) + 1;
    }

    /** Stops scheduling, lets in-flight requests finish (up to `graceMs`), and returns the summary. */
    async stop(graceMs = 10_000): Promise<Summary> {
        if (!this.stopping) {
            this.stopping = true;
            if (this.timer) clearInterval(this.timer);
            for (const v of this.queue.splice(0)) this.queueDepth.labels(v).dec();
            const deadline = new Promise((r) => setTimeout(r, graceMs).unref());
            await Promise.race([Promise.allSettled([...this.pending]), deadline]);
            await Promise.all([...this.dispatchers.values()].map((d) => d.close().catch(() => undefined)));
            await new Promise<void>((r) => (this.ops ? this.ops.close(() => r()) : r()));
            this.doneResolve?.();
        }
        return this.summary();
    }

    summary(): Summary {
        return {
            seconds: Math.round((performance.now() - this.startedAt) / 100) / 10,
            started: this.started,
            finished: this.finished,
            shed: this.shed,
            byVendor: this.byVendor,
            statuses: this.statuses,
        };
    }
}
