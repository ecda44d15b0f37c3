import { expect } from "chai";
import * as http from "http";
import { Profile } from "../../catalog/datamodel";
import { SESSION_HEADER } from "../../catalog/gateway";
import { EXIT_IP_DEFAULTS } from "../../proxy/gateway/config";
import { SKETCH_STANDARD_ERROR, echoProbe, parseEcho } from "../../proxy/gateway/exit-ips";
import { Target, validateTargetConfig } from "../../proxy/target";
import { SIM_SESSION, VendorSim, simExitIp, validateVendorSimConfig } from "../../proxy/vendor-sim";
import {
    CREDS,
    HOST,
    basic,
    cleanupAfterEach,
    connectAndGet,
    gatewayConfig,
    metricValue,
    rawExchange,
    scrape,
    startGateway,
    startTarget,
} from "./helpers";

const EXIT_HEADER = "x-exit-ip";

/** GET through the gateway (keep-alive), with an optional crawler username; resolves with status and headers. */
function get(port: number, url: string, agent: http.Agent, user?: string, extra: http.OutgoingHttpHeaders = {}) {
    return new Promise<{ status: number; headers: http.IncomingHttpHeaders }>((resolve, reject) => {
        const headers: http.OutgoingHttpHeaders = { host: new URL(url).host, ...extra };
        if (user) headers["proxy-authorization"] = basic(user, "crawler-secret");
        const req = http.request({ host: HOST, port, path: url, headers, agent }, (res) => {
            res.resume();
            res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
        });
        req.setTimeout(5000, () => req.destroy(new Error("timeout")));
        req.on("error", reject);
        req.end();
    });
}

describe("pool quality: exit IPs learned from the vendor's header, live on loopback", function () {
    this.timeout(30_000);
    const { track } = cleanupAfterEach();

    async function topology(
        sim: { size: number; rotation?: "random" | "sticky"; degradedTo?: number },
        exitIp: { stripHeader?: boolean; sessionPattern?: string } = {},
        random?: () => number,
        profile: Profile = "generic",
    ) {
        const target = await startTarget();
        track(target.server);
        const cfg = validateVendorSimConfig({
            vendor: "vendor-t",
            pool: "p1",
            listen: { host: HOST, proxyPort: 0, metricsPort: 0 },
            username: CREDS.username,
            password: CREDS.password,
            forward: `${HOST}:${target.port}`,
            profile,
            exitIps: { header: EXIT_HEADER, rotation: "random", ...sim },
        });
        const vs = track(new VendorSim(cfg, { processMetrics: false, random }));
        const { proxyPort } = await vs.start();
        const g = await startGateway(
            gatewayConfig([{ name: "p1", port: proxyPort }], {
                profile,
                exitIp: {
                    ...EXIT_IP_DEFAULTS,
                    header: EXIT_HEADER,
                    stripHeader: exitIp.stripHeader ?? true,
                    sessionPattern: exitIp.sessionPattern ?? SIM_SESSION.source,
                    sessionUsername: "{user}-session-{session}",
                    maxSessions: 1000,
                },
            }),
        );
        track(g.gw);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
        return { target, vs, agent, ...g };
    }

    const labels = (window: string) => ({ vendor: "vendor-t", pool: "p1", window });
    const bound = 3 * SKETCH_STANDARD_ERROR;

    it("reads a simulator rotating through 500 exit IPs as 500 within the sketch's error, over CONNECT and plain HTTP", async () => {
        // The simulator's draws cycle through its 500 addresses: each is used exactly twice in 1,000 requests.
        let i = 0;
        const cycle = () => (i++ % 500) / 500 + 1e-9;
        const { port, metricsPort, target, agent } = await topology({ size: 500 }, {}, cycle);
        const url = `http://127.0.0.1:${target.port}/bytes/10`;
        for (let n = 0; n < 200; n++)
            expect((await connectAndGet(port, `127.0.0.1:${target.port}`, "/bytes/10")).status).to.equal(200);
        for (let n = 0; n < 800; n += 8)
            for (const r of await Promise.all(Array.from({ length: 8 }, () => get(port, url, agent))))
                expect(r.status).to.equal(200);
        agent.destroy();
        const m = await scrape(metricsPort);
        for (const w of ["5m", "1h", "24h"]) {
            const distinct = metricValue(m, "proxy_pool_exit_ips_distinct", labels(w));
            expect(Math.abs(distinct - 500) / 500, `${w}: ${distinct}`).to.be.at.most(bound);
            expect(metricValue(m, "proxy_pool_exit_ip_samples", labels(w))).to.equal(1000);
            expect(metricValue(m, "proxy_pool_exit_ip_reuse_ratio", labels(w))).to.be.closeTo(0.5, 0.5 * bound);
        }
    });

    it("reads a pool degraded to 5 exit IPs as 5, with almost every sample a reuse", async () => {
        const { port, metricsPort, target, agent } = await topology({ size: 500, degradedTo: 5 });
        for (let n = 0; n < 200; n++)
            expect((await get(port, `http://127.0.0.1:${target.port}/bytes/1`, agent)).status).to.equal(200);
        agent.destroy();
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_pool_exit_ips_distinct", labels("1h"))).to.equal(5);
        expect(metricValue(m, "proxy_pool_exit_ip_reuse_ratio", labels("1h"))).to.be.closeTo(0.975, 1e-9);
    });

    it("strips the exit-IP header before the crawler sees it when configured, and relays it when not", async () => {
        for (const strip of [true, false]) {
            const { port, target, agent } = await topology({ size: 10 }, { stripHeader: strip });
            const r = await get(port, `http://127.0.0.1:${target.port}/bytes/1`, agent);
            agent.destroy();
            expect(r.status).to.equal(200);
            expect(r.headers[EXIT_HEADER] !== undefined, `plain HTTP, strip=${strip}`).to.equal(!strip);
            const head = await rawExchange(
                port,
                `CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\nHost: 127.0.0.1:${target.port}\r\n\r\n`,
                3000,
                /\r\n\r\n/,
            );
            expect(head).to.match(/^HTTP\/1\.1 200/);
            expect(/x-exit-ip: 198\.18\./i.test(head), `CONNECT, strip=${strip}: ${head}`).to.equal(!strip);
        }
    });

    it("passes the crawler's sticky session to the pool and counts requests whose exit IP changed mid-session", async () => {
        // The simulator's draws never give address 0, so degrading it to one address moves every session.
        let i = 0;
        const draws = () => (1 + (i++ % 499)) / 500 + 1e-9;
        const { port, metricsPort, target, agent, vs } = await topology({ size: 500, rotation: "sticky" }, {}, draws);
        const url = `http://127.0.0.1:${target.port}/bytes/1`;
        const first = new Map<number, string>();
        for (let round = 0; round < 3; round++)
            for (let s = 0; s < 20; s++) {
                expect((await get(port, url, agent, `crawler-session-s${s}`)).status).to.equal(200);
                // The pool saw the session in its own username (the gateway's credentials, sessionUsername).
                const ip = vs.exitIp(`s${s}`) ?? "";
                if (round === 0) first.set(s, ip);
                expect(ip).to.equal(first.get(s));
            }
        // Requests without a session are not session requests.
        expect((await get(port, url, agent)).status).to.equal(200);
        const pool = { vendor: "vendor-t", pool: "p1" };
        let m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_pool_sticky_session_requests_total", pool)).to.equal(60);
        expect(metricValue(m, "proxy_pool_sticky_session_breaks_total", pool)).to.equal(0);
        // The vendor degrades to one address: each session moves once (its next request), then stays.
        vs.setExitIpsDegraded(1);
        for (let round = 0; round < 2; round++)
            for (let s = 0; s < 20; s++) await get(port, url, agent, `crawler-session-s${s}`);
        agent.destroy();
        m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_pool_sticky_session_requests_total", pool)).to.equal(100);
        expect(metricValue(m, "proxy_pool_sticky_session_breaks_total", pool)).to.equal(20);
    });

    it("tracks the sessions of vendor profiles (X-Proxy-Monitor-Session, spelled -sessid- for Oxylabs) without a sessionPattern", async () => {
        let i = 0;
        const draws = () => (1 + (i++ % 499)) / 500 + 1e-9;
        const { port, metricsPort, target, agent, vs } = await topology(
            { size: 500, rotation: "sticky" },
            { sessionPattern: "" },
            draws,
            "oxylabs",
        );
        const url = `http://127.0.0.1:${target.port}/bytes/1`;
        // The simulator keeps each session's exit IP only if it reads the session from the pool's `-sessid-`
        // username: else every request draws a new one and the gateway counts breaks.
        for (let round = 0; round < 2; round++)
            for (let s = 0; s < 10; s++)
                expect((await get(port, url, agent, "crawler", { [SESSION_HEADER]: `k${s}` })).status).to.equal(200);
        const pool = { vendor: "vendor-t", pool: "p1" };
        let m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_pool_sticky_session_requests_total", pool)).to.equal(20);
        expect(metricValue(m, "proxy_pool_sticky_session_breaks_total", pool)).to.equal(0);
        vs.setExitIpsDegraded(1);
        for (let s = 0; s < 10; s++) await get(port, url, agent, "crawler", { [SESSION_HEADER]: `k${s}` });
        agent.destroy();
        m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_pool_sticky_session_requests_total", pool)).to.equal(30);
        expect(metricValue(m, "proxy_pool_sticky_session_breaks_total", pool)).to.equal(10);
    });

    it("exports a constant number of series per pool, whatever the number of exit IPs", async () => {
        const counts: number[] = [];
        for (const size of [5, 2000]) {
            const { port, metricsPort, target, agent } = await topology({ size });
            for (let n = 0; n < 400; n += 8)
                await Promise.all(
                    Array.from({ length: 8 }, () => get(port, `http://127.0.0.1:${target.port}/x`, agent)),
                );
            agent.destroy();
            const m = await scrape(metricsPort);
            counts.push(m.split("\n").filter((l) => /^proxy_pool_(exit_ip|sticky)/.test(l)).length);
        }
        // 3 windows x (distinct, samples, reuse) + session requests and breaks.
        expect(counts).to.deep.equal([11, 11]);
    });
});

describe("pool quality: the IP-echo probe over TLS inside a tunnel, live on loopback", function () {
    this.timeout(30_000);
    const { track } = cleanupAfterEach();

    it("reads through each pool the exit address the target echoes, and counts one sample per probe", async () => {
        const target = new Target(
            validateTargetConfig({ listen: { host: HOST, httpPort: 0, httpsPort: 0, metricsPort: 0 } }),
            { processMetrics: false },
        );
        const tp = await target.start();
        track(target);
        let i = 0;
        const cycle = () => (i++ % 500) / 500 + 1e-9;
        const sim = new VendorSim(
            validateVendorSimConfig({
                vendor: "vendor-t",
                pool: "p1",
                listen: { host: HOST, proxyPort: 0, metricsPort: 0 },
                username: CREDS.username,
                password: CREDS.password,
                forward: `${HOST}:${tp.httpPort}`,
                forwardTls: `${HOST}:${tp.httpsPort}`,
                exitIps: { size: 500 },
            }),
            { processMetrics: false, random: cycle },
        );
        const { proxyPort } = await sim.start();
        track(sim);
        const pool = { host: HOST, port: proxyPort, authorization: basic(CREDS.username, CREDS.password) };
        const echo = { url: "https://echo.test/ip", insecureSkipVerify: true };
        // The address the probe reads is the one the simulator used for that tunnel (draws 0, 1, 2, ...).
        expect(await echoProbe(pool, echo, 5000)).to.equal(simExitIp(0));
        expect(await echoProbe(pool, echo, 5000)).to.equal(simExitIp(1));
        // Certificates are checked unless told: the target's is self-signed.
        let refused = "";
        await echoProbe(pool, { ...echo, insecureSkipVerify: false }, 5000).catch((e: Error) => (refused = e.message));
        expect(refused).to.match(/self.signed|certificate/i);
        // The gateway, learning only from the probe (no header), counts one sample per probe per pool.
        const g = await startGateway(
            gatewayConfig([{ name: "p1", port: proxyPort }], {
                exitIp: { ...EXIT_IP_DEFAULTS, echo: { ...echo, intervalMs: 3_600_000 } },
            }),
        );
        track(g.gw);
        for (let n = 0; n < 20; n++) await g.gw.echoAll();
        const m = await scrape(g.metricsPort);
        const samples = metricValue(m, "proxy_pool_exit_ip_samples", { pool: "p1", window: "1h" });
        expect(samples).to.be.within(20, 21); // the probe at start may have landed too
        expect(metricValue(m, "proxy_pool_exit_ips_distinct", { pool: "p1", window: "1h" })).to.equal(samples);
    });

    it("parses plain and JSON echo answers and refuses anything else", () => {
        expect(parseEcho("HTTP/1.1 200 OK\r\n\r\n203.0.113.7\n")).to.equal("203.0.113.7");
        expect(parseEcho('HTTP/1.1 200 OK\r\n\r\n{"origin":"2001:db8::1"}')).to.equal("2001:db8::1");
        expect(parseEcho("HTTP/1.1 200 OK\r\n\r\n<html>")).to.equal(undefined);
        expect(parseEcho("HTTP/1.1 403 Forbidden\r\n\r\n203.0.113.7")).to.equal(undefined);
    });
});
