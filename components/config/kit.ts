/**
 * The building blocks of the config schema: zod schemas whose error message is the `expected` text a user reads,
 * the shared patterns, and the turning of zod issues into one ConfigProblem per root cause, with list items named
 * (`vendors[vendor-b].pools[res-us].weight`) and a "did you mean" for unknown keys.
 */
import { z } from "zod";
import {
    ConfigProblem,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    K8S_BYTES,
    K8S_CPU,
    PROM_DURATION,
    PROM_SIZE,
    show,
} from "../validate";

export const PROJECT = "proxy-monitor";

/** A key path: object keys and list indexes from the top of the `proxy-monitor:` namespace. */
export type KeyPath = readonly (string | number)[];

/** A problem before its path is written out; `found` defaults to the raw value at `path`. */
export interface Problem {
    readonly path: KeyPath;
    readonly expected: string;
    readonly found?: string;
    readonly missingSecret?: ConfigProblem["missingSecret"];
}

export interface Pattern {
    readonly re: RegExp;
    readonly expected: string;
}

export const LABEL: Pattern = {
    re: DNS_LABEL,
    expected: "a DNS label (lower-case letters, digits and '-', at most 63 characters)",
};
export const HOST: Pattern = {
    re: DNS_SUBDOMAIN,
    expected: "a DNS host name (lower-case letters, digits, '-' and '.')",
};
export const DURATION: Pattern = { re: PROM_DURATION, expected: "a duration such as 30s, 5m, 1h30m or 30d" };
export const BYTES: Pattern = { re: K8S_BYTES, expected: "a Kubernetes quantity such as 512Mi or 100Gi" };
export const CPU: Pattern = { re: K8S_CPU, expected: "a CPU quantity such as 250m or 2" };
export const PROM_BYTES: Pattern = { re: PROM_SIZE, expected: "a size such as 500MB or 90GB" };
export const HTTP_URL: Pattern = { re: /^https?:\/\/\S+$/, expected: "an http(s) URL" };

/** A string matching `p`; the first failed check stops the others (one problem per value). */
export function str(p: Pattern) {
    return z.string({ error: p.expected }).regex(p.re, { error: p.expected, abort: true });
}

/** One of `values`. */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T, expected?: string) {
    return z.enum(values, { error: expected ?? `one of ${values.join(", ")}` });
}

export interface Range {
    readonly min?: number;
    readonly max?: number;
    readonly int?: boolean;
    /** min and max themselves are out of range. */
    readonly exclusive?: boolean;
}

export function describeRange(r: Range): string {
    const what = r.int ? "an integer" : "a number";
    if (r.min !== undefined && r.max !== undefined) {
        return r.exclusive ? `${what} strictly between ${r.min} and ${r.max}` : `${what} from ${r.min} to ${r.max}`;
    }
    if (r.min !== undefined) return `${what} ${r.exclusive ? "above" : "of at least"} ${r.min}`;
    if (r.max !== undefined) return `${what} ${r.exclusive ? "below" : "of at most"} ${r.max}`;
    return what;
}

/** A finite number in a range; every failure reads as the range. */
export function num(r: Range = {}) {
    const e = { error: describeRange(r), abort: true };
    let s = z.number({ error: e.error });
    if (r.int) s = s.int(e);
    if (r.min !== undefined) s = r.exclusive ? s.gt(r.min, e) : s.gte(r.min, e);
    if (r.max !== undefined) s = r.exclusive ? s.lt(r.max, e) : s.lte(r.max, e);
    return s;
}

export const bool = () => z.boolean({ error: "true or false" });

/** A list; `minItems` makes it required too (a missing list reads as the same expectation). */
export function list<T extends z.ZodType>(item: T, minItems = 0, what = "item(s)") {
    const atLeast = `a list of at least ${minItems} ${what}`;
    const s = z.array(item, { error: (iss) => (iss.input === undefined && minItems > 0 ? atLeast : "a list") });
    return minItems > 0 ? s.min(minItems, { error: atLeast }) : s;
}

/** An object that refuses unknown keys (reported per key with a suggestion, see `problemsOf`). */
export function obj<S extends z.core.$ZodLooseShape>(shape: S) {
    return z.strictObject(shape, { error: "an object" });
}

/** A section: an object whose keys all have defaults, so an absent section is its defaults. */
export function section<S extends z.core.$ZodLooseShape>(shape: S) {
    const o = obj(shape);
    return o.prefault({} as z.input<typeof o>);
}

/** A check that `field` is at least `floor` of the same object (maxReplicas of replicas), the floor named `name`. */
export function notBelow<K extends string, F extends string>(field: K, floor: F, name: string = floor) {
    return (o: Record<K | F, number>, ctx: { addIssue: (i: z.core.$ZodRawIssue) => void }): void => {
        if (o[field] < o[floor])
            ctx.addIssue({ code: "custom", path: [field], message: `at least ${name} (${o[floor]})`, input: o[field] });
    };
}

/** Reports each value of `names` used more than once, at its path, naming where it was first used. */
export function unique(
    ctx: { addIssue: (i: z.core.$ZodRawIssue) => void },
    items: readonly { name: string; path: KeyPath }[],
    what: string,
): void {
    const seen = new Map<string, KeyPath>();
    for (const { name, path } of items) {
        const first = seen.get(name);
        if (first === undefined) seen.set(name, path);
        else
            ctx.addIssue({
                code: "custom",
                path: [...path],
                message: `a ${what} name used once (already used at {sibling:${JSON.stringify(first)}})`,
                input: name,
            });
    }
}

/** A check that the items of a list have different `name`s (a `what` name used once). */
export function uniqueNames(what: string) {
    return (items: readonly { name: string }[], ctx: { addIssue: (i: z.core.$ZodRawIssue) => void }): void =>
        unique(
            ctx,
            items.map((x, i) => ({ name: x.name, path: [i, "name"] })),
            what,
        );
}

/** The value at `path` in `raw`, or undefined. */
export function valueAt(raw: unknown, path: KeyPath): unknown {
    let v = raw;
    for (const seg of path) {
        if (v === null || typeof v !== "object") return undefined;
        v = (v as Record<string | number, unknown>)[seg];
    }
    return v;
}

/**
 * Writes a key path as the user reads it: `proxy-monitor:vendors[vendor-b].pools[res-us].weight`. A list item is
 * named by its `name` when the raw item has one that no sibling shares, else by its position.
 */
export function formatPath(raw: unknown, path: KeyPath): string {
    let out = `${PROJECT}:`;
    let node = raw;
    path.forEach((seg, i) => {
        if (typeof seg === "number") {
            const items = Array.isArray(node) ? node : [];
            const name = nameOf(items[seg]);
            const shared = name !== undefined && items.filter((x) => nameOf(x) === name).length > 1;
            out += name !== undefined && !shared ? `[${name}]` : `[${seg}]`;
        } else out += i === 0 ? seg : `.${seg}`;
        node = valueAt(node, [seg]);
    });
    return out;
}

function nameOf(item: unknown): string | undefined {
    const name = item !== null && typeof item === "object" ? (item as { name?: unknown }).name : undefined;
    return typeof name === "string" && DNS_LABEL.test(name) ? name : undefined;
}

/** The closest of `known` to `key` when it is a plausible typo. */
export function closest(key: string, known: readonly string[]): string | undefined {
    let best: string | undefined;
    let bestD = Infinity;
    for (const k of known) {
        const d = editDistance(key.toLowerCase(), k.toLowerCase());
        if (d < bestD) [best, bestD] = [k, d];
    }
    return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
    // Optimal string alignment: insertions, deletions, substitutions and swaps of neighbours each cost 1.
    const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
    for (let j = 1; j <= b.length; j++) d[0][j] = j;
    for (let i = 1; i <= a.length; i++) {
        for (let j = 1; j <= b.length; j++) {
            const cost = a[i - 1] === b[j - 1] ? 0 : 1;
            d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1])
                d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
        }
    }
    return d[a.length][b.length];
}

/** The expectation for an unknown key: the likely intended key, or the short list of known ones. */
export function unknownKey(key: string, known: readonly string[]): string {
    const guess = closest(key, known);
    if (guess !== undefined) return `a known key (did you mean ${guess}?)`;
    if (known.length === 0) return "no keys here";
    if (known.length <= 12) return `a known key (${known.join(", ")})`;
    return "a known key (see the configuration reference in README.md)";
}

/** The schema at `path` inside `schema` (through objects, lists, records and wrappers), or undefined. */
export function schemaAt(schema: z.core.$ZodType, path: KeyPath): z.core.$ZodType | undefined {
    let s: z.core.$ZodType | undefined = schema;
    for (const seg of path) {
        if (s === undefined) return undefined;
        const def = unwrap(s)._zod.def as unknown as Record<string, unknown> & { type: string };
        if (def.type === "object") s = (def.shape as Record<string, z.core.$ZodType>)[String(seg)];
        else if (def.type === "array") s = def.element as z.core.$ZodType;
        else if (def.type === "record") s = def.valueType as z.core.$ZodType;
        else return undefined;
    }
    return s;
}

/** The keys an object schema declares at `path` inside `schema`, or undefined when there is no object there. */
export function knownKeysAt(schema: z.core.$ZodType, path: KeyPath): string[] | undefined {
    const at = schemaAt(schema, path);
    const def = at && (unwrap(at)._zod.def as { type: string; shape?: object });
    return def?.type === "object" ? Object.keys(def.shape ?? {}) : undefined;
}

function unwrap(s: z.core.$ZodType): z.core.$ZodType {
    let cur = s;
    for (;;) {
        const def = cur._zod.def as unknown as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
        if (def.innerType) cur = def.innerType;
        else if (def.type === "pipe" && def.in) cur = def.in;
        else return cur;
    }
}

/** The problems of a failed parse of `raw` at `base` (the key path of `raw` from the top). */
export function issueProblems(schema: z.core.$ZodType, issues: readonly z.core.$ZodIssue[], base: KeyPath): Problem[] {
    const out: Problem[] = [];
    for (const iss of issues) {
        const path = [...base, ...(iss.path as (string | number)[])];
        if (iss.code === "unrecognized_keys") {
            const known = knownKeysAt(schema, iss.path as (string | number)[]) ?? [];
            for (const key of iss.keys)
                out.push({ path: [...path, key], expected: unknownKey(key, known), found: "an unknown key" });
            continue;
        }
        const params = (iss as { params?: { found?: string; missingSecret?: Problem["missingSecret"] } }).params;
        // `{sibling:[...]}`: a path relative to the same list as this issue's (see `unique`), made absolute.
        const expected = iss.message.replace(/\{sibling:(\[[^\]]*\])\}/g, (_, json: string) => {
            const rel = JSON.parse(json) as (string | number)[];
            return `{path:${JSON.stringify([...path.slice(0, path.length - rel.length), ...rel])}}`;
        });
        out.push({ path, expected, found: params?.found, missingSecret: params?.missingSecret });
    }
    return out;
}

/** Writes problems out: paths with names, found values shown from `raw`, `{path:[...]}` references resolved. */
export function toConfigProblems(raw: unknown, problems: readonly Problem[]): ConfigProblem[] {
    return problems.map((p) => ({
        path: formatPath(raw, p.path),
        expected: p.expected.replace(/\{path:(\[[^\]]*\])\}/g, (_, json: string) => formatPath(raw, JSON.parse(json))),
        found: p.found ?? show(valueAt(raw, p.path)),
        ...(p.missingSecret ? { missingSecret: p.missingSecret } : {}),
    }));
}
