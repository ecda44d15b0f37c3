/**
 * Autoscaling of the crawler workloads named in config: HPAs on CPU and memory (and, with custom metrics, on proxy
 * queue depth), VerticalPodAutoscalers when the cluster has the VPA CRDs, and prometheus-adapter serving per-pod
 * custom metrics from Prometheus. The adapter becomes the cluster's `custom.metrics.k8s.io` (a cluster-scoped
 * APIService, so a takeover of every custom-metrics HPA in the cluster) only with `autoscaling.customMetricsApiService`.
 *
 * VPA and HPA never act on the same resource metric: a workload whose HPA scales on CPU and memory gets a VPA in
 * `Off` mode (recommendations only). Only when custom metrics are on and the workload has a queue-depth target does
 * its HPA scale on queue depth alone, and its VPA may then run in the configured `Initial` or `Auto` mode.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { LOADGEN_METRICS } from "../catalog/loadgen";
import { CrawlerWorkloadConfig, StackConfig } from "./config";
import { hpaSpec } from "./hpa";
import { contentHash, imageVersion, labels, OUT_OF_MESH, selectorLabels, workloadPodSpec } from "./k8s";
import { APP, NAMES, PORTS } from "./names";

/** The stack settings the autoscaling component reads. */
export type AutoscalingStackConfig = Pick<StackConfig, "namespaces" | "autoscaling" | "images" | "resources">;

/** The custom metrics prometheus-adapter serves, per pod. */
export const CUSTOM_METRICS = { queueDepth: "proxy_queue_depth", requestRate: "proxy_requests_per_second" } as const;

/** prometheus-adapter's rules: per-pod queue depth and request rate from the load generator's (crawler's) series. */
export function buildAdapterRules(): Record<string, unknown> {
    const resourcesMap = { overrides: { namespace: { resource: "namespace" }, pod: { resource: "pod" } } };
    return {
        rules: [
            {
                seriesQuery: `${LOADGEN_METRICS.queueDepth.name}{namespace!="",pod!=""}`,
                resources: resourcesMap,
                name: { matches: `^${LOADGEN_METRICS.queueDepth.name}$`, as: CUSTOM_METRICS.queueDepth },
                metricsQuery: "sum by (<<.GroupBy>>) (<<.Series>>{<<.LabelMatchers>>})",
            },
            {
                seriesQuery: `${LOADGEN_METRICS.requests.name}{namespace!="",pod!=""}`,
                resources: resourcesMap,
                name: { matches: `^${LOADGEN_METRICS.requests.name}$`, as: CUSTOM_METRICS.requestRate },
                metricsQuery: "sum by (<<.GroupBy>>) (rate(<<.Series>>{<<.LabelMatchers>>}[2m]))",
            },
        ],
    };
}

/** Whether a workload's HPA scales on queue depth alone, leaving CPU and memory to a VPA. */
export function queueDepthOnly(cfg: AutoscalingStackConfig, w: CrawlerWorkloadConfig): boolean {
    return (
        cfg.autoscaling.customMetrics &&
        w.targetQueueDepth > 0 &&
        cfg.autoscaling.vpa &&
        cfg.autoscaling.vpaMode !== "Off"
    );
}

export function workloadHpaSpec(
    cfg: AutoscalingStackConfig,
    w: CrawlerWorkloadConfig,
): k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerSpec {
    const queue =
        cfg.autoscaling.customMetrics && w.targetQueueDepth > 0
            ? [{ name: CUSTOM_METRICS.queueDepth, averageValue: String(w.targetQueueDepth) }]
            : [];
    const only = queueDepthOnly(cfg, w);
    return hpaSpec(
        { kind: w.kind, name: w.name },
        {
            minReplicas: w.minReplicas,
            maxReplicas: w.maxReplicas,
            cpuUtilization: only ? undefined : w.targetCpuUtilization,
            memoryUtilization: only ? undefined : w.targetMemoryUtilization,
            podMetrics: queue,
            scaleUpStabilization: cfg.autoscaling.scaleUpStabilization,
            scaleDownStabilization: cfg.autoscaling.scaleDownStabilization,
        },
    );
}

export function workloadVpa(cfg: AutoscalingStackConfig, w: CrawlerWorkloadConfig): Record<string, unknown> {
    const mode = queueDepthOnly(cfg, w) ? cfg.autoscaling.vpaMode : "Off";
    return {
        apiVersion: "autoscaling.k8s.io/v1",
        kind: "VerticalPodAutoscaler",
        metadata: { name: w.name, namespace: w.namespace, labels: { "app.kubernetes.io/part-of": "proxy-monitor" } },
        spec: {
            targetRef: { apiVersion: "apps/v1", kind: w.kind, name: w.name },
            updatePolicy: { updateMode: mode },
            resourcePolicy: { containerPolicies: [{ containerName: "*", controlledResources: ["cpu", "memory"] }] },
        },
    };
}

/** Args for the Autoscaling component. */
export interface AutoscalingArgs {
    /** The validated stack config. */
    readonly config: AutoscalingStackConfig;
    /** Resources to wait for (namespaces). */
    readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class Autoscaling extends pulumi.ComponentResource {
    constructor(name: string, args: AutoscalingArgs, opts?: pulumi.ComponentResourceOptions) {
        super("proxy-monitor:index:Autoscaling", name, {}, opts);
        const cfg = args.config;
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        for (const w of cfg.autoscaling.workloads) {
            new k8s.autoscaling.v2.HorizontalPodAutoscaler(
                `${name}-hpa-${w.namespace}-${w.name}`,
                {
                    metadata: {
                        name: w.name,
                        namespace: w.namespace,
                        labels: { "app.kubernetes.io/part-of": "proxy-monitor" },
                    },
                    spec: workloadHpaSpec(cfg, w),
                },
                childOpts,
            );
            if (cfg.autoscaling.vpa) {
                new k8s.apiextensions.CustomResource(
                    `${name}-vpa-${w.namespace}-${w.name}`,
                    workloadVpa(cfg, w) as k8s.apiextensions.CustomResourceArgs,
                    childOpts,
                );
            }
        }
        if (cfg.autoscaling.customMetrics) this.adapter(name, cfg, childOpts);
        this.registerOutputs({});
    }

    private adapter(name: string, cfg: AutoscalingStackConfig, childOpts: pulumi.CustomResourceOptions): void {
        const ns = cfg.namespaces.monitoring;
        const image = cfg.images.prometheusAdapter;
        const fixedName = NAMES.prometheusAdapter;
        const match = selectorLabels(APP.prometheusAdapter, fixedName);
        const objectLabels = labels(APP.prometheusAdapter, fixedName, "metrics-adapter", imageVersion(image));
        const meta = (extra: Record<string, unknown> = {}) => ({ labels: objectLabels, ...extra });
        const account = new k8s.core.v1.ServiceAccount(
            `${name}-adapter-sa`,
            { metadata: meta({ name: fixedName, namespace: ns }) },
            childOpts,
        );
        const subject = [{ kind: "ServiceAccount", name: account.metadata.name, namespace: ns }];
        // Reads the objects it maps series onto; nothing else.
        const reader = new k8s.rbac.v1.ClusterRole(
            `${name}-adapter-reader`,
            {
                metadata: meta(),
                rules: [{ apiGroups: [""], resources: ["namespaces", "pods"], verbs: ["get", "list", "watch"] }],
            },
            childOpts,
        );
        new k8s.rbac.v1.ClusterRoleBinding(
            `${name}-adapter-reader`,
            {
                metadata: meta(),
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: reader.metadata.name },
                subjects: subject,
            },
            childOpts,
        );
        // Delegated authentication and authorization of the API server's requests.
        new k8s.rbac.v1.ClusterRoleBinding(
            `${name}-adapter-auth-delegator`,
            {
                metadata: meta(),
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "system:auth-delegator" },
                subjects: subject,
            },
            childOpts,
        );
        new k8s.rbac.v1.RoleBinding(
            `${name}-adapter-auth-reader`,
            {
                metadata: meta({ namespace: "kube-system" }),
                roleRef: {
                    apiGroup: "rbac.authorization.k8s.io",
                    kind: "Role",
                    name: "extension-apiserver-authentication-reader",
                },
                subjects: subject,
            },
            childOpts,
        );
        // The HPA controller may read the custom metrics.
        const metricsReader = new k8s.rbac.v1.ClusterRole(
            `${name}-custom-metrics-reader`,
            {
                metadata: meta(),
                rules: [{ apiGroups: ["custom.metrics.k8s.io"], resources: ["*"], verbs: ["get", "list"] }],
            },
            childOpts,
        );
        new k8s.rbac.v1.ClusterRoleBinding(
            `${name}-custom-metrics-hpa`,
            {
                metadata: meta(),
                roleRef: {
                    apiGroup: "rbac.authorization.k8s.io",
                    kind: "ClusterRole",
                    name: metricsReader.metadata.name,
                },
                subjects: [{ kind: "ServiceAccount", name: "horizontal-pod-autoscaler", namespace: "kube-system" }],
            },
            childOpts,
        );
        const rulesText = YAML.stringify(buildAdapterRules());
        const config = new k8s.core.v1.ConfigMap(
            `${name}-adapter-config`,
            { metadata: meta({ namespace: ns }), data: { "config.yaml": rulesText } },
            childOpts,
        );
        new k8s.apps.v1.Deployment(
            `${name}-adapter`,
            {
                metadata: meta({ name: fixedName, namespace: ns }),
                spec: {
                    replicas: 1,
                    selector: { matchLabels: match },
                    template: {
                        metadata: {
                            labels: { ...objectLabels, ...OUT_OF_MESH },
                            annotations: { "proxy-monitor.io/config-hash": contentHash(rulesText) },
                        },
                        spec: workloadPodSpec({
                            serviceAccountName: account.metadata.name,
                            automountServiceAccountToken: true,
                            volumes: [
                                { name: "config", configMap: { name: config.metadata.name } },
                                { name: "certs", emptyDir: {} },
                                { name: "tmp", emptyDir: {} },
                            ],
                            containers: [
                                {
                                    name: "prometheus-adapter",
                                    image,
                                    args: [
                                        `--prometheus-url=http://${NAMES.prometheus}.${ns}.svc:${PORTS.prometheus}`,
                                        "--config=/etc/adapter/config.yaml",
                                        `--secure-port=${PORTS.prometheusAdapter}`,
                                        // A self-signed serving certificate made at start (the APIService skips verification).
                                        "--cert-dir=/var/run/serving-cert",
                                        "--metrics-relist-interval=1m",
                                        "--v=2",
                                    ],
                                    ports: [{ name: "https", containerPort: PORTS.prometheusAdapter }],
                                    readinessProbe: {
                                        httpGet: { path: "/readyz", port: "https", scheme: "HTTPS" },
                                        periodSeconds: 10,
                                    },
                                    livenessProbe: {
                                        httpGet: { path: "/livez", port: "https", scheme: "HTTPS" },
                                        periodSeconds: 20,
                                    },
                                    resources: cfg.resources.prometheusAdapter,
                                    volumeMounts: [
                                        { name: "config", mountPath: "/etc/adapter", readOnly: true },
                                        { name: "certs", mountPath: "/var/run/serving-cert" },
                                        { name: "tmp", mountPath: "/tmp" },
                                    ],
                                },
                            ],
                        }),
                    },
                },
            },
            childOpts,
        );
        new k8s.core.v1.Service(
            `${name}-adapter-service`,
            {
                metadata: meta({ name: fixedName, namespace: ns }),
                spec: { selector: match, ports: [{ name: "https", port: 443, targetPort: "https" }] },
            },
            childOpts,
        );
        // Cluster-wide: the API server sends every custom-metrics request of the cluster to the APIService's adapter.
        // Only when asked for; elsewhere another adapter may serve it (add buildAdapterRules' rules to that one).
        if (!cfg.autoscaling.customMetricsApiService) return;
        new k8s.apiregistration.v1.APIService(
            `${name}-apiservice`,
            {
                metadata: meta({ name: "v1beta1.custom.metrics.k8s.io" }),
                spec: {
                    service: { name: fixedName, namespace: ns, port: 443 },
                    group: "custom.metrics.k8s.io",
                    version: "v1beta1",
                    // The adapter's certificate is self-signed at start; there is no CA to pin.
                    insecureSkipTLSVerify: true,
                    groupPriorityMinimum: 100,
                    versionPriority: 100,
                },
            },
            childOpts,
        );
    }
}
