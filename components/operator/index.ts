/**
 * OperatorMonitoring (monitoring.mode: operator): instead of the program's own Prometheus, Alertmanager and Grafana,
 * the objects an existing Prometheus Operator and Grafana sidecar read (builders in objects.ts), plus the Secret the
 * AlertmanagerConfig takes receiver credentials from. It creates no workload and no RBAC: the operator's own
 * ServiceAccounts read these objects.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
    ALERTING_SECRET,
    OperatorObject,
    OperatorStackConfig,
    buildDashboardConfigMaps,
    buildOperatorAlertmanagerConfig,
    buildPodMonitors,
    buildPrometheusRules,
    operatorLabels,
    operatorNamespace,
    operatorSummary,
} from "./objects";

export * from "./objects";

/** Args for the OperatorMonitoring component. */
export interface OperatorMonitoringArgs {
    /** The stack settings it reads. */
    readonly config: OperatorStackConfig;
    /** Dashboard file name (without .json) to Grafana JSON. */
    readonly dashboards: Readonly<Record<string, unknown>>;
    /** Resources to wait for (namespaces). */
    readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class OperatorMonitoring extends pulumi.ComponentResource {
    /** Where the objects are and which labels they carry (a stack output). */
    public readonly summary: Record<string, unknown>;

    constructor(name: string, args: OperatorMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
        super("proxy-monitor:index:OperatorMonitoring", name, {}, opts);
        const cfg = args.config;
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        const custom = (o: OperatorObject) =>
            new k8s.apiextensions.CustomResource(`${name}-${o.kind.toLowerCase()}-${o.metadata.name}`, o, childOpts);

        buildPodMonitors(cfg).forEach(custom);
        buildPrometheusRules(cfg).forEach(custom);
        if (cfg.secrets.names.alertingSecrets.length > 0) {
            const credentials: Record<string, pulumi.Input<string>> = {};
            for (const k of cfg.secrets.names.alertingSecrets)
                credentials[k] = cfg.secrets.values.apply((s) => s.alertingSecrets[k]);
            new k8s.core.v1.Secret(
                `${name}-alerting`,
                {
                    metadata: { name: ALERTING_SECRET, namespace: operatorNamespace(cfg), labels: operatorLabels(cfg) },
                    type: "Opaque",
                    stringData: credentials,
                },
                { ...childOpts, additionalSecretOutputs: ["stringData", "data"] },
            );
        }
        custom(buildOperatorAlertmanagerConfig(cfg));
        for (const cm of buildDashboardConfigMaps(cfg, args.dashboards))
            new k8s.core.v1.ConfigMap(`${name}-${cm.metadata.name}`, cm as k8s.core.v1.ConfigMapArgs, childOpts);

        this.summary = operatorSummary(cfg);
        this.registerOutputs({ summary: this.summary });
    }
}
