/** Proxy overview: every vendor at a glance. */
import { R } from "../catalog";
import { StackConfig } from "../components/config";
import { CV, dashboard, query, statPanel, tablePanel, timeseriesPanel } from "./common";

export function proxyOverview(_cfg: StackConfig) {
    return dashboard(
        "proxy-monitor-overview",
        "Proxy overview",
        "Requests, success, latency, bandwidth, cost and pool health per vendor.",
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
            timeseriesPanel(
                "Success ratio by vendor",
                "Share of answers that did not count against the vendor (5m): 401, 403, 407, 429 and 5xx do.",
                "percentunit",
                [query(`${R.vendorSuccessRatio}{${CV}}`, "{{vendor}}")],
            ),
        )
        .withPanel(
            timeseriesPanel("p95 latency by vendor", "95th percentile of the time to the proxy's answer (5m).", "ms", [
                query(`${R.vendorLatencyQuantile}{${CV}, quantile="0.95"}`, "{{vendor}}"),
            ]),
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
                "Alerts firing now, from the ALERTS series of this Prometheus.",
                "short",
                [
                    query(
                        'ALERTS{alertstate="firing", cluster=~"$cluster"} or ALERTS{alertstate="firing"}',
                        "{{alertname}}",
                    ),
                ],
                24,
            ),
        );
}
