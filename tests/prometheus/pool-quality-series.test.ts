import { expect } from "chai";
import { POOL_QUALITY_METRICS } from "../../catalog/gateway";
import { POOL_QUALITY_SERIES_PER_POOL, estimateActiveSeries } from "../../components/prometheus/cardinality";
import { KEPT } from "../../components/prometheus/scrape";
import { EXIT_IP_DEFAULTS } from "../../proxy/gateway/config";
import { ExitIpTracker } from "../../proxy/gateway/exit-ips";
import { GatewayMetrics } from "../../proxy/gateway/metrics";
import { Fleet } from "../../scripts/fleet";
import { stackConfig } from "../harness";

const QUALITY = /^proxy_pool_(exit_ip|sticky)/;
const lines = (text: string) => text.split("\n").filter((l) => QUALITY.test(l));

describe("pool-quality series: a constant per pool, never per exit IP", () => {
    it("the gateway exports 11 series per pool after 200,000 distinct exit IPs as after 1", async () => {
        const counts: number[] = [];
        for (const n of [1, 200_000]) {
            const m = new GatewayMetrics("v", false);
            const t = new ExitIpTracker({ ...EXIT_IP_DEFAULTS, header: "x-exit-ip" }, ["p1", "p2"]);
            m.exportExitIps(t);
            for (let i = 0; i < n; i++)
                t.learn(i % 2 ? "p1" : "p2", `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`);
            counts.push(lines(await m.registry.metrics()).length);
        }
        expect(counts).to.deep.equal([2 * 11, 2 * 11]);
        expect(POOL_QUALITY_SERIES_PER_POOL).to.equal(11);
    });

    it("a gateway that learns no exit IPs exports none of them", async () => {
        const m = new GatewayMetrics("v", false);
        m.exportExitIps(new ExitIpTracker(EXIT_IP_DEFAULTS, ["p1"]));
        expect(lines(await m.registry.metrics())).to.deep.equal([]);
    });

    it("the fleet benchmark's gateways grow by 11 series per pool of a vendor with exitIp, whatever the fleet size", () => {
        const cfg = stackConfig("dev");
        for (const pods of [100, 2000]) {
            const fleet = new Fleet(cfg, pods, 1_700_000_000);
            for (const v of cfg.vendors) {
                const text = fleet.exposition(`/gateway/${v.name}/0/metrics`, 1_700_000_060)!;
                expect(lines(text).length, `${v.name}, ${pods} pods`).to.equal(v.exitIp ? v.pools.length * 11 : 0);
            }
        }
    });

    it("the scrape config keeps them and the series estimate counts them per pool", () => {
        for (const m of Object.values(POOL_QUALITY_METRICS)) expect(KEPT.gateway).to.include(m.name);
        const dev = stackConfig("dev");
        const learning = dev.vendors.filter((v) => v.exitIp).reduce((s, v) => s + v.pools.length, 0);
        expect(learning).to.equal(3); // vendor-b's two pools (header) and vendor-c's one (echo probe)
        expect(estimateActiveSeries(dev).parts.poolQuality.series).to.equal(learning * 11 * dev.gateway.maxReplicas);
        expect(estimateActiveSeries(stackConfig("prod")).parts.poolQuality.series).to.equal(0);
    });
});
