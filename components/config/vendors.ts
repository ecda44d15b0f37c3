/** `vendors`: the proxy vendors, their pools, SLA and prices; `credentials`: a username and password per pool. */
import { isIP } from "net";
import { z } from "zod";
import { PROFILES } from "../../catalog/datamodel";
import {
    DURATION,
    HOST,
    KeyPath,
    LABEL,
    Problem,
    bool,
    list,
    num,
    obj,
    oneOf,
    str,
    notBelow,
    uniqueNames,
} from "./kit";

export const TIERS = ["datacenter", "residential", "mobile", "isp"] as const;
export type Tier = (typeof TIERS)[number];

const simulator = obj({
    latencyP50Ms: num({ min: 0, max: 600_000 })
        .describe("median latency of the simulated proxy answer, ms")
        .default(80),
    latencyP95Ms: num({ min: 0, max: 600_000 })
        .describe("95th percentile latency of the simulated proxy answer, ms")
        .default(400),
    errorRate: num({ min: 0, max: 1 })
        .describe(
            "Fraction of requests answered with an error (spread over 403, 407, 429, 502, 503, timeouts, resets).",
        )
        .default(0.01),
    bandwidthBytesPerSecond: num({ min: 0, int: true })
        .describe("Bandwidth cap per connection, bytes per second (0: none).")
        .default(0),
    exitIps: obj({
        size: num({ min: 1, max: 131_072, int: true })
            .describe("exit IPs in the simulated pool (from 198.18.0.0/15)")
            .default(1000),
        rotation: oneOf(["random", "sticky"], "random or sticky")
            .describe("`random` per request or tunnel, or `sticky` per `-session-<id>` username")
            .default("random"),
        degradedTo: num({ min: 0, max: 131_072, int: true })
            .describe(
                "serve only this many exit IPs, a fault (0: not degraded; also `POST /admin/exit-ips?degradedTo=N`)",
            )
            .default(0),
    })
        .optional()
        .describe("the simulator's exit-IP pool, reported in the vendor's `exitIp.header` (pool quality)"),
}).superRefine(notBelow("latencyP95Ms", "latencyP50Ms"));

const SESSION_PATTERN = "a regular expression with groups (?<user>…) and (?<session>…)";
const exitIp = obj({
    header: str({ re: /^[A-Za-z0-9-]+$/, expected: "an HTTP header name such as x-exit-ip" })
        .describe("response header the vendor sets with the exit IP (CONNECT replies and plain-HTTP responses)")
        .optional(),
    stripHeader: bool().describe("remove the header before the crawler sees it").default(true),
    echoUrl: str({
        re: /^https:\/\/[A-Za-z0-9.-]+(:[0-9]{1,5})?\/\S*$/,
        expected: "an https URL such as https://ip-echo.example/ip",
    })
        .describe("IP-echo endpoint the gateway GETs over TLS through each pool every `echoInterval`")
        .optional(),
    echoInterval: str(DURATION).describe("how often each pool is echo-probed").default("1m"),
    echoInsecureSkipVerify: bool().describe("accept any certificate from the echo endpoint (dev)").default(false),
    sessionPattern: z
        .string({ error: SESSION_PATTERN })
        .refine(
            (s) => {
                try {
                    new RegExp(s);
                } catch {
                    return false;
                }
                return s === "" || (s.includes("(?<user>") && s.includes("(?<session>"));
            },
            { error: SESSION_PATTERN },
        )
        .describe("sticky sessions in the crawler's username: groups `user` and `session` (empty: none)")
        .default(""),
    sessionUsername: str({ re: /\{session\}/, expected: "a username template with {session} (and {user})" })
        .describe("the pool username carrying a session")
        .default("{user}-session-{session}"),
    minDistinctPerHour: num({ min: 0, int: true })
        .describe("distinct exit IPs per hour below which a busy pool pages (PoolExitIpDiversityLow); 0: no alert")
        .default(0),
}).superRefine((x, ctx) => {
    if (!x.header && !x.echoUrl)
        ctx.addIssue({
            code: "custom",
            path: ["header"],
            message: "a header name such as x-exit-ip, or an echoUrl (or both)",
            input: undefined,
        });
});

const IP = "an IPv4 or IPv6 address such as 203.0.113.10";

const pool = obj({
    name: str(LABEL).describe("DNS label, unique within the vendor: the `pool` label"),
    host: str(HOST).describe("host of the vendor's proxy endpoint for this pool"),
    port: num({ min: 1, max: 65535, int: true }).describe("port of the vendor's proxy endpoint"),
    weight: num({ min: 0, max: 1000 })
        .describe("Relative share of traffic among the vendor's healthy pools.")
        .default(1),
    region: str(LABEL).describe("the pool's region label").default("global"),
    addresses: list(
        z.string({ error: IP }).refine((a) => isIP(a) !== 0, { error: IP }),
        1,
        "IP address",
    )
        .describe(
            "the pool endpoint's fixed IPs: its ServiceEntry is `resolution: STATIC` with them (see `mesh.addressAllocation`)",
        )
        .superRefine((addrs, ctx) => {
            addrs.forEach((a, i) => {
                if (addrs.indexOf(a) !== i)
                    ctx.addIssue({ code: "custom", path: [i], message: "each address once", input: a });
            });
        })
        .optional(),
    simulator: simulator
        .optional()
        .describe(
            "the pool is an in-mesh vendor simulator (dev): `host` must be `<service>.<namespaces.simulators>.svc.cluster.local`; credentials are generated unless given",
        ),
}).superRefine((p, ctx) => {
    if (p.addresses && p.simulator)
        ctx.addIssue({
            code: "custom",
            path: ["addresses"],
            message: "no addresses on a simulated pool (its Service has a cluster IP)",
            input: p.addresses,
        });
});

const sla = obj({
    successObjective: num({ min: 0, max: 1, exclusive: true }).describe(
        "Success-ratio objective, strictly between 0 and 1 (e.g. 0.995).",
    ),
    p95LatencyMs: num({ min: 0, max: 600_000, exclusive: true }).describe(
        "95th percentile of the time to the proxy's answer, ms.",
    ),
});

const vendor = obj({
    name: str(LABEL)
        .describe("DNS label, at most 40 characters: the `vendor` label and the gateway's name")
        .max(40, { error: "a vendor name of at most 40 characters (it prefixes object names)" }),
    tier: oneOf(TIERS).describe("the kind of proxies the vendor sells"),
    pricePerGb: num({ min: 0 }).describe("Price per GB (10^9 bytes, both directions), in the billing currency."),
    sla: sla.describe("the vendor's service level, for alerts and dashboards"),
    dailyBudgetGb: num({ min: 0 }).describe("Daily bandwidth budget in GB (10^9 bytes); 0 means no budget.").default(0),
    exitIp: exitIp
        .optional()
        .describe("pool quality: where the gateway learns the vendor's exit IPs, sticky sessions, the diversity floor"),
    profile: oneOf(PROFILES)
        .describe(
            "How the vendor says whose fault a failure is (its error headers, RFC 9209 Proxy-Status); `generic` is status-code heuristics. The cause table per profile is in docs/data-model.md.",
        )
        .default("generic"),
    pools: list(pool, 1)
        .describe("the vendor's proxy endpoints (at least 1)")
        .superRefine((pools, ctx) => {
            uniqueNames("pool")(pools, ctx);
            if (pools.length > 0 && pools.every((p) => p.weight === 0))
                ctx.addIssue({
                    code: "custom",
                    message: "at least one pool with a weight above 0",
                    input: pools,
                    params: { found: "every weight 0" },
                });
        }),
});

export const vendorsSchema = list(vendor, 1, "vendor").superRefine(uniqueNames("vendor"));

export type VendorConfig = z.output<typeof vendor>;
export type PoolConfig = z.output<typeof pool>;
export type SimulatorConfig = z.output<typeof simulator>;
export type SlaConfig = z.output<typeof sla>;

/** A simulated pool's host must be a Service in the simulator namespace. */
export function checkVendors(vendors: readonly VendorConfig[], simNamespace: string): Problem[] {
    const suffix = `.${simNamespace}.svc.cluster.local`;
    return vendors.flatMap((v, i) =>
        v.pools.flatMap((p, j): Problem[] =>
            p.simulator && (!p.host.endsWith(suffix) || p.host.slice(0, -suffix.length).includes("."))
                ? [
                      {
                          path: ["vendors", i, "pools", j, "host"],
                          expected: `<service>${suffix} for a simulated pool (namespaces.simulators is ${simNamespace})`,
                      },
                  ]
                : [],
        ),
    );
}

const credential = obj({
    username: z
        .string({ error: "a non-empty string" })
        .regex(/^[^\r\n:]+$/, { error: "a non-empty string without ':' or line breaks", abort: true }),
    password: z
        .string({ error: "a non-empty string" })
        .regex(/^[^\r\n]+$/, { error: "a non-empty string without line breaks", abort: true }),
});
export type PoolCredentials = z.output<typeof credential>;

/** `credentials` (secret): vendor name to pool name to the pool's username and password. */
export const credentialsSchema = z.record(z.string(), z.record(z.string(), credential, { error: "an object" }), {
    error: "an object",
});

/** Every credential names a configured pool, and every external pool has one. */
export function checkCredentials(
    creds: z.output<typeof credentialsSchema>,
    vendors: readonly VendorConfig[],
    unknown: (key: string, known: readonly string[]) => string,
): { problems: Problem[]; credentials: Record<string, Record<string, PoolCredentials>> } {
    const problems: Problem[] = [];
    const credentials: Record<string, Record<string, PoolCredentials>> = {};
    const at = (...p: string[]): KeyPath => ["credentials", ...p];
    const names = vendors.map((v) => v.name);
    for (const name of Object.keys(creds))
        if (!names.includes(name))
            problems.push({ path: at(name), expected: unknown(name, names), found: "an unknown key" });
    for (const v of vendors) {
        credentials[v.name] = {};
        const pools = v.pools.map((p) => p.name);
        for (const name of Object.keys(creds[v.name] ?? {}))
            if (!pools.includes(name))
                problems.push({ path: at(v.name, name), expected: unknown(name, pools), found: "an unknown key" });
        for (const p of v.pools) {
            const c = creds[v.name]?.[p.name];
            if (c) credentials[v.name][p.name] = c;
            else if (!p.simulator)
                problems.push({
                    path: at(v.name, p.name),
                    expected: `the pool's username and password (pulumi config set --secret --path 'credentials.${v.name}.${p.name}.password' …)`,
                    missingSecret: "credentials",
                });
        }
    }
    return { problems, credentials };
}
