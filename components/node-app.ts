/**
 * The proxy program (proxy/: gateway, vendor simulator, load generator, target) ships as one bundled script in a
 * ConfigMap, run by the official Node image; or, when `images.gateway` is set, as a team-built image (see
 * proxy/Dockerfile) that has the script at the same path. These helpers build the pieces every such workload shares.
 */
import * as zlib from "zlib";
import * as k8s from "@pulumi/kubernetes";
import * as kx from "@pulumi/kubernetesx";
import * as pulumi from "@pulumi/pulumi";
import { Resources } from "./config";
import { NOBODY, contentHash, resources, restrictedContainerSecurity, restrictedPodSecurity } from "./k8s";
import { METRICS_PORT_NAME, PORTS } from "./names";

/** Where the bundled script is mounted in the pod. */
export const SCRIPT_DIR = "/opt/proxy-monitor";
export const SCRIPT_FILE = "proxy.js";
/** The gzipped bundle and the loader that runs it (the bundle is larger than a ConfigMap holds uncompressed). */
export const SCRIPT_GZ = "proxy.js.gz";
export const LOADER_FILE = "loader.js";
/** Unzips the bundle in memory and runs it as a CommonJS module (nothing is written: the root filesystem is read-only). */
export const LOADER = [
    '"use strict";',
    'const fs = require("fs"), path = require("path"), zlib = require("zlib"), Module = require("module");',
    `const file = path.join(__dirname, ${JSON.stringify(SCRIPT_FILE)});`,
    `const source = zlib.gunzipSync(fs.readFileSync(path.join(__dirname, ${JSON.stringify(SCRIPT_GZ)}))).toString("utf8");`,
    "const m = new Module(file, module);",
    "m.filename = file;",
    "m.paths = Module._nodeModulePaths(__dirname);",
    "m._compile(source, file);",
    "",
].join("\n");
/** Where a workload's JSON config is mounted. */
export const CONFIG_DIR = "/etc/proxy-monitor";

/** Kubernetes caps a ConfigMap at 1 MiB; the gzipped bundle (base64) must leave room for the object's metadata. */
export const MAX_BUNDLE_BYTES = 1_000_000;

let cachedBundle: string | undefined;

/** The bundled proxy program (built once per process with esbuild). */
export function proxyBundle(): string {
    if (cachedBundle === undefined) {
        // Loaded lazily: bundling needs esbuild and the proxy sources, which only this path uses.
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        const { bundleProxy } = require("../proxy/bundle") as { bundleProxy: () => string };
        cachedBundle = bundleProxy();
    }
    return cachedBundle;
}

/** A ConfigMap holding the gzipped bundle and its loader, one per namespace that runs the program. */
export function scriptConfigMap(
    name: string,
    namespace: pulumi.Input<string>,
    labels: Record<string, string>,
    opts: pulumi.CustomResourceOptions,
): { configMap: k8s.core.v1.ConfigMap; hash: string } {
    const script = proxyBundle();
    const gz = zlib.gzipSync(Buffer.from(script), { level: 9 }).toString("base64");
    if (gz.length + LOADER.length > MAX_BUNDLE_BYTES) {
        throw new Error(
            `the gzipped proxy program is ${gz.length} bytes in base64, over the ${MAX_BUNDLE_BYTES} a ConfigMap holds; set images.gateway to a built image (proxy/Dockerfile)`,
        );
    }
    const configMap = new k8s.core.v1.ConfigMap(
        name,
        { metadata: { namespace, labels }, data: { [LOADER_FILE]: LOADER }, binaryData: { [SCRIPT_GZ]: gz } },
        opts,
    );
    return { configMap, hash: contentHash(script) };
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
 * The pod spec of a program workload, built with kx's PodBuilder (named ports and env maps). Restricted security,
 * read-only root, /tmp on an emptyDir, probes on the metrics port: /healthz (alive) and /readyz (ready to serve).
 * Selector and template labels are set by the caller: kx's own (`app: <container name>`) would make the three
 * vendors' gateway Deployments select each other's pods.
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
    const pb = new kx.PodBuilder({
        serviceAccountName: a.serviceAccountName,
        automountServiceAccountToken: false,
        securityContext: restrictedPodSecurity(NOBODY),
        terminationGracePeriodSeconds: a.terminationGracePeriodSeconds ?? 30,
        affinity: a.affinity,
        volumes,
        containers: [
            {
                name: a.mode,
                image: a.image,
                command: ["node"],
                args: [
                    `${SCRIPT_DIR}/${SCRIPT_FILE}`,
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
                resources: resources(a.resources),
                securityContext: restrictedContainerSecurity(true),
                volumeMounts: mounts,
                readinessProbe: probe("/readyz", 5, 2),
                livenessProbe: probe("/healthz", 10, 3),
                startupProbe: probe("/healthz", 2, 30),
            },
        ],
    } as kx.types.PodSpec);
    return pb.podSpec as unknown as pulumi.Output<k8s.types.input.core.v1.PodSpec>;
}
