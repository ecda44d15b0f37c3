/**
 * The traffic pattern of the `generate` mode: a JSON/YAML document (the ConfigMap the load generator mounts),
 * validated with errors that name each key path.
 */
import { Fields, ProgramConfigError } from "../common/config-file";

export const SCHEDULES = ["constant", "ramp", "burst", "diurnal"] as const;
export type Schedule = (typeof SCHEDULES)[number];

export interface Pattern {
    /** Vendors to spread traffic over: the proxy URL crawlers would set, and the share of requests. */
    readonly vendors: readonly { readonly name: string; readonly proxyUrl: string; readonly weight: number }[];
    /** Destination hosts, most popular first; requests pick them by a Zipf law of exponent `zipfExponent`. */
    readonly destinations: readonly string[];
    readonly zipfExponent: number;
    /** Share of requests made over HTTPS (CONNECT then TLS); the rest are plain HTTP (absolute-form). */
    readonly httpsShare: number;
    /** Response sizes asked for (`/bytes/N`), picked uniformly. */
    readonly responseBytes: readonly number[];
    /** Request body size (0: GET; else POST with a body). */
    readonly requestBytes: number;
    /** Use HTTP/2 inside HTTPS tunnels when the destination offers it. */
    readonly http2: boolean;
    readonly rate: {
        readonly schedule: Schedule;
        /** Requests per second at the schedule's peak. */
        readonly requestsPerSecond: number;
        /** Lowest rate as a fraction of the peak (ramp start, burst trough, diurnal night). */
        readonly minFraction: number;
        /** Period of the schedule: ramp length, burst cycle, a "day" for diurnal. */
        readonly periodSeconds: number;
    };
    /** Requests in flight at most; due requests beyond it wait in the queue (loadgen_queue_depth). */
    readonly concurrency: number;
    readonly timeoutMs: number;
    readonly retries: number;
    readonly backoffMs: number;
    /** Stop after this many seconds (0: run until SIGTERM). */
    readonly durationSeconds: number;
    /** Skip TLS verification (the target's certificate is self-signed). */
    readonly insecureTls: boolean;
    /** Ports of the destinations, http and https (the target emulator listens on non-default ports in tests). */
    readonly ports: { readonly http: number; readonly https: number };
    readonly metricsPort: number;
    /** Destination label values (the tracked list); other hosts are `other`. Defaults to every destination. */
    readonly trackedDestinations: readonly string[];
    /**
     * Sticky sessions, as crawlers keep them: a share of requests carries one of `keys` session keys per vendor (the
     * `X-Proxy-Monitor-Session` header, on the CONNECT or the plain-HTTP request), so the gateway keeps each key on
     * one pool and exit IP. Bans seen in a session are reported in that session (charged to its pool).
     */
    readonly sessions: { readonly share: number; readonly keys: number };
}

const HOST = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

export function validatePattern(raw: unknown, file = "pattern"): Pattern {
    const problems: string[] = [];
    const f = Fields.of(problems, "", raw);
    const vendors = f.list("vendors", 1).map((v, i) => {
        const r = Fields.of(problems, `vendors[${i}]`, v);
        return {
            name: r.str("name", undefined, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/),
            proxyUrl: r.str("proxyUrl", undefined, /^(direct|http:\/\/[^\s]+)$/),
            weight: r.num("weight", 1, 0, 1e6),
        };
    });
    if (vendors.length > 0 && vendors.every((v) => v.weight === 0))
        problems.push("vendors: expected a vendor with weight above 0");
    const destinations = f.strList("destinations", []);
    if (destinations.length === 0) problems.push("destinations: expected a list of at least 1 host, found nothing");
    destinations.forEach((d, i) => {
        if (!HOST.test(d)) problems.push(`destinations[${i}]: expected a host name, found ${JSON.stringify(d)}`);
    });
    const r = f.sub("rate", true);
    const ports = f.sub("ports", true);
    const sessions = f.sub("sessions", true);
    const sizes = f.obj.responseBytes === undefined ? [1024, 16_384, 65_536] : f.list("responseBytes", 1);
    const responseBytes = sizes.map((n, i) => {
        if (typeof n !== "number" || !Number.isInteger(n) || n < 0 || n > 100_000_000) {
            problems.push(`responseBytes[${i}]: expected an integer from 0 to 100000000, found ${JSON.stringify(n)}`);
            return 0;
        }
        return n;
    });
    const schedule = r.str("schedule", "constant", new RegExp(`^(${SCHEDULES.join("|")})$`)) as Schedule;
    const p: Pattern = {
        vendors,
        destinations,
        zipfExponent: f.num("zipfExponent", 1, 0, 5),
        httpsShare: f.num("httpsShare", 0.9, 0, 1),
        responseBytes,
        requestBytes: f.num("requestBytes", 0, 0, 10_000_000, true),
        http2: f.bool("http2", true),
        rate: {
            schedule,
            requestsPerSecond: r.num("requestsPerSecond", 10, 0.001, 1_000_000),
            minFraction: r.num("minFraction", 0.2, 0, 1),
            periodSeconds: r.num("periodSeconds", 600, 1, 604_800),
        },
        concurrency: f.num("concurrency", 32, 1, 100_000, true),
        timeoutMs: f.num("timeoutMs", 30_000, 1, 600_000, true),
        retries: f.num("retries", 1, 0, 10, true),
        backoffMs: f.num("backoffMs", 200, 0, 60_000, true),
        durationSeconds: f.num("durationSeconds", 0, 0, 31_536_000),
        insecureTls: f.bool("insecureTls", false),
        ports: { http: ports.num("http", 80, 1, 65535, true), https: ports.num("https", 443, 1, 65535, true) },
        metricsPort: f.num("metricsPort", 9102, 0, 65535, true),
        trackedDestinations: f.strList("trackedDestinations", destinations),
        sessions: { share: sessions.num("share", 0, 0, 1), keys: sessions.num("keys", 8, 1, 10_000, true) },
    };
    if (problems.length > 0) throw new ProgramConfigError(file, problems);
    return p;
}

/** The rate (requests per second) the schedule asks for `t` seconds after start. */
export function rateAt(p: Pattern["rate"], t: number): number {
    const peak = p.requestsPerSecond;
    const low = peak * p.minFraction;
    const phase = (t % p.periodSeconds) / p.periodSeconds;
    switch (p.schedule) {
        case "constant":
            return peak;
        case "ramp":
            return t >= p.periodSeconds ? peak : low + (peak - low) * (t / p.periodSeconds);
        case "burst":
            // A tenth of each period at the peak, the rest at the low rate.
            return phase < 0.1 ? peak : low;
        case "diurnal":
            // Night at the start of each period, midday at its half.
            return low + (peak - low) * (0.5 - 0.5 * Math.cos(2 * Math.PI * phase));
    }
}

/** Cumulative weights of a Zipf law over n ranks (rank k has weight 1/k^s). */
export function zipfCumulative(n: number, s: number): number[] {
    const out: number[] = [];
    let sum = 0;
    for (let k = 1; k <= n; k++) {
        sum += 1 / Math.pow(k, s);
        out.push(sum);
    }
    return out.map((c) => c / sum);
}

/** Index of the first cumulative weight above u (binary search). */
export function pickCumulative(cumulative: readonly number[], u: number): number {
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (cumulative[mid] > u) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}
