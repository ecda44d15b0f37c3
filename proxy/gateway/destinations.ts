/** Destination handling: the allow patterns (403 otherwise) and the label bucketing by the tracked list. */
import { OTHER_DESTINATION } from "../../catalog/datamodel";

export class Destinations {
    private readonly tracked: Set<string>;
    private readonly exact = new Set<string>();
    private readonly suffixes: string[] = [];
    private readonly any: boolean;

    constructor(tracked: readonly string[], allowed: readonly string[]) {
        this.tracked = new Set(tracked.map((h) => h.toLowerCase()));
        this.any = allowed.includes("*");
        for (const a of allowed) {
            const p = a.toLowerCase();
            if (p.startsWith("*.")) this.suffixes.push(p.slice(1));
            else if (p !== "*") this.exact.add(p);
        }
    }

    /** The `destination` label value of a host. */
    label(host: string): string {
        const h = host.toLowerCase();
        return this.tracked.has(h) ? h : OTHER_DESTINATION;
    }

    allowed(host: string): boolean {
        if (this.any) return true;
        const h = host.toLowerCase();
        return this.exact.has(h) || this.suffixes.some((s) => h.endsWith(s));
    }
}

/**
 * Splits `host:port` (CONNECT authority; IPv6 in brackets). Returns undefined for anything malformed: a missing or
 * out-of-range port, an empty host, or characters no host name has.
 */
export function parseAuthority(authority: string): { host: string; port: number } | undefined {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/.exec(authority);
    if (!m) return undefined;
    const port = Number(m[2]);
    if (port < 1 || port > 65535) return undefined;
    const host = m[1].startsWith("[") ? m[1].slice(1, -1) : m[1];
    return { host, port };
}
