/**
 * Exit-IP diversity without a label per IP: a HyperLogLog sketch per pool over sliding windows (5 m, 1 h, 24 h).
 *
 * Sketch: HyperLogLog (Flajolet et al. 2007) with 2^12 = 4096 one-byte registers over a 32-bit hash (FNV-1a of the
 * address, then murmur3's finaliser to spread the bits), linear counting below 2.5 m. Standard error
 * 1.04 / sqrt(4096) = 1.6 %; estimates stay within 5 % (3 sigma) from 1 to ~10^8 distinct addresses.
 *
 * Windows: each window is a ring of sub-buckets (5 m: 5 x 1 m, 1 h: 12 x 5 m, 24 h: 24 x 1 h), each a sketch and
 * an exact sample count; a window's estimate merges its buckets (register-wise max). A window therefore covers
 * between (buckets - 1) and buckets sub-intervals: the oldest bucket ages out whole.
 * Memory per pool: (5 + 12 + 24) x 4 KiB = 164 KiB, whatever the number of addresses or samples.
 *
 * Reuse: the samples whose address was already seen in the window are the samples minus the first sightings, and
 * the first sightings are the distinct addresses, so reuse = 1 - distinct / samples (with the sketch's error).
 */

import * as net from "net";
import * as tls from "tls";
import { GatewayFileConfig } from "./config";
import { readProxyResponseHead } from "./upstream";

const P = 12;
const M = 1 << P;
const ALPHA = 0.7213 / (1 + 1.079 / M);

/** The sketch's relative standard error (1.04 / sqrt(m)). */
export const SKETCH_STANDARD_ERROR = 1.04 / Math.sqrt(M);
/** Bytes of one sketch. */
export const SKETCH_BYTES = M;

/** 32-bit hash of a string: FNV-1a, then murmur3's fmix32 so that near addresses land far apart. */
export function hash32(s: string): number {
    let h = 0x811c9dc5;
    for (let i = 0; i < s.length; i++) {
        h ^= s.charCodeAt(i);
        h = Math.imul(h, 0x01000193);
    }
    h ^= h >>> 16;
    h = Math.imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = Math.imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
}

/** A HyperLogLog sketch: fixed 4 KiB. */
export class HyperLogLog {
    readonly registers = new Uint8Array(M);

    add(value: string): void {
        const h = hash32(value);
        const index = h >>> (32 - P);
        // Rank: position of the first 1 bit in the remaining 32 - P bits (32 - P + 1 when they are all 0).
        const rest = (h << P) >>> 0;
        const rank = rest === 0 ? 32 - P + 1 : Math.clz32(rest) + 1;
        if (rank > this.registers[index]) this.registers[index] = rank;
    }

    /** Register-wise max of `other` into this sketch (the union of both sets). */
    merge(other: HyperLogLog): void {
        const a = this.registers;
        const b = other.registers;
        for (let i = 0; i < M; i++) if (b[i] > a[i]) a[i] = b[i];
    }

    clear(): void {
        this.registers.fill(0);
    }

    estimate(): number {
        let sum = 0;
        let zeros = 0;
        for (let i = 0; i < M; i++) {
            const r = this.registers[i];
            sum += 1 / 2 ** r;
            if (r === 0) zeros++;
        }
        const raw = (ALPHA * M * M) / sum;
        if (raw <= 2.5 * M && zeros > 0) return M * Math.log(M / zeros);
        // Large-range correction for a 32-bit hash (collisions), relevant beyond ~10^8.
        const two32 = 2 ** 32;
        if (raw > two32 / 30) return -two32 * Math.log(1 - raw / two32);
        return raw;
    }
}

/** A sliding window: a ring of `buckets` sub-buckets of `bucketMs` each. */
export class WindowedSketch {
    private readonly sketches: HyperLogLog[];
    private readonly samples: number[];
    private readonly starts: number[];
    private readonly scratch = new HyperLogLog();

    constructor(
        readonly bucketMs: number,
        readonly buckets: number,
    ) {
        this.sketches = Array.from({ length: buckets }, () => new HyperLogLog());
        this.samples = new Array<number>(buckets).fill(0);
        this.starts = new Array<number>(buckets).fill(-1);
    }

    private slot(now: number): number {
        const start = Math.floor(now / this.bucketMs) * this.bucketMs;
        const i = Math.floor(now / this.bucketMs) % this.buckets;
        if (this.starts[i] !== start) {
            this.starts[i] = start;
            this.samples[i] = 0;
            this.sketches[i].clear();
        }
        return i;
    }

    add(value: string, now: number): void {
        const i = this.slot(now);
        this.sketches[i].add(value);
        this.samples[i]++;
    }

    private live(now: number): number[] {
        const oldest = Math.floor(now / this.bucketMs) * this.bucketMs - (this.buckets - 1) * this.bucketMs;
        const out: number[] = [];
        for (let i = 0; i < this.buckets; i++) if (this.starts[i] >= oldest && this.starts[i] <= now) out.push(i);
        return out;
    }

    /** Distinct values and samples in the window ending at `now`. */
    read(now: number): { distinct: number; samples: number } {
        const live = this.live(now);
        this.scratch.clear();
        let samples = 0;
        for (const i of live) {
            this.scratch.merge(this.sketches[i]);
            samples += this.samples[i];
        }
        const distinct = samples === 0 ? 0 : Math.min(samples, Math.round(this.scratch.estimate()));
        return { distinct, samples };
    }

    /** Bytes this window holds (sketches, not counting the shared scratch). */
    get bytes(): number {
        return this.buckets * SKETCH_BYTES;
    }
}

/** The windows every pool is counted over: label value, sub-bucket length, number of sub-buckets. */
export const EXIT_IP_WINDOWS = [
    { window: "5m", bucketMs: 60_000, buckets: 5 },
    { window: "1h", bucketMs: 300_000, buckets: 12 },
    { window: "24h", bucketMs: 3_600_000, buckets: 24 },
] as const;

export interface WindowReading {
    readonly window: string;
    readonly distinct: number;
    readonly samples: number;
    /** Share of samples whose address was already seen in the window, 0..1 (0 with no samples). */
    readonly reuse: number;
}

/** One pool's exit addresses over the three windows. */
export class PoolExitIps {
    private readonly windows = EXIT_IP_WINDOWS.map((w) => ({
        window: w.window,
        sketch: new WindowedSketch(w.bucketMs, w.buckets),
    }));

    add(ip: string, now = Date.now()): void {
        for (const w of this.windows) w.sketch.add(ip, now);
    }

    read(now = Date.now()): WindowReading[] {
        return this.windows.map((w) => {
            const { distinct, samples } = w.sketch.read(now);
            return { window: w.window, distinct, samples, reuse: samples === 0 ? 0 : 1 - distinct / samples };
        });
    }

    get bytes(): number {
        return this.windows.reduce((n, w) => n + w.sketch.bytes, 0);
    }
}

/**
 * Sticky sessions: the last exit address of each session, to count requests whose address changed mid-session.
 * Bounded: at most `max` sessions are remembered (the oldest forgotten first), ~100 bytes each.
 */
export class StickySessions {
    private readonly last = new Map<string, string>();

    constructor(private readonly max = 10_000) {}

    /** Records `ip` for `session`; true when the session had another address before (a break). */
    see(session: string, ip: string): boolean {
        const before = this.last.get(session);
        if (before !== undefined) this.last.delete(session);
        else if (this.last.size >= this.max) this.last.delete(this.last.keys().next().value as string);
        this.last.set(session, ip);
        return before !== undefined && before !== ip;
    }

    get size(): number {
        return this.last.size;
    }
}

/** What the gateway knows of exit IPs: one sketch per pool, sticky sessions, and the session in usernames. */
export class ExitIpTracker {
    readonly pools = new Map<string, PoolExitIps>();
    private readonly sessions: StickySessions;
    private readonly pattern?: RegExp;
    /** Per pool and session: the counters of the caller (metrics). */
    onSession: (pool: string, broke: boolean) => void = () => undefined;

    constructor(
        readonly cfg: GatewayFileConfig["exitIp"],
        pools: readonly string[],
        private readonly now: () => number = Date.now,
    ) {
        this.sessions = new StickySessions(cfg.maxSessions);
        if (cfg.sessionPattern) this.pattern = new RegExp(cfg.sessionPattern);
        if (this.enabled) for (const p of pools) this.pools.set(p, new PoolExitIps());
    }

    /** Exit IPs are learned (from the header, the echo probe, or both). */
    get enabled(): boolean {
        return this.cfg.header !== "" || this.cfg.echo.url !== "";
    }

    /** The pools' answers carry the exit IP in a header. */
    get readsHeader(): boolean {
        return this.cfg.header !== "";
    }

    /** The crawler's username split into user and session by `sessionPattern`, or undefined. */
    private parse(authorization: string | undefined): { user: string; password: string; session: string } | undefined {
        if (!this.pattern || !authorization || !/^Basic /i.test(authorization)) return undefined;
        const text = Buffer.from(authorization.slice(6).trim(), "base64").toString("utf8");
        const colon = text.indexOf(":");
        if (colon < 0) return undefined;
        const m = this.pattern.exec(text.slice(0, colon));
        const user = m?.groups?.user;
        const session = m?.groups?.session;
        if (user === undefined || !session) return undefined;
        return { user, password: text.slice(colon + 1), session };
    }

    /** The session the crawler asked for in its Proxy-Authorization username, if any. */
    session(authorization: string | undefined): string | undefined {
        return this.parse(authorization)?.session;
    }

    /** The crawler's Proxy-Authorization without its session (what crawler authentication compares). */
    withoutSession(authorization: string | undefined): string | undefined {
        const p = this.parse(authorization);
        if (!p) return authorization;
        return "Basic " + Buffer.from(`${p.user}:${p.password}`).toString("base64");
    }

    /** The pool's Proxy-Authorization, with the session in its username (`sessionUsername`) when there is one. */
    authorization(poolAuthorization: string, session: string | undefined): string {
        if (session === undefined) return poolAuthorization;
        const text = Buffer.from(poolAuthorization.slice(6), "base64").toString("utf8");
        const colon = text.indexOf(":");
        const user = this.cfg.sessionUsername.replace("{user}", text.slice(0, colon)).replace("{session}", session);
        return "Basic " + Buffer.from(`${user}:${text.slice(colon + 1)}`).toString("base64");
    }

    /** An exit IP a pool reported for a request or tunnel (of `session`, if any). */
    learn(pool: string, ip: string, session?: string): void {
        const p = this.pools.get(pool);
        if (!p) return;
        const value = ip.trim().toLowerCase();
        if (!value || value.length > 64) return;
        p.add(value, this.now());
        if (session !== undefined) this.onSession(pool, this.sessions.see(`${pool}\0${session}`, value));
    }

    read(pool: string): WindowReading[] {
        return this.pools.get(pool)?.read(this.now()) ?? [];
    }
}

/**
 * The IP-echo probe: through `pool`, CONNECT to the echo endpoint's host and port, speak TLS inside the tunnel, GET
 * its path and read the address it answers (plain text, or JSON with `ip` or `origin`). One request per probe.
 */
export function echoProbe(
    pool: { host: string; port: number; authorization: string },
    echo: { url: string; insecureSkipVerify: boolean },
    timeoutMs: number,
): Promise<string> {
    const u = new URL(echo.url);
    const port = Number(u.port || 443);
    const authority = `${u.hostname}:${port}`;
    return new Promise((resolve, reject) => {
        let secure: tls.TLSSocket | undefined;
        const socket = net.connect({ host: pool.host, port: pool.port });
        const fail = (e: Error) => {
            clearTimeout(timer);
            secure?.destroy();
            socket.destroy();
            reject(e);
        };
        const timer = setTimeout(() => fail(new Error(`no echo within ${timeoutMs} ms`)), timeoutMs);
        socket.once("error", fail);
        socket.once("connect", () => {
            socket.write(
                `CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\nProxy-Authorization: ${pool.authorization}\r\n\r\n`,
            );
            readProxyResponseHead(socket, 16_384).then((head) => {
                if (head.status < 200 || head.status > 299) return fail(new Error(`CONNECT answered ${head.status}`));
                if (head.rest.length > 0) socket.unshift(head.rest);
                const s = tls.connect({
                    socket,
                    servername: net.isIP(u.hostname) ? undefined : u.hostname,
                    rejectUnauthorized: !echo.insecureSkipVerify,
                    ALPNProtocols: ["http/1.1"],
                });
                secure = s;
                let text = "";
                s.on("error", fail);
                s.on("data", (c: Buffer) => {
                    text += c.toString("latin1");
                    if (text.length > 16_384) fail(new Error("echo answer too large"));
                });
                s.on("end", () => {
                    clearTimeout(timer);
                    s.destroy();
                    const ip = parseEcho(text);
                    if (ip) resolve(ip);
                    else reject(new Error(`no address in the echo answer ${JSON.stringify(text.slice(0, 200))}`));
                });
                s.once("secureConnect", () =>
                    s.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nConnection: close\r\n\r\n`),
                );
            }, fail);
        });
    });
}

/** The address in an IP-echo HTTP answer (status 200; body an address, or JSON with `ip` or `origin`). */
export function parseEcho(answer: string): string | undefined {
    if (!/^HTTP\/1\.[01] 200/.test(answer)) return undefined;
    const at = answer.indexOf("\r\n\r\n");
    if (at < 0) return undefined;
    let body = answer.slice(at + 4).trim();
    if (body.startsWith("{")) {
        try {
            const j = JSON.parse(body) as { ip?: unknown; origin?: unknown };
            body = String(j.ip ?? j.origin ?? "");
        } catch {
            return undefined;
        }
    }
    const ip = body.split(",")[0].trim();
    return net.isIP(ip) ? ip : undefined;
}
