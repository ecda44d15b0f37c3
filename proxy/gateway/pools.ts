/**
 * Pool health: credentials, weighted choice among the available pools, active probes and passive ejection.
 *
 * A pool is available when its probes have not marked it down (failuresToDown probe failures in a row; back after
 * successesToUp successes in a row) and it is not ejected. Passive ejection follows Envoy's outlier detection
 * (failure percentage): within a sliding window, at least `minRequests` outcomes, at least `failureRatio` of them
 * the vendor's fault (classify.ts), from at least `minDestinations` destinations. Only the classifier's `vendor`
 * outcomes count, so a destination's errors, or one crawler hammering one broken destination, never eject a pool.
 * Ejection lasts `ejectionMs`, doubling each time up to `maxEjectionMs`; a probe success streak ends it early (as
 * Envoy's `successful_active_health_check_uneject_host`).
 *
 * When no pool is available, `pick` chooses among all pools by weight anyway (panic mode, as Envoy's panic
 * threshold): a crawler then gets the vendor's real answer rather than a 503 from us.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as net from "net";
import { Fault } from "../../catalog/datamodel";
import { GatewayFileConfig, GatewayPool } from "./config";
import { readProxyResponseHead } from "./upstream";

type HealthConfig = GatewayFileConfig["health"];
type ProbeConfig = GatewayFileConfig["probe"];

const BUCKETS = 10;

interface Bucket {
    start: number;
    total: number;
    failures: number;
    /** Destinations of the vendor faults in this bucket (at most minDestinations kept). */
    readonly failedDestinations: Set<string>;
}

export interface PoolState {
    readonly config: GatewayPool;
    /** `Basic <base64 user:password>`, read once from the mounted Secret at start. */
    readonly authorization: string;
    /** Marked down by probes. */
    probeDown: boolean;
    consecutiveProbeFailures: number;
    consecutiveProbeSuccesses: number;
    /** Ejected (passively) until this time, ms since epoch; 0 when not ejected. */
    ejectedUntil: number;
    /** Ejections in a row (each doubles the next one's length). */
    ejections: number;
    /** What the last availability check said (to report changes once). */
    lastAvailable: boolean;
    readonly buckets: Bucket[];
}

export function readCredentials(pool: GatewayPool): string {
    const read = (f: string) => fs.readFileSync(f, "utf8").replace(/\r?\n$/, "");
    return "Basic " + Buffer.from(`${read(pool.usernameFile)}:${read(pool.passwordFile)}`).toString("base64");
}

export interface PoolChoice {
    readonly pool: PoolState;
    /** No pool was available: chosen among all (panic mode). */
    readonly panic: boolean;
}

export class Pools {
    readonly all: PoolState[];
    private readonly bucketMs: number;

    constructor(
        pools: readonly GatewayPool[],
        private readonly probe: Pick<ProbeConfig, "failuresToDown" | "successesToUp">,
        private readonly health: HealthConfig,
        /** Called when a pool becomes available or unavailable, and when panic mode starts or ends. */
        private readonly onChange: (pool: string, up: boolean, why: string) => void,
        private readonly onPanic: (panic: boolean) => void,
        credentials: (p: GatewayPool) => string = readCredentials,
        private readonly random: () => number = Math.random,
        private readonly now: () => number = Date.now,
    ) {
        this.bucketMs = Math.max(1, Math.floor(health.windowMs / BUCKETS));
        this.all = pools.map((p) => ({
            config: p,
            authorization: credentials(p),
            probeDown: false,
            consecutiveProbeFailures: 0,
            consecutiveProbeSuccesses: 0,
            ejectedUntil: 0,
            ejections: 0,
            lastAvailable: true,
            buckets: [],
        }));
        for (const p of this.all) onChange(p.config.name, true, "start");
        onPanic(false);
    }

    private panicking = false;

    available(p: PoolState, now = this.now()): boolean {
        return p.config.weight > 0 && !p.probeDown && now >= p.ejectedUntil;
    }

    anyAvailable(): boolean {
        const now = this.now();
        return this.all.some((p) => this.available(p, now));
    }

    /** The available pools other than `exclude`; when no pool at all is available, every pool with weight (panic). */
    private candidates(exclude?: PoolState): { candidates: PoolState[]; panic: boolean } {
        const now = this.now();
        const candidates = this.all.filter((p) => p !== exclude && this.available(p, now));
        if (candidates.length > 0 || this.all.some((p) => this.available(p, now))) return { candidates, panic: false };
        return { candidates: this.all.filter((p) => p !== exclude && p.config.weight > 0), panic: true };
    }

    /**
     * A pool chosen by weight among the available ones other than `exclude`. When no pool at all is available,
     * among every pool with weight (panic). Undefined only when `exclude` was the one candidate.
     */
    pick(exclude?: PoolState): PoolChoice | undefined {
        const { candidates, panic } = this.candidates(exclude);
        const total = candidates.reduce((s, p) => s + p.config.weight, 0);
        if (total <= 0) return undefined;
        let r = this.random() * total;
        for (const p of candidates) {
            r -= p.config.weight;
            if (r < 0) return { pool: p, panic };
        }
        return { pool: candidates[candidates.length - 1], panic };
    }

    /**
     * The pool of a crawler's session: rendezvous (highest random weight) hashing of the session key over the
     * candidates `pick` would use, so a key keeps its pool while that pool is available and only the keys of a pool
     * that goes away move. Weighted: score = -weight / ln(hash), hash uniform in (0, 1).
     */
    pickFor(key: string, exclude?: PoolState): PoolChoice | undefined {
        const { candidates, panic } = this.candidates(exclude);
        let best: PoolState | undefined;
        let bestScore = -Infinity;
        for (const p of candidates) {
            if (p.config.weight <= 0) continue;
            const h = createHash("sha256").update(`${p.config.name}\0${key}`).digest().readUInt32BE(0);
            const score = -p.config.weight / Math.log((h + 0.5) / 4294967296);
            if (score > bestScore) {
                bestScore = score;
                best = p;
            }
        }
        return best ? { pool: best, panic } : undefined;
    }

    /**
     * One outcome of real traffic, as the classifier charged it, to `destination` (host:port). Only vendor faults
     * that `ejects` (the cause is the vendor's infrastructure, not a lost session or our account) count toward
     * ejection.
     */
    record(p: PoolState, fault: Fault, destination: string, ejects = fault === "vendor"): void {
        if (fault === "gateway") return;
        const now = this.now();
        const b = this.bucket(p, now);
        b.total++;
        if (fault !== "vendor" || !ejects) return;
        b.failures++;
        if (b.failedDestinations.size < this.health.minDestinations) b.failedDestinations.add(destination);
        if (now < p.ejectedUntil) return;
        let total = 0;
        let failures = 0;
        const dests = new Set<string>();
        for (const x of p.buckets) {
            if (x.start <= now - this.health.windowMs) continue;
            total += x.total;
            failures += x.failures;
            for (const d of x.failedDestinations) dests.add(d);
        }
        if (
            total >= this.health.minRequests &&
            failures / total >= this.health.failureRatio &&
            dests.size >= this.health.minDestinations
        ) {
            p.ejections++;
            const ms = Math.min(this.health.ejectionMs * 2 ** (p.ejections - 1), this.health.maxEjectionMs);
            p.ejectedUntil = now + ms;
            p.buckets.length = 0;
            this.refresh(`ejected for ${ms} ms: ${failures} of ${total} outcomes were the vendor's`);
        }
    }

    /** A probe's result: flips probe health after enough in a row; a success streak also ends an ejection. */
    recordProbe(p: PoolState, ok: boolean): void {
        if (ok) {
            p.consecutiveProbeFailures = 0;
            p.consecutiveProbeSuccesses++;
            if (p.consecutiveProbeSuccesses >= this.probe.successesToUp && (p.probeDown || p.ejectedUntil > 0)) {
                p.probeDown = false;
                p.ejectedUntil = 0;
                p.ejections = 0;
            }
        } else {
            p.consecutiveProbeSuccesses = 0;
            p.consecutiveProbeFailures++;
            if (p.consecutiveProbeFailures >= this.probe.failuresToDown) p.probeDown = true;
        }
        this.refresh("probes");
    }

    /** Reports availability changes (ejections expire with time: called on a timer too) and panic mode. */
    refresh(why = "ejection over"): void {
        const now = this.now();
        for (const p of this.all) {
            const up = this.available(p, now);
            if (up !== p.lastAvailable) {
                p.lastAvailable = up;
                this.onChange(p.config.name, up, why);
            }
        }
        const panic = !this.all.some((p) => p.lastAvailable);
        if (panic !== this.panicking) {
            this.panicking = panic;
            this.onPanic(panic);
        }
    }

    private bucket(p: PoolState, now: number): Bucket {
        const last = p.buckets[p.buckets.length - 1];
        if (last && now < last.start + this.bucketMs) return last;
        const b: Bucket = { start: now, total: 0, failures: 0, failedDestinations: new Set() };
        p.buckets.push(b);
        if (p.buckets.length > BUCKETS) p.buckets.shift();
        return b;
    }
}

/**
 * One probe: CONNECT to `destination` through the pool, success on a 2xx answer within `timeoutMs`. The tunnel is
 * closed at once; no byte goes to the destination.
 */
export function probePool(p: PoolState, destination: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
        let done = false;
        const socket = net.connect({ host: p.config.host, port: p.config.port });
        const finish = (ok: boolean) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            socket.destroy();
            resolve(ok);
        };
        const timer = setTimeout(() => finish(false), timeoutMs);
        socket.once("error", () => finish(false));
        socket.once("connect", () => {
            socket.write(
                `CONNECT ${destination} HTTP/1.1\r\nHost: ${destination}\r\nProxy-Authorization: ${p.authorization}\r\n\r\n`,
            );
            readProxyResponseHead(socket, 16_384).then(
                (head) => finish(head.status >= 200 && head.status < 300),
                () => finish(false),
            );
        });
    });
}
