import { expect } from "chai";
import { OTHER_DESTINATION, R } from "../../catalog";
import { StackConfig } from "../../components/config";
import { estimateActiveSeries } from "../../components/prometheus/cardinality";
import { EXIT_IP_DEFAULTS } from "../../proxy/gateway/config";
import { ExitIpTracker } from "../../proxy/gateway/exit-ips";
import { GatewayMetrics } from "../../proxy/gateway/metrics";
import { expectRuleTestsPass } from "../alerting/series";
import { stackConfig } from "../harness";

/**
 * The recorded part of the series estimate against what the recording rules really record: the exposition of the
 * gateways of a stack (GatewayMetrics, as they run: every pool's causes, a ban on every pool and destination, exit IPs
 * learned where the vendor has `exitIp`) is fed to `promtool test rules`, and the recorded series of each family are
 * counted there.
 */
const POOL_QUALITY = [
    R.vendorPoolWindowExitIps,
    R.vendorPoolWindowExitIpSamples,
    R.vendorPoolWindowExitIpReuse,
    R.vendorPoolStickyBreaks,
    R.vendorMinExitIpsPerHour,
];
const CAUSES_AND_BANS = [
    R.vendorFaultRatio,
    R.vendorPoolCauses,
    R.vendorCauses,
    R.vendorCauseRatio,
    R.vendorPoolBans,
    R.vendorDestinationBans,
    R.vendorBans,
    R.vendorPoolBanRatio,
    R.vendorBanRatio,
];

/** Each gateway's exposition after some traffic, as promtool input series (counters growing, gauges flat). */
async function gatewaySeries(cfg: StackConfig): Promise<{ series: string; values: string }[]> {
    const out: { series: string; values: string }[] = [];
    for (const v of cfg.vendors) {
        const pools = v.pools.map((p) => p.name);
        const m = new GatewayMetrics(v.name, false);
        m.createOutcomes(pools);
        const tracker = new ExitIpTracker({ ...EXIT_IP_DEFAULTS, header: v.exitIp ? "x-exit-ip" : "" }, pools);
        m.exportExitIps(tracker);
        for (const pool of [...pools, "none"])
            for (const d of [...cfg.destinations.tracked, OTHER_DESTINATION]) m.ban(pool, d);
        for (const pool of pools) {
            m.request(pool, OTHER_DESTINATION, 200, "CONNECT", 10);
            m.outcome(pool, "none", "none");
            if (v.exitIp) for (let i = 0; i < 10; i++) tracker.learn(pool, `10.0.0.${i}`, "s1");
        }
        for (const line of (await m.registry.metrics()).split("\n")) {
            const x = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
            if (!x) continue;
            const labels = (x[2] ?? "{}").slice(1, -1);
            const series = `${x[1]}{${labels}${labels ? "," : ""}cluster="${cfg.cluster}"}`;
            out.push({ series, values: x[1].endsWith("_total") ? "0+1x12" : `${x[3]}x12` });
        }
    }
    return out;
}

describe("the series estimate's recorded part, against promtool", function () {
    this.timeout(60_000);

    for (const stack of ["dev", "prod"]) {
        it(`counts the pool-quality, cause and ban series the rules record from ${stack}'s gateways`, async () => {
            const cfg = stackConfig(stack);
            const e = estimateActiveSeries(cfg).parts;
            const count = (names: string[], value: number) => ({
                expr: `count({__name__=~"${names.join("|")}"}) or vector(0)`,
                eval_time: "10m",
                exp_samples: [{ labels: "{}", value }],
            });
            expectRuleTestsPass(cfg, `recorded-${stack}`, [
                {
                    interval: "1m",
                    input_series: await gatewaySeries(cfg),
                    promql_expr_test: [
                        count(POOL_QUALITY, e.recordedPoolQuality.series),
                        count(CAUSES_AND_BANS, e.recordedCausesAndBans.series),
                    ],
                },
            ]);
            // Both are in the total, not beside it.
            expect(e.recordedPoolQuality.series).to.equal(
                stack === "dev" ? 3 * 10 + 2 : 0,
                "dev: 3 pools learning exit IPs, 2 vendors with a floor",
            );
        });
    }
});
