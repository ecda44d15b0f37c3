/**
 * Alerting: Alertmanager (clustered when replicas > 1) with its generated configuration in a Secret, and the alert
 * rule files the Prometheus instances load.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { StackConfig } from "../config";
import { AlertmanagerStackConfig } from "./alertmanager-config";
import { AlertRulesStackConfig } from "./rules";
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
import { buildAlertmanagerConfig } from "./alertmanager-config";
import { buildAlertRules, buildGlobalAlertRules } from "./rules";

export { buildAlertmanagerConfig, buildAlertRules, buildGlobalAlertRules };

/** Alert rule files for the cluster Prometheus (file name to YAML). */
export function alertRuleFiles(cfg: AlertRulesStackConfig): Record<string, string> {
    return { "alerts.yaml": YAML.stringify(buildAlertRules(cfg), { lineWidth: 0 }) };
}

/** Alert rule files for the global Prometheus. */
export function globalAlertRuleFiles(cfg: AlertRulesStackConfig): Record<string, string> {
    return { "alerts.yaml": YAML.stringify(buildGlobalAlertRules(cfg), { lineWidth: 0 }) };
}

/** The stack settings Alertmanager reads: its section, namespace, image, resources and receiver secrets. */
export type AlertingStackConfig = AlertmanagerStackConfig &
    Pick<StackConfig, "namespaces" | "images" | "resources" | "secrets">;

/** Args for the Alerting component. */
export interface AlertingArgs {
    readonly config: AlertingStackConfig;
    /** Resources to wait for (namespace, network policy). */
    readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class Alerting extends pulumi.ComponentResource {
    public readonly service: k8s.core.v1.Service;
    public readonly url: string;

    constructor(name: string, args: AlertingArgs, opts?: pulumi.ComponentResourceOptions) {
        super("proxy-monitor:index:Alerting", name, {}, opts);
        const cfg = args.config;
        const ns = cfg.namespaces.monitoring;
        const image = cfg.images.alertmanager;
        const replicas = cfg.alerting.replicas;
        const fixedName = NAMES.alertmanager;
        const match = selectorLabels(APP.alertmanager, fixedName);
        const objectLabels = labels(APP.alertmanager, fixedName, "alertmanager", imageVersion(image));
        const childOpts = { parent: this, dependsOn: args.dependsOn };

        // The configuration holds receiver credentials, so it is built inside an apply over the secrets and
        // stored as a Secret; its hash (of the non-secret shape) rolls the pods when routes or receivers change.
        const secrets = cfg.secrets.values.apply((s) => s.alertingSecrets);
        const configText = secrets.apply((s) => YAML.stringify(buildAlertmanagerConfig(cfg, s), { lineWidth: 0 }));
        const shapeHash = contentHash(YAML.stringify(buildAlertmanagerConfig(cfg, {})));
        const configSecret = new k8s.core.v1.Secret(
            `${name}-config`,
            {
                metadata: { namespace: ns, labels: objectLabels },
                type: "Opaque",
                stringData: { "alertmanager.yml": configText },
            },
            { ...childOpts, additionalSecretOutputs: ["stringData", "data"] },
        );
        const account = new k8s.core.v1.ServiceAccount(
            `${name}-sa`,
            { metadata: { name: fixedName, namespace: ns, labels: objectLabels }, automountServiceAccountToken: false },
            childOpts,
        );
        const peers = Array.from(
            { length: replicas },
            (_, i) =>
                `--cluster.peer=${fixedName}-${i}.${NAMES.alertmanagerPeers}.${ns}.svc:${PORTS.alertmanagerCluster}`,
        );
        const probe = (path: string) => ({
            httpGet: { path, port: "web" },
            periodSeconds: 10,
            timeoutSeconds: 3,
            failureThreshold: 3,
        });
        new k8s.apps.v1.StatefulSet(
            `${name}-statefulset`,
            {
                metadata: { name: fixedName, namespace: ns, labels: objectLabels },
                spec: {
                    serviceName: NAMES.alertmanagerPeers,
                    replicas,
                    podManagementPolicy: "Parallel",
                    selector: { matchLabels: match },
                    template: {
                        metadata: {
                            labels: { ...objectLabels, ...OUT_OF_MESH },
                            annotations: { "proxy-monitor.io/config-hash": shapeHash },
                        },
                        spec: workloadPodSpec({
                            serviceAccountName: account.metadata.name,
                            automountServiceAccountToken: false,
                            affinity: replicas > 1 ? spreadOverNodes(match) : undefined,
                            volumes: [
                                {
                                    name: "config",
                                    secret: { secretName: configSecret.metadata.name, defaultMode: 0o440 },
                                },
                            ],
                            containers: [
                                {
                                    name: "alertmanager",
                                    image,
                                    args: [
                                        "--config.file=/etc/alertmanager/alertmanager.yml",
                                        "--storage.path=/alertmanager",
                                        `--web.listen-address=:${PORTS.alertmanager}`,
                                        ...(replicas > 1
                                            ? [
                                                  `--cluster.listen-address=0.0.0.0:${PORTS.alertmanagerCluster}`,
                                                  ...peers,
                                              ]
                                            : ["--cluster.listen-address="]),
                                    ],
                                    // The gossip ports only where they listen: one replica runs unclustered.
                                    ports: [
                                        { name: "web", containerPort: PORTS.alertmanager },
                                        ...(replicas > 1
                                            ? [
                                                  {
                                                      name: "mesh-tcp",
                                                      containerPort: PORTS.alertmanagerCluster,
                                                      protocol: "TCP",
                                                  },
                                                  {
                                                      name: "mesh-udp",
                                                      containerPort: PORTS.alertmanagerCluster,
                                                      protocol: "UDP",
                                                  },
                                              ]
                                            : []),
                                    ],
                                    readinessProbe: probe("/-/ready"),
                                    livenessProbe: probe("/-/healthy"),
                                    resources: cfg.resources.alertmanager,
                                    volumeMounts: [
                                        { name: "config", mountPath: "/etc/alertmanager", readOnly: true },
                                        { name: "data", mountPath: "/alertmanager" },
                                    ],
                                },
                            ],
                        }),
                    },
                    volumeClaimTemplates: [
                        {
                            metadata: { name: "data" },
                            spec: {
                                accessModes: ["ReadWriteOnce"],
                                resources: { requests: { storage: cfg.alerting.storageSize } },
                            },
                        },
                    ],
                },
            },
            childOpts,
        );
        // Headless: peers find each other, and Prometheus finds every replica, by DNS.
        workloadService(
            `${name}-peers`,
            { name: NAMES.alertmanagerPeers, namespace: ns, labels: objectLabels, match: match },
            [
                { name: "http-web", port: PORTS.alertmanager, targetPort: "web" },
                ...(replicas > 1
                    ? [
                          {
                              name: "tcp-mesh",
                              port: PORTS.alertmanagerCluster,
                              targetPort: "mesh-tcp",
                              protocol: "TCP",
                          },
                          {
                              name: "udp-mesh",
                              port: PORTS.alertmanagerCluster,
                              targetPort: "mesh-udp",
                              protocol: "UDP",
                          },
                      ]
                    : []),
            ],
            childOpts,
            { headless: true, publishNotReadyAddresses: true },
        );
        this.service = workloadService(
            `${name}-service`,
            { name: fixedName, namespace: ns, labels: objectLabels, match: match },
            [{ name: "http-web", port: PORTS.alertmanager, targetPort: "web" }],
            childOpts,
        );
        pdb(`${name}-pdb`, { namespace: ns, labels: objectLabels, match, replicas }, childOpts);
        this.url = `http://${fixedName}.${ns}.svc:${PORTS.alertmanager}`;
        this.registerOutputs({ url: this.url });
    }
}
