/**
 * VendorSimulators: in stacks with `simulatorsEnabled`, one vendor simulator (the proxy program's `vendor-sim` mode)
 * per simulated pool, behind the Service the pool's host names, requiring the same credentials the gateway presents.
 * A dev stack then runs end to end with no vendor account.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { TargetConfig } from "../proxy/target";
import type { VendorSimConfig } from "../proxy/vendor-sim";
import { PoolConfig, StackConfig, VendorConfig } from "./config";
import { PoolCredentialMap } from "./credentials";
import { contentHash, imageVersion, labels, selectorLabels, workloadService } from "./k8s";
import { APP, NAMES, POOL_LABEL, PORTS, SCRAPE_LABEL, VENDOR_LABEL } from "./names";
import { CONFIG_DIR, programPodSpec, scriptConfigMap } from "./node-app";

/** The stack settings the simulators read. */
export type SimulatorsStackConfig = Pick<StackConfig, "namespaces" | "vendors" | "images" | "resources">;

/**
 * Ban rate of the dev target: the share of requests a site answers 403 or 429, as to a banned exit IP. A ban seen on
 * plain HTTP counts against the vendor (its exit IP was refused), so this stays well under the tightest dev error
 * budget (vendor-a, 0.5%), or healthy simulated vendors would burn their budgets.
 */
export const TARGET_BAN_RATE = 0.001;

/** The target emulator's config file. */
export function targetFileConfig(): TargetConfig {
    return {
        listen: {
            host: "0.0.0.0",
            httpPort: PORTS.targetHttp,
            httpsPort: PORTS.targetHttps,
            metricsPort: PORTS.proxyMetrics,
        },
        banRate: TARGET_BAN_RATE,
        maxBytes: 100_000_000,
    };
}

/** Where simulators forward (plain HTTP and tunnels to 443): the target's Service. */
export function targetForwards(cfg: SimulatorsStackConfig): { forward: string; forwardTls: string } {
    const host = `${NAMES.target}.${cfg.namespaces.simulators}.svc.cluster.local`;
    return { forward: `${host}:${PORTS.targetHttp}`, forwardTls: `${host}:${PORTS.targetHttps}` };
}

/** The simulator's config file for a simulated pool. */
export function simulatorFileConfig(
    cfg: SimulatorsStackConfig,
    vendor: VendorConfig,
    pool: PoolConfig,
    secretsDir: string,
): VendorSimConfig {
    const s = pool.simulator;
    if (!s) throw new Error(`pool ${vendor.name}/${pool.name} is not simulated`);
    return {
        vendor: vendor.name,
        // The simulator speaks its vendor's profile, so the dev stack exercises the gateway's reading of it.
        profile: vendor.profile,
        pool: pool.name,
        listen: { host: "0.0.0.0", proxyPort: PORTS.simulatorProxy, metricsPort: PORTS.proxyMetrics },
        usernameFile: `${secretsDir}/username`,
        passwordFile: `${secretsDir}/password`,
        latencyP50Ms: s.latencyP50Ms,
        latencyP95Ms: s.latencyP95Ms,
        errorRate: s.errorRate,
        errorMix: { "403": 1, "429": 2, "502": 2, "503": 1, reset: 1, timeout: 1 },
        timeoutHoldMs: 30_000,
        bandwidthBytesPerSecond: s.bandwidthBytesPerSecond,
        outages: [],
        ...targetForwards(cfg),
        // The simulated exit IPs go in the header the vendor's gateway reads (x-exit-ip when it reads none).
        ...(s.exitIps ? { exitIps: { ...s.exitIps, header: vendor.exitIp?.header || "x-exit-ip" } } : {}),
    };
}

/** Args for the VendorSimulators component. */
export interface VendorSimulatorsArgs {
    /** The validated stack config. */
    readonly config: SimulatorsStackConfig;
    /** Credentials of every pool; each simulator requires its pool's. */
    readonly credentials: PoolCredentialMap;
    /** Resources to wait for (the simulator namespace and its policy). */
    readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
}

export class VendorSimulators extends pulumi.ComponentResource {
    /** Simulator Service names by `vendor/pool`. */
    public readonly services: Record<string, string> = {};

    constructor(name: string, args: VendorSimulatorsArgs, opts?: pulumi.ComponentResourceOptions) {
        super("proxy-monitor:index:VendorSimulators", name, {}, opts);
        const cfg = args.config;
        const ns = cfg.namespaces.simulators;
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        const image = cfg.images.gateway !== "" ? cfg.images.gateway : cfg.images.node;
        const builtImage = cfg.images.gateway !== "";
        const base = labels(APP.simulator, "vendor-sim", "vendor-simulator", imageVersion(image));
        const script = builtImage ? undefined : scriptConfigMap(`${name}-program`, ns, base, childOpts);
        const account = new k8s.core.v1.ServiceAccount(
            `${name}-sa`,
            { metadata: { name: APP.simulator, namespace: ns, labels: base }, automountServiceAccountToken: false },
            childOpts,
        );
        for (const vendor of cfg.vendors) {
            for (const pool of vendor.pools.filter((p) => p.simulator)) {
                const svcName = NAMES.simulator(pool.host);
                const match = {
                    ...selectorLabels(APP.simulator, svcName),
                    [VENDOR_LABEL]: vendor.name,
                    [POOL_LABEL]: pool.name,
                };
                const objectLabels = {
                    ...base,
                    "app.kubernetes.io/instance": svcName,
                    [VENDOR_LABEL]: vendor.name,
                    [POOL_LABEL]: pool.name,
                };
                const creds = args.credentials[vendor.name][pool.name];
                const secret = new k8s.core.v1.Secret(
                    `${name}-${svcName}-credentials`,
                    {
                        metadata: { namespace: ns, labels: objectLabels },
                        type: "Opaque",
                        stringData: { username: creds.username, password: creds.password },
                    },
                    { ...childOpts, additionalSecretOutputs: ["stringData", "data"] },
                );
                const fileText = JSON.stringify(
                    simulatorFileConfig(cfg, vendor, pool, `${CONFIG_DIR}/secrets`),
                    null,
                    2,
                );
                const configMap = new k8s.core.v1.ConfigMap(
                    `${name}-${svcName}-config`,
                    { metadata: { namespace: ns, labels: objectLabels }, data: { "config.json": fileText } },
                    childOpts,
                );
                new k8s.apps.v1.Deployment(
                    `${name}-${svcName}`,
                    {
                        metadata: { namespace: ns, labels: objectLabels },
                        spec: {
                            replicas: 1,
                            selector: { matchLabels: match },
                            template: {
                                metadata: {
                                    labels: { ...objectLabels, [SCRAPE_LABEL]: "true" },
                                    annotations: {
                                        "proxy-monitor.io/config-hash": contentHash(
                                            fileText,
                                            script?.hash ?? "",
                                            image,
                                        ),
                                    },
                                },
                                spec: programPodSpec({
                                    mode: "vendor-sim",
                                    image,
                                    builtImage,
                                    scriptConfigMap: script?.configMap.metadata.name,
                                    configMap: configMap.metadata.name,
                                    secret: secret.metadata.name,
                                    serviceAccountName: account.metadata.name,
                                    ports: { proxy: PORTS.simulatorProxy },
                                    resources: cfg.resources.simulator,
                                }),
                            },
                        },
                    },
                    childOpts,
                );
                workloadService(
                    `${name}-${svcName}-service`,
                    { name: svcName, namespace: ns, labels: objectLabels, match: match },
                    [
                        {
                            name: "tcp-proxy",
                            port: pool.port,
                            targetPort: "proxy",
                            protocol: "TCP",
                            appProtocol: "tcp",
                        },
                        {
                            name: "http-metrics",
                            port: PORTS.proxyMetrics,
                            targetPort: "metrics",
                            protocol: "TCP",
                        },
                    ],
                    childOpts,
                );
                this.services[`${vendor.name}/${pool.name}`] = svcName;
            }
        }
        // The destination emulator the simulators forward to (dev).
        {
            const simNs = ns;
            const tMatch = selectorLabels(APP.target, NAMES.target);
            const tLabels = labels(APP.target, NAMES.target, "target", imageVersion(image));
            const tScript = builtImage
                ? undefined
                : scriptConfigMap(`${name}-target-program`, simNs, tLabels, childOpts);
            const tText = JSON.stringify(targetFileConfig(), null, 2);
            const tConfig = new k8s.core.v1.ConfigMap(
                `${name}-target-config`,
                { metadata: { namespace: simNs, labels: tLabels }, data: { "config.json": tText } },
                childOpts,
            );
            const tAccount = new k8s.core.v1.ServiceAccount(
                `${name}-target-sa`,
                {
                    metadata: { name: NAMES.target, namespace: simNs, labels: tLabels },
                    automountServiceAccountToken: false,
                },
                childOpts,
            );
            new k8s.apps.v1.Deployment(
                `${name}-target`,
                {
                    metadata: { name: NAMES.target, namespace: simNs, labels: tLabels },
                    spec: {
                        replicas: 1,
                        selector: { matchLabels: tMatch },
                        template: {
                            metadata: {
                                labels: { ...tLabels, [SCRAPE_LABEL]: "true" },
                                annotations: {
                                    "proxy-monitor.io/config-hash": contentHash(tText, tScript?.hash ?? "", image),
                                },
                            },
                            spec: programPodSpec({
                                mode: "target",
                                image,
                                builtImage,
                                scriptConfigMap: tScript?.configMap.metadata.name,
                                configMap: tConfig.metadata.name,
                                serviceAccountName: tAccount.metadata.name,
                                ports: { http: PORTS.targetHttp, https: PORTS.targetHttps },
                                resources: cfg.resources.simulator,
                            }),
                        },
                    },
                },
                childOpts,
            );
            workloadService(
                `${name}-target-service`,
                { name: NAMES.target, namespace: simNs, labels: tLabels, match: tMatch },
                [
                    { name: "http", port: PORTS.targetHttp, targetPort: "http", appProtocol: "http" },
                    { name: "tcp-https", port: PORTS.targetHttps, targetPort: "https", appProtocol: "tcp" },
                    { name: "http-metrics", port: PORTS.proxyMetrics, targetPort: "metrics" },
                ],
                childOpts,
            );
        }
        this.registerOutputs({ services: this.services });
    }
}
