/** `resources`: requests and limits of every workload. */
import { z } from "zod";
import { BYTES, CPU, obj, section, str } from "./kit";

const res = (reqCpu: string, reqMem: string, limCpu: string, limMem: string) =>
    obj({
        requests: obj({ cpu: str(CPU).default(reqCpu), memory: str(BYTES).default(reqMem) }).prefault({}),
        limits: obj({ cpu: str(CPU).default(limCpu), memory: str(BYTES).default(limMem) }).prefault({}),
    }).prefault({});

export const resourcesSchema = section({
    gateway: res("250m", "256Mi", "1", "512Mi"),
    prometheus: res("500m", "2Gi", "2", "4Gi"),
    globalPrometheus: res("250m", "1Gi", "1", "2Gi"),
    alertmanager: res("50m", "64Mi", "200m", "128Mi"),
    grafana: res("100m", "128Mi", "500m", "512Mi"),
    kubeStateMetrics: res("50m", "64Mi", "200m", "256Mi"),
    loadGenerator: res("250m", "128Mi", "1", "256Mi"),
    simulator: res("100m", "64Mi", "500m", "256Mi"),
    prometheusAdapter: res("50m", "64Mi", "250m", "256Mi"),
});
export type ResourcesConfig = z.output<typeof resourcesSchema>;
export type Resources = ResourcesConfig["gateway"];
