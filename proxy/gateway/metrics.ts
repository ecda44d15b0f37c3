/**
 * The gateway's metrics: the data model of catalog/datamodel.ts and the gateway's own (catalog/gateway.ts), on a
 * registry of its own with the process metrics. The counters of the hot path (requests, bytes, outcomes, causes) are
 * plain numbers per series, added to prom-client's counters when the registry is collected (a scrape), so a request
 * costs a Map lookup and an addition rather than prom-client's label hashing and validation per increment.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { CAUSES, Cause, DATA_MODEL, DURATION_BUCKETS_MS, FAULTS, Fault } from "../../catalog/datamodel";
import { GATEWAY_METRICS, GATEWAY_POOL, POOL_QUALITY_METRICS } from "../../catalog/gateway";
import { OTHER_DESTINATION } from "../../catalog/datamodel";
import type { ExitIpTracker } from "./exit-ips";

type HistogramChild = ReturnType<Histogram<string>["labels"]>;

/** One series of a batched counter: its label values and what was counted since the last scrape. */
interface Cell {
    readonly labels: Record<string, string>;
    pending: number;
}

/**
 * A counter the hot path increments as a plain number: prom-client's own `inc` (even on a cached child) hashes and
 * validates the label set on every call. What was counted goes into the prom-client counter when it is collected
 * (every scrape and every read of the registry), so the exposition is the same.
 */
class BatchedCounter {
    readonly counter: Counter<string>;
    private readonly cells = new Map<string, Cell>();
    private readonly labelNames: readonly string[];

    constructor(spec: { name: string; help: string; labelNames: string[]; registers: Registry[] }) {
        this.labelNames = spec.labelNames;
        this.counter = new Counter({ ...spec, collect: () => this.flush() });
    }

    /** The series for `values` (in label-name order) under `key`, a string unique to them. */
    cell(key: string, values: readonly string[]): Cell {
        let c = this.cells.get(key);
        if (!c) {
            const labels: Record<string, string> = {};
            this.labelNames.forEach((n, i) => (labels[n] = values[i]));
            // Created now (at 0), so the series exists from the next scrape even before it is flushed.
            this.counter.inc(labels, 0);
            c = { labels, pending: 0 };
            this.cells.set(key, c);
        }
        return c;
    }

    flush(): void {
        for (const c of this.cells.values()) {
            if (c.pending === 0) continue;
            this.counter.inc(c.labels, c.pending);
            c.pending = 0;
        }
    }
}

export class GatewayMetrics {
    readonly registry = new Registry();
    private readonly requests: BatchedCounter;
    private readonly duration: Histogram<string>;
    private readonly bandwidth: BatchedCounter;
    private readonly destBandwidth: BatchedCounter;
    readonly poolHealth: Gauge<string>;
    private readonly inflight: Gauge<string>;
    private readonly retries: Counter<string>;
    private readonly failures: Counter<string>;
    private readonly probes: Counter<string>;
    readonly probeDuration: Gauge<string>;
    private readonly cut: Counter<string>;
    private readonly outcomes: BatchedCounter;
    private readonly panic: Gauge<string>;
    private readonly staleRetries: Counter<string>;
    private readonly causes: BatchedCounter;
    private readonly retriesByCause: Counter<string>;
    private readonly bans: Counter<string>;
    private readonly histograms = new Map<string, HistogramChild>();
    /** The open tunnels and requests, read at collection (countInflight). */
    private inflightNow: () => number = () => 0;

    constructor(
        readonly vendor: string,
        processMetrics = true,
        /** When false, requests and bytes are not recorded (to measure what recording costs). */
        private readonly enabled = true,
        buckets: readonly number[] = DURATION_BUCKETS_MS,
    ) {
        const r = [this.registry];
        const spec = <T extends { name: string; help: string; labels: readonly string[] }>(s: T) => ({
            name: s.name,
            help: s.help,
            labelNames: [...s.labels],
            registers: r,
        });
        this.requests = new BatchedCounter(spec(DATA_MODEL.requests));
        this.duration = new Histogram({ ...spec(DATA_MODEL.duration), buckets: [...buckets] });
        this.bandwidth = new BatchedCounter(spec(DATA_MODEL.bandwidth));
        this.destBandwidth = new BatchedCounter(spec(DATA_MODEL.destinationBandwidth));
        this.poolHealth = new Gauge(spec(DATA_MODEL.poolHealth));
        // Read when the registry is collected: prom-client's inc/dec hash the label set on every call.
        this.inflight = new Gauge({
            ...spec(GATEWAY_METRICS.inflight),
            collect: () => this.inflight.labels(vendor).set(this.inflightNow()),
        });
        this.retries = new Counter(spec(GATEWAY_METRICS.retries));
        this.failures = new Counter(spec(GATEWAY_METRICS.upstreamFailures));
        this.probes = new Counter(spec(GATEWAY_METRICS.probes));
        this.probeDuration = new Gauge(spec(GATEWAY_METRICS.probeDuration));
        this.cut = new Counter(spec(GATEWAY_METRICS.cutAtShutdown));
        this.outcomes = new BatchedCounter(spec(DATA_MODEL.outcomes));
        this.panic = new Gauge(spec(GATEWAY_METRICS.panic));
        this.staleRetries = new Counter(spec(GATEWAY_METRICS.staleRetries));
        this.causes = new BatchedCounter(spec(DATA_MODEL.causes));
        this.retriesByCause = new Counter(spec(GATEWAY_METRICS.retriesByCause));
        this.bans = new Counter(spec(DATA_MODEL.bans));
        this.panic.labels(vendor).set(0);
        this.cut.labels(vendor).inc(0);
        if (processMetrics) collectDefaultMetrics({ register: this.registry });
    }

    /** Where the in-flight gauge reads the open tunnels and requests when it is collected. */
    countInflight(read: () => number): void {
        this.inflightNow = read;
    }

    /** One finished request or tunnel answer: counted once, with the time to the proxy's answer. */
    request(pool: string, destination: string, status: number, protocol: string, durationMs: number): void {
        if (!this.enabled) return;
        const s = String(status);
        this.requests.cell(`${pool}\0${destination}\0${s}\0${protocol}`, [this.vendor, pool, destination, s, protocol])
            .pending++;
        let h = this.histograms.get(pool);
        if (!h) {
            h = this.duration.labels(this.vendor, pool);
            this.histograms.set(pool, h);
        }
        h.observe(durationMs);
    }

    /**
     * The pools' account (the SLO's counter): created at 0 for every pool's none/vendor/destination, and for the
     * gateway's own answers (`pool="none", fault="gateway"`), so `rate()` sees a first failure. Counted even with
     * metrics off (health and alerts depend on it).
     */
    createOutcomes(pools: readonly string[]): void {
        for (const pool of pools)
            for (const fault of FAULTS)
                if (fault !== "gateway") this.outcomes.cell(`${pool}\0${fault}`, [this.vendor, pool, fault]);
        this.outcomes.cell(`${GATEWAY_POOL}\0gateway`, [this.vendor, GATEWAY_POOL, "gateway"]);
        for (const pool of pools) {
            for (const cause of CAUSES)
                if (cause !== "gateway") this.causes.cell(`${pool}\0${cause}`, [this.vendor, pool, cause]);
            this.bans.labels(this.vendor, pool, OTHER_DESTINATION).inc(0);
        }
        this.causes.cell(`${GATEWAY_POOL}\0gateway`, [this.vendor, GATEWAY_POOL, "gateway"]);
    }

    outcome(pool: string, fault: Fault, cause?: Cause): void {
        this.outcomes.cell(`${pool}\0${fault}`, [this.vendor, pool, fault]).pending++;
        if (cause) this.causes.cell(`${pool}\0${cause}`, [this.vendor, pool, cause]).pending++;
    }

    /** An answer the gateway gave itself. */
    gatewayOutcome(): void {
        this.outcome(GATEWAY_POOL, "gateway", "gateway");
    }

    /** A retry on another pool after `pool` failed with `cause`. */
    retryCause(pool: string, cause: Cause): void {
        this.retriesByCause.labels(this.vendor, pool, cause).inc();
    }

    /** A ban a crawler reported (pool "none" when it did not say; destination allowlist-bucketed). */
    ban(pool: string, destination: string): void {
        this.bans.labels(this.vendor, pool, destination).inc();
    }

    setPanic(on: boolean): void {
        this.panic.labels(this.vendor).set(on ? 1 : 0);
    }

    staleRetry(pool: string): void {
        this.staleRetries.labels(this.vendor, pool).inc();
    }

    /** Bytes relayed: egress (crawler to destination) and ingress (back). */
    bytes(pool: string, destination: string, egress: number, ingress: number): void {
        if (!this.enabled) return;
        if (egress > 0) {
            this.bandwidth.cell(`${pool}\0e`, [this.vendor, pool, "egress"]).pending += egress;
            this.destBandwidth.cell(`${destination}\0e`, [this.vendor, destination, "egress"]).pending += egress;
        }
        if (ingress > 0) {
            this.bandwidth.cell(`${pool}\0i`, [this.vendor, pool, "ingress"]).pending += ingress;
            this.destBandwidth.cell(`${destination}\0i`, [this.vendor, destination, "ingress"]).pending += ingress;
        }
    }

    retry(pool: string): void {
        this.retries.labels(this.vendor, pool).inc();
    }

    failure(pool: string, reason: string): void {
        this.failures.labels(this.vendor, pool, reason).inc();
    }

    probe(pool: string, ok: boolean, ms: number): void {
        this.probes.labels(this.vendor, pool, ok ? "success" : "failure").inc();
        this.probeDuration.labels(this.vendor, pool).set(ms);
    }

    setHealth(pool: string, up: boolean): void {
        this.poolHealth.labels(this.vendor, pool).set(up ? 1 : 0);
    }

    /**
     * Pool quality (only when the gateway learns exit IPs): 3 windows x 3 gauges and 2 session counters per pool,
     * created at start; the gauges read the sketches at scrape time.
     */
    exportExitIps(tracker: ExitIpTracker): void {
        if (!tracker.enabled) return;
        const vendor = this.vendor;
        const r = [this.registry];
        const q = POOL_QUALITY_METRICS;
        const spec = (m: (typeof q)[keyof typeof q]) => ({
            name: m.name,
            help: m.help,
            labelNames: [...m.labels],
            registers: r,
        });
        const refresh = () => {
            for (const pool of tracker.pools.keys())
                for (const w of tracker.read(pool)) {
                    distinct.labels(vendor, pool, w.window).set(w.distinct);
                    samples.labels(vendor, pool, w.window).set(w.samples);
                    reuse.labels(vendor, pool, w.window).set(w.reuse);
                }
        };
        // The first of the three to be collected reads the sketches for all three.
        const distinct: Gauge<string> = new Gauge({ ...spec(q.distinct), collect: refresh });
        const samples = new Gauge(spec(q.samples));
        const reuse = new Gauge(spec(q.reuse));
        const requests = new Counter(spec(q.sessionRequests));
        const breaks = new Counter(spec(q.sessionBreaks));
        refresh();
        for (const pool of tracker.pools.keys()) {
            requests.labels(vendor, pool).inc(0);
            breaks.labels(vendor, pool).inc(0);
        }
        tracker.onSession = (pool, broke) => {
            requests.labels(vendor, pool).inc();
            if (broke) breaks.labels(vendor, pool).inc();
        };
    }

    cutTunnels(n: number): void {
        this.cut.labels(this.vendor).inc(n);
    }
}
