/**
 * Vendor profiles (issue 19), on real loopback sockets: the vendor simulator speaks each profile's wording of each
 * fault kind over CONNECT and plain HTTP, and the gateway must read the right cause (proxy_pool_causes_total), charge
 * the right fault (the SLO's proxy_pool_outcomes_total), retry only vendor errors and lost sessions, eject only on
 * vendor errors, answer with an RFC 9209 Proxy-Status that parses as an RFC 8941 list, keep a session on one pool
 * whatever the crawler's source port, and count the bans crawlers report. Every wait is bounded.
 */
import { expect } from "chai";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import * as net from "net";
// structured-headers ships its types under "exports", which this project's module resolution (node10) does not read:
// the types from their file, the code from the package's CommonJS entry.
import type * as SH from "structured-headers/dist/index";
// eslint-disable-next-line @typescript-eslint/no-require-imports
const { Token, parseList } = require("structured-headers") as typeof SH;
type Item = SH.Item;
type Token = SH.Token;
import { CAUSES, CAUSE_FAULT, Cause, PROFILES, Profile } from "../../catalog/datamodel";
import { BAN_HEADER, POOL_HEADER, RETRIES_HEADER, SESSION_HEADER } from "../../catalog/gateway";
import { GatewayFileConfig, validateGatewayConfig } from "../../proxy/gateway/config";
import { sessionAuthorization } from "../../proxy/gateway/sessions";
import { ErrorKind } from "../../proxy/vendor-sim";
import {
    CREDS,
    HOST,
    TEST_EJECTION,
    basic,
    cleanupAfterEach,
    connectAndGet,
    gatewayConfig,
    metricValue,
    rawExchange,
    scrape,
    startGateway,
    startSim,
    startTarget,
} from "./helpers";

type Kind = Exclude<ErrorKind, "timeout" | "reset" | "503">;
const KINDS: Kind[] = ["403", "407", "429", "502", "unreachable", "session"];

/** What each profile's reading of the simulator's wording must be, over CONNECT. */
const MARKED: Record<Kind, Cause> = {
    "403": "vendor_policy",
    "407": "client",
    "429": "client",
    "502": "vendor_error",
    unreachable: "destination",
    session: "session_lost",
};
const EXPECTED_CONNECT: Record<Profile, Record<Kind, Cause>> = {
    rfc9209: MARKED,
    brightdata: MARKED,
    oxylabs: MARKED,
    zyte: MARKED,
    soax: MARKED,
    // Today's heuristics: every proxy error on CONNECT is the vendor's but a 403 and a marked destination error.
    generic: {
        "403": "destination",
        "407": "vendor_error",
        "429": "vendor_error",
        "502": "vendor_error",
        unreachable: "destination",
        session: "vendor_error",
    },
};
/** Over plain HTTP an unmarked answer is the destination's (its 403, 429 relayed; 5xx its fault). */
const EXPECTED_HTTP: Record<Profile, Record<Kind, Cause>> = {
    ...EXPECTED_CONNECT,
    generic: {
        "403": "none",
        "407": "vendor_error",
        "429": "none",
        "502": "destination",
        unreachable: "destination",
        session: "destination",
    },
};

const RETRIED = new Set<Cause>(["vendor_error", "session_lost"]);

/** One plain-HTTP GET through the gateway on a new connection; status and headers. */
function get(
    port: number,
    url: string,
    headers: http.OutgoingHttpHeaders = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; localPort: number }> {
    return new Promise((resolve, reject) => {
        const req = http.request(
            {
                host: HOST,
                port,
                method: "GET",
                path: url,
                headers: { host: new URL(url).host, ...headers },
                agent: false,
            },
            (res) => {
                res.resume();
                res.on("end", () =>
                    resolve({ status: res.statusCode ?? 0, headers: res.headers, localPort: req.socket!.localPort! }),
                );
            },
        );
        req.setTimeout(5000, () => req.destroy(new Error("timeout")));
        req.on("error", reject);
        req.end();
    });
}

/** The gateway's own member of a Proxy-Status value: parses as an RFC 8941 list and ends with proxy-monitor. */
function ownMember(value: string | undefined): Map<string, unknown> {
    expect(value, "Proxy-Status header").to.be.a("string");
    const list = parseList(value!);
    expect(list.length).to.be.at.least(1);
    for (const m of list) expect(m[0], "each member is a token").to.be.instanceOf(Token);
    const last = list[list.length - 1] as Item;
    expect((last[0] as Token).toString()).to.equal("proxy-monitor");
    return last[1] as Map<string, unknown>;
}

function header(raw: string, name: string): string | undefined {
    const values = raw
        .split("\r\n\r\n")[0]
        .split("\r\n")
        .filter((l) => l.toLowerCase().startsWith(name + ":"))
        .map((l) => l.slice(name.length + 1).trim());
    return values.length ? values.join(", ") : undefined;
}

/** A crawler credentials file (`crawlers:pw`) in a temporary folder removed at exit. */
function crawlerAuthFile(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "pm19-"));
    process.once("exit", () => fs.rmSync(dir, { recursive: true, force: true }));
    const file = path.join(dir, "crawlers");
    fs.writeFileSync(file, "crawlers:pw\n");
    return file;
}

describe("vendor profiles: causes, retries, ejection, Proxy-Status, sessions, bans (real sockets)", function () {
    this.timeout(60_000);
    const { track } = cleanupAfterEach();

    async function stack(profile: Profile, n: number, over: Partial<GatewayFileConfig> = {}, weights?: number[]) {
        const dest = await startTarget();
        track(dest.server);
        const sims = [];
        for (let i = 0; i < n; i++) {
            const s = await startSim(`p${i + 1}`, { profile, forward: `${HOST}:${dest.port}` });
            track(s.sim);
            sims.push(s);
        }
        const cfg = gatewayConfig(
            sims.map((s, i) => ({ name: `p${i + 1}`, port: s.port, weight: weights?.[i] ?? 1 })),
            { profile, ...over },
        );
        const g = await startGateway(cfg);
        track(g.gw);
        return { dest, sims, ...g };
    }

    for (const profile of PROFILES) {
        for (const transport of ["CONNECT", "HTTP"] as const) {
            it(`${profile} over ${transport}: each fault kind's cause, SLO fault and retry`, async () => {
                const expected = transport === "CONNECT" ? EXPECTED_CONNECT[profile] : EXPECTED_HTTP[profile];
                for (const kind of KINDS) {
                    // p1 always fails with this kind, p2 never: p1 gets 9 in 10 first attempts.
                    const { sims, port, metricsPort, dest } = await stack(profile, 2, {}, [9, 1]);
                    sims[0].sim.setErrors(1, kind);
                    const statuses: number[] = [];
                    for (let i = 0; i < 12; i++) {
                        const s =
                            transport === "CONNECT"
                                ? (await connectAndGet(port, `d${i % 3}.test:443`, "/bytes/10")).status
                                : (await get(port, `http://d${i % 3}.test:${dest.port}/bytes/10`)).status;
                        statuses.push(s);
                    }
                    const m = await scrape(metricsPort);
                    const cause = expected[kind];
                    const what = `${profile} ${transport} ${kind}`;
                    const seen = metricValue(m, "proxy_pool_causes_total", { pool: "p1", cause });
                    expect(seen, `${what}: p1 cause ${cause}`).to.be.at.least(1);
                    for (const other of CAUSES)
                        if (other !== cause && other !== "gateway")
                            expect(
                                metricValue(m, "proxy_pool_causes_total", { pool: "p1", cause: other }),
                                `${what}: ${other}`,
                            ).to.equal(0);
                    expect(
                        metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: CAUSE_FAULT[cause] }),
                    ).to.equal(seen);
                    expect(metricValue(m, "proxy_pool_causes_total", { pool: "p2", cause: "none" })).to.equal(
                        12 - (RETRIED.has(cause) ? 0 : seen),
                    );
                    const retries = metricValue(m, "proxy_upstream_retries_by_cause_total", { pool: "p1", cause });
                    if (RETRIED.has(cause)) {
                        expect(retries, `${what}: retried once each`).to.equal(seen);
                        expect(statuses, `${what}: the crawler never sees it`).to.deep.equal(Array(12).fill(200));
                    } else {
                        expect(retries, `${what}: never retried`).to.equal(0);
                        expect(statuses.filter((s) => s !== 200).length, `${what}: the crawler sees each`).to.equal(
                            seen,
                        );
                    }
                    for (const s of sims) await s.sim.stop();
                }
            });
        }
    }

    const health = TEST_EJECTION;
    const ejection: [Profile, Kind, boolean][] = [
        ["brightdata", "502", true], // peer_30006
        ["brightdata", "unreachable", false], // target_40001
        ["brightdata", "session", false], // No peers available
        ["oxylabs", "502", true], // X-Error-Description
        ["oxylabs", "unreachable", false], // 522 without X-Error-Description
        ["zyte", "502", true], // no_proxies
        ["soax", "403", false], // policy
        ["rfc9209", "407", false], // our account: every pool shares it
    ];
    for (const [profile, kind, ejects] of ejection) {
        it(`${profile} ${kind}: ${ejects ? "ejects the pool at the outlier threshold" : "never ejects the pool"}`, async () => {
            const { sims, port, metricsPort } = await stack(profile, 2, { health });
            sims[0].sim.setErrors(1, kind);
            // Below the destination count: never ejected.
            for (let i = 0; i < 24; i++) await connectAndGet(port, "one.test:443", "/bytes/10");
            let m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_pool_health", { pool: "p1" })).to.equal(1);
            for (let i = 0; i < 24; i++) await connectAndGet(port, "two.test:443", "/bytes/10");
            m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_pool_health", { pool: "p1" })).to.equal(ejects ? 0 : 1);
            expect(metricValue(m, "proxy_pool_health", { pool: "p2" })).to.equal(1);
        });
    }

    describe("Proxy-Status on the gateway's own answers (RFC 9209, parsed as an RFC 8941 list)", () => {
        it("a refusal by policy, a crawler-auth refusal, a malformed request", async () => {
            const { port } = await stack("rfc9209", 1, {
                destinations: { tracked: [], allowed: ["ok.test"], connectPorts: ["443", "80"], allowInternal: false },
            });
            let raw = await rawExchange(port, "CONNECT no.test:443 HTTP/1.1\r\nHost: no.test:443\r\n\r\n");
            expect(raw).to.match(/^HTTP\/1\.1 403/);
            let p = ownMember(header(raw, "proxy-status"));
            expect(String(p.get("error"))).to.equal("http_request_denied");
            expect(p.get("details")).to.equal("not-allowed");
            raw = await rawExchange(port, "GET http://no.test/ HTTP/1.1\r\nHost: no.test\r\n\r\n", 3000, /\r\n\r\n/);
            p = ownMember(header(raw, "proxy-status"));
            expect(String(p.get("error"))).to.equal("http_request_denied");
            raw = await rawExchange(port, "GARBAGE\r\n\r\n");
            p = ownMember(header(raw, "proxy-status"));
            expect(String(p.get("error"))).to.equal("http_request_error");
        });

        it("a relayed vendor failure keeps the vendor's marks and appends the gateway's member, over CONNECT and HTTP", async () => {
            const { sims, port, dest } = await stack("rfc9209", 1);
            sims[0].sim.setErrors(1, "502");
            const raw = await rawExchange(port, "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n");
            expect(raw).to.match(/^HTTP\/1\.1 502/);
            const value = header(raw, "proxy-status");
            const list = parseList(value!);
            expect((list[0][0] as Token).toString()).to.equal("vendor-sim");
            const p = ownMember(value);
            expect(p.get("received-status")).to.equal(502);
            expect(p.get("details")).to.equal("vendor_error");
            const r = await get(port, `http://a.test:${dest.port}/bytes/1`);
            expect(r.status).to.equal(502);
            const q = ownMember(r.headers["proxy-status"] as string);
            expect(q.get("received-status")).to.equal(502);
            expect(q.get("details")).to.equal("vendor_error");
        });

        it("a vendor that times out or cannot be reached: connection_timeout / connection_refused", async () => {
            const { sims, port, dest } = await stack("brightdata", 1, {
                timeouts: { connectMs: 200, idleMs: 5000, totalMs: 10_000 },
            });
            sims[0].sim.setErrors(1, "timeout");
            const raw = await rawExchange(port, "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n");
            expect(raw).to.match(/^HTTP\/1\.1 504/);
            expect(String(ownMember(header(raw, "proxy-status")).get("error"))).to.equal("connection_timeout");
            await sims[0].sim.stop();
            const r = await get(port, `http://a.test:${dest.port}/bytes/1`);
            expect(r.status).to.equal(502);
            expect(String(ownMember(r.headers["proxy-status"] as string).get("error"))).to.equal("connection_refused");
        });

        it("X-Proxy-Monitor-Pool and -Retries only when responseHeaders is on", async () => {
            const off = await stack("brightdata", 2);
            let r = await get(off.port, `http://a.test:${off.dest.port}/bytes/1`);
            expect(r.headers[POOL_HEADER]).to.equal(undefined);
            const on = await stack("brightdata", 2, { responseHeaders: true }, [9, 1]);
            on.sims[0].sim.setErrors(1, "session");
            r = await get(on.port, `http://a.test:${on.dest.port}/bytes/1`);
            expect(r.status).to.equal(200);
            // p1 always loses the session: p2 serves, after one retry when p1 was tried first.
            expect(r.headers[POOL_HEADER]).to.equal("p2");
            expect(r.headers[RETRIES_HEADER]).to.be.oneOf(["0", "1"]);
            const raw = await rawExchange(
                on.port,
                "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n\r\n",
                3000,
                /\r\n\r\n/,
            );
            expect(header(raw, POOL_HEADER)).to.equal("p2");
            expect(header(raw, RETRIES_HEADER)).to.be.oneOf(["0", "1"]);
            expect(raw).to.not.match(/s3cret|Proxy-Authorization/i);
        });
    });

    describe("sessions keyed on what crawlers send, never the source IP", () => {
        it("1,000 requests with one session key, each from a new source port, stay on one pool; other keys spread", async () => {
            const { port, metricsPort, dest } = await stack("brightdata", 3, { responseHeaders: true });
            const pools = new Set<string>();
            const ports = new Set<number>();
            for (let batch = 0; batch < 50; batch++) {
                const rs = await Promise.all(
                    Array.from({ length: 20 }, (_, i) =>
                        batch % 2 === 0
                            ? get(port, `http://s${i}.test:${dest.port}/bytes/1`, { [SESSION_HEADER]: "crawler_7" })
                            : connectAndGet(
                                  port,
                                  `s${i}.test:443`,
                                  "/bytes/1",
                                  5000,
                                  `${SESSION_HEADER}: crawler_7\r\n`,
                              ).then((t) => ({
                                  status: t.status,
                                  headers: {} as http.IncomingHttpHeaders,
                                  localPort: 0,
                              })),
                    ),
                );
                for (const r of rs) {
                    expect(r.status).to.equal(200);
                    if (r.localPort) ports.add(r.localPort);
                    if (r.headers[POOL_HEADER]) pools.add(r.headers[POOL_HEADER] as string);
                }
            }
            expect(ports.size, "distinct source ports").to.be.at.least(200);
            expect([...pools]).to.have.length(1);
            const m = await scrape(metricsPort);
            const served = ["p1", "p2", "p3"].map((p) =>
                metricValue(m, "proxy_pool_causes_total", { pool: p, cause: "none" }),
            );
            expect(
                served.filter((n) => n > 0),
                `served per pool ${served}`,
            ).to.have.length(1);
            expect(Math.max(...served)).to.equal(1000);
            // Other keys use every pool (rendezvous hashing spreads them).
            const others = new Set<string>();
            for (let i = 0; i < 60; i++)
                others.add(
                    (await get(port, `http://x.test:${dest.port}/bytes/1`, { [SESSION_HEADER]: `k${i}` })).headers[
                        POOL_HEADER
                    ] as string,
                );
            expect(others.size).to.equal(3);
        });

        it("a -session-<key> suffix on the crawler's username is the key, authenticates as the bare user, and reaches the vendor in its spelling", async () => {
            const file = crawlerAuthFile();
            const { port, dest } = await stack("oxylabs", 3, { responseHeaders: true, crawlerAuthFile: file });
            const seen = new Set<string>();
            for (let i = 0; i < 30; i++) {
                const r = await get(port, `http://a.test:${dest.port}/bytes/1`, {
                    "proxy-authorization": basic("crawlers-session-abc", "pw"),
                });
                expect(r.status).to.equal(200);
                seen.add(r.headers[POOL_HEADER] as string);
            }
            expect(seen.size).to.equal(1);
            const bad = await get(port, `http://a.test:${dest.port}/bytes/1`, {
                "proxy-authorization": basic("crawlers-session-a%b", "pw"),
            });
            expect(bad.status).to.equal(400);
            // The key in each vendor's spelling on the pool's username; the pool alone is sticky for the others.
            const user = (profile: Profile) =>
                Buffer.from(sessionAuthorization(profile, basic("u", "p"), "abc").slice(6), "base64").toString();
            expect(user("oxylabs")).to.equal("u-sessid-abc:p");
            expect(user("brightdata")).to.equal("u-session-abc:p");
            expect(user("soax")).to.equal("u-sessionid-abc:p");
            expect(user("zyte")).to.equal("u:p");
        });
    });

    describe("ban feedback", () => {
        it("a ban header on the next request and POST /ban (authenticated like crawlers) count per pool and tracked destination", async () => {
            const file = crawlerAuthFile();
            const auth = basic("crawlers", "pw");
            const { port, metricsPort, dest } = await stack("zyte", 2, {
                crawlerAuthFile: file,
                destinations: {
                    tracked: ["shop.test"],
                    allowed: ["*"],
                    connectPorts: ["1-65535"],
                    allowInternal: false,
                },
            });
            await connectAndGet(
                port,
                "a.test:443",
                "/bytes/1",
                5000,
                `Proxy-Authorization: ${auth}\r\n${BAN_HEADER}: shop.test; pool=p2\r\n`,
            );
            await get(port, `http://b.test:${dest.port}/bytes/1`, {
                "proxy-authorization": auth,
                [BAN_HEADER]: "elsewhere.test",
            });
            const post = (q: string, a?: string) =>
                new Promise<number>((resolve, reject) => {
                    const req = http.request(
                        {
                            host: HOST,
                            port: metricsPort,
                            method: "POST",
                            path: `/ban?${q}`,
                            headers: a ? { authorization: a } : {},
                        },
                        (res) => {
                            res.resume();
                            resolve(res.statusCode ?? 0);
                        },
                    );
                    req.on("error", reject);
                    req.end();
                });
            expect(await post("destination=shop.test&pool=p1")).to.equal(401);
            expect(await post("destination=shop.test&pool=p1", auth)).to.equal(204);
            expect(await post("destination=shop.test&pool=p1", auth)).to.equal(204);
            expect(await post("destination=bad%20host", auth)).to.equal(400);
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_crawler_bans_total", { pool: "p2", destination: "shop.test" })).to.equal(1);
            expect(metricValue(m, "proxy_crawler_bans_total", { pool: "p1", destination: "shop.test" })).to.equal(2);
            expect(metricValue(m, "proxy_crawler_bans_total", { pool: "none", destination: "other" })).to.equal(1);
        });

        it("the ban and session headers never reach the destination", async () => {
            let got: http.IncomingHttpHeaders = {};
            const target = http.createServer((req, res) => {
                got = req.headers;
                res.end("ok");
            });
            await new Promise<void>((r) => target.listen(0, HOST, () => r()));
            track(target);
            const s = await startSim("p1", {
                profile: "soax",
                forward: `${HOST}:${(target.address() as net.AddressInfo).port}`,
            });
            track(s.sim);
            const g = await startGateway(gatewayConfig([{ name: "p1", port: s.port }], { profile: "soax" }));
            track(g.gw);
            const r = await get(g.port, "http://a.test/x", { [BAN_HEADER]: "b.test", [SESSION_HEADER]: "k1" });
            expect(r.status).to.equal(200);
            expect(got[BAN_HEADER]).to.equal(undefined);
            expect(got[SESSION_HEADER]).to.equal(undefined);
        });
    });

    it("the profile is validated, naming the key", () => {
        const cfg = { ...gatewayConfig([{ name: "p1", port: 1 }]), profile: "luminati" };
        expect(() => validateGatewayConfig(cfg)).to.throw(
            /profile: expected one of rfc9209, brightdata, oxylabs, zyte, soax, generic/,
        );
        expect(CREDS.username).to.be.a("string");
    });
});
