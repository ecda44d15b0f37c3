/**
 * The proxy program (proxy/: gateway, vendor simulator, load generator, target) ships as two bundled scripts (every
 * mode, and the gateway alone), gzipped beside their loader (proxy/loader.ts), in a ConfigMap run by the official
 * Node image; or, when `images.gateway` is set, as a team-built image (see proxy/Dockerfile) that has the same three
 * files at the same path. Either way the pod
 * runs `node /opt/proxy-monitor/loader.js <mode> --config …`. These helpers build the pieces every such workload
 * shares.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { Resources } from "./config";
import { contentHash, workloadPodSpec } from "./k8s";
import { GATEWAY_GZ, LOADER, LOADER_FILE, SCRIPT_FILE, SCRIPT_GZ, nodeFlags } from "../proxy/loader";
import { METRICS_PORT_NAME, PORTS } from "./names";

/** Where the bundled script is mounted in the pod. */
export const SCRIPT_DIR = "/opt/proxy-monitor";
export { GATEWAY_GZ, LOADER, LOADER_FILE, SCRIPT_FILE, SCRIPT_GZ };
/** The file a pod runs: the loader beside the gzipped bundle, from the script ConfigMap or a built image. */
export const ENTRY_FILE = `${SCRIPT_DIR}/${LOADER_FILE}`;
/** Where a workload's JSON config is mounted. */
export const CONFIG_DIR = "/etc/proxy-monitor";

/** Kubernetes caps a ConfigMap at 1 MiB; the gzipped bundles (base64) must leave room for the object's metadata. */
export const MAX_BUNDLE_BYTES = 1_000_000;

type Bundler = typeof import("../proxy/bundle");
let cached: { scripts: ReturnType<Bundler["programScripts"]>; files: ReturnType<Bundler["programFiles"]> } | undefined;

/** The bundled proxy program and the files it ships as (built once per process with esbuild). */
export function proxyProgram(): NonNullable<typeof cached> {
    if (cached === undefined) {
        // Loaded lazily: bundling needs esbuild and the proxy sources, which only this path uses.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { programScripts, programFiles } = require("../proxy/bundle") as Bundler;
        const scripts = programScripts();
        cached = { scripts, files: programFiles(scripts) };
    }
    return cached;
}

/** A ConfigMap holding the gzipped bundles and their loader, one per namespace that runs the program. */
export function scriptConfigMap(
    name: string,
    namespace: pulumi.Input<string>,
    labels: Record<string, string>,
    opts: pulumi.CustomResourceOptions,
): { configMap: k8s.core.v1.ConfigMap; hash: string } {
    const { scripts, files } = proxyProgram();
    const gz = files[SCRIPT_GZ].toString("base64");
    const gatewayGz = files[GATEWAY_GZ].toString("base64");
    if (gz.length + gatewayGz.length + LOADER.length > MAX_BUNDLE_BYTES) {
        throw new Error(
            `the gzipped proxy program is ${gz.length + gatewayGz.length} bytes in base64, over the ${MAX_BUNDLE_BYTES} a ConfigMap holds; set images.gateway to a built image (proxy/Dockerfile)`,
        );
    }
    const configMap = new k8s.core.v1.ConfigMap(
        name,
        {
            metadata: { namespace, labels },
            data: { [LOADER_FILE]: files[LOADER_FILE] },
            binaryData: { [SCRIPT_GZ]: gz, [GATEWAY_GZ]: gatewayGz },
        },
        opts,
    );
    return { configMap, hash: contentHash(scripts.proxy, scripts.gateway) };
}

export interface ProgramPodArgs {
    /** Container name; also the mode of the program (`gateway`, `vendor-sim`, `generate`, `target`). */
    readonly mode: string;
    /** The Node image (pinned), or a built image that contains the script at SCRIPT_DIR. */
    readonly image: string;
    /** True when `image` is a built image (no script ConfigMap mounted). */
    readonly builtImage: boolean;
    readonly scriptConfigMap?: pulumi.Input<string>;
    readonly configMap: pulumi.Input<string>;
    /** Secret mounted at /etc/proxy-monitor/secrets (credentials). */
    readonly secret?: pulumi.Input<string>;
    readonly serviceAccountName: pulumi.Input<string>;
    readonly ports: Record<string, number>;
    readonly resources: Resources;
    readonly env?: Record<string, string>;
    /** Extra arguments after `<mode> --config <file>`. */
    readonly args?: string[];
    readonly terminationGracePeriodSeconds?: number;
    readonly affinity?: k8s.types.input.core.v1.Affinity;
}

/**
 * The pod spec of a program workload (workloadPodSpec: named ports and env maps, restricted security, read-only
 * root), /tmp on an emptyDir, probes on the metrics port: /healthz (alive) and /readyz (ready to serve).
 */
export function programPodSpec(a: ProgramPodArgs): pulumi.Output<k8s.types.input.core.v1.PodSpec> {
    const volumes: k8s.types.input.core.v1.Volume[] = [
        { name: "config", configMap: { name: a.configMap } },
        { name: "tmp", emptyDir: { sizeLimit: "64Mi" } },
    ];
    const mounts: k8s.types.input.core.v1.VolumeMount[] = [
        { name: "config", mountPath: CONFIG_DIR, readOnly: true },
        { name: "tmp", mountPath: "/tmp" },
    ];
    if (!a.builtImage) {
        if (!a.scriptConfigMap) throw new Error(`${a.mode}: no script ConfigMap for the node image`);
        volumes.push({ name: "script", configMap: { name: a.scriptConfigMap } });
        mounts.push({ name: "script", mountPath: SCRIPT_DIR, readOnly: true });
    }
    if (a.secret) {
        volumes.push({ name: "secrets", secret: { secretName: a.secret, defaultMode: 0o440 } });
        mounts.push({ name: "secrets", mountPath: `${CONFIG_DIR}/secrets`, readOnly: true });
    }
    const probe = (path: string, periodSeconds: number, failureThreshold: number) => ({
        httpGet: { path, port: METRICS_PORT_NAME },
        periodSeconds,
        timeoutSeconds: 2,
        failureThreshold,
    });
    return workloadPodSpec({
        serviceAccountName: a.serviceAccountName,
        automountServiceAccountToken: false,
        terminationGracePeriodSeconds: a.terminationGracePeriodSeconds ?? 30,
        affinity: a.affinity,
        volumes,
        containers: [
            {
                name: a.mode,
                image: a.image,
                command: ["node"],
                args: [
                    ...nodeFlags(a.mode),
                    ENTRY_FILE,
                    a.mode,
                    "--config",
                    `${CONFIG_DIR}/config.json`,
                    ...(a.args ?? []),
                ],
                ports: { ...a.ports, [METRICS_PORT_NAME]: PORTS.proxyMetrics },
                env: {
                    NODE_ENV: "production",
                    POD_NAME: { fieldRef: { fieldPath: "metadata.name" } },
                    POD_NAMESPACE: { fieldRef: { fieldPath: "metadata.namespace" } },
                    ...(a.env ?? {}),
                },
                resources: a.resources,
                volumeMounts: mounts,
                readinessProbe: probe("/readyz", 5, 2),
                livenessProbe: probe("/healthz", 10, 3),
                startupProbe: probe("/healthz", 2, 30),
            },
        ],
    });
}
