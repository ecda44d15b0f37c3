/**
 * What metrics cost a request: the hot path adds to plain numbers; prom-client's counters and the in-flight gauge
 * (which hash and validate the label set on every call, even through a cached child) are updated when the registry
 * is collected.
 * (The test peeks at prom-client's store, `hashMap`, to see that nothing reached it before a scrape.)
 */
import { expect } from "chai";
import {
    cleanupAfterEach,
    connectAndGet,
    gatewayConfig,
    httpViaProxy,
    metricValue,
    scrape,
    startGateway,
    startSim,
    startTarget,
} from "./helpers";

describe("gateway metrics on the hot path", function () {
    this.timeout(20_000);
    const { track } = cleanupAfterEach();

    it("touches no prom-client counter or gauge per request or tunnel, and a scrape shows every one", async () => {
        const target = await startTarget();
        track(target.server);
        const sim = await startSim("p1", { forward: `127.0.0.1:${target.port}` });
        track(sim.sim);
        const { gw, port, metricsPort } = await startGateway(gatewayConfig([{ name: "p1", port: sim.port }]));
        track(gw);
        const url = `http://127.0.0.1:${target.port}/bytes/10`;
        const authority = `127.0.0.1:${target.port}`;
        // The first of each creates its series.
        expect((await httpViaProxy(port, url)).status).to.equal(200);
        expect((await connectAndGet(port, authority)).status).to.equal(200);
        // prom-client's own store of a counter's series (what its label hashing updates on every increment).
        const stored = (name: string) => {
            const c = gw.metrics.registry.getSingleMetric(name) as unknown as {
                hashMap: Record<string, { value: number }>;
            };
            return Object.values(c.hashMap).reduce((sum, v) => sum + v.value, 0);
        };
        const counters = ["proxy_requests_total", "proxy_pool_outcomes_total", "proxy_bandwidth_bytes_total"];
        const before = counters.map(stored);
        // The in-flight gauge goes up and down to where it was, so its store's value cannot tell: count the reads
        // and writes of the store instead.
        const gauge = gw.metrics.registry.getSingleMetric("proxy_inflight_requests") as unknown as {
            hashMap: Record<string, unknown>;
        };
        let gaugeCalls = 0;
        gauge.hashMap = new Proxy(gauge.hashMap, {
            get: (t, k, r) => (gaugeCalls++, Reflect.get(t, k, r)),
            set: (t, k, v, r) => (gaugeCalls++, Reflect.set(t, k, v, r)),
        });
        for (let i = 0; i < 10; i++) {
            expect((await httpViaProxy(port, url)).status).to.equal(200);
            expect((await connectAndGet(port, authority)).status).to.equal(200);
        }
        expect(counters.map(stored), "prom-client counters touched during 20 exchanges").to.deep.equal(before);
        expect(gaugeCalls, "prom-client in-flight gauge store touched during 20 exchanges").to.equal(0);
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_requests_total", { pool: "p1", status: "200", protocol: "HTTP/1.1" })).to.equal(
            11,
        );
        expect(metricValue(m, "proxy_requests_total", { pool: "p1", status: "200", protocol: "CONNECT" })).to.equal(11);
        expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "none" })).to.equal(22);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { pool: "p1", direction: "ingress" })).to.be.above(0);
        // Collected twice, counted once.
        expect(
            metricValue(await scrape(metricsPort), "proxy_pool_outcomes_total", { pool: "p1", fault: "none" }),
        ).to.equal(22);
    });
});
