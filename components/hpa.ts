/**
 * HorizontalPodAutoscaler (autoscaling/v2) specs with behaviour, shared by the gateways, the load generator and the
 * crawler workloads named in config.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { durationMs } from "./validate";

export interface HpaTarget {
    readonly kind: "Deployment" | "StatefulSet";
    readonly name: pulumi.Input<string>;
}

export interface HpaOptions {
    readonly minReplicas: number;
    readonly maxReplicas: number;
    /** Average CPU utilisation (percent of requests) to hold; omitted: no CPU metric. */
    readonly cpuUtilization?: number;
    /** Average memory utilisation (percent of requests) to hold; omitted: no memory metric. */
    readonly memoryUtilization?: number;
    /** Per-pod custom metrics (served by prometheus-adapter) and the average value to hold. */
    readonly podMetrics?: readonly { readonly name: string; readonly averageValue: string }[];
    /** Stabilisation windows, Prometheus durations. */
    readonly scaleUpStabilization: string;
    readonly scaleDownStabilization: string;
}

/**
 * The HPA spec. Scale-up may double the replicas or add 4 pods per 15 s, whichever is more; scale-down removes at
 * most 10% per minute, so a brief lull does not drop capacity that a crawl will need again.
 */
export function hpaSpec(target: HpaTarget, o: HpaOptions): k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerSpec {
    const metrics: k8s.types.input.autoscaling.v2.MetricSpec[] = [];
    if (o.cpuUtilization !== undefined) {
        metrics.push({
            type: "Resource",
            resource: { name: "cpu", target: { type: "Utilization", averageUtilization: o.cpuUtilization } },
        });
    }
    if (o.memoryUtilization !== undefined) {
        metrics.push({
            type: "Resource",
            resource: { name: "memory", target: { type: "Utilization", averageUtilization: o.memoryUtilization } },
        });
    }
    for (const m of o.podMetrics ?? []) {
        metrics.push({
            type: "Pods",
            pods: { metric: { name: m.name }, target: { type: "AverageValue", averageValue: m.averageValue } },
        });
    }
    if (metrics.length === 0) throw new Error("an HPA needs at least one metric");
    return {
        scaleTargetRef: { apiVersion: "apps/v1", kind: target.kind, name: target.name },
        minReplicas: o.minReplicas,
        maxReplicas: o.maxReplicas,
        metrics,
        behavior: {
            scaleUp: {
                stabilizationWindowSeconds: Math.round(durationMs(o.scaleUpStabilization) / 1000),
                selectPolicy: "Max",
                policies: [
                    { type: "Percent", value: 100, periodSeconds: 15 },
                    { type: "Pods", value: 4, periodSeconds: 15 },
                ],
            },
            scaleDown: {
                stabilizationWindowSeconds: Math.round(durationMs(o.scaleDownStabilization) / 1000),
                selectPolicy: "Min",
                policies: [{ type: "Percent", value: 10, periodSeconds: 60 }],
            },
        },
    };
}

/** The HPA of one of our Deployments (hpaSpec), beside it in its namespace with its labels. */
export function deploymentHpa(
    name: string,
    w: { namespace: string; labels: Record<string, string>; deployment: k8s.apps.v1.Deployment },
    o: Omit<HpaOptions, "scaleUpStabilization" | "scaleDownStabilization">,
    windows: Pick<HpaOptions, "scaleUpStabilization" | "scaleDownStabilization">,
    opts: pulumi.CustomResourceOptions,
): k8s.autoscaling.v2.HorizontalPodAutoscaler {
    return new k8s.autoscaling.v2.HorizontalPodAutoscaler(
        name,
        {
            metadata: { namespace: w.namespace, labels: w.labels },
            spec: hpaSpec(
                { kind: "Deployment", name: w.deployment.metadata.name },
                {
                    ...o,
                    scaleUpStabilization: windows.scaleUpStabilization,
                    scaleDownStabilization: windows.scaleDownStabilization,
                },
            ),
        },
        opts,
    );
}
