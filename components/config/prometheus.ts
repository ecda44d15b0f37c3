/** `prometheus`: the cluster Prometheus. */
import { z } from "zod";
import { durationMs } from "../validate";
import { BYTES, DURATION, PROM_BYTES, num, section, str } from "./kit";

export const prometheusSchema = section({
    replicas: num({ min: 1, max: 2, int: true }).describe("1, or 2 for an HA pair").default(2),
    scrapeInterval: str(DURATION).describe("scrape interval (at least 1s)").default("15s"),
    evaluationInterval: str(DURATION).describe("rule evaluation interval").default("15s"),
    retention: str(DURATION).describe("retention time").default("30d"),
    retentionSize: str(PROM_BYTES).describe("retention size").default("90GB"),
    storageSize: str(BYTES).describe("volume per replica").default("100Gi"),
    seriesBudget: num({ min: 1000, int: true })
        .describe("The most active series the configuration may be expected to produce; render and preview fail above.")
        .default(100_000),
    sampleLimit: num({ min: 100, int: true }).describe("samples per scrape, per job").default(20_000),
    labelLimit: num({ min: 5, max: 1000, int: true }).describe("labels per series, per job").default(30),
    labelValueLengthLimit: num({ min: 16, max: 10_000, int: true })
        .describe("label value length, per job")
        .default(200),
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
