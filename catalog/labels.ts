/**
 * The values a catalog-owned label can take, where the set is fixed. Rules, alerts and dashboards that select on one
 * of these labels may name only these values (tests/labels.test.ts); the gateway produces only these.
 */
import { CAUSES, DIRECTIONS, FAULTS, L, PROTOCOLS } from "./datamodel";
import { WINDOW_LABEL } from "./gateway";

/** Statuses the status-class recording rules keep apart from their class (refusals, auth and rate limiting). */
export const APART_STATUSES = ["401", "403", "407", "429"] as const;

/** Values of `status_class`: the class of a status (`2xx`) or, for APART_STATUSES, the status itself. */
export const STATUS_CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", ...APART_STATUSES] as const;

/** Windows the pool-quality gauges cover (label `window`; proxy/gateway/exit-ips.ts counts over these). */
export const EXIT_IP_WINDOWS = ["5m", "1h", "24h"] as const;

export const LABEL_VALUES = {
    [L.fault]: FAULTS,
    [L.cause]: CAUSES,
    [L.protocol]: PROTOCOLS,
    [L.direction]: DIRECTIONS,
    [L.statusClass]: STATUS_CLASSES,
    [WINDOW_LABEL]: EXIT_IP_WINDOWS,
} as const;
