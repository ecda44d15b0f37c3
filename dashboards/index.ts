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

/** File name (without .json) to dashboard JSON. */
export function allDashboards(cfg: StackConfig): Record<string, Record<string, unknown>> {
    return Object.fromEntries(
        Object.entries(DASHBOARDS).map(([file, build]) => [
            file,
            build(cfg).build() as unknown as Record<string, unknown>,
        ]),
    );
}
