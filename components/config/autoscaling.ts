/** `autoscaling`: VPA, custom-metric HPAs and the crawler workloads they scale. */
import { z } from "zod";
import { DURATION, LABEL, bool, list, num, obj, oneOf, section, str, notBelow } from "./kit";

const workload = obj({
    namespace: str(LABEL).describe("namespace of the crawler workload"),
    kind: oneOf(["Deployment", "StatefulSet"], "Deployment or StatefulSet").describe("its kind").default("Deployment"),
    name: str(LABEL).describe("its name"),
    minReplicas: num({ min: 1, int: true }).describe("HPA minimum replicas").default(1),
    maxReplicas: num({ min: 1, int: true }).describe("HPA maximum replicas").default(10),
    targetCpuUtilization: num({ min: 1, max: 100, int: true }).describe("CPU target, percent").default(70),
    targetMemoryUtilization: num({ min: 1, max: 100, int: true }).describe("memory target, percent").default(80),
    targetQueueDepth: num({ min: 0 })
        .describe("Per-pod proxy queue depth to hold (custom metric), 0 for none.")
        .default(0),
}).superRefine(notBelow("maxReplicas", "minReplicas"));
export type CrawlerWorkloadConfig = z.output<typeof workload>;

export const autoscalingSchema = section({
    vpa: bool().describe("Create VPA objects (needs the VPA CRDs in the cluster).").default(false),
    vpaMode: oneOf(["Off", "Initial", "Auto"], "Off, Initial or Auto").describe("VPA update mode").default("Off"),
    customMetrics: bool().describe("Deploy prometheus-adapter and custom-metric HPAs.").default(false),
    customMetricsApiService: bool()
        .describe(
            "Register the deployed prometheus-adapter as the cluster's custom metrics API (the cluster-scoped APIService v1beta1.custom.metrics.k8s.io). Cluster-wide: every custom-metrics HPA in the cluster then reads from it. Defaults to false: where another adapter already serves that API, add our adapter rules to it instead.",
        )
        .default(false),
    scaleUpStabilization: str(DURATION).describe("HPA scale-up stabilization window").default("0s"),
    scaleDownStabilization: str(DURATION).describe("HPA scale-down stabilization window").default("5m"),
    workloads: list(workload).describe("crawler workloads to scale on CPU, memory and proxy queue depth").default([]),
});
export type AutoscalingConfig = z.output<typeof autoscalingSchema>;
