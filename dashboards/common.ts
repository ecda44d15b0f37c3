/**
 * Shared pieces of the dashboards: the datasource and filter variables, queries, and panel defaults (every panel
 * has a title, a description and a unit). Dashboards are functions of the stack config returning SDK builders.
 */
import * as dash from "@grafana/grafana-foundation-sdk/dashboard";
import * as prometheus from "@grafana/grafana-foundation-sdk/prometheus";
import * as stat from "@grafana/grafana-foundation-sdk/stat";
import * as table from "@grafana/grafana-foundation-sdk/table";
import * as timeseries from "@grafana/grafana-foundation-sdk/timeseries";
import { L, R, re } from "../catalog";
import { StackConfig } from "../components/config";

export const DATASOURCE: dash.DataSourceRef = { type: "prometheus", uid: "${datasource}" };
export const TAGS = ["proxy-monitor"];

/** Label matchers every vendor query carries. */
export const CV = `${re(L.cluster, "$cluster")}, ${re(L.vendor, "$vendor")}`;
export const CVP = `${CV}, ${re(L.pool, "$pool")}`;

/** A PromQL target; refIds are assigned per panel in order. */
export function query(expr: string, legend: string): prometheus.DataqueryBuilder {
    return new prometheus.DataqueryBuilder().expr(expr).legendFormat(legend).datasource(DATASOURCE);
}

function withTargets<T extends { withTarget(t: prometheus.DataqueryBuilder): T }>(
    panel: T,
    targets: prometheus.DataqueryBuilder[],
): T {
    targets.forEach((t, i) => panel.withTarget(t.refId(String.fromCharCode(65 + i))));
    return panel;
}

export function timeseriesPanel(
    title: string,
    description: string,
    unit: string,
    targets: prometheus.DataqueryBuilder[],
    w = 12,
) {
    const p = new timeseries.PanelBuilder()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(w);
    return withTargets(p, targets);
}

export function statPanel(
    title: string,
    description: string,
    unit: string,
    targets: prometheus.DataqueryBuilder[],
    w = 6,
) {
    const p = new stat.PanelBuilder()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(5)
        .span(w);
    return withTargets(p, targets);
}

export function tablePanel(
    title: string,
    description: string,
    unit: string,
    targets: prometheus.DataqueryBuilder[],
    w = 12,
) {
    const p = new table.PanelBuilder()
        .title(title)
        .description(description)
        .unit(unit)
        .datasource(DATASOURCE)
        .height(8)
        .span(w);
    targets.forEach((t) => t.instant().format(prometheus.PromQueryFormat.Table));
    return withTargets(p, targets);
}

/** Firing alerts of the selected clusters (recorded, so the global view has them too), one per label set. */
export const FIRING_ALERTS = `${R.firingAlerts}{${re(L.cluster, "$cluster")}}`;

/**
 * Per-series thresholds: for each vendor, a dashed line at its configured value on the series named `name(vendor)`
 * (the legend), red on the wrong side of it.
 */
export function perVendorThresholds<T extends { overrideByName(name: string, p: dash.DynamicConfigValue[]): T }>(
    panel: T,
    cfg: StackConfig,
    name: (vendor: string) => string,
    value: (v: StackConfig["vendors"][number]) => number,
    badAbove: boolean,
): T {
    for (const v of cfg.vendors) {
        const [below, above] = badAbove ? ["green", "red"] : ["red", "green"];
        panel.overrideByName(name(v.name), [
            {
                id: "thresholds",
                value: {
                    mode: dash.ThresholdsMode.Absolute,
                    steps: [
                        { value: null, color: below },
                        { value: value(v), color: above },
                    ],
                },
            },
            { id: "custom.thresholdsStyle", value: { mode: "dashed" } },
        ]);
    }
    return panel;
}

/** Each vendor's success objective as a threshold on its series (red below). */
export function successThresholds<T extends { overrideByName(name: string, p: dash.DynamicConfigValue[]): T }>(
    panel: T,
    cfg: StackConfig,
    name: (vendor: string) => string = (v) => v,
): T {
    return perVendorThresholds(panel, cfg, name, (v) => v.sla.successObjective, false);
}

/** Each vendor's p95 latency SLA as a threshold on its series (red above). */
export function latencyThresholds<T extends { overrideByName(name: string, p: dash.DynamicConfigValue[]): T }>(
    panel: T,
    cfg: StackConfig,
    name: (vendor: string) => string = (v) => v,
): T {
    return perVendorThresholds(panel, cfg, name, (v) => v.sla.p95LatencyMs, true);
}

/**
 * A dashboard with the project's defaults: fixed uid, tags, the variables, 5 s among the refresh choices, a link to
 * the runbooks and the firing alerts as annotations.
 */
export function dashboard(
    uid: string,
    title: string,
    description: string,
    cfg: StackConfig,
    vars: ("vendor" | "pool")[] = ["vendor", "pool"],
): dash.DashboardBuilder {
    const b = new dash.DashboardBuilder(title)
        .uid(uid)
        .description(description)
        .tags(TAGS)
        .links([
            new dash.DashboardLinkBuilder("Runbooks")
                .type(dash.DashboardLinkType.Link)
                .url(cfg.alerting.runbookBaseUrl)
                .tooltip("One runbook per alert (docs/troubleshooting.md)")
                .icon("doc")
                .targetBlank(true),
        ])
        .annotation(
            new dash.AnnotationQueryBuilder()
                .name("Firing alerts")
                .datasource(DATASOURCE)
                .enable(true)
                .iconColor("red")
                .expr(FIRING_ALERTS),
        )
        .refresh("30s")
        .time({ from: "now-3h", to: "now" })
        .timezone("browser")
        .timepicker(new dash.TimePickerBuilder().refreshIntervals(["5s", "10s", "30s", "1m", "5m", "15m", "1h"]))
        .withVariable(new dash.DatasourceVariableBuilder("datasource").label("Data source").type("prometheus"))
        .withVariable(
            new dash.QueryVariableBuilder("cluster")
                .label("Cluster")
                .datasource(DATASOURCE)
                .query(`label_values(${R.vendorRequests}, ${L.cluster})`)
                .refresh(dash.VariableRefresh.OnTimeRangeChanged)
                .multi(true)
                .includeAll(true)
                .allValue(".*"),
        );
    if (vars.includes("vendor")) {
        b.withVariable(
            new dash.QueryVariableBuilder("vendor")
                .label("Vendor")
                .datasource(DATASOURCE)
                .query(`label_values(${R.vendorRequests}{${re(L.cluster, "$cluster")}}, ${L.vendor})`)
                .refresh(dash.VariableRefresh.OnTimeRangeChanged)
                .multi(true)
                .includeAll(true)
                .allValue(".*"),
        );
    }
    if (vars.includes("pool")) {
        b.withVariable(
            new dash.QueryVariableBuilder("pool")
                .label("Pool")
                .datasource(DATASOURCE)
                .query(`label_values(${R.vendorPoolRequests}{${CV}}, ${L.pool})`)
                .refresh(dash.VariableRefresh.OnTimeRangeChanged)
                .multi(true)
                .includeAll(true)
                .allValue(".*"),
        );
    }
    return b;
}
