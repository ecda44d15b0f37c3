/**
 * The gateway's config file: its type and validation. The Pulumi component builds the file from the stack config
 * (components/gateway/file-config.ts) with this same type; the program validates it at start.
 */
import { DURATION_BUCKETS_MS } from "../../catalog/datamodel";
import { Fields, ProgramConfigError } from "../common/config-file";
import { PROFILES, Profile } from "../../catalog/datamodel";
import { parsePortRange } from "./destinations";

export interface GatewayPool {
    readonly name: string;
    readonly host: string;
    readonly port: number;
    readonly weight: number;
    readonly region: string;
    /** Files holding the pool's credentials (a mounted Secret). */
    readonly usernameFile: string;
    readonly passwordFile: string;
}

export interface GatewayFileConfig {
    readonly vendor: string;
    /** How the vendor says whose fault a failure is (classify.ts); `generic`: status-code heuristics. */
    readonly profile: Profile;
    /** Tell crawlers which pool served them and how many retries it took (X-Proxy-Monitor-Pool/-Retries). */
    readonly responseHeaders: boolean;
    readonly listen: { readonly host: string; readonly proxyPort: number; readonly metricsPort: number };
    readonly pools: readonly GatewayPool[];
    readonly destinations: {
        readonly tracked: readonly string[];
        /** Host patterns crawlers may reach (`*` any public host, `*.example.com`). Defaults to `*`. */
        readonly allowed: readonly string[];
        /** Ports crawlers may reach (`"443"`, `"8000-8999"`), for CONNECT and plain HTTP. Defaults to 443 and 80. */
        readonly connectPorts: readonly string[];
        /** Allow loopback, private, link-local and cluster addresses and names. Defaults to false. */
        readonly allowInternal: boolean;
    };
    readonly timeouts: { readonly connectMs: number; readonly idleMs: number; readonly totalMs: number };
    readonly limits: { readonly maxTunnels: number; readonly maxHeaderBytes: number; readonly maxBodyBytes: number };
    readonly probe: {
        readonly intervalMs: number;
        readonly timeoutMs: number;
        /** host:port the probe CONNECTs to through each pool. */
        readonly destination: string;
        readonly failuresToDown: number;
        readonly successesToUp: number;
    };
    /**
     * Passive ejection (Envoy's outlier detection, failure-percentage flavour): a pool is ejected when, within
     * `windowMs`, at least `minRequests` outcomes were seen, at least `failureRatio` of them were the vendor's
     * fault, and those faults came from at least `minDestinations` destinations. Ejection lasts `ejectionMs`, doubling
     * on each repeated ejection up to `maxEjectionMs`, or until `probe.successesToUp` probes in a row succeed.
     */
    readonly health: {
        readonly windowMs: number;
        readonly minRequests: number;
        readonly failureRatio: number;
        readonly minDestinations: number;
        readonly ejectionMs: number;
        readonly maxEjectionMs: number;
    };
    /** Fraction of finished requests and tunnels logged, 0..1. */
    readonly logSampleRate: number;
    /** How long tunnels may drain after SIGTERM before they are cut. */
    readonly shutdownGraceMs: number;
    /** Export the per-request data model (false only to measure its cost; process metrics stay). */
    readonly metrics: boolean;
    /** Buckets of the duration histogram, ms, ascending (a bucket at the vendor's latency SLA). */
    readonly durationBucketsMs?: readonly number[];
    /**
     * Exit-IP learning (pool quality). `header`: response header the vendor sets with the exit IP, on its CONNECT
     * reply and on plain-HTTP responses ("" = not learned). `stripHeader`: remove it before the crawler sees it.
     * `sessionPattern`: a regular expression on the crawler's Proxy-Authorization username with named groups
     * `user` and `session` ("" = no sticky sessions); the session is passed to the pool as
     * `sessionUsername` with `{user}` (the pool's username) and `{session}` filled in.
     */
    readonly exitIp: {
        readonly header: string;
        readonly stripHeader: boolean;
        readonly sessionPattern: string;
        readonly sessionUsername: string;
        /** Sessions remembered for sticky-break counting (oldest forgotten first). */
        readonly maxSessions: number;
        /**
         * IP-echo probe: every `intervalMs`, through each pool, GET this https URL over TLS inside a tunnel and learn
         * the address it answers ("" = no probe; one request per interval per pool).
         */
        readonly echo: { readonly url: string; readonly intervalMs: number; readonly insecureSkipVerify: boolean };
    };
    /**
     * Optional crawler authentication: crawlers must send `Proxy-Authorization: Basic` with one of these
     * `user:password` pairs (a file, one per line; the stack writes `<crawler namespace>:<shared secret>`).
     */
    readonly crawlerAuthFile?: string;
}

const DEFAULT_PORTS = [443, 80];

/** Passive-ejection defaults (Envoy's outlier detection defaults, failure-percentage flavour, 30 s windows). */
export const HEALTH_DEFAULTS: GatewayFileConfig["health"] = {
    windowMs: 30_000,
    minRequests: 20,
    failureRatio: 0.5,
    minDestinations: 2,
    ejectionMs: 30_000,
    maxEjectionMs: 300_000,
};
/** Exit-IP learning off: no header read, no sessions. */
export const EXIT_IP_DEFAULTS: GatewayFileConfig["exitIp"] = {
    header: "",
    stripHeader: true,
    sessionPattern: "",
    sessionUsername: "{user}-session-{session}",
    maxSessions: 10_000,
    echo: { url: "", intervalMs: 60_000, insecureSkipVerify: false },
};
const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const HOST = /^[A-Za-z0-9.-]+$/;

function buckets(f: Fields): number[] {
    const v = f.obj.durationBucketsMs;
    if (v === undefined) return DURATION_BUCKETS_MS;
    const ok =
        Array.isArray(v) &&
        v.length > 0 &&
        v.every((x, i) => typeof x === "number" && Number.isFinite(x) && x > 0 && (i === 0 || x > v[i - 1]));
    if (!ok) f.fail("durationBucketsMs", "a list of ascending positive numbers");
    return ok ? (v as number[]) : DURATION_BUCKETS_MS;
}

/** `destinations.connectPorts`: numbers or `"lo-hi"` strings, as strings. */
function portList(d: Fields): string[] {
    const v = d.obj.connectPorts;
    if (v === undefined) return DEFAULT_PORTS.map(String);
    if (!Array.isArray(v) || v.some((x) => typeof x !== "string" && typeof x !== "number")) {
        d.strList("connectPorts", []);
        return [];
    }
    return v.map(String);
}

/** Validates a parsed config file; throws ProgramConfigError naming every problem. */
export function validateGatewayConfig(raw: unknown, file = "gateway config"): GatewayFileConfig {
    const problems: string[] = [];
    const f = Fields.of(problems, "", raw);
    const listen = f.sub("listen", true);
    const pools = f.list("pools", 1).map((p, i) => {
        const r = Fields.of(problems, `pools[${i}]`, p);
        return {
            name: r.str("name", undefined, NAME),
            host: r.str("host", undefined, HOST),
            port: r.num("port", undefined, 1, 65535, true),
            weight: r.num("weight", 1, 0, 1000),
            region: r.str("region", "global"),
            usernameFile: r.str("usernameFile"),
            passwordFile: r.str("passwordFile"),
        };
    });
    const names = new Set<string>();
    pools.forEach((p, i) => {
        if (names.has(p.name))
            problems.push(`pools[${i}].name: expected a unique pool name, found ${JSON.stringify(p.name)}`);
        names.add(p.name);
    });
    if (pools.length > 0 && pools.every((p) => p.weight === 0))
        problems.push("pools: expected a pool with weight above 0");
    const d = f.sub("destinations", true);
    const t = f.sub("timeouts", true);
    const l = f.sub("limits", true);
    const pr = f.sub("probe", true);
    const h = f.sub("health", true);
    const x = f.sub("exitIp", true);
    const echo = x.sub("echo", true);
    const cfg: GatewayFileConfig = {
        vendor: f.str("vendor", undefined, NAME),
        profile: f.str("profile", "generic") as Profile,
        responseHeaders: f.bool("responseHeaders", false),
        listen: {
            // Loopback unless told: the pods set 0.0.0.0 (their Service and the mesh reach them on the pod IP).
            host: listen.str("host", "127.0.0.1"),
            proxyPort: listen.num("proxyPort", 3128, 0, 65535, true),
            metricsPort: listen.num("metricsPort", 9102, 0, 65535, true),
        },
        pools,
        destinations: {
            tracked: d.strList("tracked", []).map((h) => h.toLowerCase()),
            allowed: d.strList("allowed", ["*"]),
            connectPorts: portList(d),
            allowInternal: d.bool("allowInternal", false),
        },
        timeouts: {
            connectMs: t.num("connectMs", 10_000, 1, 600_000, true),
            idleMs: t.num("idleMs", 60_000, 1, 86_400_000, true),
            totalMs: t.num("totalMs", 600_000, 1, 86_400_000, true),
        },
        limits: {
            maxTunnels: l.num("maxTunnels", 4096, 1, 1_000_000, true),
            maxHeaderBytes: l.num("maxHeaderBytes", 16_384, 1024, 1_048_576, true),
            maxBodyBytes: l.num("maxBodyBytes", 10_485_760, 0, 1_073_741_824, true),
        },
        probe: {
            intervalMs: pr.num("intervalMs", 15_000, 10, 3_600_000, true),
            timeoutMs: pr.num("timeoutMs", 5_000, 10, 600_000, true),
            destination: pr.str("destination", "www.example.com:443", /^[A-Za-z0-9.-]+:[0-9]{1,5}$/),
            failuresToDown: pr.num("failuresToDown", 3, 1, 100, true),
            successesToUp: pr.num("successesToUp", 2, 1, 100, true),
        },
        health: {
            windowMs: h.num("windowMs", HEALTH_DEFAULTS.windowMs, 100, 3_600_000, true),
            minRequests: h.num("minRequests", HEALTH_DEFAULTS.minRequests, 1, 1_000_000, true),
            failureRatio: h.num("failureRatio", HEALTH_DEFAULTS.failureRatio, 0.01, 1),
            minDestinations: h.num("minDestinations", HEALTH_DEFAULTS.minDestinations, 1, 100, true),
            ejectionMs: h.num("ejectionMs", HEALTH_DEFAULTS.ejectionMs, 100, 3_600_000, true),
            maxEjectionMs: h.num("maxEjectionMs", HEALTH_DEFAULTS.maxEjectionMs, 100, 86_400_000, true),
        },
        exitIp: {
            header: x.str("header", EXIT_IP_DEFAULTS.header, /^$|^[A-Za-z0-9-]+$/).toLowerCase(),
            stripHeader: x.bool("stripHeader", EXIT_IP_DEFAULTS.stripHeader),
            sessionPattern: x.str("sessionPattern", EXIT_IP_DEFAULTS.sessionPattern),
            sessionUsername: x.str("sessionUsername", EXIT_IP_DEFAULTS.sessionUsername),
            maxSessions: x.num("maxSessions", EXIT_IP_DEFAULTS.maxSessions, 1, 1_000_000, true),
            echo: {
                url: echo.str("url", "", /^$|^https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?\/[^\s]*$/),
                intervalMs: echo.num("intervalMs", EXIT_IP_DEFAULTS.echo.intervalMs, 1000, 86_400_000, true),
                insecureSkipVerify: echo.bool("insecureSkipVerify", false),
            },
        },
        logSampleRate: f.num("logSampleRate", 0.01, 0, 1),
        shutdownGraceMs: f.num("shutdownGraceMs", 30_000, 0, 3_600_000, true),
        metrics: f.bool("metrics", true),
        durationBucketsMs: buckets(f),
        crawlerAuthFile: f.obj.crawlerAuthFile === undefined ? undefined : f.str("crawlerAuthFile"),
    };
    cfg.destinations.connectPorts.forEach((e, i) => {
        if (!parsePortRange(e))
            problems.push(
                `destinations.connectPorts[${i}]: expected a port or a range "lo-hi" within 1..65535, found ${JSON.stringify(e)}`,
            );
    });
    if (!(PROFILES as readonly string[]).includes(cfg.profile))
        problems.push(`profile: expected one of ${PROFILES.join(", ")}, found ${JSON.stringify(cfg.profile)}`);
    if (cfg.health.maxEjectionMs < cfg.health.ejectionMs)
        problems.push(`health.maxEjectionMs: expected at least health.ejectionMs (${cfg.health.ejectionMs})`);
    if (cfg.exitIp.sessionPattern) {
        try {
            const re = new RegExp(cfg.exitIp.sessionPattern);
            if (!/\(\?<user>/.test(re.source) || !/\(\?<session>/.test(re.source))
                problems.push("exitIp.sessionPattern: expected named groups (?<user>...) and (?<session>...)");
        } catch (e) {
            problems.push(`exitIp.sessionPattern: expected a regular expression (${(e as Error).message})`);
        }
        if (!cfg.exitIp.sessionUsername.includes("{session}"))
            problems.push("exitIp.sessionUsername: expected a {session} placeholder");
    }
    if (problems.length > 0) throw new ProgramConfigError(file, problems);
    return cfg;
}
