/**
 * LoadGenerator: synthetic crawler traffic through the vendor gateways (the `generate` mode), its traffic pattern
 * in a ConfigMap, and an HPA. (The destination emulator it reaches in dev comes with the vendor simulators.)
 * The generator's pods look like crawlers (the crawler pod selector's labels, sidecar injection, a service account
 * listed under crawlers.namespaces), so the mesh policy and the dashboards treat it as one.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import type { Pattern } from "../proxy/generate/pattern";
import { StackConfig } from "./config";
import { deploymentHpa } from "./hpa";
import { contentHash, imageVersion, labels, selectorLabels, workloadService } from "./k8s";
import { APP, NAMES, PORTS, SCRAPE_LABEL } from "./names";
import { programPodSpec, scriptConfigMap } from "./node-app";

/** The stack settings the load generator reads. */
export type LoadGeneratorStackConfig = Pick<
    StackConfig,
    "namespaces" | "loadGenerator" | "destinations" | "images" | "crawlers" | "resources" | "autoscaling"
>;

/** The generator's traffic pattern from the stack config. */
export function generatorPattern(cfg: LoadGeneratorStackConfig): Pattern {
    const lg = cfg.loadGenerator;
    return {
        vendors: Object.entries(lg.vendorMix).map(([name, weight]) => ({
            name,
            proxyUrl: `http://${NAMES.gateway(name)}.${cfg.namespaces.gateways}.svc.cluster.local:${PORTS.gatewayProxy}`,
            weight,
        })),
        destinations: [...lg.destinations],
        zipfExponent: 1,
        httpsShare: 0.9,
        responseBytes: [2_048, 16_384, 65_536, 262_144],
        requestBytes: 0,
        http2: true,
        rate: {
            schedule: lg.schedule,
            requestsPerSecond: lg.requestsPerSecond,
            minFraction: 0.2,
            periodSeconds: 3_600,
        },
        concurrency: lg.concurrency,
        timeoutMs: 30_000,
        retries: 1,
        backoffMs: 250,
        durationSeconds: 0,
        // The dev target's certificate is self-signed; prod destinations are real sites with real certificates.
        insecureTls: lg.simulators,
        ports: { http: 80, https: 443 },
        metricsPort: PORTS.proxyMetrics,
        trackedDestinations: cfg.destinations.tracked.length > 0 ? [...cfg.destinations.tracked] : [...lg.destinations],
        // A third of the requests in sticky sessions, as many crawlers keep them (sticky breaks, bans per pool).
        sessions: { share: 0.3, keys: 8 },
    };
}

/** Args for the LoadGenerator component. */
export interface LoadGeneratorArgs {
    /** The validated stack config. */
    readonly config: LoadGeneratorStackConfig;
    /** Resources to wait for (namespaces, mesh policy). */
    readonly dependsOn?: pulumi.Input<pulumi.Resource>[];
    /** Extra pod metrics for the generator's HPA (custom metrics through prometheus-adapter). */
    readonly hpaPodMetrics?: { readonly name: string; readonly averageValue: string }[];
}

export class LoadGenerator extends pulumi.ComponentResource {
    public readonly deployment: k8s.apps.v1.Deployment;

    constructor(name: string, args: LoadGeneratorArgs, opts?: pulumi.ComponentResourceOptions) {
        super("proxy-monitor:index:LoadGenerator", name, {}, opts);
        const cfg = args.config;
        const lg = cfg.loadGenerator;
        const ns = lg.namespace;
        const childOpts = { parent: this, dependsOn: args.dependsOn };
        const builtImage = cfg.images.gateway !== "";
        const image = builtImage ? cfg.images.gateway : cfg.images.node;
        const version = imageVersion(image);

        // The generator, in its crawler namespace.
        const fixedName = NAMES.loadGenerator;
        const match = selectorLabels(APP.loadGenerator, fixedName);
        const objectLabels = { ...labels(APP.loadGenerator, fixedName, "load-generator", version) };
        const podLabels = { ...objectLabels, ...cfg.crawlers.podSelector, [SCRAPE_LABEL]: "true" };
        const script = builtImage ? undefined : scriptConfigMap(`${name}-program`, ns, objectLabels, childOpts);
        const patternText = JSON.stringify(generatorPattern(cfg), null, 2);
        const patterns = new k8s.core.v1.ConfigMap(
            `${name}-patterns`,
            { metadata: { namespace: ns, labels: objectLabels }, data: { "config.json": patternText } },
            childOpts,
        );
        const account = new k8s.core.v1.ServiceAccount(
            `${name}-sa`,
            { metadata: { name: fixedName, namespace: ns, labels: objectLabels }, automountServiceAccountToken: false },
            childOpts,
        );
        this.deployment = new k8s.apps.v1.Deployment(
            `${name}-deployment`,
            {
                metadata: { name: fixedName, namespace: ns, labels: objectLabels },
                // No `replicas`: the HPA below owns it (see components/gateway).
                spec: {
                    selector: { matchLabels: match },
                    template: {
                        metadata: {
                            labels: podLabels,
                            annotations: {
                                "proxy-monitor.io/config-hash": contentHash(patternText, script?.hash ?? "", image),
                                "proxy.istio.io/config": JSON.stringify({ holdApplicationUntilProxyStarts: true }),
                            },
                        },
                        spec: programPodSpec({
                            mode: "generate",
                            image,
                            builtImage,
                            scriptConfigMap: script?.configMap.metadata.name,
                            configMap: patterns.metadata.name,
                            serviceAccountName: account.metadata.name,
                            ports: {},
                            resources: cfg.resources.loadGenerator,
                        }),
                    },
                },
            },
            childOpts,
        );
        workloadService(
            `${name}-pods`,
            { name: NAMES.loadGeneratorPods, namespace: ns, labels: objectLabels, match: match },
            [{ name: "http-metrics", port: PORTS.proxyMetrics, targetPort: "metrics" }],
            childOpts,
            { headless: true },
        );
        deploymentHpa(
            `${name}-hpa`,
            { namespace: ns, labels: objectLabels, deployment: this.deployment },
            {
                minReplicas: lg.replicas,
                maxReplicas: lg.maxReplicas,
                cpuUtilization: 70,
                podMetrics: args.hpaPodMetrics,
            },
            cfg.autoscaling,
            childOpts,
        );

        this.registerOutputs({});
    }
}
