import { expect } from "chai";
import {
    closeServer,
    connectAndGet,
    gatewayConfig,
    httpViaProxy,
    metricValue,
    scrape,
    startGateway,
    startTarget,
} from "./helpers";
import { Upstream, startTinyproxy } from "./upstreams";

describe("gateway with Debian's tinyproxy as a real third-party upstream", function () {
    this.timeout(20_000);
    let tiny: Upstream;
    let target: Awaited<ReturnType<typeof startTarget>>;
    let gw: Awaited<ReturnType<typeof startGateway>>;

    before(async () => {
        tiny = await startTinyproxy();
        target = await startTarget();
        gw = await startGateway(gatewayConfig([{ name: "tiny", port: tiny.port }]));
    });
    after(async () => {
        await gw?.gw.stop(0);
        if (target) await closeServer(target.server);
        await tiny?.stop();
    });

    it("tunnels CONNECT through tinyproxy with the pool's credentials and counts the bytes", async () => {
        const r = await connectAndGet(gw.port, `127.0.0.1:${target.port}`, "/bytes/4096");
        expect(r.status).to.equal(200);
        expect(r.body.length).to.equal(4096);
        const m = await scrape(gw.metricsPort);
        expect(metricValue(m, "proxy_requests_total", { pool: "tiny", status: "200", protocol: "CONNECT" })).to.equal(
            1,
        );
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { pool: "tiny", direction: "ingress" })).to.equal(
            r.received,
        );
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { pool: "tiny", direction: "egress" })).to.equal(r.sent);
    });

    it("forwards absolute-form HTTP through tinyproxy", async () => {
        const r = await httpViaProxy(gw.port, `http://127.0.0.1:${target.port}/bytes/1234`);
        expect(r).to.deep.equal({ status: 200, bytes: 1234 });
        expect(
            metricValue(await scrape(gw.metricsPort), "proxy_requests_total", {
                pool: "tiny",
                protocol: "HTTP/1.1",
                status: "200",
            }),
        ).to.equal(1);
    });

    it("relays tinyproxy's refusal when the pool's credentials are wrong (tinyproxy answers CONNECT with 401)", async () => {
        const bad = await startGateway(
            gatewayConfig([{ name: "tiny", port: tiny.port }]),
            () => "Basic " + Buffer.from("crawl:wrong").toString("base64"),
        );
        try {
            expect((await connectAndGet(bad.port, `127.0.0.1:${target.port}`)).status).to.equal(401);
            expect(
                metricValue(await scrape(bad.metricsPort), "proxy_requests_total", { pool: "tiny", status: "401" }),
            ).to.equal(1);
        } finally {
            await bad.gw.stop(0);
        }
    });
});
