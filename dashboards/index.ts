/** Every dashboard, as Grafana JSON, from the stack config. */
// TypeScript modules are not named like the JSON files beside them: require() would load the .json first.
import { StackConfig } from "../components/config";
import { bandwidthCost } from "./bandwidth";
import { infrastructure } from "./infra";
import { proxyOverview } from "./overview";
import { vendorAnalytics } from "./vendors";

export const DASHBOARDS = {
    "proxy-overview": proxyOverview,
    "vendor-analytics": vendorAnalytics,
    "bandwidth-cost": bandwidthCost,
    infrastructure,
};

/** One PromQL target of a dashboard panel, with the titles a reader would look for. */
export interface DashboardTarget {
    readonly dashboard: string;
    readonly panel: string;
    readonly expr: string;
}

/** Every PromQL target of every dashboard, as Grafana would send it (template variables unexpanded). */
export function dashboardTargets(cfg: StackConfig): DashboardTarget[] {
    type Json = { title: string; panels: { title: string; targets?: { expr: string }[] }[] };
    return (Object.values(allDashboards(cfg)) as unknown as Json[]).flatMap((d) =>
        d.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ dashboard: d.title, panel: p.title, expr: t.expr }))),
    );
}

/** File name (without .json) to dashboard JSON. */
export function allDashboards(cfg: StackConfig): Record<string, Record<string, unknown>> {
    return Object.fromEntries(
        Object.entries(DASHBOARDS).map(([file, build]) => [
            file,
            build(cfg).build() as unknown as Record<string, unknown>,
        ]),
    );
}
