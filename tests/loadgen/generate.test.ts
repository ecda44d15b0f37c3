import { expect } from "chai";
import { Generator } from "../../proxy/generate";
import { Pattern, pickCumulative, rateAt, validatePattern, zipfCumulative } from "../../proxy/generate/pattern";
import { Target, validateTargetConfig } from "../../proxy/target";
import { EXIT_IP_DEFAULTS } from "../../proxy/gateway/config";
import { HOST, gatewayConfig, metricSum, scrape, startGateway, startSim } from "../proxy/helpers";

function pattern(over: Record<string, unknown> = {}): Pattern {
    return validatePattern({
        vendors: [{ name: "v", proxyUrl: "direct" }],
        destinations: ["a.test"],
        metricsPort: 0,
        insecureTls: true,
        ...over,
    });
}

describe("load generator", function () {
    this.timeout(60_000);

    describe("traffic patterns", () => {
        it("reject a bad pattern naming every key", () => {
            let message = "";
            try {
                validatePattern(
                    {
                        vendors: [{ name: "Bad", proxyUrl: "ftp://x" }],
                        destinations: [],
                        rate: { schedule: "sometimes", requestsPerSecond: -1 },
                        concurrency: 0,
                    },
                    "patterns.yaml",
                );
            } catch (e) {
                message = (e as Error).message;
            }
            for (const want of [
                "patterns.yaml:",
                "vendors[0].name: expected a string matching",
                "vendors[0].proxyUrl: expected a string matching",
                "destinations: expected a list of at least 1 host",
                "rate.schedule: expected a string matching",
                "rate.requestsPerSecond: expected a number from 0.001",
                "concurrency: expected an integer from 1 to 100000, found 0",
            ]) {
                expect(message).to.contain(want);
            }
        });

        it("follow each schedule's shape", () => {
            const r = (schedule: string) =>
                ({ schedule, requestsPerSecond: 100, minFraction: 0.2, periodSeconds: 100 }) as Pattern["rate"];
            expect(rateAt(r("constant"), 37)).to.equal(100);
            expect(rateAt(r("ramp"), 0)).to.equal(20);
            expect(rateAt(r("ramp"), 50)).to.equal(60);
            expect(rateAt(r("ramp"), 500)).to.equal(100);
            expect(rateAt(r("burst"), 5)).to.equal(100);
            expect(rateAt(r("burst"), 50)).to.equal(20);
            expect(rateAt(r("diurnal"), 0)).to.be.closeTo(20, 1e-9);
            expect(rateAt(r("diurnal"), 50)).to.be.closeTo(100, 1e-9);
            expect(rateAt(r("diurnal"), 25)).to.be.closeTo(60, 1e-9);
        });

        it("pick destinations by a Zipf law (rank k weighs 1/k^s)", () => {
            const c = zipfCumulative(4, 1);
            const weights = [1, 1 / 2, 1 / 3, 1 / 4];
            const total = weights.reduce((a, b) => a + b, 0);
            expect(c.map((x) => Math.round(x * 1e9) / 1e9)).to.deep.equal(
                [1, 1.5, 1 + 1 / 2 + 1 / 3, total].map((x) => Math.round((x / total) * 1e9) / 1e9),
            );
            expect(pickCumulative(c, 0)).to.equal(0);
            expect(pickCumulative(c, 0.999)).to.equal(3);
            expect(pickCumulative(c, c[1])).to.equal(2);
        });
    });

    describe("through local gateways of three vendors", () => {
        const stops: (() => Promise<unknown>)[] = [];
        after(async () => {
            for (const s of stops.reverse()) await s();
        });

        it("sends the configured vendor mix and Zipf shape, over http and https, and its metrics agree with the gateways'", async () => {
            const target = new Target(
                validateTargetConfig({
                    listen: { host: HOST, httpPort: 0, httpsPort: 0, metricsPort: 0 },
                    banRate: 0.2,
                }),
                { processMetrics: false },
            );
            const tp = await target.start();
            stops.push(() => target.stop());
            const vendors = [
                { name: "vendor-a", weight: 6, sim: {} },
                // vendor-b's pool rejects 20% of requests with 407 (a status the target never answers, so the two sources
                // of refusals stay apart in the counts below).
                { name: "vendor-b", weight: 3, sim: { errorRate: 0.2, errorMix: { "407": 1 } } },
                { name: "vendor-c", weight: 1, sim: {} },
            ];
            const gateways = [];
            for (const v of vendors) {
                const sim = await startSim("p1", {
                    vendor: v.name,
                    forward: `${HOST}:${tp.httpPort}`,
                    forwardTls: `${HOST}:${tp.httpsPort}`,
                    ...v.sim,
                });
                stops.push(() => sim.sim.stop());
                const gw = await startGateway(
                    gatewayConfig([{ name: "p1", port: sim.port }], {
                        vendor: v.name,
                        destinations: {
                            tracked: ["d1.test", "d2.test", "d3.test", "d4.test"],
                            allowed: ["*"],
                            connectPorts: ["1-65535"],
                            allowInternal: true,
                        },
                    }),
                );
                stops.push(() => gw.gw.stop(0));
                gateways.push({ ...v, ...gw, sim });
            }
            const gen = new Generator(
                pattern({
                    vendors: gateways.map((g) => ({
                        name: g.name,
                        proxyUrl: `http://${HOST}:${g.port}`,
                        weight: g.weight,
                    })),
                    destinations: ["d1.test", "d2.test", "d3.test", "d4.test"],
                    zipfExponent: 1,
                    httpsShare: 0.5,
                    responseBytes: [100, 2000],
                    rate: { schedule: "constant", requestsPerSecond: 250 },
                    concurrency: 32,
                    retries: 0,
                    durationSeconds: 4,
                    ports: { http: 80, https: 443 },
                }),
                { processMetrics: false },
            );
            const metricsPort = await gen.start();
            await gen.done();
            const genMetrics = await gen.registry.metrics();
            const summary = await gen.stop();
            expect(metricsPort).to.be.a("number");
            expect(summary.started).to.equal(summary.finished);
            expect(summary.finished).to.be.within(700, 1100);
            // Vendor mix 6:3:1 within 4 points.
            const per = Object.fromEntries(
                gateways.map((g) => [
                    g.name,
                    Object.values(summary.byVendor[g.name] ?? {}).reduce((a, b) => a + (b ?? 0), 0),
                ]),
            );
            // Every answer read as the gateway sent it: no request failed on the client's side.
            const failed = ["network_error", "timeout"].map((outcome) =>
                metricSum(genMetrics, "loadgen_requests_total", { outcome }),
            );
            expect(failed, genMetrics).to.deep.equal([0, 0]);
            expect(per["vendor-a"] / summary.finished).to.be.closeTo(0.6, 0.04);
            expect(per["vendor-b"] / summary.finished).to.be.closeTo(0.3, 0.04);
            expect(per["vendor-c"] / summary.finished).to.be.closeTo(0.1, 0.04);
            // Zipf(1) over 4 hosts: 48%, 24%, 16%, 12%.
            const byDest = (d: string) =>
                metricSum(genMetrics, "loadgen_requests_total", { destination: d }) / summary.finished;
            expect(byDest("d1.test")).to.be.closeTo(0.48, 0.05);
            expect(byDest("d2.test")).to.be.closeTo(0.24, 0.05);
            expect(byDest("d4.test")).to.be.closeTo(0.12, 0.05);
            for (const g of gateways) {
                const gw = await scrape(g.metricsPort);
                // Plain HTTP: one gateway request per generator request (no retries), exactly.
                const plain = metricSum(genMetrics, "loadgen_requests_total", { vendor: g.name, scheme: "http" });
                expect(metricSum(gw, "proxy_requests_total", { protocol: "HTTP/1.1" }), g.name).to.equal(plain);
                // HTTPS: crawlers (and undici) keep a tunnel open for several requests, so the gateway counts
                // tunnels: at least one, at most one per request.
                const secure = metricSum(genMetrics, "loadgen_requests_total", { vendor: g.name, scheme: "https" });
                expect(metricSum(gw, "proxy_requests_total", { protocol: "CONNECT" }), g.name).to.be.within(1, secure);
                expect(plain + secure).to.equal(per[g.name]);
            }
            // vendor-b's simulator refused 20% of requests with 407: the gateway counted exactly what it relayed.
            const gwB = await scrape(gateways[1].metricsPort);
            const simAnswers = await gateways[1].sim.sim.registry.metrics();
            const refusedBySim = metricSum(simAnswers, "vendor_sim_answers_total", { outcome: "407" });
            // (The gateway's health probes go through the simulator too: a refused probe is a probe failure.)
            const relayed = metricSum(gwB, "proxy_requests_total", { pool: "p1", status: "407" });
            const probesRefused = metricSum(gwB, "proxy_pool_probes_total", { pool: "p1", result: "failure" });
            expect(relayed + probesRefused).to.equal(refusedBySim);
            expect(refusedBySim).to.be.greaterThan(10);
            // The target's bans (inner statuses) are counted by the generator exactly as the target answered them.
            const tm = await target.registry.metrics();
            const banned =
                metricSum(tm, "target_requests_total", { status: "403" }) +
                metricSum(tm, "target_requests_total", { status: "429" });
            const seen =
                metricSum(genMetrics, "crawler_upstream_responses_total", { status: "403" }) +
                metricSum(genMetrics, "crawler_upstream_responses_total", { status: "429" });
            expect(seen).to.equal(banned);
            expect(banned / metricSum(tm, "target_requests_total")).to.be.closeTo(0.2, 0.06);
            expect(metricSum(tm, "target_requests_total", { protocol: "h2" })).to.be.greaterThan(0);
        });
    });

    it("stops cleanly on request: every started request is finished and counted", async () => {
        const target = new Target(
            validateTargetConfig({ listen: { host: HOST, httpPort: 0, httpsPort: 0, metricsPort: 0 } }),
            { processMetrics: false },
        );
        const tp = await target.start();
        try {
            const gen = new Generator(
                pattern({
                    destinations: ["127.0.0.1"],
                    httpsShare: 0.5,
                    ports: { http: tp.httpPort, https: tp.httpsPort },
                    responseBytes: [500_000],
                    rate: { schedule: "constant", requestsPerSecond: 400 },
                    concurrency: 16,
                }),
                { processMetrics: false },
            );
            await gen.start();
            await new Promise((r) => setTimeout(r, 700));
            const summary = await gen.stop(5000);
            expect(summary.started).to.be.greaterThan(20);
            expect(summary.finished).to.equal(summary.started);
            const m = await gen.registry.metrics();
            expect(metricSum(m, "loadgen_requests_total")).to.equal(summary.finished);
            expect(metricSum(m, "loadgen_inflight_requests")).to.equal(0);
            expect(metricSum(m, "loadgen_queue_depth")).to.equal(0);
            expect(summary.byVendor.v.ok).to.equal(summary.finished);
        } finally {
            await target.stop();
        }
    });

    it("reports the bans it sees (inside tunnels too) to the gateway, which counts them per pool and destination", async () => {
        const target = new Target(
            validateTargetConfig({ listen: { host: HOST, httpPort: 0, httpsPort: 0, metricsPort: 0 }, banRate: 0.3 }),
            { processMetrics: false },
        );
        const tp = await target.start();
        const sim = await startSim("p1", { forward: `${HOST}:${tp.httpPort}`, forwardTls: `${HOST}:${tp.httpsPort}` });
        const gw = await startGateway(
            gatewayConfig([{ name: "p1", port: sim.port }], {
                destinations: { tracked: ["d1.test"], allowed: ["*"], connectPorts: ["1-65535"], allowInternal: true },
            }),
        );
        try {
            const gen = new Generator(
                pattern({
                    vendors: [{ name: "v", proxyUrl: `http://${HOST}:${gw.port}` }],
                    destinations: ["d1.test"],
                    httpsShare: 0.5,
                    ports: { http: 80, https: 443 },
                    responseBytes: [100],
                    rate: { schedule: "constant", requestsPerSecond: 200 },
                    concurrency: 8,
                    retries: 0,
                    durationSeconds: 2,
                }),
                { processMetrics: false },
            );
            await gen.start();
            await gen.done();
            const genMetrics = await gen.registry.metrics();
            await gen.stop();
            const banned =
                metricSum(genMetrics, "crawler_upstream_responses_total", { status: "403" }) +
                metricSum(genMetrics, "crawler_upstream_responses_total", { status: "429" });
            const m = await scrape(gw.metricsPort);
            const reported = metricSum(m, "proxy_crawler_bans_total", { pool: "none", destination: "d1.test" });
            // One report per plain-HTTP request at most, never more than the bans seen, and most of them.
            expect(banned).to.be.greaterThan(20);
            expect(reported).to.be.greaterThan(banned / 4);
            expect(reported).to.be.at.most(banned);
        } finally {
            await gw.gw.stop(0);
            await sim.sim.stop();
            await target.stop();
        }
    });

    it("sends a share of its requests in sticky sessions: each stays on its exit IP, and its bans are charged to its pool", async () => {
        const target = new Target(
            validateTargetConfig({ listen: { host: HOST, httpPort: 0, httpsPort: 0, metricsPort: 0 }, banRate: 0.3 }),
            { processMetrics: false },
        );
        const tp = await target.start();
        const forward = { forward: `${HOST}:${tp.httpPort}`, forwardTls: `${HOST}:${tp.httpsPort}` };
        const exitIps = { header: "x-exit-ip", size: 500, rotation: "sticky" as const, degradedTo: 0 };
        const sims = [
            await startSim("p1", { ...forward, profile: "brightdata", exitIps }),
            await startSim("p2", { ...forward, profile: "brightdata", exitIps }),
        ];
        const gw = await startGateway(
            gatewayConfig(
                sims.map((x, i) => ({ name: `p${i + 1}`, port: x.port })),
                {
                    profile: "brightdata",
                    destinations: {
                        tracked: ["d1.test"],
                        allowed: ["*"],
                        connectPorts: ["1-65535"],
                        allowInternal: true,
                    },
                    exitIp: { ...EXIT_IP_DEFAULTS, header: "x-exit-ip", stripHeader: true, sessionPattern: "" },
                },
            ),
        );
        try {
            const gen = new Generator(
                pattern({
                    vendors: [{ name: "v", proxyUrl: `http://${HOST}:${gw.port}` }],
                    destinations: ["d1.test"],
                    httpsShare: 0.5,
                    ports: { http: 80, https: 443 },
                    responseBytes: [100],
                    rate: { schedule: "constant", requestsPerSecond: 200 },
                    concurrency: 8,
                    retries: 0,
                    durationSeconds: 2,
                    sessions: { share: 0.5, keys: 4 },
                }),
                { processMetrics: false },
            );
            await gen.start();
            await gen.done();
            await gen.stop();
            const m = await scrape(gw.metricsPort);
            const sessionRequests = metricSum(m, "proxy_pool_sticky_session_requests_total");
            // Every session request of the brightdata pools keeps its exit IP (the simulator reads `-session-`).
            expect(sessionRequests).to.be.greaterThan(20);
            expect(metricSum(m, "proxy_pool_sticky_session_breaks_total")).to.equal(0);
            // Bans seen in a session are reported in that session, so the gateway charges them to its pool.
            const onPools = ["p1", "p2"].map((pool) =>
                metricSum(m, "proxy_crawler_bans_total", { pool, destination: "d1.test" }),
            );
            expect(onPools[0] + onPools[1]).to.be.greaterThan(5);
            expect(
                metricSum(m, "proxy_crawler_bans_total", { pool: "none", destination: "d1.test" }),
            ).to.be.greaterThan(5);
        } finally {
            await gw.gw.stop(0);
            for (const x of sims) await x.sim.stop();
            await target.stop();
        }
    });

    it("rejects bad sessions keys naming each", () => {
        expect(() => pattern({ sessions: { share: 2, keys: 0 } }))
            .to.throw(/sessions\.share/)
            .and.satisfy((e: Error) => /sessions\.keys/.test(e.message));
    });
});
