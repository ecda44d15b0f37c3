/**
 * The destination policy and the `destination` label.
 *
 * A request target is parsed strictly and rebuilt: the gateway forwards `http://<canonical host>[:port]<path>`
 * made from the parsed URL, never the crawler's bytes, and refuses anything a lenient parser downstream could read
 * differently from us. Refusals name a reason (sent in the REFUSAL_HEADER):
 * - `invalid-url`: not an absolute `http://` URL or `host:port` authority;
 * - `ambiguous-url`: userinfo, or an `@` anywhere before the path (`http://a.test?@10.0.0.1/`, `a.test%2f@...`);
 * - `non-canonical-host`: a host that is not in its canonical form: percent-encoding, decimal/octal/hex IPv4
 *   (`2130706433`, `0177.0.0.1`, `0x7f.1`), a trailing dot, an empty label;
 * - `port-not-allowed`: a port outside `connectPorts` (443 and 80 by default);
 * - `internal-address`: a literal loopback, private, link-local, CGNAT, multicast or reserved address (IPv4,
 *   IPv6, and IPv4-mapped IPv6), unless `allowInternal`;
 * - `internal-name`: `localhost`, cluster DNS names (`*.svc`, `*.cluster.local`), `*.local`, `*.internal`,
 *   `*.localhost` and single-label names (resolved with a cluster's search domains), unless `allowInternal`;
 * - `not-allowed`: not matched by `destinations.allowed`.
 * Host names are compared in lower case, so mixed case bypasses nothing.
 */
import * as net from "net";
import { OTHER_DESTINATION } from "../../catalog/datamodel";

export type Refusal =
    | "invalid-url"
    | "ambiguous-url"
    | "non-canonical-host"
    | "port-not-allowed"
    | "internal-address"
    | "internal-name"
    | "not-allowed";

export interface Target {
    /** Canonical host: lower case, IPv6 without brackets. */
    readonly host: string;
    readonly port: number;
    /** `host:port` as sent upstream (IPv6 in brackets). */
    readonly authority: string;
    /** Plain HTTP only: the rebuilt absolute URL forwarded upstream. */
    readonly url?: string;
}

export interface PolicyConfig {
    readonly tracked: readonly string[];
    readonly allowed: readonly string[];
    /** Ports (`"443"`) or ranges (`"8000-8999"`). */
    readonly connectPorts: readonly string[];
    readonly allowInternal: boolean;
}

const INTERNAL_V4: [string, number][] = [
    ["0.0.0.0", 8],
    ["10.0.0.0", 8],
    ["100.64.0.0", 10],
    ["127.0.0.0", 8],
    ["169.254.0.0", 16],
    ["172.16.0.0", 12],
    ["192.0.0.0", 24],
    ["192.168.0.0", 16],
    ["198.18.0.0", 15],
    ["224.0.0.0", 4],
    ["240.0.0.0", 4],
];
const INTERNAL_V6: [string, number][] = [
    ["::", 128],
    ["::1", 128],
    ["fc00::", 7],
    ["fe80::", 10],
    ["fec0::", 10],
    ["ff00::", 8],
    ["64:ff9b:1::", 48],
];
const INTERNAL_SUFFIXES = [".svc", ".cluster.local", ".local", ".internal", ".localhost", ".home.arpa"];

const internal = new net.BlockList();
for (const [a, p] of INTERNAL_V4) internal.addSubnet(a, p, "ipv4");
for (const [a, p] of INTERNAL_V6) internal.addSubnet(a, p, "ipv6");

/** Parses a `connectPorts` entry: `"443"` or `"8000-8999"`; undefined when malformed. */
export function parsePortRange(entry: string): [number, number] | undefined {
    const m = /^([0-9]{1,5})(?:-([0-9]{1,5}))?$/.exec(entry.trim());
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (lo < 1 || hi > 65535 || hi < lo) return undefined;
    return [lo, hi];
}

/** Is a canonical host (IP literal or lower-case name) internal to a cluster or a host? */
export function isInternal(host: string): "internal-address" | "internal-name" | undefined {
    const family = net.isIP(host);
    if (family === 4) return internal.check(host, "ipv4") ? "internal-address" : undefined;
    if (family === 6) return internal.check(host, "ipv6") ? "internal-address" : undefined;
    if (host === "localhost" || !host.includes(".")) return "internal-name";
    return INTERNAL_SUFFIXES.some((s) => host.endsWith(s)) ? "internal-name" : undefined;
}

const AUTHORITY = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::([0-9]{1,5}))?$/;

/** WHATWG-canonical host names by lower-case raw host (crawlers reuse few hosts; parsing is the costly part). */
const canonicalCache = new Map<string, string | undefined>();
const CACHE_MAX = 4096;

function canonicalHost(rawHost: string): string | undefined {
    if (canonicalCache.has(rawHost)) return canonicalCache.get(rawHost);
    let canonical: string | undefined;
    try {
        canonical = new URL(`http://${rawHost}/`).hostname;
    } catch {
        canonical = undefined;
    }
    if (canonicalCache.size >= CACHE_MAX) canonicalCache.clear();
    canonicalCache.set(rawHost, canonical);
    return canonical;
}

/** Characters WHATWG parsing leaves as they are in a path (and, but for `'`, in a query). */
const PLAIN_CHARS = /^[A-Za-z0-9_~!$&'()*+,;=:@/.?-]*$/;

/** A path and query that WHATWG parsing leaves as they are: plain characters, no dot segment, no `'` in the query. */
function plainPath(p: string): boolean {
    if (!PLAIN_CHARS.test(p) || p.includes("/.")) return false;
    const q = p.indexOf("?");
    return q < 0 || !p.includes("'", q);
}

/**
 * Canonical form of `host[:port]`: undefined-free result or a refusal. `defaultPort` applies when no port is given
 * (plain HTTP); CONNECT requires one.
 */
function canonicalAuthority(raw: string, defaultPort?: number): Target | Refusal {
    if (raw.includes("@")) return "ambiguous-url";
    if (raw.includes("%")) return "non-canonical-host";
    const m = AUTHORITY.exec(raw);
    if (!m || (m[2] === undefined && defaultPort === undefined)) return "invalid-url";
    const port = m[2] === undefined ? (defaultPort as number) : Number(m[2]);
    if (port < 1 || port > 65535) return "invalid-url";
    const rawHost = m[1].toLowerCase();
    const canonical = canonicalHost(rawHost);
    if (canonical === undefined) return "invalid-url";
    // IPv6 literals have many spellings of one address, all unambiguous: their canonical form is used.
    const ipv6 = rawHost.startsWith("[");
    if ((!ipv6 && canonical !== rawHost) || rawHost.endsWith(".") || rawHost.includes("..")) {
        return "non-canonical-host";
    }
    const host = canonical.startsWith("[") ? canonical.slice(1, -1) : canonical;
    const authority = `${canonical}:${port}`;
    return { host, port, authority };
}

/**
 * Splits `host:port` (CONNECT authority; IPv6 in brackets). Returns undefined for anything malformed: a missing or
 * out-of-range port, an empty host, or characters no host name has. (The simulator's lenient parse; the gateway
 * uses DestinationPolicy.connectTarget.)
 */
export function parseAuthority(authority: string): { host: string; port: number } | undefined {
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):([0-9]{1,5})$/.exec(authority);
    if (!m) return undefined;
    const port = Number(m[2]);
    if (port < 1 || port > 65535) return undefined;
    const host = m[1].startsWith("[") ? m[1].slice(1, -1) : m[1];
    return { host, port };
}

export class DestinationPolicy {
    private readonly tracked: Set<string>;
    private readonly exact = new Set<string>();
    private readonly suffixes: string[] = [];
    private readonly any: boolean;
    private readonly ports: [number, number][];

    constructor(private readonly cfg: PolicyConfig) {
        this.tracked = new Set(cfg.tracked.map((h) => h.toLowerCase()));
        this.any = cfg.allowed.includes("*");
        for (const a of cfg.allowed) {
            const p = a.toLowerCase();
            if (p.startsWith("*.")) this.suffixes.push(p.slice(1));
            else if (p !== "*") this.exact.add(p);
        }
        this.ports = cfg.connectPorts.map((e) => parsePortRange(e) ?? [0, -1]);
    }

    /** The `destination` label value of a canonical host. */
    label(host: string): string {
        return this.tracked.has(host) ? host : OTHER_DESTINATION;
    }

    /** A CONNECT request target (`host:port`), checked. */
    connectTarget(raw: string): Target | Refusal {
        const t = canonicalAuthority(raw);
        return typeof t === "string" ? t : (this.check(t) ?? t);
    }

    /** An absolute-form plain-HTTP request target, checked, with the URL to forward rebuilt from its parts. */
    httpTarget(raw: string): Target | Refusal {
        if (!/^http:\/\//i.test(raw)) return "invalid-url";
        const rest = raw.slice(7);
        const slash = rest.indexOf("/");
        const beforePath = slash < 0 ? rest : rest.slice(0, slash);
        // An @ before the path is userinfo or a query/fragment that a lenient parser reads as userinfo.
        if (beforePath.includes("@") || rest.includes("\\")) return "ambiguous-url";
        const end = beforePath.search(/[?#]/);
        const authority = end < 0 ? beforePath : beforePath.slice(0, end);
        const t = canonicalAuthority(authority, 80);
        if (typeof t === "string") return t;
        const refused = this.check(t);
        if (refused) return refused;
        const hostPart = t.port === 80 ? t.authority.slice(0, t.authority.lastIndexOf(":")) : t.authority;
        let pathAndQuery = rest.slice(authority.length).replace(/#.*$/, "") || "/";
        if (pathAndQuery.startsWith("?")) pathAndQuery = "/" + pathAndQuery;
        if (!plainPath(pathAndQuery)) {
            try {
                const parsed = new URL(`http://${t.authority}${pathAndQuery}`);
                pathAndQuery = parsed.pathname + parsed.search;
            } catch {
                return "invalid-url";
            }
        }
        // Spelled out: an object spread here cost 2 us per request (V8's slow path for defining copied properties).
        return { host: t.host, port: t.port, authority: t.authority, url: `http://${hostPart}${pathAndQuery}` };
    }

    private check(t: Target): Refusal | undefined {
        if (!this.ports.some(([lo, hi]) => t.port >= lo && t.port <= hi)) return "port-not-allowed";
        if (!this.cfg.allowInternal) {
            const i = isInternal(t.host);
            if (i) return i;
        }
        if (this.any || this.exact.has(t.host) || this.suffixes.some((s) => t.host.endsWith(s))) return undefined;
        return "not-allowed";
    }
}
