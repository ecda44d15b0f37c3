/**
 * vendor-sim: an upstream proxy standing in for a vendor pool (tests, dev stacks, benchmarks). It requires
 * credentials, answers after a configured latency, injects a configured error mix (403, 407, 429, 502, 503,
 * timeouts, resets, destination unreachable), caps bandwidth, and goes down on a schedule or on request
 * (POST /admin/outage, and POST /admin/errors to change the error rate, on the ops port).
 *
 * Fault modes for the gateway's fault suite and soak: `unreachable` answers a CONNECT as a vendor does when the
 * destination cannot be reached (502 with an RFC 9209 `Proxy-Status` naming the destination's error), and
 * `oneRequestPerConnection` serves one plain-HTTP request per connection without saying so (no `Connection:
 * close`) and resets the connection when another request arrives on it, as HTTP/1.0-style proxies do.
 * Errors the simulator makes up itself carry `Proxy-Status: vendor-sim; error=proxy_internal_error`, as an RFC 9209
 * proxy marks its own errors; a destination's answers are relayed without one.
 * It answers by itself (`/bytes/N` bodies over plain HTTP; an echo inside tunnels) or forwards to a target.
 */
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import { pipeline } from "stream";
import { Counter, Registry, collectDefaultMetrics } from "prom-client";
import { PROFILES, Profile } from "../../catalog/datamodel";
import { SIMULATOR_METRICS } from "../../catalog/simulator";
import { Fields, ProgramConfigError } from "../common/config-file";
import { Logger, silentLogger } from "../common/log";
import { portOf, startOpsServer } from "../common/ops-server";
import { parseAuthority } from "../gateway/destinations";

export const ERROR_KINDS = ["403", "407", "429", "502", "503", "timeout", "reset", "unreachable", "session"] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

export interface VendorSimConfig {
    readonly vendor: string;
    /** Whose error headers the simulator speaks (the vendor's gateway profile); default `rfc9209`. */
    readonly profile: Profile;
    readonly pool: string;
    readonly listen: { readonly host: string; readonly proxyPort: number; readonly metricsPort: number };
    /** Required credentials: literal, or files (a mounted Secret). */
    readonly username?: string;
    readonly password?: string;
    readonly usernameFile?: string;
    readonly passwordFile?: string;
    /** Latency of the answer: log-normal with this median and 95th percentile, ms. */
    readonly latencyP50Ms: number;
    readonly latencyP95Ms: number;
    /** Fraction of requests answered with an error, and the relative weight of each kind of error. */
    readonly errorRate: number;
    readonly errorMix: Readonly<Partial<Record<ErrorKind, number>>>;
    /** How long a `timeout` error holds the connection before closing it, ms. */
    readonly timeoutHoldMs: number;
    /** Bytes per second per connection relayed inside tunnels (0: unlimited). */
    readonly bandwidthBytesPerSecond: number;
    /** Outages: seconds after start and duration, during which every connection is reset. */
    readonly outages: readonly { readonly startSeconds: number; readonly durationSeconds: number }[];
    /** host:port every plain-HTTP request and tunnel is forwarded to (a target); empty: answer by itself. */
    readonly forward: string;
    /** host:port that tunnels to port 443 go to instead (the target's TLS port); empty: `forward`. */
    readonly forwardTls: string;
    /** Serve one plain-HTTP request per connection, then reset the connection if another arrives on it. */
    readonly oneRequestPerConnection?: boolean;
    /**
     * Exit IPs (pool quality): `size` addresses from 198.18.0.0/15, picked at `random` per request or tunnel, or
     * `sticky` per session (the `-session-<id>` suffix of the username, else random); `degradedTo` N > 0 serves only
     * the first N (a vendor quietly not rotating; also POST /admin/exit-ips?degradedTo=N). The address is sent in
     * `header` on CONNECT replies and plain-HTTP responses, and to the target as `X-Exit-IP` (its IP-echo answer).
     */
    readonly exitIps?: {
        readonly size: number;
        readonly rotation: "random" | "sticky";
        readonly degradedTo: number;
        readonly header: string;
    };
}

/** The i-th simulated exit address (198.18.0.0/15, the benchmarking range: never a real host). */
export function simExitIp(i: number): string {
    return `198.${18 + ((i >>> 16) & 1)}.${(i >>> 8) & 255}.${i & 255}`;
}
/** How a vendor encodes a sticky session in the username (`user-session-abc123`). */
export const SIM_SESSION = /^(?<user>.+)-(?:session|sessid|sessionid)-(?<session>[A-Za-z0-9_]+)$/;

/** RFC 9209 Proxy-Status of an answer the simulator makes up itself (never on a relayed destination answer). */
const OWN_ERROR = "vendor-sim; error=proxy_internal_error";
const DESTINATION_ERROR = "vendor-sim; error=destination_unavailable";

/** An error answer as a vendor of a profile words it: status, reason phrase, headers. */
export interface SimAnswer {
    readonly status: number;
    readonly reason?: string;
    readonly headers: Readonly<Record<string, string>>;
}

type Worded = Exclude<ErrorKind, "timeout" | "reset">;

/**
 * Each profile's wording of each fault kind, after the vendors' documentation (docs/data-model.md, "Causes"):
 * 403 the vendor's policy refusal, 407 and 429 refusals of our account, 502/503 its own error, `unreachable` the
 * destination's failure, `session` a sticky session whose exit is gone.
 */
export const PROFILE_ANSWERS: Readonly<Record<Profile, Readonly<Record<Worded, SimAnswer>>>> = {
    rfc9209: {
        "403": { status: 403, headers: { "proxy-status": "vendor-sim; error=http_request_denied" } },
        "407": { status: 407, headers: { "proxy-status": OWN_ERROR } },
        "429": { status: 429, headers: { "proxy-status": OWN_ERROR } },
        "502": { status: 502, headers: { "proxy-status": OWN_ERROR } },
        "503": { status: 503, headers: { "proxy-status": OWN_ERROR } },
        unreachable: { status: 502, headers: { "proxy-status": DESTINATION_ERROR } },
        session: {
            status: 502,
            headers: { "proxy-status": 'vendor-sim; error=proxy_internal_error; details="session ended"' },
        },
    },
    brightdata: {
        "403": { status: 403, headers: { "x-brd-err-code": "policy_20050", "x-brd-error": "Forbidden host" } },
        "407": { status: 407, headers: { "x-brd-err-code": "client_10000", "x-brd-error": "Invalid authentication" } },
        "429": { status: 429, headers: { "x-brd-err-code": "client_10030", "x-brd-error": "Too many requests" } },
        "502": { status: 502, headers: { "x-brd-err-code": "peer_30006", "x-brd-error": "Peer connection failed" } },
        "503": { status: 503, headers: { "x-brd-err-code": "peer_30010", "x-brd-error": "Peer unavailable" } },
        unreachable: {
            status: 502,
            headers: { "x-brd-err-code": "target_40001", "x-brd-error": "Could not resolve host" },
        },
        session: { status: 502, reason: "No peers available", headers: { "x-brd-error": "No peers available" } },
    },
    oxylabs: {
        "403": { status: 403, headers: { "x-error-description": "Access to the requested domain is restricted" } },
        "407": { status: 407, headers: { "x-error-description": "Invalid username or password" } },
        "429": { status: 429, headers: { "x-error-description": "Too many requests" } },
        "502": { status: 502, headers: { "x-error-description": "Internal proxy error" } },
        "503": { status: 503, headers: { "x-error-description": "Service unavailable" } },
        // The target did not answer: 522, and explicitly no X-Error-Description.
        unreachable: { status: 522, reason: "Connection Timed Out", headers: {} },
        session: { status: 502, headers: { "x-error-description": "Exit node not found (session ended)" } },
    },
    zyte: {
        "403": { status: 403, headers: { "x-crawlera-error": "domain_forbidden" } },
        "407": { status: 407, headers: { "x-crawlera-error": "bad_proxy_auth" } },
        "429": { status: 429, headers: { "x-crawlera-error": "too_many_conns" } },
        "502": { status: 503, headers: { "x-crawlera-error": "no_proxies" } },
        "503": { status: 503, headers: { "x-crawlera-error": "no_proxies" } },
        unreachable: { status: 504, headers: { "x-crawlera-error": "timeout" } },
        session: { status: 400, headers: { "x-crawlera-error": "bad_session_id" } },
    },
    soax: {
        "403": { status: 403, headers: { "x-soax-error": "forbidden", "x-soax-detail": "domain blocked by policy" } },
        "407": { status: 407, headers: { "x-soax-error": "auth_failed", "x-soax-detail": "invalid credentials" } },
        "429": { status: 429, headers: { "x-soax-error": "limit", "x-soax-detail": "connection limit reached" } },
        "502": { status: 502, headers: { "x-soax-error": "proxy_error", "x-soax-detail": "no node answered" } },
        "503": { status: 503, headers: { "x-soax-error": "proxy_error", "x-soax-detail": "overloaded" } },
        unreachable: {
            status: 502,
            headers: { "x-soax-error": "target_unreachable", "x-soax-detail": "target host unreachable" },
        },
        session: { status: 502, headers: { "x-soax-error": "session_expired", "x-soax-detail": "session node gone" } },
    },
    generic: {
        "403": { status: 403, headers: {} },
        "407": { status: 407, headers: {} },
        "429": { status: 429, headers: {} },
        "502": { status: 502, headers: {} },
        "503": { status: 503, headers: {} },
        unreachable: { status: 502, headers: { "proxy-status": DESTINATION_ERROR } },
        session: { status: 502, headers: {} },
    },
};

/** An answer as a raw HTTP/1.1 head (no body). */
function rawAnswer(a: SimAnswer): string {
    const lines = Object.entries(a.headers).map(([k, v]) => `${k}: ${v}\r\n`);
    return `HTTP/1.1 ${a.status} ${a.reason ?? http.STATUS_CODES[a.status] ?? "Error"}\r\n${lines.join("")}Content-Length: 0\r\nConnection: close\r\n\r\n`;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function exitIpsConfig(x: Fields): NonNullable<VendorSimConfig["exitIps"]> {
    const rotation = x.str("rotation", "random", /^(random|sticky)$/) as "random" | "sticky";
    return {
        size: x.num("size", 1000, 1, 131_072, true),
        rotation,
        degradedTo: x.num("degradedTo", 0, 0, 131_072, true),
        header: x.str("header", "x-exit-ip", /^[A-Za-z0-9-]+$/).toLowerCase(),
    };
}

export function validateVendorSimConfig(raw: unknown, file = "vendor-sim config"): VendorSimConfig {
    const problems: string[] = [];
    const f = Fields.of(problems, "", raw);
    const l = f.sub("listen", true);
    const mix = f.sub("errorMix", true);
    const errorMix: Partial<Record<ErrorKind, number>> = {};
    for (const k of Object.keys(mix.obj)) {
        if (!(ERROR_KINDS as readonly string[]).includes(k))
            problems.push(`errorMix.${k}: expected one of ${ERROR_KINDS.join(", ")}`);
        else errorMix[k as ErrorKind] = mix.num(k, 0, 0, 1000);
    }
    const outages = (f.obj.outages === undefined ? [] : f.list("outages")).map((o, i) => {
        const r = Fields.of(problems, `outages[${i}]`, o);
        return {
            startSeconds: r.num("startSeconds", undefined, 0, 1e7),
            durationSeconds: r.num("durationSeconds", undefined, 0, 1e7),
        };
    });
    const cfg: VendorSimConfig = {
        vendor: f.str("vendor", undefined, NAME),
        profile: f.str("profile", "rfc9209") as Profile,
        pool: f.str("pool", undefined, NAME),
        listen: {
            host: l.str("host", "0.0.0.0"),
            proxyPort: l.num("proxyPort", 3128, 0, 65535, true),
            metricsPort: l.num("metricsPort", 9102, 0, 65535, true),
        },
        username: f.obj.username === undefined ? undefined : f.str("username"),
        password: f.obj.password === undefined ? undefined : f.str("password"),
        usernameFile: f.obj.usernameFile === undefined ? undefined : f.str("usernameFile"),
        passwordFile: f.obj.passwordFile === undefined ? undefined : f.str("passwordFile"),
        latencyP50Ms: f.num("latencyP50Ms", 0, 0, 600_000),
        latencyP95Ms: f.num("latencyP95Ms", 0, 0, 600_000),
        errorRate: f.num("errorRate", 0, 0, 1),
        errorMix:
            Object.keys(errorMix).length > 0
                ? errorMix
                : { "403": 1, "429": 2, "502": 2, "503": 1, reset: 1, timeout: 1 },
        timeoutHoldMs: f.num("timeoutHoldMs", 30_000, 0, 600_000, true),
        bandwidthBytesPerSecond: f.num("bandwidthBytesPerSecond", 0, 0, 1e12, true),
        outages,
        forward: f.str("forward", "", /^$|^[A-Za-z0-9.-]+:[0-9]{1,5}$/),
        forwardTls: f.str("forwardTls", "", /^$|^[A-Za-z0-9.-]+:[0-9]{1,5}$/),
        ...(f.obj.exitIps === undefined ? {} : { exitIps: exitIpsConfig(f.sub("exitIps")) }),
        ...(f.obj.oneRequestPerConnection === undefined
            ? {}
            : { oneRequestPerConnection: f.bool("oneRequestPerConnection", false) }),
    };
    if (!(PROFILES as readonly string[]).includes(cfg.profile))
        problems.push(`profile: expected one of ${PROFILES.join(", ")}, found ${JSON.stringify(cfg.profile)}`);
    if (cfg.latencyP95Ms < cfg.latencyP50Ms) problems.push("latencyP95Ms: expected at least latencyP50Ms");
    if (problems.length > 0) throw new ProgramConfigError(file, problems);
    return cfg;
}

export class VendorSim {
    readonly registry = new Registry();
    private readonly answers: Counter<string>;
    private readonly expected?: string;
    private server?: http.Server;
    private ops?: http.Server;
    private readonly sockets = new Set<net.Socket>();
    /** Connections that served a request (oneRequestPerConnection). */
    private readonly served = new WeakSet<net.Socket>();
    private readonly startedAt = Date.now();
    private manualOutageUntil = 0;
    private errorOverride?: { rate: number; mix: Readonly<Partial<Record<ErrorKind, number>>> };
    private readonly log: Logger;
    private readonly random: () => number;
    /** Exit IPs: the degraded size now in force (0: all), and each sticky session's address. */
    private exitDegradedTo: number;
    private readonly stickyExits = new Map<string, number>();

    constructor(
        readonly cfg: VendorSimConfig,
        opts: { logger?: Logger; random?: () => number; processMetrics?: boolean } = {},
    ) {
        this.log = opts.logger ?? silentLogger;
        this.random = opts.random ?? Math.random;
        this.exitDegradedTo = cfg.exitIps?.degradedTo ?? 0;
        const user = cfg.usernameFile ? fs.readFileSync(cfg.usernameFile, "utf8").trim() : cfg.username;
        const pass = cfg.passwordFile ? fs.readFileSync(cfg.passwordFile, "utf8").trim() : cfg.password;
        if (user !== undefined && pass !== undefined)
            this.expected = "Basic " + Buffer.from(`${user}:${pass}`).toString("base64");
        const m = SIMULATOR_METRICS.answers;
        this.answers = new Counter({
            name: m.name,
            help: m.help,
            labelNames: [...m.labels],
            registers: [this.registry],
        });
        if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    }

    async start(): Promise<{ proxyPort: number; metricsPort: number }> {
        const server = http.createServer({ keepAliveTimeout: 65_000 });
        server.on("connection", (s: net.Socket) => {
            if (this.down()) {
                this.count("outage");
                s.destroy();
                return;
            }
            this.sockets.add(s);
            s.once("close", () => this.sockets.delete(s));
        });
        server.on("connect", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) =>
            this.onConnect(req, socket, head),
        );
        server.on("request", (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
        this.server = server;
        await new Promise<void>((resolve, reject) => {
            server.once("error", reject);
            server.listen(this.cfg.listen.proxyPort, this.cfg.listen.host, () => resolve());
        });
        this.ops = await startOpsServer(this.cfg.listen.metricsPort, this.cfg.listen.host, {
            registry: this.registry,
            ready: () => true,
            routes: {
                // POST /admin/outage?seconds=N: down for N seconds (0 ends an outage).
                // POST /admin/errors?rate=R&status=S: from now on answer a share R of requests with status S
                // (or the configured mix when no status is given); rate=0 ends it.
                "/admin/errors": (req, res, url) => {
                    if (req.method !== "POST") {
                        res.writeHead(405);
                        res.end();
                        return;
                    }
                    const rate = Number(url.searchParams.get("rate") ?? "0");
                    const status = url.searchParams.get("status");
                    if (
                        !Number.isFinite(rate) ||
                        rate < 0 ||
                        rate > 1 ||
                        (status !== null && !(ERROR_KINDS as readonly string[]).includes(status))
                    ) {
                        res.writeHead(400);
                        res.end(`rate must be 0..1 and status one of ${ERROR_KINDS.join(", ")}\n`);
                        return;
                    }
                    this.setErrors(rate, (status as ErrorKind) ?? undefined);
                    res.writeHead(200, { "content-type": "text/plain" });
                    res.end(`errors at ${rate}\n`);
                },
                // POST /admin/exit-ips?degradedTo=N: serve only N exit IPs from now on (0: the whole pool).
                "/admin/exit-ips": (req, res, url) => {
                    const n = Number(url.searchParams.get("degradedTo") ?? "0");
                    if (req.method !== "POST" || !Number.isInteger(n) || n < 0) {
                        res.writeHead(req.method !== "POST" ? 405 : 400);
                        res.end("degradedTo must be an integer >= 0\n");
                        return;
                    }
                    this.setExitIpsDegraded(n);
                    res.writeHead(200, { "content-type": "text/plain" });
                    res.end(`exit IPs degraded to ${n}\n`);
                },
                "/admin/outage": (req, res, url) => {
                    if (req.method !== "POST") {
                        res.writeHead(405);
                        res.end();
                        return;
                    }
                    const seconds = Number(url.searchParams.get("seconds") ?? "60");
                    this.setOutage(Number.isFinite(seconds) ? seconds : 60);
                    res.writeHead(200, { "content-type": "text/plain" });
                    res.end(`outage for ${seconds}s\n`);
                },
            },
        });
        const ports = { proxyPort: portOf(server), metricsPort: portOf(this.ops) };
        this.log.info("vendor simulator listening", { vendor: this.cfg.vendor, pool: this.cfg.pool, ...ports });
        return ports;
    }

    /** From now on answer a share `rate` of requests with `kind` (or the configured mix); rate 0 ends it. */
    setErrors(rate: number, kind?: ErrorKind): void {
        this.errorOverride = { rate, mix: kind ? { [kind]: 1 } : this.cfg.errorMix };
    }

    /** Serve only `n` exit IPs from now on (0: the configured pool). */
    setExitIpsDegraded(n: number): void {
        this.exitDegradedTo = n;
    }

    /** The exit IP of one request or tunnel (of `session`, if any), or undefined without an exit-IP pool. */
    exitIp(session: string | undefined): string | undefined {
        const x = this.cfg.exitIps;
        if (!x) return undefined;
        const size = this.exitDegradedTo > 0 ? Math.min(this.exitDegradedTo, x.size) : x.size;
        const draw = () => Math.floor(this.random() * size);
        if (x.rotation !== "sticky" || session === undefined) return simExitIp(draw());
        let i = this.stickyExits.get(session);
        // A degraded pool loses the addresses beyond its size: their sessions move (a sticky break).
        if (i === undefined || i >= size) {
            i = draw();
            if (this.stickyExits.size >= 100_000) this.stickyExits.clear();
            this.stickyExits.set(session, i);
        }
        return simExitIp(i);
    }

    /** `header: ip\r\n` for a raw answer head, or "". */
    private exitHeaderLine(ip: string | undefined): string {
        return ip === undefined || !this.cfg.exitIps ? "" : `${this.cfg.exitIps.header}: ${ip}\r\n`;
    }

    /** Down for `seconds` from now (0 ends a manual outage); open connections are reset. */
    setOutage(seconds: number): void {
        this.manualOutageUntil = Date.now() + seconds * 1000;
        if (seconds > 0) for (const s of this.sockets) s.destroy();
    }

    down(now = Date.now()): boolean {
        if (now < this.manualOutageUntil) return true;
        const t = (now - this.startedAt) / 1000;
        return this.cfg.outages.some((o) => t >= o.startSeconds && t < o.startSeconds + o.durationSeconds);
    }

    async stop(): Promise<void> {
        for (const s of this.sockets) s.destroy();
        await new Promise<void>((r) => (this.server ? this.server.close(() => r()) : r()));
        await new Promise<void>((r) => (this.ops ? this.ops.close(() => r()) : r()));
    }

    private count(outcome: string): void {
        this.answers.labels(this.cfg.vendor, this.cfg.pool, outcome).inc();
    }

    /** Log-normal latency from the median and 95th percentile. */
    latencyMs(): number {
        const { latencyP50Ms: p50, latencyP95Ms: p95 } = this.cfg;
        if (p50 <= 0) return 0;
        const sigma = p95 > p50 ? Math.log(p95 / p50) / 1.645 : 0;
        const u1 = Math.max(this.random(), 1e-12);
        const z = Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * this.random());
        return p50 * Math.exp(sigma * z);
    }

    /** undefined (serve) or the error to inject. */
    pickError(): ErrorKind | undefined {
        const rate = this.errorOverride?.rate ?? this.cfg.errorRate;
        if (rate <= 0 || this.random() >= rate) return undefined;
        const entries = Object.entries(this.errorOverride?.mix ?? this.cfg.errorMix) as [ErrorKind, number][];
        const total = entries.reduce((s, [, w]) => s + w, 0);
        let r = this.random() * total;
        for (const [k, w] of entries) {
            r -= w;
            if (r < 0) return k;
        }
        return entries[entries.length - 1][0];
    }

    /** The request's sticky session (a `-session-`, `-sessid-` or `-sessionid-<id>` username suffix), or undefined. */
    private session(req: http.IncomingMessage): string | undefined {
        const h = req.headers["proxy-authorization"];
        if (typeof h !== "string" || !/^Basic /i.test(h)) return undefined;
        const text = Buffer.from(h.slice(6), "base64").toString("utf8");
        return SIM_SESSION.exec(text.slice(0, Math.max(0, text.indexOf(":"))))?.groups?.session;
    }

    /**
     * The crawler's credentials, with a vendor's session suffix (`-session-<key>`, `-sessid-<key>`,
     * `-sessionid-<key>`) on the username allowed.
     */
    private authorized(req: http.IncomingMessage): boolean {
        if (this.expected === undefined) return true;
        const h = req.headers["proxy-authorization"];
        if (h === this.expected) return true;
        if (typeof h !== "string" || !h.startsWith("Basic ")) return false;
        const plain = Buffer.from(h.slice(6), "base64").toString("utf8");
        const bare = plain.replace(/-(session|sessid|sessionid)-[A-Za-z0-9_]+(?=:)/, "");
        return "Basic " + Buffer.from(bare).toString("base64") === this.expected;
    }

    /** This simulator's profile's wording of a fault kind. */
    private worded(kind: Worded): SimAnswer {
        return PROFILE_ANSWERS[this.cfg.profile][kind];
    }

    private onConnect(req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
        client.on("error", () => client.destroy());
        const target = parseAuthority(req.url ?? "");
        const reply = (kind: Worded | "400") => {
            this.count(kind);
            client.end(
                rawAnswer(kind === "400" ? { status: 400, headers: { "proxy-status": OWN_ERROR } } : this.worded(kind)),
            );
        };
        if (!target) return reply("400");
        if (!this.authorized(req)) return reply("407");
        const error = this.pickError();
        setTimeout(() => {
            if (client.destroyed) return;
            if (error === "reset") {
                this.count("reset");
                client.destroy();
                return;
            }
            if (error === "timeout") {
                this.count("timeout");
                setTimeout(() => client.destroy(), this.cfg.timeoutHoldMs).unref();
                return;
            }
            if (error) return reply(error);
            this.count("200");
            const exitIp = this.exitIp(this.session(req));
            const established = `HTTP/1.1 200 Connection Established\r\n${this.exitHeaderLine(exitIp)}\r\n`;
            const tls = target.port === 443 && this.cfg.forwardTls !== "";
            const forward = tls ? this.cfg.forwardTls : this.cfg.forward;
            if (forward) {
                const [host, port] = forward.split(":");
                const up = net.connect({ host, port: Number(port) }, () => {
                    client.write(established);
                    // The target's TLS port learns the exit address from a PROXY protocol v1 line (its IP echo).
                    if (tls && exitIp !== undefined) up.write(`PROXY TCP4 ${exitIp} 127.0.0.1 0 443\r\n`);
                    if (head.length > 0) up.write(head);
                    this.relay(client, up);
                });
                up.on("error", () => {
                    if (!client.destroyed) client.end(rawAnswer(this.worded("unreachable")));
                    up.destroy();
                });
                return;
            }
            // No target: the tunnel echoes what the crawler sends (enough for throughput and byte counts).
            client.write(established);
            if (head.length > 0) client.write(head);
            this.relay(client, client);
        }, this.latencyMs());
    }

    /** Relays a to b and b to a (the same socket for the echo), capped at the configured bandwidth. */
    private relay(a: net.Socket, b: net.Socket): void {
        const cap = this.cfg.bandwidthBytesPerSecond;
        a.on("close", () => b.destroy());
        b.on("close", () => a.destroy());
        b.on("error", () => a.destroy());
        if (cap <= 0) {
            a.pipe(b);
            if (a !== b) b.pipe(a);
            return;
        }
        const throttle = (from: net.Socket, to: net.Socket) => {
            from.on("data", (chunk: Buffer) => {
                to.write(chunk);
                from.pause();
                setTimeout(() => from.resume(), (chunk.length / cap) * 1000);
            });
        };
        throttle(a, b);
        if (a !== b) throttle(b, a);
    }

    private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
        if (this.cfg.oneRequestPerConnection) {
            const served = this.served.has(req.socket);
            this.served.add(req.socket);
            if (served) {
                this.count("reset");
                req.socket.resetAndDestroy();
                return;
            }
        }
        const send = (kind: Worded | "400") => {
            this.count(kind);
            const a = kind === "400" ? { status: 400, headers: { "proxy-status": OWN_ERROR } } : this.worded(kind);
            res.writeHead(a.status, (a as SimAnswer).reason ?? http.STATUS_CODES[a.status] ?? "Error", {
                "content-length": 0,
                "content-type": "text/plain",
                ...a.headers,
            });
            res.end();
        };
        if (!this.authorized(req)) return send("407");
        const error = this.pickError();
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            setTimeout(() => {
                if (error === "reset") {
                    this.count("reset");
                    req.socket.destroy();
                    return;
                }
                if (error === "timeout") {
                    this.count("timeout");
                    setTimeout(() => req.socket.destroy(), this.cfg.timeoutHoldMs).unref();
                    return;
                }
                if (error) return send(error);
                let url: URL;
                try {
                    url = new URL(req.url ?? "");
                } catch {
                    return send("400");
                }
                const exitIp = this.exitIp(this.session(req));
                if (this.cfg.forward) return this.forwardHttp(req, res, url, Buffer.concat(chunks), exitIp);
                const m = /^\/bytes\/([0-9]{1,9})$/.exec(url.pathname);
                const size = m ? Number(m[1]) : 0;
                this.count("200");
                res.writeHead(200, {
                    "content-length": size,
                    "content-type": "application/octet-stream",
                    ...(exitIp !== undefined && this.cfg.exitIps ? { [this.cfg.exitIps.header]: exitIp } : {}),
                });
                res.end(Buffer.alloc(size, 120));
            }, this.latencyMs());
        });
    }

    private forwardHttp(
        req: http.IncomingMessage,
        res: http.ServerResponse,
        url: URL,
        body: Buffer,
        exitIp: string | undefined,
    ): void {
        const [host, port] = this.cfg.forward.split(":");
        const headers = { ...req.headers };
        delete headers["proxy-authorization"];
        // The destination sees the exit address (the target's IP-echo endpoint answers it).
        if (exitIp !== undefined) headers["x-exit-ip"] = exitIp;
        const up = http.request(
            { host, port: Number(port), method: req.method, path: url.pathname + url.search, headers },
            (upRes) => {
                this.count("200");
                res.writeHead(upRes.statusCode ?? 502, {
                    ...upRes.headers,
                    ...(exitIp !== undefined && this.cfg.exitIps ? { [this.cfg.exitIps.header]: exitIp } : {}),
                });
                // pipeline: a destination that cuts its answer cuts ours, and a client that leaves closes the destination.
                pipeline(upRes, res, () => undefined);
            },
        );
        up.on("error", () => {
            this.count("502");
            const a = this.worded("unreachable");
            if (!res.headersSent) res.writeHead(a.status, { "content-length": 0, ...a.headers });
            res.end();
        });
        up.end(body);
    }
}
