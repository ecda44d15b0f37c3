/** Proxy overview: every vendor at a glance. */
import { L, ON_VENDOR, R, SLO_PERIOD, eq } from "../catalog";
import { StackConfig } from "../components/config";
import * as dash from "@grafana/grafana-foundation-sdk/dashboard";
import {
    CV,
    FIRING_ALERTS,
    dashboard,
    latencyThresholds,
    successThresholds,
    query,
    statPanel,
    tablePanel,
    timeseriesPanel,
} from "./common";

/**
 * Error budget left over the SLO period, per vendor: 1 - (errors / requests over the period) / (1 - objective). From
 * the recorded 5m SLO series (federated), guarded against a period without requests.
 */
export function budgetRemainingExpr(): string {
    const sum = (x: string) => `sum_over_time(${x}{${CV}}[${SLO_PERIOD}])`;
    return (
        `1 - (${sum(R.vendorSloErrors)} / (${sum(R.vendorSloRequests)} > 0)) ` +
        `/ ${ON_VENDOR} group_left () (1 - ${R.vendorSuccessObjective}{${CV}})`
    );
}

export function proxyOverview(cfg: StackConfig) {
    return dashboard(
        "proxy-monitor-overview",
        "Proxy overview",
        "Requests, success, latency, bandwidth, cost and pool health per vendor.",
        cfg,
        ["vendor"],
    )
        .withPanel(
            statPanel("Requests per second", "All vendors, all pools (recorded 5m rate).", "reqps", [
                query(`sum(${R.vendorRequests}{${CV}})`, "requests/s"),
            ]),
        )
        .withPanel(
            statPanel(
                "Lowest success ratio",
                "The worst vendor's share of answers that did not count against it (5m).",
                "percentunit",
                [query(`min(${R.vendorSuccessRatio}{${CV}})`, "success")],
            ),
        )
        .withPanel(
            statPanel("Cost per hour", "Bandwidth times each vendor's price per GB, all vendors.", "currencyUSD", [
                query(`sum(${R.vendorCostPerHour}{${CV}})`, "cost/h"),
            ]),
        )
        .withPanel(
            statPanel("Pools down", "Pools that fail the gateways' probes on at least half the replicas.", "short", [
                query(`count(${R.vendorPoolHealth}{${CV}} < 0.5) or vector(0)`, "pools down"),
            ]),
        )
        .withPanel(
            timeseriesPanel(
                "Request rate by vendor",
                "Requests and tunnels answered per second, per vendor.",
                "reqps",
                [query(`${R.vendorRequests}{${CV}}`, "{{vendor}}")],
            ),
        )
        .withPanel(
            statPanel(
                "Error budget remaining",
                `Share of each vendor's error budget left over the last ${SLO_PERIOD} (1 - vendor faults over the budget its objective allows); below 0 the SLO is broken.`,
                "percentunit",
                [query(budgetRemainingExpr(), "{{vendor}}")],
                24,
            ).thresholds(
                new dash.ThresholdsConfigBuilder().mode(dash.ThresholdsMode.Absolute).steps([
                    { value: null, color: "red" },
                    { value: 0, color: "orange" },
                    { value: 0.25, color: "green" },
                ]),
            ),
        )
        .withPanel(
            successThresholds(
                timeseriesPanel(
                    "Success ratio by vendor",
                    "Share of outcomes not charged to the vendor (5m); dashed: its objective. Destinations' answers and the gateway's own refusals are not charged.",
                    "percentunit",
                    [query(`${R.vendorSuccessRatio}{${CV}}`, "{{vendor}}")],
                ),
                cfg,
            ),
        )
        .withPanel(
            latencyThresholds(
                timeseriesPanel(
                    "p95 latency by vendor",
                    "95th percentile of the time to the proxy's answer (5m); dashed: the vendor's p95 SLA.",
                    "ms",
                    [query(`${R.vendorLatencyQuantile}{${CV}, ${eq(L.quantile, "0.95")}}`, "{{vendor}}")],
                ),
                cfg,
            ),
        )
        .withPanel(
            timeseriesPanel(
                "Bandwidth by vendor",
                "Bytes per second relayed through each vendor, both directions.",
                "Bps",
                [query(`${R.vendorBandwidth}{${CV}}`, "{{vendor}}")],
            ),
        )
        .withPanel(
            timeseriesPanel(
                "Cost per hour by vendor",
                "Bandwidth times the vendor's price per GB (10^9 bytes).",
                "currencyUSD",
                [query(`${R.vendorCostPerHour}{${CV}}`, "{{vendor}}")],
            ),
        )
        .withPanel(
            timeseriesPanel(
                "Pool health",
                "Fraction of gateway replicas whose probes see each pool up (1 healthy, 0 down).",
                "percentunit",
                [query(`${R.vendorPoolHealth}{${CV}}`, "{{vendor}}/{{pool}}")],
            ),
        )
        .withPanel(
            tablePanel(
                "Firing alerts",
                "Alerts firing now in the selected clusters (recorded from ALERTS, so the global view has them); each alert's runbook is in the Runbooks link.",
                "short",
                [query(FIRING_ALERTS, "{{alertname}}")],
                24,
            ),
        );
}
