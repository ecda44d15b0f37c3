/**
 * Configuration problems (the key path, what was expected, what was found), the error that lists them, and the
 * patterns the config schema (components/config) checks values against.
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

export function isObject(v: unknown): v is Record<string, unknown> {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}
