/** Vendor analytics: vendors side by side, against their SLA, with a per-pool drill-down. */
import { L, ON_VENDOR, R, WINDOW_LABEL, eq, inWindow, re, vendorErrorRatio } from "../catalog";
import { StackConfig } from "../components/config";
import * as common from "@grafana/grafana-foundation-sdk/common";
import * as dash from "@grafana/grafana-foundation-sdk/dashboard";
import { BAN_RATIO_HIGH, LATENCY_SLOW_SHARE } from "../components/alerting/rules";
import { CV, CVP, dashboard, latencyThresholds, query, successThresholds, tablePanel, timeseriesPanel } from "./common";

/** Dashed red threshold at `value` (a line the alert reads). */
function redAbove<
    T extends {
        thresholds(t: dash.ThresholdsConfigBuilder): T;
        thresholdsStyle(s: common.GraphThresholdsStyleConfigBuilder): T;
    },
>(panel: T, value: number): T {
    return panel
        .thresholds(
            new dash.ThresholdsConfigBuilder().mode(dash.ThresholdsMode.Absolute).steps([
                { value: null, color: "green" },
                { value, color: "red" },
            ]),
        )
        .thresholdsStyle(new common.GraphThresholdsStyleConfigBuilder().mode(common.GraphThresholdsStyleMode.Dashed));
}

export function vendorAnalytics(cfg: StackConfig) {
    return (
        dashboard(
            "proxy-monitor-vendors",
            "Vendor analytics",
            "Success, latency, status classes and unit costs per vendor and pool, against each SLA.",
            cfg,
        )
            .withPanel(
                successThresholds(
                    timeseriesPanel(
                        "Success ratio vs objective",
                        "Success ratio (5m) and the vendor's configured objective (dashed: red below it).",
                        "percentunit",
                        [
                            query(`${R.vendorSuccessRatio}{${CV}}`, "{{vendor}}"),
                            query(`${R.vendorSuccessObjective}{${CV}}`, "{{vendor}} objective"),
                        ],
                    ),
                    cfg,
                ),
            )
            .withPanel(
                latencyThresholds(
                    timeseriesPanel(
                        "Latency percentiles by vendor",
                        "p50, p95 and p99 of the time to the proxy's answer, and the p95 SLA (dashed: red above it).",
                        "ms",
                        [
                            query(`${R.vendorLatencyQuantile}{${CV}}`, "{{vendor}} p{{quantile}}"),
                            query(`${R.vendorLatencyObjectiveMs}{${CV}}`, "{{vendor}} p95 SLA"),
                        ],
                    ),
                    cfg,
                    (v) => `${v} p0.95`,
                ),
            )
            .withPanel(
                redAbove(
                    timeseriesPanel(
                        "Answers slower than the SLA",
                        "Share of each vendor's answers slower than its p95 SLA (the latency SLO: at most 5%).",
                        "percentunit",
                        [query(`${R.vendorLatencySlowRatio}{${CV}}`, "{{vendor}}")],
                    ),
                    LATENCY_SLOW_SHARE,
                ),
            )
            .withPanel(
                timeseriesPanel(
                    "Status classes by vendor",
                    "Answers per second by class: 2xx, 3xx, 4xx, 5xx, with 401, 403, 407, 429 apart.",
                    "reqps",
                    [query(`${R.vendorStatusClassRequests}{${CV}}`, "{{vendor}} {{status_class}}")],
                ),
            )
            .withPanel(
                timeseriesPanel(
                    "Error budget burn",
                    "Errors over the SLO's allowance: 1 spends a 30-day budget in 30 days; pages start at 14.4 (1h).",
                    "short",
                    [
                        query(
                            `${vendorErrorRatio("1h")}{${CV}} / ${ON_VENDOR} group_left () (1 - ${R.vendorSuccessObjective}{${CV}})`,
                            "{{vendor}} 1h",
                        ),
                    ],
                ),
            )
            .withPanel(
                timeseriesPanel(
                    "Cost per 1,000 successful requests",
                    "Cost per hour over successful requests per hour, times 1,000.",
                    "currencyUSD",
                    [
                        query(
                            `${R.vendorCostPerHour}{${CV}} / (${R.vendorRequests}{${CV}} * ${R.vendorSuccessRatio}{${CV}} * 3.6)`,
                            "{{vendor}}",
                        ),
                    ],
                ),
            )
            .withPanel(
                tablePanel("Price per GB", "The configured price of each vendor, per GB (10^9 bytes).", "currencyUSD", [
                    query(`${R.vendorPricePerGb}{${CV}}`, "{{vendor}}"),
                ]),
            )
            .withPanel(
                timeseriesPanel("Requests by pool", "Requests per second per pool of the selected vendors.", "reqps", [
                    query(`${R.vendorPoolRequests}{${CVP}}`, "{{vendor}}/{{pool}}"),
                ]),
            )
            .withPanel(
                timeseriesPanel(
                    "Success ratio by pool",
                    "Share of each pool's answers that did not count against the vendor (5m).",
                    "percentunit",
                    [query(`${R.vendorPoolSuccessRatio}{${CVP}}`, "{{vendor}}/{{pool}}")],
                ),
            )
            .withPanel(
                timeseriesPanel("p95 latency by pool", "95th percentile of the time to answer per pool.", "ms", [
                    query(`${R.vendorPoolLatencyQuantile}{${CVP}, ${eq(L.quantile, "0.95")}}`, "{{vendor}}/{{pool}}"),
                ]),
            )
            .withPanel(
                timeseriesPanel("Status classes by pool", "Answers per second by class and pool.", "reqps", [
                    query(`${R.vendorPoolStatusClassRequests}{${CVP}}`, "{{vendor}}/{{pool}} {{status_class}}"),
                ]),
            )
            .withPanel(
                timeseriesPanel(
                    "Requests by protocol",
                    "CONNECT tunnels and plain HTTP requests per second.",
                    "reqps",
                    [query(`${R.vendorProtocolRequests}{${CV}}`, "{{vendor}} {{protocol}}")],
                ),
            )
            .withPanel(
                timeseriesPanel(
                    "Failures by cause",
                    "Share of each vendor's outcomes by the cause its profile read from the vendor's answer: only vendor_error counts against the SLO; session_lost and client are the vendor's answers but not its faults; vendor_policy and destination are the destination's.",
                    "percentunit",
                    [query(`${R.vendorCauseRatio}{${CV}, cause!="none"}`, "{{vendor}} {{cause}}")],
                ),
            )
            .withPanel(
                redAbove(
                    timeseriesPanel(
                        "Reported bans",
                        "Bans crawlers reported (X-Proxy-Monitor-Ban, POST /ban) per request the vendor's pools carried, per vendor and per pool (bans without a pool count for the vendor only); the alert fires above the dashed line.",
                        "percentunit",
                        [
                            query(`${R.vendorBanRatio}{${CV}}`, "{{vendor}}"),
                            query(`${R.vendorPoolBanRatio}{${CVP}}`, "{{vendor}}/{{pool}}"),
                        ],
                    ),
                    BAN_RATIO_HIGH,
                ),
            )
            // Pool quality: exit-IP rotation, counted in a sketch per pool (vendors with exitIp only).
            .withRow(new dash.RowBuilder("Pool quality"))
            .withPanel(
                timeseriesPanel(
                    "Distinct exit IPs per hour and day",
                    "Distinct exit IPs each pool used over the last hour and day (HyperLogLog, 1.6 % standard error; the busiest gateway replica's count), and the vendor's floor per hour.",
                    "short",
                    [
                        query(
                            `${R.vendorPoolWindowExitIps}{${CVP}, ${re(WINDOW_LABEL, "1h|24h")}}`,
                            "{{vendor}}/{{pool}} {{window}}",
                        ),
                        query(`${R.vendorMinExitIpsPerHour}{${CV}}`, "{{vendor}} floor per hour"),
                    ],
                ),
            )
            .withPanel(
                timeseriesPanel(
                    "Exit-IP reuse",
                    "Share of requests whose exit IP was already used in the last hour: 0 is a fresh IP every time, near 1 a handful of IPs.",
                    "percentunit",
                    [query(`${R.vendorPoolWindowExitIpReuse}{${CVP}, ${inWindow("1h")}}`, "{{vendor}}/{{pool}}")],
                ),
            )
            .withPanel(
                timeseriesPanel(
                    "Sticky-session breaks",
                    "Share of sticky-session requests (a session key from the crawler) whose exit IP differed from the session's previous one: near 0 when the vendor keeps sessions on their IP.",
                    "percentunit",
                    [query(`${R.vendorPoolStickyBreaks}{${CVP}}`, "{{vendor}}/{{pool}}")],
                ),
            )
    );
}
