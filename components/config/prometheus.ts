/** `prometheus`: the cluster Prometheus. */
import { z } from "zod";
import { durationMs } from "../validate";
import { BYTES, DURATION, PROM_BYTES, num, section, str } from "./kit";

export const prometheusSchema = section({
    replicas: num({ min: 1, max: 2, int: true }).default(2),
    scrapeInterval: str(DURATION).default("15s"),
    evaluationInterval: str(DURATION).default("15s"),
    retention: str(DURATION).default("30d"),
    retentionSize: str(PROM_BYTES).default("90GB"),
    storageSize: str(BYTES).default("100Gi"),
    /** The most active series the configuration may be expected to produce; render and preview fail above. */
    seriesBudget: num({ min: 1000, int: true }).default(100_000),
    sampleLimit: num({ min: 100, int: true }).default(20_000),
    labelLimit: num({ min: 5, max: 1000, int: true }).default(30),
    labelValueLengthLimit: num({ min: 16, max: 10_000, int: true }).default(200),
}).superRefine((p, ctx) => {
    if (durationMs(p.scrapeInterval) < 1000)
        ctx.addIssue({
            code: "custom",
            path: ["scrapeInterval"],
            message: "a duration of at least 1s",
            input: p.scrapeInterval,
        });
});
export type PrometheusConfig = z.output<typeof prometheusSchema>;
