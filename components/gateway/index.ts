/**
 * VendorGateway: per vendor, the forward proxy crawlers use (the "Proxy-A/B/C pods"): Deployment, Service, the
 * Secret with the pools' credentials, the program's config, HPA and PDB.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { StackConfig, VendorConfig } from "../config";
import { SecretCredentials } from "../credentials";
import { deploymentHpa } from "../hpa";
import { contentHash, imageVersion, labels, pdb, selectorLabels, spreadOverNodes, workloadService } from "../k8s";
import { APP, NAMES, PORTS, SCRAPE_LABEL, VENDOR_LABEL } from "../names";
import { gatewayProxyConfig } from "../mesh";
import { CONFIG_DIR, programPodSpec, scriptConfigMap } from "../node-app";
import {
    CRAWLER_AUTH_KEY,
    GATEWAY_GRACE_SECONDS,
    GatewayFileStackConfig,
    SIDECAR_DRAIN_SECONDS,
    crawlerAuthLines,
    gatewayFileConfig,
} from "./file-config";

export { crawlerAuthLines, gatewayFileConfig };

/** The stack settings a gateway reads: its policy (gateway, destinations), image, resources, scaling, mesh mode. */
export type GatewayStackConfig = GatewayFileStackConfig &
    Pick<StackConfig, "images" | "resources" | "autoscaling" | "mesh">;

/** Args for the VendorGateway component. */
export interface VendorGatewayArgs {
    /** The vendor this gateway serves. */
    readonly vendor: VendorConfig;
    /** The gateways' namespace. */
    readonly namespace: string;
    readonly config: GatewayStackConfig;
    /** Credentials of the vendor's pools, by pool name (resolvePoolCredentials). */
    readonly credentials: Readonly<Record<string, SecretCredentials>>;
    /** The crawler-auth file (crawlerAuthLines), when `gateway.crawlerAuth` is on. */
    readonly crawlerAuth?: pulumi.Output<string>;
    /** The ConfigMap holding the bundled program, shared by the gateways (ignored with `images.gateway`). */
    readonly scriptConfigMap?: pulumi.Input<string>;
    /** Hash of the bundled program, so a new program rolls the pods. */
    readonly scriptHash?: string;
    /** The gateway's ServiceAccount (ProxyMesh creates it, since the mesh policy names its identity). */
    readonly serviceAccount: k8s.core.v1.ServiceAccount;
    /** Resources the gateway waits for (the mesh: namespace, service account, policy). */
    readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

/** The gateway of one vendor. */
export class VendorGateway extends pulumi.ComponentResource {
    public readonly deployment: k8s.apps.v1.Deployment;
    public readonly service: k8s.core.v1.Service;
    /** The proxy URL crawlers set as HTTP_PROXY and HTTPS_PROXY. */
    public readonly proxyUrl: string;

    constructor(name: string, args: VendorGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
        super("proxy-monitor:index:VendorGateway", name, {}, opts);
        const { config: cfg, vendor } = args;
        const ns = args.namespace;
        const fixedName = NAMES.gateway(vendor.name);
        const builtImage = cfg.images.gateway !== "";
        const image = builtImage ? cfg.images.gateway : cfg.images.node;
        const match = { ...selectorLabels(APP.gateway, fixedName), [VENDOR_LABEL]: vendor.name };
        const objectLabels = {
            ...labels(APP.gateway, fixedName, "gateway", imageVersion(image)),
            [VENDOR_LABEL]: vendor.name,
        };
        const childOpts = { parent: this, dependsOn: args.dependsOn };

        const secretData: Record<string, pulumi.Input<string>> = {};
        for (const pool of vendor.pools) {
            const creds = args.credentials[pool.name];
            secretData[`${pool.name}.username`] = creds.username;
            secretData[`${pool.name}.password`] = creds.password;
        }
        if (args.crawlerAuth !== undefined) secretData[CRAWLER_AUTH_KEY] = args.crawlerAuth;
        const secret = new k8s.core.v1.Secret(
            `${name}-credentials`,
            { metadata: { namespace: ns, labels: objectLabels }, type: "Opaque", stringData: secretData },
            { ...childOpts, additionalSecretOutputs: ["stringData", "data"] },
        );

        const file = gatewayFileConfig(cfg, vendor, `${CONFIG_DIR}/secrets`);
        const fileText = JSON.stringify(file, null, 2);
        const configMap = new k8s.core.v1.ConfigMap(
            `${name}-config`,
            { metadata: { namespace: ns, labels: objectLabels }, data: { "config.json": fileText } },
            childOpts,
        );

        const replicas = cfg.gateway.replicas;
        this.deployment = new k8s.apps.v1.Deployment(
            `${name}-deployment`,
            {
                metadata: { name: fixedName, namespace: ns, labels: objectLabels },
                // No `replicas`: the HPA owns it (with server-side apply, a value here would fight the HPA's field
                // manager, or reset a scaled-out fleet mid-tunnel). A new Deployment starts one pod; the HPA raises
                // it to minReplicas.
                spec: {
                    selector: { matchLabels: match },
                    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: "25%" } },
                    template: {
                        metadata: {
                            labels: { ...objectLabels, [SCRAPE_LABEL]: "true" },
                            annotations: {
                                "proxy-monitor.io/config-hash": contentHash(fileText, args.scriptHash ?? "", image),
                                // The sidecar outlives the gateway's drain (Istio's default would stop it after 5 s).
                                "proxy.istio.io/config": JSON.stringify({
                                    ...gatewayProxyConfig(cfg),
                                    terminationDrainDuration: `${SIDECAR_DRAIN_SECONDS}s`,
                                }),
                            },
                        },
                        spec: programPodSpec({
                            mode: "gateway",
                            image,
                            builtImage,
                            scriptConfigMap: args.scriptConfigMap,
                            configMap: configMap.metadata.name,
                            secret: secret.metadata.name,
                            serviceAccountName: args.serviceAccount.metadata.name,
                            ports: { proxy: PORTS.gatewayProxy },
                            resources: cfg.resources.gateway,
                            terminationGracePeriodSeconds: GATEWAY_GRACE_SECONDS,
                            affinity: spreadOverNodes(match),
                        }),
                    },
                },
            },
            childOpts,
        );

        this.service = workloadService(
            `${name}-service`,
            { name: fixedName, namespace: ns, labels: objectLabels, match: match },
            [
                // Named tcp-… with appProtocol tcp: Istio must not parse proxy traffic as HTTP.
                {
                    name: "tcp-proxy",
                    port: PORTS.gatewayProxy,
                    targetPort: "proxy",
                    protocol: "TCP",
                    appProtocol: "tcp",
                },
                { name: "http-metrics", port: PORTS.proxyMetrics, targetPort: "metrics", protocol: "TCP" },
            ],
            childOpts,
        );

        // Headless: Prometheus finds every replica's metrics (and Istio's merged metrics) by DNS, ready or not: a
        // gateway with every pool down is not ready (crawlers are sent elsewhere), and exactly then its pool health
        // must still be scraped.
        workloadService(
            `${name}-pods`,
            { name: NAMES.gatewayPods(vendor.name), namespace: ns, labels: objectLabels, match: match },
            [
                { name: "http-metrics", port: PORTS.proxyMetrics, targetPort: "metrics", protocol: "TCP" },
                {
                    name: "http-envoy-prom",
                    port: PORTS.istioMergedMetrics,
                    targetPort: PORTS.istioMergedMetrics,
                    protocol: "TCP",
                },
            ],
            childOpts,
            { headless: true, publishNotReadyAddresses: true },
        );

        deploymentHpa(
            `${name}-hpa`,
            { namespace: ns, labels: objectLabels, deployment: this.deployment },
            {
                minReplicas: replicas,
                maxReplicas: cfg.gateway.maxReplicas,
                cpuUtilization: cfg.gateway.targetCpuUtilization,
            },
            cfg.autoscaling,
            childOpts,
        );

        pdb(`${name}-pdb`, { namespace: ns, labels: objectLabels, match, replicas }, childOpts);

        this.proxyUrl = `http://${fixedName}.${ns}.svc.cluster.local:${PORTS.gatewayProxy}`;
        this.registerOutputs({ proxyUrl: this.proxyUrl });
    }
}

export { scriptConfigMap };
