/** Bandwidth and cost: what each vendor moves and costs, who spends it, and the daily budgets. */
import { R } from "../catalog";
import { StackConfig } from "../components/config";
import { CV, CVP, dashboard, query, tablePanel, timeseriesPanel } from "./common";

export function bandwidthCost(cfg: StackConfig) {
    return dashboard(
        "proxy-monitor-bandwidth",
        "Bandwidth and cost",
        "Bytes and cost per vendor, pool, destination and crawler namespace; daily budgets.",
        cfg,
    )
        .withPanel(
            timeseriesPanel(
                "Bandwidth by vendor and direction",
                "Egress (crawler to destination) and ingress (back), bytes per second.",
                "Bps",
                [query(`${R.vendorDirectionBandwidth}{${CV}}`, "{{vendor}} {{direction}}")],
            ),
        )
        .withPanel(
            timeseriesPanel("Bandwidth by pool", "Bytes per second per pool and direction.", "Bps", [
                query(`${R.vendorPoolDirectionBandwidth}{${CVP}}`, "{{vendor}}/{{pool}} {{direction}}"),
            ]),
        )
        .withPanel(
            timeseriesPanel(
                "Daily budget burn and projection",
                "Bytes of the last 24 hours, a day at the current rate, and the daily budget.",
                "decbytes",
                [
                    query(`${R.vendorBandwidthIncrease1d}{${CV}}`, "{{vendor}} last 24h"),
                    query(`${R.vendorBandwidth}{${CV}} * 86400`, "{{vendor}} projected"),
                    query(`${R.vendorDailyBudgetBytes}{${CV}}`, "{{vendor}} budget"),
                ],
            ),
        )
        .withPanel(
            timeseriesPanel("Cost per hour by vendor", "Bandwidth times the vendor's price per GB.", "currencyUSD", [
                query(`${R.vendorCostPerHour}{${CV}}`, "{{vendor}}"),
            ]),
        )
        .withPanel(
            timeseriesPanel("Cost per hour by pool", "Cost per hour of each pool.", "currencyUSD", [
                query(`${R.vendorPoolCostPerHour}{${CVP}}`, "{{vendor}}/{{pool}}"),
            ]),
        )
        .withPanel(
            tablePanel("Cost of the last 24 hours", "Cost per vendor over the trailing day.", "currencyUSD", [
                query(`${R.vendorCostIncrease1d}{${CV}}`, "{{vendor}}"),
            ]),
        )
        .withPanel(
            tablePanel(
                "Top destinations by bytes",
                "The ten destinations moving the most bytes (untracked hosts are 'other').",
                "Bps",
                [query(`topk(10, ${R.vendorDestinationBandwidth}{${CV}})`, "{{vendor}} {{destination}}")],
            ),
        )
        .withPanel(
            tablePanel(
                "Top destinations by requests",
                "The ten destinations with the most requests per second.",
                "reqps",
                [query(`topk(10, ${R.vendorDestinationRequests}{${CV}})`, "{{vendor}} {{destination}}")],
            ),
        )
        .withPanel(
            timeseriesPanel(
                "Cost per crawler namespace",
                "Cost per hour by crawler namespace and vendor, from Istio's bytes on the crawler-to-gateway hop.",
                "currencyUSD",
                [query(`${R.namespaceVendorCostPerHour}{${CV}}`, "{{crawler_namespace}} via {{vendor}}")],
            ),
        )
        .withPanel(
            timeseriesPanel(
                "Bandwidth per crawler namespace",
                "Bytes per second by crawler namespace and vendor (Istio).",
                "Bps",
                [query(`${R.namespaceVendorBandwidth}{${CV}}`, "{{crawler_namespace}} via {{vendor}}")],
            ),
        );
}
