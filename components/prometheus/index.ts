/**
 * Prometheus, in one of two roles:
 * - cluster: the HA pair that scrapes this cluster (gateways, Istio's TCP series of the crawler-to-gateway hop,
 *   cAdvisor, kube-state-metrics, the stack itself), evaluates the recording and alert rules, and sends alerts;
 * - global: federates the recorded series of every cluster (prod).
 * The builders beside this file make the configuration; this component only creates the objects.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { Resources, StackConfig } from "../config";
import {
    contentHash,
    imageVersion,
    labels,
    OUT_OF_MESH,
    pdb,
    selectorLabels,
    spreadOverNodes,
    workloadPodSpec,
    workloadService,
} from "../k8s";
import { APP, NAMES, PORTS } from "../names";
import { CardinalityStackConfig, SeriesEstimate, budgetProblem, estimateActiveSeries } from "./cardinality";
import { FEDERATION_SECRETS_DIR, FederationStackConfig, PROMETHEUS_PODS, buildFederationConfig } from "./federation";
import { REMOTE_WRITE_SECRET, REMOTE_WRITE_SECRET_DIR, remoteWriteHasCredential, storageArgs } from "./remote-write";
import { RulesStackConfig, buildRecordingRules } from "./rules";
import { RULES_DIR, ScrapeStackConfig, buildScrapeConfig, queueDepthNamespaces } from "./scrape";

export { buildRecordingRules, buildScrapeConfig, buildFederationConfig, estimateActiveSeries, budgetProblem };

/**
 * The stack settings Prometheus reads: what its scrape, federation and recording-rule configs and the series
 * estimate read, its namespace, images and resources.
 */
export type PrometheusStackConfig = ScrapeStackConfig &
    FederationStackConfig &
    RulesStackConfig &
    CardinalityStackConfig &
    Pick<StackConfig, "images" | "resources">;

/** Args for the Prometheus component. */
export interface PrometheusArgs {
    readonly config: PrometheusStackConfig;
    /** `cluster` (scrapes this cluster) or `global` (federates recorded series). */
    readonly role: "cluster" | "global";
    /** Extra rule files (file name to YAML), e.g. the alert rules. */
    readonly ruleFiles?: Record<string, string>;
    /** Resources to wait for (namespace, network policy). */
    readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class Prometheus extends pulumi.ComponentResource {
    public readonly service: k8s.core.v1.Service;
    /** In-cluster URL of this Prometheus. */
    public readonly url: string;
    /** Expected active series (cluster role). */
    public readonly seriesEstimate?: SeriesEstimate;

    constructor(name: string, args: PrometheusArgs, opts?: pulumi.ComponentResourceOptions) {
        super("proxy-monitor:index:Prometheus", name, {}, opts);
        const cfg = args.config;
        const ns = cfg.namespaces.monitoring;
        const global = args.role === "global";
        const fixedName = global ? NAMES.globalPrometheus : NAMES.prometheus;
        const app = global ? APP.globalPrometheus : APP.prometheus;
        const image = cfg.images.prometheus;
        const match = selectorLabels(app, fixedName);
        const objectLabels = labels(app, fixedName, global ? "global-prometheus" : "prometheus", imageVersion(image));
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        const replicas = global ? 1 : cfg.prometheus.replicas;

        if (!global) {
            this.seriesEstimate = estimateActiveSeries(cfg);
            const problem = budgetProblem(this.seriesEstimate);
            if (problem) throw new pulumi.ResourceError(problem, this);
        }

        const promConfig = global ? buildFederationConfig(cfg) : buildScrapeConfig(cfg, { replicaLabel: replicas > 1 });
        const configText = YAML.stringify(promConfig, { lineWidth: 0 });
        const ruleFiles: Record<string, string> = {
            ...(global ? {} : { "recording.yaml": YAML.stringify(buildRecordingRules(cfg), { lineWidth: 0 }) }),
            ...(args.ruleFiles ?? {}),
        };

        const account = new k8s.core.v1.ServiceAccount(
            `${name}-sa`,
            {
                metadata: { name: fixedName, namespace: ns, labels: objectLabels },
                automountServiceAccountToken: !global,
            },
            childOpts,
        );
        if (!global) {
            // Least privilege: only the kubelet's cAdvisor is found through the API (nodes); everything else by DNS.
            const role = new k8s.rbac.v1.ClusterRole(
                `${name}-role`,
                {
                    metadata: { labels: objectLabels },
                    rules: [
                        { apiGroups: [""], resources: ["nodes", "nodes/metrics"], verbs: ["get", "list", "watch"] },
                        { nonResourceURLs: ["/metrics", "/metrics/cadvisor"], verbs: ["get"] },
                    ],
                },
                childOpts,
            );
            new k8s.rbac.v1.ClusterRoleBinding(
                `${name}-binding`,
                {
                    metadata: { labels: objectLabels },
                    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role.metadata.name },
                    subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace: ns }],
                },
                childOpts,
            );
            // The crawler pods whose queue depth the HPA reads: pods list/watch in their namespaces only.
            for (const crawlerNs of queueDepthNamespaces(cfg)) {
                const podsRole = new k8s.rbac.v1.Role(
                    `${name}-pods-${crawlerNs}`,
                    {
                        metadata: { namespace: crawlerNs, labels: objectLabels },
                        rules: [{ apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] }],
                    },
                    childOpts,
                );
                new k8s.rbac.v1.RoleBinding(
                    `${name}-pods-${crawlerNs}`,
                    {
                        metadata: { namespace: crawlerNs, labels: objectLabels },
                        roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: podsRole.metadata.name },
                        subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace: ns }],
                    },
                    childOpts,
                );
            }
        }

        const configMap = new k8s.core.v1.ConfigMap(
            `${name}-config`,
            { metadata: { namespace: ns, labels: objectLabels }, data: { "prometheus.yml": configText } },
            childOpts,
        );
        const rulesMap = new k8s.core.v1.ConfigMap(
            `${name}-rules`,
            { metadata: { namespace: ns, labels: objectLabels }, data: ruleFiles },
            childOpts,
        );
        let secretName: pulumi.Output<string> | undefined;
        if (global) {
            const tokens: Record<string, pulumi.Input<string>> = {};
            for (const k of cfg.secrets.names.federationSecrets)
                tokens[k] = cfg.secrets.values.apply((s) => s.federationSecrets[k]);
            const secret = new k8s.core.v1.Secret(
                `${name}-federation`,
                { metadata: { namespace: ns, labels: objectLabels }, type: "Opaque", stringData: tokens },
                { ...childOpts, additionalSecretOutputs: ["stringData", "data"] },
            );
            secretName = secret.metadata.name;
        }
        // The cluster Prometheus's remote_write credential (prometheus.remoteWrite), as a file.
        let remoteWriteSecret: pulumi.Output<string> | undefined;
        if (!global && remoteWriteHasCredential(cfg)) {
            const secret = new k8s.core.v1.Secret(
                `${name}-remote-write`,
                {
                    metadata: { namespace: ns, labels: objectLabels },
                    type: "Opaque",
                    stringData: {
                        [REMOTE_WRITE_SECRET]: cfg.secrets.values.apply(
                            (s) => s.federationSecrets[REMOTE_WRITE_SECRET],
                        ),
                    },
                },
                { ...childOpts, additionalSecretOutputs: ["stringData", "data"] },
            );
            remoteWriteSecret = secret.metadata.name;
        }

        const res: Resources = global ? cfg.resources.globalPrometheus : cfg.resources.prometheus;
        const storage = global ? cfg.federation.storageSize : cfg.prometheus.storageSize;
        const probe = (path: string, period: number, failures: number) => ({
            httpGet: { path, port: "web" },
            periodSeconds: period,
            timeoutSeconds: 5,
            failureThreshold: failures,
        });
        const volumes: k8s.types.input.core.v1.Volume[] = [
            { name: "config", configMap: { name: configMap.metadata.name } },
            { name: "rules", configMap: { name: rulesMap.metadata.name } },
            ...(secretName ? [{ name: "federation", secret: { secretName, defaultMode: 0o440 } }] : []),
            ...(remoteWriteSecret
                ? [{ name: "remote-write", secret: { secretName: remoteWriteSecret, defaultMode: 0o440 } }]
                : []),
        ];
        const mounts: k8s.types.input.core.v1.VolumeMount[] = [
            { name: "config", mountPath: "/etc/prometheus/config", readOnly: true },
            { name: "rules", mountPath: RULES_DIR, readOnly: true },
            { name: "data", mountPath: "/prometheus" },
            ...(secretName ? [{ name: "federation", mountPath: FEDERATION_SECRETS_DIR, readOnly: true }] : []),
            ...(remoteWriteSecret
                ? [{ name: "remote-write", mountPath: REMOTE_WRITE_SECRET_DIR, readOnly: true }]
                : []),
        ];
        new k8s.apps.v1.StatefulSet(
            `${name}-statefulset`,
            {
                metadata: { name: fixedName, namespace: ns, labels: objectLabels },
                spec: {
                    serviceName: global ? fixedName : PROMETHEUS_PODS,
                    replicas,
                    podManagementPolicy: "Parallel",
                    selector: { matchLabels: match },
                    template: {
                        metadata: {
                            // Outside the mesh: Prometheus scrapes in plain text (see the mesh component).
                            labels: { ...objectLabels, ...OUT_OF_MESH },
                            annotations: {
                                "proxy-monitor.io/config-hash": contentHash(configText, ...Object.values(ruleFiles)),
                            },
                        },
                        spec: workloadPodSpec({
                            serviceAccountName: account.metadata.name,
                            automountServiceAccountToken: !global,
                            affinity: replicas > 1 ? spreadOverNodes(match) : undefined,
                            terminationGracePeriodSeconds: 120,
                            volumes,
                            containers: [
                                {
                                    name: "prometheus",
                                    image,
                                    args: [
                                        "--config.file=/etc/prometheus/config/prometheus.yml",
                                        ...(global
                                            ? [
                                                  "--storage.tsdb.path=/prometheus",
                                                  `--storage.tsdb.retention.time=${cfg.federation.retention}`,
                                              ]
                                            : storageArgs(cfg)),
                                        `--web.listen-address=:${PORTS.prometheus}`,
                                        "--web.enable-lifecycle",
                                        "--enable-feature=expand-external-labels",
                                    ],
                                    env: [
                                        { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
                                    ],
                                    ports: [{ name: "web", containerPort: PORTS.prometheus }],
                                    readinessProbe: probe("/-/ready", 10, 3),
                                    livenessProbe: probe("/-/healthy", 15, 4),
                                    startupProbe: probe("/-/ready", 10, 60),
                                    resources: res,
                                    volumeMounts: mounts,
                                },
                            ],
                        }),
                    },
                    volumeClaimTemplates: [
                        {
                            metadata: { name: "data" },
                            spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage } } },
                        },
                    ],
                },
            },
            childOpts,
        );

        this.service = workloadService(
            `${name}-service`,
            { name: fixedName, namespace: ns, labels: objectLabels, match: match },
            [{ name: "http-web", port: PORTS.prometheus, targetPort: "web", protocol: "TCP" }],
            childOpts,
        );
        if (!global) {
            // Headless governing Service: every replica gets a DNS name (the global Prometheus federates from one).
            workloadService(
                `${name}-pods`,
                { name: PROMETHEUS_PODS, namespace: ns, labels: objectLabels, match: match },
                [{ name: "http-web", port: PORTS.prometheus, targetPort: "web", protocol: "TCP" }],
                childOpts,
                { headless: true, publishNotReadyAddresses: true },
            );
        }
        pdb(`${name}-pdb`, { namespace: ns, labels: objectLabels, match, replicas }, childOpts);
        if (!global) this.kubeStateMetrics(name, cfg, childOpts);

        this.url = `http://${fixedName}.${ns}.svc:${PORTS.prometheus}`;
        this.registerOutputs({ url: this.url, seriesEstimate: this.seriesEstimate?.total });
    }

    /** kube-state-metrics, limited to the objects the dashboards read (pods, deployments, HPAs). */
    private kubeStateMetrics(name: string, cfg: PrometheusStackConfig, childOpts: pulumi.CustomResourceOptions): void {
        const ns = cfg.namespaces.monitoring;
        const image = cfg.images.kubeStateMetrics;
        const fixedName = NAMES.kubeStateMetrics;
        const match = selectorLabels(APP.kubeStateMetrics, fixedName);
        const objectLabels = labels(APP.kubeStateMetrics, fixedName, "exporter", imageVersion(image));
        const account = new k8s.core.v1.ServiceAccount(
            `${name}-ksm-sa`,
            { metadata: { name: fixedName, namespace: ns, labels: objectLabels } },
            childOpts,
        );
        const role = new k8s.rbac.v1.ClusterRole(
            `${name}-ksm-role`,
            {
                metadata: { labels: objectLabels },
                rules: [
                    { apiGroups: [""], resources: ["pods"], verbs: ["list", "watch"] },
                    { apiGroups: ["apps"], resources: ["deployments"], verbs: ["list", "watch"] },
                    { apiGroups: ["autoscaling"], resources: ["horizontalpodautoscalers"], verbs: ["list", "watch"] },
                ],
            },
            childOpts,
        );
        new k8s.rbac.v1.ClusterRoleBinding(
            `${name}-ksm-binding`,
            {
                metadata: { labels: objectLabels },
                roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role.metadata.name },
                subjects: [{ kind: "ServiceAccount", name: account.metadata.name, namespace: ns }],
            },
            childOpts,
        );
        new k8s.apps.v1.Deployment(
            `${name}-ksm`,
            {
                metadata: { name: fixedName, namespace: ns, labels: objectLabels },
                spec: {
                    replicas: 1,
                    selector: { matchLabels: match },
                    template: {
                        metadata: { labels: { ...objectLabels, ...OUT_OF_MESH } },
                        spec: workloadPodSpec({
                            serviceAccountName: account.metadata.name,
                            automountServiceAccountToken: true,
                            containers: [
                                {
                                    name: "kube-state-metrics",
                                    image,
                                    args: [
                                        "--resources=pods,deployments,horizontalpodautoscalers",
                                        `--port=${PORTS.kubeStateMetrics}`,
                                        `--telemetry-port=${PORTS.kubeStateMetricsTelemetry}`,
                                    ],
                                    ports: [
                                        { name: "http-metrics", containerPort: PORTS.kubeStateMetrics },
                                        { name: "telemetry", containerPort: PORTS.kubeStateMetricsTelemetry },
                                    ],
                                    readinessProbe: { httpGet: { path: "/", port: "telemetry" }, periodSeconds: 10 },
                                    livenessProbe: {
                                        httpGet: { path: "/livez", port: "http-metrics" },
                                        periodSeconds: 15,
                                    },
                                    resources: cfg.resources.kubeStateMetrics,
                                },
                            ],
                        }),
                    },
                },
            },
            childOpts,
        );
        workloadService(
            `${name}-ksm-service`,
            { name: fixedName, namespace: ns, labels: objectLabels, match: match },
            [{ name: "http-metrics", port: PORTS.kubeStateMetrics, targetPort: "http-metrics" }],
            childOpts,
        );
    }
}
