/**
 * Grafana: provisioned datasources (the cluster Prometheus as default, the global one with federation, Alertmanager)
 * and the four dashboards, an admin password from @pulumi/random (never admin/admin), anonymous access off, 5 s as the
 * shortest refresh. Stateless by default (everything is provisioned); sqlite on a PVC with `grafanaPersistence`.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import YAML from "yaml";
import { Resources, StackConfig } from "../config";
import { GrafanaConfig } from "../config/grafana";
import {
    contentHash,
    imageVersion,
    labels,
    OUT_OF_MESH,
    selectorLabels,
    workloadPodSpec,
    workloadService,
} from "../k8s";
import { APP, NAMES, PORTS } from "../names";

/** What Grafana's datasources point at. */
export interface DatasourceSettings {
    /** The `cluster` label of this cluster's series, in the default datasource's name. */
    readonly cluster: string;
    /** The cluster Prometheus' scrape interval (Grafana's minimum step). */
    readonly scrapeInterval: string;
    /** Add the global Prometheus (stacks with federation). */
    readonly federation: boolean;
}

/** The provisioning file of the datasources; Prometheus and Alertmanager run in `mon`, Grafana's namespace. */
export function buildDatasources(mon: string, d: DatasourceSettings): Record<string, unknown> {
    const datasources: Record<string, unknown>[] = [
        {
            name: `Prometheus (${d.cluster})`,
            uid: "prometheus",
            type: "prometheus",
            access: "proxy",
            url: `http://${NAMES.prometheus}.${mon}.svc:${PORTS.prometheus}`,
            isDefault: true,
            jsonData: { timeInterval: d.scrapeInterval, httpMethod: "POST" },
        },
        {
            name: "Alertmanager",
            uid: "alertmanager",
            type: "alertmanager",
            access: "proxy",
            url: `http://${NAMES.alertmanager}.${mon}.svc:${PORTS.alertmanager}`,
            jsonData: { implementation: "prometheus", handleGrafanaManagedAlerts: false },
        },
    ];
    if (d.federation) {
        datasources.push({
            name: "Prometheus (global)",
            uid: "prometheus-global",
            type: "prometheus",
            access: "proxy",
            url: `http://${NAMES.globalPrometheus}.${mon}.svc:${PORTS.prometheus}`,
            jsonData: { timeInterval: "30s", httpMethod: "POST" },
        });
    }
    return { apiVersion: 1, datasources };
}

/** The dashboard provider: the ConfigMap mounted at /etc/grafana/dashboards, in one folder, not editable in the UI. */
export function buildDashboardProvider(): Record<string, unknown> {
    return {
        apiVersion: 1,
        providers: [
            {
                name: "proxy-monitor",
                folder: "Proxy monitor",
                type: "file",
                disableDeletion: true,
                allowUiUpdates: false,
                options: { path: "/etc/grafana/dashboards" },
            },
        ],
    };
}

/** Grafana settings, as GF_* environment variables. */
export function grafanaEnv(): Record<string, string> {
    return {
        GF_PATHS_DATA: "/var/lib/grafana",
        GF_PATHS_PLUGINS: "/var/lib/grafana/plugins",
        GF_PATHS_PROVISIONING: "/etc/grafana/provisioning",
        GF_LOG_MODE: "console",
        GF_AUTH_ANONYMOUS_ENABLED: "false",
        GF_AUTH_BASIC_ENABLED: "true",
        GF_SECURITY_ADMIN_USER: "admin",
        GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION: "false",
        GF_USERS_ALLOW_SIGN_UP: "false",
        GF_DASHBOARDS_MIN_REFRESH_INTERVAL: "5s",
        GF_ANALYTICS_REPORTING_ENABLED: "false",
        GF_ANALYTICS_CHECK_FOR_UPDATES: "false",
        GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES: "false",
        GF_NEWS_NEWS_FEED_ENABLED: "false",
        GF_DATABASE_TYPE: "sqlite3",
        GF_SERVER_HTTP_PORT: String(PORTS.grafana),
        // Prometheus and Alertmanager do the alerting; Grafana only shows it.
        GF_UNIFIED_ALERTING_ENABLED: "false",
    };
}

/** Args for the Grafana component: what it reads, no more. */
export interface GrafanaArgs {
    /** The monitoring namespace: Grafana's, and the Prometheus and Alertmanager it reads. */
    readonly namespace: string;
    readonly image: string;
    readonly settings: GrafanaConfig;
    readonly resources: Resources;
    readonly datasources: DatasourceSettings;
    /** The dashboards to provision (read-only, one folder), by file name without `.json`. */
    readonly dashboards: Readonly<Record<string, unknown>>;
    /** Resources to wait for (the mesh: namespace, network policy). */
    readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** The Grafana Args of a stack; the caller builds the dashboards (dashboards/ is not Grafana's to import). */
export function grafanaArgs(cfg: StackConfig, dashboards: Readonly<Record<string, unknown>>): GrafanaArgs {
    return {
        namespace: cfg.namespaces.monitoring,
        image: cfg.images.grafana,
        settings: cfg.grafana,
        resources: cfg.resources.grafana,
        datasources: {
            cluster: cfg.cluster,
            scrapeInterval: cfg.prometheus.scrapeInterval,
            federation: cfg.federation.enabled,
        },
        dashboards,
    };
}

export class Grafana extends pulumi.ComponentResource {
    public readonly service: k8s.core.v1.Service;
    /** The admin password, as a Pulumi secret. */
    public readonly adminPassword: pulumi.Output<string>;
    public readonly url: string;

    constructor(name: string, args: GrafanaArgs, opts?: pulumi.ComponentResourceOptions) {
        super("proxy-monitor:index:Grafana", name, {}, opts);
        const ns = args.namespace;
        const image = args.image;
        const fixedName = NAMES.grafana;
        const match = selectorLabels(APP.grafana, fixedName);
        const objectLabels = labels(APP.grafana, fixedName, "grafana", imageVersion(image));
        const childOpts = { parent: this, dependsOn: args.dependsOn };

        const password = new random.RandomPassword(
            `${name}-admin-password`,
            { length: 32, special: false },
            { parent: this },
        );
        this.adminPassword = pulumi.secret(password.result);
        const secret = new k8s.core.v1.Secret(
            `${name}-admin`,
            {
                metadata: { namespace: ns, labels: objectLabels },
                type: "Opaque",
                stringData: { "admin-password": this.adminPassword },
            },
            { ...childOpts, additionalSecretOutputs: ["stringData", "data"] },
        );

        const datasources = YAML.stringify(buildDatasources(ns, args.datasources));
        const provider = YAML.stringify(buildDashboardProvider());
        const provisioning = new k8s.core.v1.ConfigMap(
            `${name}-provisioning`,
            {
                metadata: { namespace: ns, labels: objectLabels },
                data: { "datasources.yaml": datasources, "dashboards.yaml": provider },
            },
            childOpts,
        );
        const dashboardData = Object.fromEntries(
            Object.entries(args.dashboards).map(([file, json]) => [`${file}.json`, JSON.stringify(json)]),
        );
        const dashboards = new k8s.core.v1.ConfigMap(
            `${name}-dashboards`,
            { metadata: { namespace: ns, labels: objectLabels }, data: dashboardData },
            childOpts,
        );

        const persistence = args.settings.persistence;
        let claim: k8s.core.v1.PersistentVolumeClaim | undefined;
        if (persistence) {
            claim = new k8s.core.v1.PersistentVolumeClaim(
                `${name}-data`,
                {
                    metadata: { namespace: ns, labels: objectLabels },
                    spec: {
                        accessModes: ["ReadWriteOnce"],
                        resources: { requests: { storage: args.settings.storageSize } },
                    },
                },
                childOpts,
            );
        }
        const env = grafanaEnv();
        const probe = (period: number, failures: number) => ({
            httpGet: { path: "/api/health", port: "http" },
            periodSeconds: period,
            timeoutSeconds: 3,
            failureThreshold: failures,
        });
        new k8s.apps.v1.Deployment(
            `${name}-deployment`,
            {
                metadata: { name: fixedName, namespace: ns, labels: objectLabels },
                spec: {
                    replicas: args.settings.replicas,
                    // sqlite on a ReadWriteOnce volume: never two pods at once.
                    strategy: persistence ? { type: "Recreate" } : { type: "RollingUpdate" },
                    selector: { matchLabels: match },
                    template: {
                        metadata: {
                            labels: { ...objectLabels, ...OUT_OF_MESH },
                            annotations: {
                                "proxy-monitor.io/config-hash": contentHash(
                                    datasources,
                                    provider,
                                    ...Object.values(dashboardData),
                                ),
                            },
                        },
                        spec: workloadPodSpec({
                            automountServiceAccountToken: false,
                            serviceAccountName: new k8s.core.v1.ServiceAccount(
                                `${name}-sa`,
                                {
                                    metadata: { name: fixedName, namespace: ns, labels: objectLabels },
                                    automountServiceAccountToken: false,
                                },
                                childOpts,
                            ).metadata.name,
                            volumes: [
                                claim
                                    ? { name: "data", persistentVolumeClaim: { claimName: claim.metadata.name } }
                                    : { name: "data", emptyDir: {} },
                                { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
                                {
                                    name: "provisioning",
                                    configMap: {
                                        name: provisioning.metadata.name,
                                        items: [
                                            { key: "datasources.yaml", path: "datasources/datasources.yaml" },
                                            { key: "dashboards.yaml", path: "dashboards/dashboards.yaml" },
                                        ],
                                    },
                                },
                                { name: "dashboards", configMap: { name: dashboards.metadata.name } },
                            ],
                            containers: [
                                {
                                    name: "grafana",
                                    image,
                                    env: [
                                        ...Object.entries(env).map(([k, v]) => ({ name: k, value: v })),
                                        {
                                            name: "GF_SECURITY_ADMIN_PASSWORD",
                                            valueFrom: {
                                                secretKeyRef: { name: secret.metadata.name, key: "admin-password" },
                                            },
                                        },
                                    ],
                                    ports: [{ name: "http", containerPort: PORTS.grafana }],
                                    readinessProbe: probe(10, 3),
                                    livenessProbe: probe(20, 5),
                                    resources: args.resources,
                                    volumeMounts: [
                                        { name: "data", mountPath: "/var/lib/grafana" },
                                        { name: "tmp", mountPath: "/tmp" },
                                        {
                                            name: "provisioning",
                                            mountPath: "/etc/grafana/provisioning",
                                            readOnly: true,
                                        },
                                        { name: "dashboards", mountPath: "/etc/grafana/dashboards", readOnly: true },
                                    ],
                                },
                            ],
                        }),
                    },
                },
            },
            childOpts,
        );
        this.service = workloadService(
            `${name}-service`,
            { name: fixedName, namespace: ns, labels: objectLabels, match: match },
            [{ name: "http", port: PORTS.grafana, targetPort: "http" }],
            childOpts,
        );
        this.url = `http://${fixedName}.${ns}.svc:${PORTS.grafana}`;
        this.registerOutputs({ url: this.url, adminPassword: this.adminPassword });
    }
}
