import { DURATION_BUCKETS_MS } from "../../catalog/datamodel";
import { StackConfig } from "../../components/config";
import { gatewayFileConfig } from "../../components/gateway/file-config";
import { stackConfig } from "../harness";
import { expectRuleTestsPass, series } from "./series";

/**
 * The failure modes of issue 13 as `promtool test rules` scenarios, from data-model series (what the gateways and
 * kube-state-metrics export, following catalog/datamodel.ts) through the recording rules to the alerts. Labels
 * decide; annotations are checked per alert in alerts.test.ts.
 */
const s = series;
const C = { cluster: "dev", instance: "10.0.0.1:9102", job: "proxy-gateways" };
const outcome = (vendor: string, pool: string, fault: string, values: string) =>
    s("proxy_pool_outcomes_total", { ...C, vendor, pool, fault }, values);
const req = (vendor: string, pool: string, status: string, protocol: string, values: string) =>
    s("proxy_requests_total", { ...C, vendor, pool, destination: "other", status, protocol }, values);
const health = (vendor: string, pool: string, values: string) => s("proxy_pool_health", { ...C, vendor, pool }, values);
/** A pool's histogram with every answer taking `ms`, on the buckets its gateway exports (from the stack config). */
function histogram(cfg: StackConfig, vendor: string, pool: string, ms: number, perMinute: number, minutes: number) {
    const v = cfg.vendors.find((x) => x.name === vendor)!;
    // What the gateway exports: the buckets its config file names, or its defaults without them.
    const buckets = gatewayFileConfig(cfg, v, "/s").durationBucketsMs ?? DURATION_BUCKETS_MS;
    return [...buckets.map(String), "+Inf"].map((le) =>
        s(
            "proxy_request_duration_milliseconds_bucket",
            { ...C, vendor, pool, le },
            le === "+Inf" || Number(le) >= ms ? `0+${perMinute}x${minutes}` : `0x${minutes}`,
        ),
    );
}

const run = expectRuleTestsPass;
const fires = (alert: string, evalTime: string, labels: Record<string, string>[]) => ({
    eval_time: evalTime,
    alertname: alert,
    exp_alerts: labels.map((l) => ({ exp_labels: { cluster: "dev", ...l } })),
});

describe("alerting scenarios (promtool, from data-model series)", function () {
    this.timeout(180_000);
    const cfg = stackConfig("dev");

    it("a 95% vendor's total outage after 6 h of clean traffic pages within 10 minutes", () => {
        // vendor-c (objective 0.95): 10 requests/s for 6 h, then every request fails (the vendor's fault).
        const input = [
            outcome("vendor-c", "mobile-us", "none", "0+600x360 216000x30"),
            outcome("vendor-c", "mobile-us", "vendor", "0x360 600+600x29"),
            outcome("vendor-c", "mobile-us", "destination", "0x390"),
            req("vendor-c", "mobile-us", "200", "CONNECT", "0+600x360 216000x30"),
            req("vendor-c", "mobile-us", "429", "CONNECT", "0x360 600+600x29"),
            health("vendor-c", "mobile-us", "1x390"),
        ];
        const alert = (t: string, on: boolean) =>
            fires(
                "VendorErrorBudgetBurnFast",
                t,
                on ? [{ vendor: "vendor-c", severity: "critical", symptom: "errors" }] : [],
            );
        run(cfg, "outage", [
            { interval: "1m", input_series: input, alert_rule_test: [alert("6h", false), alert("6h10m", true)] },
        ]);
    });

    it("a vendor whose gateways vanish from scraping alerts, and so does a gateway Deployment with no replica", () => {
        const ksm = (deployment: string, v: string) =>
            s(
                "kube_deployment_status_replicas_available",
                { cluster: "dev", job: "kube-state-metrics", namespace: "proxy-gateways", deployment },
                v,
            );
        const input = [
            // vendor-b and vendor-c report their pools; vendor-a's gateways report nothing (gone, or not ready and
            // dropped from discovery).
            health("vendor-b", "res-us", "1x20"),
            health("vendor-c", "mobile-us", "1x20"),
            ksm("vendor-a-gateway", "0x20"),
            ksm("vendor-b-gateway", "1x20"),
        ];
        run(cfg, "vanish", [
            {
                interval: "1m",
                input_series: input,
                alert_rule_test: [
                    fires("VendorNoData", "10m", [{ vendor: "vendor-a", severity: "critical", symptom: "silence" }]),
                    fires("GatewayNoAvailableReplica", "10m", [
                        {
                            vendor: "vendor-a",
                            severity: "critical",
                            symptom: "silence",
                            deployment: "vendor-a-gateway",
                            namespace: "proxy-gateways",
                            job: "kube-state-metrics",
                        },
                    ]),
                ],
            },
        ]);
    });

    it("traffic stopped fires without any series of the vendor, and only where its own crawlers run", () => {
        const scoped = stackConfig("dev", {
            crawlers: {
                namespaces: [
                    { name: "crawler-sim", manage: "create", serviceAccounts: ["loadgen"], vendors: ["vendor-c"] },
                    { name: "team-a", manage: "label", serviceAccounts: ["crawler"], vendors: ["vendor-a"] },
                    { name: "team-b", manage: "label", serviceAccounts: ["crawler"], vendors: ["vendor-b"] },
                ],
            },
        });
        const pod = (namespace: string, v: string) =>
            s(
                "kube_pod_status_phase",
                { cluster: "dev", job: "kube-state-metrics", namespace, pod: `${namespace}-1`, phase: "Running" },
                v,
            );
        // team-b's crawlers run, team-a's do not; no vendor has a single request series.
        const input = [pod("team-a", "0x20"), pod("team-b", "1x20"), health("vendor-c", "mobile-us", "1x20")];
        run(scoped, "stopped", [
            {
                interval: "1m",
                input_series: input,
                alert_rule_test: [
                    fires("VendorTrafficStopped", "15m", [
                        { vendor: "vendor-b", severity: "critical", symptom: "traffic" },
                    ]),
                ],
            },
        ]);
    });

    it("a destination's 5xx and the gateway's own refusals burn no vendor budget", () => {
        const input = [
            // vendor-a carries 10/s; its destinations fail 3/s (plain-HTTP 503, charged to the destination) and
            // the gateway refuses 3/s by itself (403 not allowed, 503 at capacity: pool="none").
            outcome("vendor-a", "dc-us-east", "none", "0+420x120"),
            outcome("vendor-a", "dc-us-east", "vendor", "0x120"),
            outcome("vendor-a", "dc-us-east", "destination", "0+180x120"),
            outcome("vendor-a", "none", "gateway", "0+180x120"),
            req("vendor-a", "dc-us-east", "200", "CONNECT", "0+420x120"),
            req("vendor-a", "dc-us-east", "503", "HTTP/1.1", "0+180x120"),
            req("vendor-a", "none", "403", "CONNECT", "0+120x120"),
            req("vendor-a", "none", "503", "CONNECT", "0+3x120"),
            health("vendor-a", "dc-us-east", "1x120"),
        ];
        const zero = (expr: string) => ({
            expr,
            eval_time: "90m",
            exp_samples: [{ labels: `${expr.split("{")[0]}{cluster="dev", vendor="vendor-a"}`, value: 0 }],
        });
        run(cfg, "attribution", [
            {
                interval: "1m",
                input_series: input,
                promql_expr_test: [
                    zero('vendor:proxy_slo_errors:rate5m{vendor="vendor-a"}'),
                    zero('vendor:proxy_request_errors:ratio_rate1h{vendor="vendor-a"}'),
                ],
                alert_rule_test: ["VendorErrorBudgetBurnFast", "VendorRefusalsHigh", "VendorServerErrorsHigh"].map(
                    (a) => fires(a, "90m", []),
                ),
            },
        ]);
    });

    it("600 ms answers do not breach an 800 ms SLA, 900 ms ones do, and an idle pool records no quantile", () => {
        const at = (ms: number) => [
            ...histogram(cfg, "vendor-a", "dc-us-east", ms, 600, 30),
            ...histogram(cfg, "vendor-a", "dc-eu-west", ms, 0, 30),
        ];
        const p95 = "vendor:proxy_request_duration_milliseconds:quantile5m";
        run(cfg, "latency", [
            {
                interval: "1m",
                input_series: at(600),
                alert_rule_test: [fires("VendorLatencyHigh", "25m", [])],
                promql_expr_test: [
                    {
                        expr: `${p95}{vendor="vendor-a", quantile="0.95"} <= bool 800`,
                        eval_time: "25m",
                        exp_samples: [{ labels: '{cluster="dev", vendor="vendor-a", quantile="0.95"}', value: 1 }],
                    },
                    {
                        expr: 'vendor_pool:proxy_request_duration_milliseconds:quantile5m{pool="dc-eu-west"}',
                        eval_time: "25m",
                        exp_samples: [],
                    },
                ],
            },
            {
                interval: "1m",
                input_series: at(900),
                alert_rule_test: [
                    fires("VendorLatencyHigh", "25m", [
                        { vendor: "vendor-a", severity: "warning", symptom: "latency" },
                    ]),
                ],
            },
        ]);
    });

    it("a pool's first failures are seen: its vendor-fault series exists at 0 before the first one", () => {
        const input = [
            outcome("vendor-a", "dc-us-east", "none", "0+60x20"),
            // Pre-created at 0 by the gateway; three failures at minute 10.
            outcome("vendor-a", "dc-us-east", "vendor", "0x9 3x10"),
        ];
        run(cfg, "first", [
            {
                interval: "1m",
                input_series: input,
                promql_expr_test: [
                    {
                        // The 5m rate times 300 s: the three failures, all of them.
                        expr: 'vendor:proxy_slo_errors:rate5m{vendor="vendor-a"} * 300',
                        eval_time: "12m",
                        exp_samples: [{ labels: '{cluster="dev", vendor="vendor-a"}', value: 3 }],
                    },
                ],
            },
        ]);
    });
});
