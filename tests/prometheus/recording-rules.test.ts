import { expect } from "chai";
import { buildRecordingRules } from "../../components/prometheus";
import { stackConfig } from "../harness";
import { promtool, tempDir, writeYaml } from "../promtool";

/**
 * `promtool test rules` on the generated recording rules (dev stack: cluster "dev", vendor-a at 0.6 per GB, SLA
 * 0.995 and 800 ms), with input series and expectations computed by hand. Counters grow linearly, so every 5m rate
 * is exact: '0+60x20' at a 1m interval is 1 per second.
 */
const S = (name: string, labels: Record<string, string>) =>
    `${name}{${Object.entries({ cluster: "dev", vendor: "vendor-a", ...labels })
        .map(([k, v]) => `${k}="${v}"`)
        .join(",")}}`;

const req = (pool: string, status: string, values: string, destination = "other", protocol = "CONNECT") => ({
    series: S("proxy_requests_total", { pool, destination, status, protocol }),
    values,
});

const out = (pool: string, fault: string, values: string) => ({
    series: S("proxy_pool_outcomes_total", { pool, fault }),
    values,
});

const INPUT = [
    // p1: 1/s answered 200 (0.8 CONNECT to example.com, 0.2 plain HTTP), 0.1/s 502. The gateway itself: 0.05/s 503
    // (no healthy pool, counts against the vendor) and 0.5/s 403 (destination not allowed, does not).
    req("p1", "200", "0+48x20", "example.com"),
    req("p1", "200", "0+12x20", "other", "HTTP/1.1"),
    req("p1", "502", "0+6x20"),
    req("none", "503", "0+3x20"),
    req("none", "403", "0+30x20"),
    // Who each outcome is charged to (proxy_pool_outcomes_total): p1's 502s are the vendor's; the plain-HTTP
    // answers, whatever their status, are carried (none); the gateway's own 503 and 403 are fault="gateway".
    out("p1", "none", "0+60x20"),
    out("p1", "vendor", "0+6x20"),
    out("p1", "destination", "0x20"),
    out("none", "gateway", "0+33x20"),
    // Latency of p1: half the answers within 100 ms, all within 250 ms.
    { series: S("proxy_request_duration_milliseconds_bucket", { pool: "p1", le: "100" }), values: "0+30x20" },
    { series: S("proxy_request_duration_milliseconds_bucket", { pool: "p1", le: "250" }), values: "0+60x20" },
    { series: S("proxy_request_duration_milliseconds_bucket", { pool: "p1", le: "+Inf" }), values: "0+60x20" },
    { series: S("proxy_request_duration_milliseconds_sum", { pool: "p1" }), values: "0+6000x20" },
    { series: S("proxy_request_duration_milliseconds_count", { pool: "p1" }), values: "0+60x20" },
    // Bandwidth: 1,000 B/s out, 10,000 B/s back.
    { series: S("proxy_bandwidth_bytes_total", { pool: "p1", direction: "egress" }), values: "0+60000x20" },
    { series: S("proxy_bandwidth_bytes_total", { pool: "p1", direction: "ingress" }), values: "0+600000x20" },
    // Pools: p1 healthy on both gateway replicas, p2 down on both.
    { series: S("proxy_pool_health", { pool: "p1", instance: "a" }), values: "1x20" },
    { series: S("proxy_pool_health", { pool: "p1", instance: "b" }), values: "1x20" },
    { series: S("proxy_pool_health", { pool: "p2", instance: "a" }), values: "0x20" },
    { series: S("proxy_pool_health", { pool: "p2", instance: "b" }), values: "0x20" },
    // Istio, after the attribution relabelling: team-a sent 2,000 B/s and received 1,000 B/s through vendor-a.
    { series: S("istio_tcp_sent_bytes_total", { crawler_namespace: "team-a" }), values: "0+120000x20" },
    { series: S("istio_tcp_received_bytes_total", { crawler_namespace: "team-a" }), values: "0+60000x20" },
    { series: S("istio_tcp_connections_opened_total", { crawler_namespace: "team-a" }), values: "0+30x20" },
];

/** Prometheus 2.42's promtool compares exactly, so both sides are rounded to 6 decimals the same way. */
const round6 = (v: number) => Math.round(v * 1e6) / 1e6;
const at = (expr: string, samples: [Record<string, string>, number][]) => ({
    expr: `round((${expr}) * 1e6) / 1e6`,
    eval_time: "10m",
    exp_samples: samples.map(([labels, value]) => ({ labels: S("", labels), value: round6(value) })),
});

const EXPECTED = [
    at("vendor_pool:proxy_requests:rate5m", [
        [{ pool: "p1" }, 1.1],
        [{ pool: "none" }, 0.55],
    ]),
    at("vendor:proxy_requests:rate5m", [[{}, 1.65]]),
    at("vendor_pool:proxy_request_errors:rate5m", [[{ pool: "p1" }, 0.1]]),
    // 1 - 0.1 / 1.1
    at("vendor_pool:proxy_request_success:ratio_rate5m", [[{ pool: "p1" }, 1 - 0.1 / 1.1]]),
    // 0.1 / 1.1: neither the gateway's 403 nor its 503 is the vendor's failure (fault="gateway").
    at("vendor:proxy_request_errors:ratio_rate5m", [[{}, 0.1 / 1.1]]),
    at("vendor:proxy_request_success:ratio_rate5m", [[{}, 1 - 0.1 / 1.1]]),
    at("vendor_pool_status_class:proxy_requests:rate5m", [
        [{ pool: "p1", status_class: "2xx" }, 1],
        [{ pool: "p1", status_class: "5xx" }, 0.1],
        [{ pool: "none", status_class: "5xx" }, 0.05],
        [{ pool: "none", status_class: "403" }, 0.5],
    ]),
    at("vendor_destination:proxy_requests:rate5m", [
        [{ destination: "example.com" }, 0.8],
        [{ destination: "other" }, 0.85],
    ]),
    at("vendor_protocol:proxy_requests:rate5m", [
        [{ protocol: "CONNECT" }, 1.45],
        [{ protocol: "HTTP/1.1" }, 0.2],
    ]),
    // p50: rank 0.5 of 1/s fills the first bucket [0,100] exactly; p95: 100 + 150 x (0.95 - 0.5) / 0.5 = 235.
    at('vendor_pool:proxy_request_duration_milliseconds:quantile5m{quantile="0.5"}', [
        [{ pool: "p1", quantile: "0.5" }, 100],
    ]),
    at('vendor_pool:proxy_request_duration_milliseconds:quantile5m{quantile="0.95"}', [
        [{ pool: "p1", quantile: "0.95" }, 235],
    ]),
    at('vendor:proxy_request_duration_milliseconds:quantile5m{quantile="0.99"}', [[{ quantile: "0.99" }, 247]]),
    at("vendor:proxy_request_duration_milliseconds:mean5m", [[{}, 100]]),
    at('proxy_request_duration_seconds{percentile="95"}', [[{ pool: "p1", percentile: "95" }, 0.235]]),
    at("vendor_direction:proxy_bandwidth_bytes:rate5m", [
        [{ direction: "egress" }, 1000],
        [{ direction: "ingress" }, 10000],
    ]),
    at("vendor:proxy_bandwidth_bytes:rate5m", [[{}, 11000]]),
    // 11,000 B/s x 3600 / 1e9 x 0.6 per GB
    at("vendor:proxy_cost_per_hour:rate5m", [[{}, (11000 * 3600 * 0.6) / 1e9]]),
    at("vendor_pool:proxy_pool_health:avg", [
        [{ pool: "p1" }, 1],
        [{ pool: "p2" }, 0],
    ]),
    at("vendor:proxy_pools_healthy:count", [[{}, 1]]),
    at("vendor:proxy_pools:count", [[{}, 2]]),
    at("crawler_namespace_vendor:istio_tcp_bytes:rate5m", [[{ crawler_namespace: "team-a" }, 3000]]),
    at("crawler_namespace_vendor:proxy_cost_per_hour:rate5m", [
        [{ crawler_namespace: "team-a" }, (3000 * 3600 * 0.6) / 1e9],
    ]),
    at("crawler_namespace_vendor:istio_tcp_connections_opened:rate5m", [[{ crawler_namespace: "team-a" }, 0.5]]),
    at('vendor:proxy_sla_success_objective:config{vendor="vendor-a"}', [[{}, 0.995]]),
];

/** A vendor whose only pool answered everything: success ratio 1 and error ratio 0, not "no data". */
const HEALTHY_INPUT = [req("p1", "200", "0+60x20"), out("p1", "none", "0+60x20"), out("p1", "vendor", "0x20")];
const HEALTHY_EXPECTED = [
    at("vendor_pool:proxy_request_success:ratio_rate5m", [[{ pool: "p1" }, 1]]),
    at("vendor:proxy_request_errors:ratio_rate5m", [[{}, 0]]),
];

describe("recording rules under promtool test rules (hand-computed expectations)", function () {
    this.timeout(60_000);

    it("computes rates, ratios (also without errors), status classes, quantiles, bandwidth, cost, health and per-namespace cost", () => {
        const dir = tempDir("rules-test-");
        writeYaml(dir, "recording.yaml", buildRecordingRules(stackConfig("dev")));
        const tests = {
            rule_files: ["recording.yaml"],
            evaluation_interval: "1m",
            tests: [
                { interval: "1m", input_series: INPUT, promql_expr_test: EXPECTED },
                { interval: "1m", input_series: HEALTHY_INPUT, promql_expr_test: HEALTHY_EXPECTED },
            ],
        };
        const r = promtool(["test", "rules", writeYaml(dir, "recording.test.yaml", tests)], dir);
        expect(r.code, r.out).to.equal(0);
        expect(r.out).to.contain("SUCCESS");
    });

    it("the promtool harness itself fails on a wrong expectation", () => {
        const dir = tempDir("rules-test-wrong-");
        writeYaml(dir, "recording.yaml", buildRecordingRules(stackConfig("dev")));
        const wrong = [at("vendor:proxy_requests:rate5m", [[{}, 1.66]])];
        const tests = {
            rule_files: ["recording.yaml"],
            evaluation_interval: "1m",
            tests: [{ interval: "1m", input_series: INPUT, promql_expr_test: wrong }],
        };
        const r = promtool(["test", "rules", writeYaml(dir, "wrong.test.yaml", tests)], dir);
        expect(r.code).to.not.equal(0);
        expect(r.out).to.match(/FAILED[^]*vendor:proxy_requests:rate5m[^]*exp:[^]*1\.66/);
    });
});
