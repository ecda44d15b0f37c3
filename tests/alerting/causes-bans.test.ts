import { stackConfig } from "../harness";
import { expectRuleTestsPass, series } from "./series";

/**
 * Issue 19 in `promtool test rules`, from the series the gateways export (proxy_pool_causes_total,
 * proxy_crawler_bans_total, as proxy/gateway/metrics.ts creates them) through the recording rules to the alerts:
 * the SLO counts only the vendor's own faults (a lost session or a refusal of our account burns no budget), and
 * reported bans reach the recorded series and fire the ban-rate alert.
 */
const s = series;
const C = { cluster: "dev", instance: "10.0.0.1:9102", job: "proxy-gateways" };
const cause = (vendor: string, pool: string, c: string, values: string) =>
    s("proxy_pool_causes_total", { ...C, vendor, pool, cause: c }, values);
const outcome = (vendor: string, pool: string, fault: string, values: string) =>
    s("proxy_pool_outcomes_total", { ...C, vendor, pool, fault }, values);
const req = (vendor: string, pool: string, status: string, values: string) =>
    s("proxy_requests_total", { ...C, vendor, pool, destination: "other", status, protocol: "CONNECT" }, values);
const ban = (vendor: string, pool: string, destination: string, values: string) =>
    s("proxy_crawler_bans_total", { ...C, vendor, pool, destination }, values);
const fires = (alert: string, evalTime: string, labels: Record<string, string>[]) => ({
    eval_time: evalTime,
    alertname: alert,
    exp_alerts: labels.map((l) => ({ exp_labels: { cluster: "dev", ...l } })),
});
const sample = (expr: string, evalTime: string, labels: string, value: number) => ({
    expr,
    eval_time: evalTime,
    exp_samples: [{ labels: `${expr.split("{")[0]}${labels}`, value }],
});

describe("causes and bans (promtool, from the gateway's series)", function () {
    this.timeout(120_000);
    const cfg = stackConfig("dev");
    const VB = '{cluster="dev", vendor="vendor-b"}';

    /**
     * vendor-b (objective 0.98) carries 10 requests/s on res-us; from minute 60, 4/s of them fail with `failing`
     * (charged as fault="vendor" either way, as the gateway's CAUSE_FAULT does): 40% of its outcomes.
     */
    function fleet(failing: "vendor_error" | "session_lost" | "client") {
        const ok = "0+600x60 36000+360x60";
        const bad = "0x60 0+240x60";
        const zero = "0x120";
        return [
            outcome("vendor-b", "res-us", "none", ok),
            outcome("vendor-b", "res-us", "vendor", bad),
            outcome("vendor-b", "res-us", "destination", zero),
            ...["vendor_error", "session_lost", "client", "vendor_policy", "destination"].map((c) =>
                cause("vendor-b", "res-us", c, c === failing ? bad : zero),
            ),
            cause("vendor-b", "res-us", "none", ok),
            req("vendor-b", "res-us", "200", ok),
            // A refusal of our account is a 429 (client); a lost session a 502; the vendor's own error a 503.
            req("vendor-b", "res-us", failing === "client" ? "429" : failing === "session_lost" ? "502" : "503", bad),
            s("proxy_pool_health", { ...C, vendor: "vendor-b", pool: "res-us" }, "1x120"),
        ];
    }

    it("lost sessions and refusals of our account burn no SLO budget; the vendor's own errors do", () => {
        const quiet = (failing: "session_lost" | "client") => ({
            interval: "1m",
            input_series: fleet(failing),
            promql_expr_test: [
                sample('vendor:proxy_slo_errors:rate5m{vendor="vendor-b"}', "100m", VB, 0),
                sample('vendor:proxy_request_errors:ratio_rate1h{vendor="vendor-b"}', "100m", VB, 0),
                sample(
                    'vendor_pool:proxy_request_success:ratio_rate5m{vendor="vendor-b"}',
                    "100m",
                    `{cluster="dev", vendor="vendor-b", pool="res-us"}`,
                    1,
                ),
                // The cause is recorded, and the share charged to the vendor's side still says 40%.
                sample(
                    `vendor_cause:proxy_pool_causes:ratio_rate5m{vendor="vendor-b", cause="${failing}"}`,
                    "100m",
                    `{cluster="dev", vendor="vendor-b", cause="${failing}"}`,
                    0.4,
                ),
                sample('vendor:proxy_vendor_faults:ratio_rate5m{vendor="vendor-b"}', "100m", VB, 0.4),
            ],
            alert_rule_test: [fires("VendorErrorBudgetBurnFast", "100m", [])],
        });
        expectRuleTestsPass(cfg, "slo-causes", [
            quiet("session_lost"),
            {
                ...quiet("client"),
                // A vendor answering 429 to 40% still tells us to act: the refusal alert reads the vendor's side.
                alert_rule_test: [
                    fires("VendorErrorBudgetBurnFast", "100m", []),
                    fires("VendorRefusalsHigh", "100m", [
                        { vendor: "vendor-b", severity: "warning", symptom: "refusals" },
                    ]),
                ],
            },
            {
                interval: "1m",
                input_series: fleet("vendor_error"),
                promql_expr_test: [
                    sample('vendor:proxy_slo_errors:rate5m{vendor="vendor-b"}', "100m", VB, 4),
                    sample(
                        'vendor_pool:proxy_request_errors:rate5m{vendor="vendor-b"}',
                        "100m",
                        `{cluster="dev", vendor="vendor-b", pool="res-us"}`,
                        4,
                    ),
                ],
                alert_rule_test: [
                    fires("VendorErrorBudgetBurnFast", "100m", [
                        { vendor: "vendor-b", severity: "critical", symptom: "errors" },
                    ]),
                ],
            },
        ]);
    });

    it("reported bans appear in the recorded series and fire the ban-rate alert; a few bans do not", () => {
        // vendor-a carries 10 requests/s on dc-us-east; crawlers report 1 ban/s from minute 10 (10%), on the pool
        // and without one (pool="none", the crawler did not say).
        const input = (perMinute: number) => [
            req("vendor-a", "dc-us-east", "200", "0+600x60"),
            ban("vendor-a", "dc-us-east", "other", "0x60"),
            ban("vendor-a", "dc-us-east", "example.com", `0x10 0+${perMinute / 2}x50`),
            ban("vendor-a", "none", "example.org", `0x10 0+${perMinute / 2}x50`),
            s("proxy_pool_health", { ...C, vendor: "vendor-a", pool: "dc-us-east" }, "1x60"),
        ];
        expectRuleTestsPass(cfg, "bans", [
            {
                interval: "1m",
                input_series: input(60),
                promql_expr_test: [
                    sample(
                        'vendor:proxy_crawler_bans:rate5m{vendor="vendor-a"}',
                        "40m",
                        '{cluster="dev", vendor="vendor-a"}',
                        1,
                    ),
                    sample(
                        'vendor:proxy_crawler_bans:ratio_rate5m{vendor="vendor-a"}',
                        "40m",
                        '{cluster="dev", vendor="vendor-a"}',
                        0.1,
                    ),
                    sample(
                        'vendor_pool:proxy_crawler_bans:rate5m{pool="none"}',
                        "40m",
                        '{cluster="dev", vendor="vendor-a", pool="none"}',
                        0.5,
                    ),
                    sample(
                        'vendor_pool:proxy_crawler_bans:ratio_rate5m{pool="dc-us-east"}',
                        "40m",
                        '{cluster="dev", vendor="vendor-a", pool="dc-us-east"}',
                        0.05,
                    ),
                    sample(
                        'vendor_destination:proxy_crawler_bans:rate5m{destination="example.com"}',
                        "40m",
                        '{cluster="dev", vendor="vendor-a", destination="example.com"}',
                        0.5,
                    ),
                ],
                alert_rule_test: [
                    fires("VendorBanRateHigh", "12m", []),
                    fires("VendorBanRateHigh", "40m", [{ vendor: "vendor-a", severity: "warning", symptom: "bans" }]),
                ],
            },
            {
                // 2 bans a minute on 600 requests: 0.3%, below the threshold.
                interval: "1m",
                input_series: input(2),
                alert_rule_test: [fires("VendorBanRateHigh", "40m", [])],
            },
        ]);
    });
});
