/**
 * A small collector for configuration problems: every check records a problem with the key path, what was expected
 * and what was found, and validation goes on, so a user sees all problems at once.
 */

import * as pulumi from "@pulumi/pulumi";

export interface ConfigProblem {
    /** Full key path, e.g. `proxy-monitor:vendors[1].pools[0].port`. */
    readonly path: string;
    readonly expected: string;
    readonly found: string;
    /**
     * Set when the problem is a secret that is not set: `credentials` (a username and password pair) or `value`.
     * The offline renderer fills such keys with placeholders, since it cannot decrypt secrets anyway.
     */
    readonly missingSecret?: "credentials" | "value";
}

/**
 * Thrown when a stack's configuration is invalid; `problems` holds every problem found. A RunError, so the Pulumi
 * CLI prints the problems without a stack trace.
 */
export class ConfigError extends pulumi.RunError {
    constructor(public readonly problems: readonly ConfigProblem[]) {
        super(problems.map(formatProblem).join("\n"));
        this.name = "ConfigError";
    }
}

export function formatProblem(p: ConfigProblem): string {
    return `${p.path}: expected ${p.expected}, found ${p.found}`;
}

/** Shows a found value briefly: strings quoted, objects as JSON cut to 60 characters. */
export function show(value: unknown): string {
    if (value === undefined) return "nothing (the key is not set)";
    if (value === null) return "null";
    if (typeof value === "string") return JSON.stringify(value);
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    const json = JSON.stringify(value);
    const kind = Array.isArray(value) ? "a list" : "an object";
    return `${kind} ${json.length > 60 ? json.slice(0, 57) + "..." : json}`;
}

/** DNS-1123 label: lower-case letters, digits and '-', starting and ending alphanumeric, at most 63 characters. */
export const DNS_LABEL = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** DNS-1123 subdomain (host names of pool endpoints, Kubernetes service hosts). */
export const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A Prometheus duration as both Prometheus 2.42 and later accept: one or more `<number><unit>`. */
export const PROM_DURATION = /^([0-9]+(ms|s|m|h|d|w|y))+$/;
/** A Prometheus size for `--storage.tsdb.retention.size`. */
export const PROM_SIZE = /^[0-9]+(B|KB|MB|GB|TB|PB|EB)$/;
/** A Kubernetes quantity for memory or storage (decimal or binary suffix). */
export const K8S_BYTES = /^[0-9]+(\.[0-9]+)?(k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
/** A Kubernetes CPU quantity: cores or millicores. */
export const K8S_CPU = /^([0-9]+(\.[0-9]+)?|[0-9]+m)$/;

const DURATION_MS: Record<string, number> = {
    ms: 1,
    s: 1000,
    m: 60_000,
    h: 3_600_000,
    d: 86_400_000,
    w: 604_800_000,
    y: 31_536_000_000,
};

/** Milliseconds in a Prometheus duration such as `1h30m`; the input must match PROM_DURATION. */
export function durationMs(d: string): number {
    let total = 0;
    for (const m of d.matchAll(/([0-9]+)(ms|s|m|h|d|w|y)/g)) total += Number(m[1]) * DURATION_MS[m[2]];
    return total;
}

/**
 * Reads a config object one key at a time, recording a problem for every value of the wrong shape. Getters return
 * the default (or undefined) on a problem, so validation continues and reports everything at once.
 */
export class Reader {
    constructor(
        private readonly problems: ConfigProblem[],
        /** The key path of `obj`, e.g. `proxy-monitor:vendors[0]`. */
        public readonly path: string,
        private readonly obj: Record<string, unknown>,
    ) {}

    /** A reader over an arbitrary value: reports a problem when it is not an object. */
    static of(problems: ConfigProblem[], path: string, value: unknown): Reader {
        if (value !== undefined && !isObject(value)) {
            problems.push({ path, expected: "an object", found: show(value) });
            return new Reader(problems, path, {});
        }
        return new Reader(problems, path, (value as Record<string, unknown>) ?? {});
    }

    /** The path of a key of this object; a root path ending in ':' (`proxy-monitor:`) takes keys without a dot. */
    key(k: string): string {
        return this.path.endsWith(":") ? `${this.path}${k}` : `${this.path}.${k}`;
    }

    problem(key: string, expected: string, found: unknown): void {
        this.problems.push({ path: key, expected, found: show(found) });
    }

    has(k: string): boolean {
        return this.obj[k] !== undefined;
    }

    raw(k: string): unknown {
        return this.obj[k];
    }

    /** Reports keys this object does not know, so typos do not pass silently. */
    only(known: readonly string[]): void {
        for (const k of Object.keys(this.obj)) {
            if (!known.includes(k)) {
                this.problem(this.key(k), `one of the known keys (${known.join(", ")})`, "an unknown key");
            }
        }
    }

    str(k: string, def: string, check?: { re: RegExp; expected: string }): string;
    str(k: string, def?: undefined, check?: { re: RegExp; expected: string }): string | undefined;
    str(k: string, def?: string, check?: { re: RegExp; expected: string }): string | undefined {
        const v = this.obj[k];
        if (v === undefined) return def;
        if (typeof v !== "string") {
            this.problem(this.key(k), check?.expected ?? "a string", v);
            return def;
        }
        if (check && !check.re.test(v)) {
            this.problem(this.key(k), check.expected, v);
            return def;
        }
        return v;
    }

    required(k: string, expected: string): unknown {
        const v = this.obj[k];
        if (v === undefined) this.problem(this.key(k), expected, undefined);
        return v;
    }

    num(
        k: string,
        def: number,
        range: { min?: number; max?: number; int?: boolean; exclusive?: boolean } = {},
    ): number {
        const v = this.obj[k];
        if (v === undefined) return def;
        const expected = describeRange(range);
        if (typeof v !== "number" || !Number.isFinite(v)) {
            this.problem(this.key(k), expected, v);
            return def;
        }
        const { min, max, int, exclusive } = range;
        const low = min !== undefined && (exclusive ? v <= min : v < min);
        const high = max !== undefined && (exclusive ? v >= max : v > max);
        if ((int && !Number.isInteger(v)) || low || high) {
            this.problem(this.key(k), expected, v);
            return def;
        }
        return v;
    }

    bool(k: string, def: boolean): boolean {
        const v = this.obj[k];
        if (v === undefined) return def;
        if (typeof v !== "boolean") {
            this.problem(this.key(k), "true or false", v);
            return def;
        }
        return v;
    }

    /** A list whose items are read by `item`; reports a non-list and returns []. */
    list<T>(k: string, item: (value: unknown, path: string) => T | undefined, opts: { minItems?: number } = {}): T[] {
        const v = this.obj[k];
        const path = this.key(k);
        if (v === undefined) {
            if (opts.minItems) this.problem(path, `a list of at least ${opts.minItems} item(s)`, v);
            return [];
        }
        if (!Array.isArray(v)) {
            this.problem(path, "a list", v);
            return [];
        }
        if (opts.minItems && v.length < opts.minItems) {
            this.problem(path, `a list of at least ${opts.minItems} item(s)`, v);
        }
        const out: T[] = [];
        v.forEach((x, i) => {
            const r = item(x, `${path}[${i}]`);
            if (r !== undefined) out.push(r);
        });
        return out;
    }

    strList(k: string, def: string[], check?: { re: RegExp; expected: string }): string[] {
        if (!this.has(k)) return def;
        return this.list(k, (x, p) => {
            if (typeof x !== "string" || (check && !check.re.test(x))) {
                this.problems.push({ path: p, expected: check?.expected ?? "a string", found: show(x) });
                return undefined;
            }
            return x;
        });
    }

    sub(k: string): Reader {
        return Reader.of(this.problems, this.key(k), this.obj[k]);
    }
}

export function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

function describeRange(r: { min?: number; max?: number; int?: boolean; exclusive?: boolean }): string {
    const what = r.int ? "an integer" : "a number";
    if (r.min !== undefined && r.max !== undefined) {
        return r.exclusive ? `${what} strictly between ${r.min} and ${r.max}` : `${what} from ${r.min} to ${r.max}`;
    }
    if (r.min !== undefined) return `${what} ${r.exclusive ? "above" : "of at least"} ${r.min}`;
    if (r.max !== undefined) return `${what} ${r.exclusive ? "below" : "of at most"} ${r.max}`;
    return what;
}

/** Reports every value that appears more than once in `names` (with the paths where they appear). */
export function checkUnique(problems: ConfigProblem[], items: { name: string; path: string }[], what: string): void {
    const seen = new Map<string, string>();
    for (const { name, path } of items) {
        const first = seen.get(name);
        if (first !== undefined) {
            problems.push({ path, expected: `a ${what} name used once (already used at ${first})`, found: show(name) });
        } else {
            seen.set(name, path);
        }
    }
}
