/** Metrics of the vendor simulator (dev stacks and tests). */
import { L, MetricSpec } from "./datamodel";

export const SIMULATOR_METRICS = {
    answers: {
        name: "vendor_sim_answers_total",
        type: "counter",
        help: "Answers of the vendor simulator by outcome: 200, an injected error (403, 407, 429, 502, 503, timeout, reset), or outage.",
        labels: [L.vendor, L.pool, "outcome"],
    },
} as const satisfies Record<string, MetricSpec>;
