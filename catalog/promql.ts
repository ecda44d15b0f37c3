/**
 * PromQL fragments built from the catalog's label names, so that rules, alerts, routes and dashboards spell a label
 * in one place (tests/labels.test.ts checks each use against the series it reads).
 */
import { L } from "./datamodel";
import { WINDOW_LABEL } from "./gateway";

/** `by (a, b)`. */
export const by = (...labels: string[]): string => `by (${labels.join(", ")})`;

/** `on (a, b)`: vector matching on these labels. */
export const on = (...labels: string[]): string => `on (${labels.join(", ")})`;

/** The matching of a vendor's series with its constant thresholds and objectives (recorded per cluster and vendor). */
export const ON_VENDOR = on(L.cluster, L.vendor);

/** An Alertmanager or PromQL equality matcher, `label="value"` (value quoted as JSON, which both accept). */
export const eq = (label: string, value: string): string => `${label}=${JSON.stringify(value)}`;

/** A regex matcher, `label=~"regex"` (the regex is not escaped: pass a literal alternation or a Grafana variable). */
export const re = (label: string, regex: string): string => `${label}=~${JSON.stringify(regex)}`;

/** The `window` label of the pool-quality series selecting one window. */
export const inWindow = (w: string): string => eq(WINDOW_LABEL, w);
