/** `autoscaling`: VPA, custom-metric HPAs and the crawler workloads they scale. */
import { z } from "zod";
import { DURATION, LABEL, bool, list, num, obj, oneOf, section, str } from "./kit";

const workload = obj({
    namespace: str(LABEL),
    kind: oneOf(["Deployment", "StatefulSet"], "Deployment or StatefulSet").default("Deployment"),
    name: str(LABEL),
    minReplicas: num({ min: 1, int: true }).default(1),
    maxReplicas: num({ min: 1, int: true }).default(10),
    targetCpuUtilization: num({ min: 1, max: 100, int: true }).default(70),
    targetMemoryUtilization: num({ min: 1, max: 100, int: true }).default(80),
    /** Per-pod proxy queue depth to hold (custom metric), 0 for none. */
    targetQueueDepth: num({ min: 0 }).default(0),
}).superRefine((w, ctx) => {
    if (w.maxReplicas < w.minReplicas)
        ctx.addIssue({
            code: "custom",
            path: ["maxReplicas"],
            message: `at least minReplicas (${w.minReplicas})`,
            input: w.maxReplicas,
        });
});
export type CrawlerWorkloadConfig = z.output<typeof workload>;

export const autoscalingSchema = section({
    /** Create VPA objects (needs the VPA CRDs in the cluster). */
    vpa: bool().default(false),
    vpaMode: oneOf(["Off", "Initial", "Auto"], "Off, Initial or Auto").default("Off"),
    /** Deploy prometheus-adapter and custom-metric HPAs. */
    customMetrics: bool().default(false),
    /**
     * Register the deployed prometheus-adapter as the cluster's custom metrics API (the cluster-scoped APIService
     * v1beta1.custom.metrics.k8s.io). Cluster-wide: every custom-metrics HPA in the cluster then reads from it.
     * Defaults to false: where another adapter already serves that API, add our adapter rules to it instead.
     */
    customMetricsApiService: bool().default(false),
    scaleUpStabilization: str(DURATION).default("0s"),
    scaleDownStabilization: str(DURATION).default("5m"),
    workloads: list(workload).default([]),
});
export type AutoscalingConfig = z.output<typeof autoscalingSchema>;
