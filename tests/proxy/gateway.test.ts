import { expect } from "chai";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { validateGatewayConfig } from "../../proxy/gateway/config";
import {
    cleanupAfterEach,
    CREDS,
    HOST,
    basic,
    connectAndGet,
    gatewayConfig,
    httpViaProxy,
    metricSum,
    metricValue,
    rawExchange,
    scrape,
    startGateway,
    startSim,
    startTarget,
    waitFor,
} from "./helpers";

describe("gateway", function () {
    this.timeout(20_000);
    const { track, untrack } = cleanupAfterEach();

    async function topology(
        pools: { name: string; weight?: number; sim?: Parameters<typeof startSim>[1] }[],
        over = {},
    ) {
        const target = await startTarget();
        track(target.server);
        const sims: Awaited<ReturnType<typeof startSim>>[] = [];
        for (const p of pools) {
            const s = await startSim(p.name, { forward: `${HOST}:${target.port}`, ...p.sim });
            track(s.sim);
            sims.push(s);
        }
        const g = await startGateway(
            gatewayConfig(
                pools.map((p, i) => ({ name: p.name, port: sims[i].port, weight: p.weight })),
                over,
            ),
        );
        track(g.gw);
        return { target, sims, ...g };
    }

    it("tunnels CONNECT through the vendor pool and counts request, status, protocol and bytes each way exactly", async () => {
        const { port, metricsPort, target } = await topology([{ name: "p1" }]);
        const results = [];
        for (let i = 0; i < 5; i++)
            results.push(await connectAndGet(port, `127.0.0.1:${target.port}`, `/bytes/${1000 * (i + 1)}`));
        for (const r of results) expect(r.status).to.equal(200);
        expect(target.hits()).to.equal(5);
        const m = await scrape(metricsPort);
        const labels = { vendor: "vendor-t", pool: "p1", destination: "127.0.0.1", status: "200", protocol: "CONNECT" };
        expect(metricValue(m, "proxy_requests_total", labels)).to.equal(5);
        const sent = results.reduce((s, r) => s + r.sent, 0);
        const received = results.reduce((s, r) => s + r.received, 0);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { pool: "p1", direction: "egress" })).to.equal(sent);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { pool: "p1", direction: "ingress" })).to.equal(received);
        expect(
            metricValue(m, "proxy_destination_bandwidth_bytes_total", {
                destination: "127.0.0.1",
                direction: "ingress",
            }),
        ).to.equal(received);
        expect(metricValue(m, "proxy_request_duration_milliseconds_count", { pool: "p1" })).to.equal(5);
        expect(metricValue(m, "proxy_pool_health", { pool: "p1" })).to.equal(1);
    });

    it("forwards absolute-form HTTP through the pool over kept-alive connections and counts it", async () => {
        const { port, metricsPort, target } = await topology([{ name: "p1" }]);
        for (let i = 0; i < 4; i++) {
            const r = await httpViaProxy(port, `http://tracked.test:${target.port}/bytes/2048`);
            expect(r).to.deep.equal({ status: 200, bytes: 2048 });
        }
        const m = await scrape(metricsPort);
        expect(
            metricValue(m, "proxy_requests_total", {
                destination: "tracked.test",
                status: "200",
                protocol: "HTTP/1.1",
            }),
        ).to.equal(4);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { direction: "ingress" })).to.equal(4 * 2048);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { direction: "egress" })).to.equal(0);
    });

    it("buckets destinations outside the tracked list as 'other'", async () => {
        const { port, metricsPort, target } = await topology([{ name: "p1" }]);
        await httpViaProxy(port, `http://untracked.example:${target.port}/bytes/10`);
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_requests_total", { destination: "other", status: "200" })).to.equal(1);
        expect(m).to.not.contain("untracked.example");
    });

    it("spreads traffic by pool weight within tolerance", async () => {
        const { port, metricsPort, target } = await topology([
            { name: "w1", weight: 1 },
            { name: "w2", weight: 2 },
            { name: "w5", weight: 5 },
        ]);
        const n = 400;
        const agentless = [];
        for (let i = 0; i < n; i++) agentless.push(httpViaProxy(port, `http://127.0.0.1:${target.port}/bytes/1`));
        await Promise.all(agentless);
        const m = await scrape(metricsPort);
        const share = (pool: string) => metricValue(m, "proxy_requests_total", { pool, status: "200" }) / n;
        expect(share("w1") + share("w2") + share("w5")).to.equal(1);
        // Expected 1/8, 2/8, 5/8; a binomial standard deviation at n=400 is at most 2.5 points: allow 7.5.
        expect(share("w1")).to.be.closeTo(0.125, 0.075);
        expect(share("w2")).to.be.closeTo(0.25, 0.075);
        expect(share("w5")).to.be.closeTo(0.625, 0.075);
    });

    it("fails over when probes see a pool down, flips proxy_pool_health, and recovers", async () => {
        const probe = {
            intervalMs: 50,
            timeoutMs: 500,
            destination: "probe.test:443",
            failuresToDown: 2,
            successesToUp: 2,
        };
        const { port, metricsPort, target, sims, gw } = await topology([{ name: "a" }, { name: "b" }], { probe });
        sims[0].sim.setOutage(60);
        await waitFor(
            async () => metricValue(await scrape(metricsPort), "proxy_pool_health", { pool: "a" }) === 0,
            3000,
            "pool a down",
        );
        expect(gw.pools.anyAvailable()).to.equal(true);
        for (let i = 0; i < 20; i++)
            expect((await connectAndGet(port, `127.0.0.1:${target.port}`, "/bytes/10")).status).to.equal(200);
        let m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_requests_total", { pool: "b", status: "200" })).to.be.at.least(20);
        expect(metricValue(m, "proxy_pool_health", { pool: "b" })).to.equal(1);
        sims[0].sim.setOutage(0);
        await waitFor(
            async () => metricValue(await scrape(metricsPort), "proxy_pool_health", { pool: "a" }) === 1,
            3000,
            "pool a up",
        );
        m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_pool_probes_total", { pool: "a", result: "failure" })).to.be.at.least(2);
    });

    it("retries a failed CONNECT once on another pool when the crawler has sent nothing", async () => {
        const dead = net.createServer();
        await new Promise<void>((r) => dead.listen(0, HOST, () => r()));
        const deadPort = (dead.address() as net.AddressInfo).port;
        await new Promise<void>((r) => dead.close(() => r())); // nothing listens there now: connection refused
        const target = await startTarget();
        track(target.server);
        const live = await startSim("live", { forward: `${HOST}:${target.port}` });
        track(live.sim);
        // The dead pool weighs 1000 times more, so the first pick is almost surely it.
        const { port, metricsPort, gw } = await startGateway(
            gatewayConfig([
                { name: "dead", port: deadPort, weight: 1000 },
                { name: "live", port: live.port, weight: 1 },
            ]),
        );
        track(gw);
        const r = await connectAndGet(port, `127.0.0.1:${target.port}`, "/bytes/5");
        expect(r.status).to.equal(200);
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_upstream_retries_total", { pool: "dead" })).to.equal(1);
        expect(metricValue(m, "proxy_upstream_failures_total", { pool: "dead", reason: "connect_error" })).to.equal(1);
        expect(metricValue(m, "proxy_requests_total", { pool: "live", status: "200" })).to.equal(1);
    });

    describe("answers every error with the right status", () => {
        it("400 for a malformed CONNECT line and for an origin-form request", async () => {
            const { port, metricsPort } = await topology([{ name: "p1" }]);
            expect(await rawExchange(port, "CONNECT not-an-authority HTTP/1.1\r\n\r\n")).to.match(/^HTTP\/1\.1 400 /);
            expect(await rawExchange(port, "GET /relative HTTP/1.1\r\nHost: x\r\n\r\n", 3000, /\r\n\r\n/)).to.match(
                /^HTTP\/1\.1 400 /,
            );
            const m = await scrape(metricsPort);
            expect(metricSum(m, "proxy_requests_total", { pool: "none", status: "400" })).to.equal(2);
        });

        it("403 for a destination the config does not allow", async () => {
            const { port, metricsPort } = await topology([{ name: "p1" }], {
                destinations: {
                    tracked: [],
                    allowed: ["*.allowed.test"],
                    connectPorts: ["443", "80"],
                    allowInternal: false,
                },
            });
            expect((await connectAndGet(port, "evil.test:443")).status).to.equal(403);
            expect((await httpViaProxy(port, "http://evil.test/x")).status).to.equal(403);
            expect(
                metricSum(await scrape(metricsPort), "proxy_requests_total", { status: "403", pool: "none" }),
            ).to.equal(2);
        });

        it("407 when crawler authentication is on and missing or wrong; 200 with the right one", async () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "crawler-auth-"));
            fs.writeFileSync(path.join(dir, "users"), "crawler-1:pw-1\n");
            const { port, target } = await topology([{ name: "p1" }], { crawlerAuthFile: path.join(dir, "users") });
            expect(await rawExchange(port, `CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`)).to.match(
                /^HTTP\/1\.1 407 [^]*Proxy-Authenticate: Basic/,
            );
            const wrong = `Proxy-Authorization: ${basic("crawler-1", "nope")}\r\n`;
            expect((await connectAndGet(port, `127.0.0.1:${target.port}`, "/bytes/1", 3000, wrong)).status).to.equal(
                407,
            );
            const right = `Proxy-Authorization: ${basic("crawler-1", "pw-1")}\r\n`;
            expect((await connectAndGet(port, `127.0.0.1:${target.port}`, "/bytes/1", 3000, right)).status).to.equal(
                200,
            );
        });

        it("502 when the pool cannot be reached and no other pool is left", async () => {
            const dead = net.createServer();
            await new Promise<void>((r) => dead.listen(0, HOST, () => r()));
            const deadPort = (dead.address() as net.AddressInfo).port;
            await new Promise<void>((r) => dead.close(() => r()));
            // A high failure threshold keeps the pool "up", so the second request still tries it (else 503).
            const probe = {
                intervalMs: 60_000,
                timeoutMs: 500,
                destination: "p.test:443",
                failuresToDown: 10,
                successesToUp: 1,
            };
            const { port, metricsPort, gw } = await startGateway(
                gatewayConfig([{ name: "only", port: deadPort }], { probe }),
            );
            track(gw);
            expect((await connectAndGet(port, "x.test:443")).status).to.equal(502);
            expect((await httpViaProxy(port, "http://x.test/")).status).to.equal(502);
            expect(
                metricSum(await scrape(metricsPort), "proxy_requests_total", { pool: "only", status: "502" }),
            ).to.equal(2);
        });

        it("no 503 when no pool is healthy: panic mode sends to the pools anyway, and /readyz stays ready", async () => {
            const probe = {
                intervalMs: 50,
                timeoutMs: 300,
                destination: "probe.test:443",
                failuresToDown: 1,
                successesToUp: 1,
            };
            const { port, metricsPort, sims, gw } = await topology([{ name: "p1" }], { probe });
            sims[0].sim.setOutage(60);
            await waitFor(() => !gw.pools.anyAvailable(), 3000, "no healthy pool");
            // The pool's real failure (connection reset by the outage), not a made-up 503.
            expect((await connectAndGet(port, "x.test:443")).status).to.equal(502);
            const ready = await new Promise<number>((r) =>
                http.get({ host: HOST, port: metricsPort, path: "/readyz" }, (res) => {
                    res.resume();
                    r(res.statusCode ?? 0);
                }),
            );
            expect(ready).to.equal(200);
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_pool_panic", {})).to.equal(1);
            expect(metricValue(m, "proxy_requests_total", { pool: "p1", status: "502" })).to.equal(1);
            expect(metricSum(m, "proxy_requests_total", { pool: "none" })).to.equal(0);
        });

        it("504 when the pool does not answer within the connect timeout", async () => {
            const { port, metricsPort } = await topology(
                [{ name: "slow", sim: { errorRate: 1, errorMix: { timeout: 1 }, timeoutHoldMs: 3000 } }],
                { timeouts: { connectMs: 300, idleMs: 5000, totalMs: 20_000 } },
            );
            expect((await connectAndGet(port, "x.test:443")).status).to.equal(504);
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_requests_total", { pool: "slow", status: "504" })).to.equal(1);
            expect(metricValue(m, "proxy_upstream_failures_total", { pool: "slow", reason: "timeout" })).to.equal(1);
        });

        it("relays the vendor's own refusals (403, 429) with the pool label", async () => {
            const { port, metricsPort } = await topology([
                { name: "strict", sim: { errorRate: 1, errorMix: { "429": 1 } } },
            ]);
            expect((await connectAndGet(port, "x.test:443")).status).to.equal(429);
            expect((await httpViaProxy(port, "http://x.test/")).status).to.equal(429);
            expect(
                metricSum(await scrape(metricsPort), "proxy_requests_total", { pool: "strict", status: "429" }),
            ).to.equal(2);
        });
    });

    it("injects the pool's credentials upstream and never echoes or logs them", async () => {
        const lines: string[] = [];
        const target = await startTarget();
        track(target.server);
        const sim = await startSim("p1", { forward: `${HOST}:${target.port}` });
        track(sim.sim);
        const logger = {
            info: (m: string, f?: object) => lines.push(JSON.stringify({ m, ...f })),
            warn() {},
            error() {},
        };
        const good = await startGateway(
            gatewayConfig([{ name: "p1", port: sim.port }], { logSampleRate: 1 }),
            undefined,
            { logger },
        );
        track(good.gw);
        const ok = await connectAndGet(good.port, `127.0.0.1:${target.port}`, "/bytes/3");
        expect(ok.status).to.equal(200);
        expect(ok.body).to.not.contain(CREDS.password);
        // Wrong credentials: the vendor's 407 is relayed, counted against the pool.
        const bad = await startGateway(gatewayConfig([{ name: "p1", port: sim.port }]), () =>
            basic(CREDS.username, "wrong"),
        );
        track(bad.gw);
        expect((await connectAndGet(bad.port, `127.0.0.1:${target.port}`)).status).to.equal(407);
        expect(
            metricValue(await scrape(bad.metricsPort), "proxy_requests_total", { pool: "p1", status: "407" }),
        ).to.equal(1);
        const logged = lines.join("\n");
        expect(lines.length).to.be.greaterThan(0);
        expect(logged).to.not.contain(CREDS.password);
        expect(logged).to.not.contain(Buffer.from(`${CREDS.username}:${CREDS.password}`).toString("base64"));
    });

    it("drains open tunnels on shutdown and counts the ones cut at the deadline", async () => {
        const { port, target, gw, metricsPort } = await topology([{ name: "p1" }]);
        const s = net.connect(port, HOST);
        s.on("error", () => undefined);
        s.write(`CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`);
        await new Promise((r) => s.once("data", r));
        expect(gw.open).to.equal(1);
        const before = await scrape(metricsPort);
        expect(metricValue(before, "proxy_inflight_requests", {})).to.equal(1);
        const t0 = Date.now();
        const closed = new Promise((r) => s.once("close", r));
        const cut = await gw.stop(300);
        expect(cut).to.equal(1);
        expect(Date.now() - t0).to.be.within(250, 2000);
        expect(gw.metrics.registry.getSingleMetric("proxy_tunnels_cut_total")).to.not.equal(undefined);
        const text = await gw.metrics.registry.metrics();
        expect(metricValue(text, "proxy_tunnels_cut_total", {})).to.equal(1);
        await closed;
        untrack(gw);
    });

    it("lets a tunnel that ends in time finish without cutting it", async () => {
        const { port, target, gw } = await topology([{ name: "p1" }]);
        const pending = connectAndGet(port, `127.0.0.1:${target.port}`, "/bytes/100");
        await waitFor(() => gw.open === 1 || gw.open === 0, 1000);
        const cut = await gw.stop(2000);
        expect(cut).to.equal(0);
        expect((await pending).status).to.be.oneOf([200, 0]);
        untrack(gw);
    });

    describe("malformed and hostile input", () => {
        it("answers huge headers with 431 and closes, leaving no open tunnel", async () => {
            const { port, gw, metricsPort } = await topology([{ name: "p1" }]);
            const answer = await rawExchange(
                port,
                `CONNECT x.test:443 HTTP/1.1\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`,
            );
            expect(answer).to.match(/^HTTP\/1\.1 431 /);
            expect(gw.open).to.equal(0);
            expect(metricValue(await scrape(metricsPort), "proxy_requests_total", { status: "431" })).to.equal(1);
        });

        it("closes a slowloris connection at the header timeout", async () => {
            const { port, gw } = await topology([{ name: "p1" }], {
                timeouts: { connectMs: 400, idleMs: 5000, totalMs: 20_000 },
            });
            const s = net.connect(port, HOST);
            s.on("error", () => undefined);
            const t0 = Date.now();
            s.write("CONNECT x.test:443 HTTP/1.1\r\n");
            const drip = setInterval(() => s.writable && s.write("X-a: b\r\n"), 100);
            await new Promise((r) => s.once("close", r));
            clearInterval(drip);
            // Node checks the header timeout on a timer, so the close comes within a second or so of it.
            expect(Date.now() - t0).to.be.within(300, 4000);
            expect(gw.open).to.equal(0);
        });

        it("holds at most maxTunnels open and answers the next with 503", async () => {
            const { port, target, gw } = await topology([{ name: "p1" }], {
                limits: { maxTunnels: 2, maxHeaderBytes: 8192, maxBodyBytes: 1000 },
            });
            const sockets: net.Socket[] = [];
            for (let i = 0; i < 2; i++) {
                const s = net.connect(port, HOST);
                s.on("error", () => undefined);
                s.write(`CONNECT 127.0.0.1:${target.port} HTTP/1.1\r\n\r\n`);
                await new Promise((r) => s.once("data", r));
                sockets.push(s);
            }
            expect(gw.open).to.equal(2);
            expect((await connectAndGet(port, `127.0.0.1:${target.port}`)).status).to.equal(503);
            for (const s of sockets) s.destroy();
            await waitFor(() => gw.open === 0, 2000, "tunnels closed");
        });
    });

    it("rejects an invalid config file naming each key", () => {
        let message = "";
        try {
            validateGatewayConfig({ vendor: "Bad_Name", pools: [{ name: "p", host: "h", port: 70000 }] }, "gw.json");
        } catch (e) {
            message = (e as Error).message;
        }
        expect(message).to.match(/^gw\.json: 4 problem\(s\):/);
        expect(message).to.contain("pools[0].port: expected an integer from 1 to 65535, found 70000");
        expect(message).to.contain("vendor: expected a string matching");
        expect(message).to.contain("pools[0].usernameFile: expected a string, found nothing");
    });
});
