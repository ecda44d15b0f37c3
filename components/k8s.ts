/**
 * Small helpers shared by every component: recommended labels, the pod spec of every workload (restricted pod
 * security, requests and limits, through kx's PodBuilder), and a content hash for rolling pods when their
 * configuration changes.
 */
import * as crypto from "crypto";
import * as k8s from "@pulumi/kubernetes";
import * as kx from "@pulumi/kubernetesx";
import * as pulumi from "@pulumi/pulumi";
import { Resources } from "./config";

export const PART_OF = "proxy-monitor";

/**
 * Pod-template labels of a pod that stays outside the mesh (Prometheus scrapes in plain text). The label, not the
 * annotation of the same name, which Istio deprecates (IST0135).
 */
export const OUT_OF_MESH = { "sidecar.istio.io/inject": "false" } as const;

/** The recommended labels. Selectors use `selectorLabels` (no version), objects use `labels`. */
export function selectorLabels(name: string, instance: string): Record<string, string> {
    return { "app.kubernetes.io/name": name, "app.kubernetes.io/instance": instance };
}

export function labels(name: string, instance: string, component: string, version?: string): Record<string, string> {
    return {
        ...selectorLabels(name, instance),
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": PART_OF,
        "app.kubernetes.io/managed-by": "pulumi",
        ...(version ? { "app.kubernetes.io/version": version } : {}),
    };
}

/** The tag of a pinned image reference, for the version label (`v2.53.3` of `quay.io/prometheus/prometheus:v2.53.3`). */
export function imageVersion(image: string): string {
    const at = image.indexOf("@sha256:");
    if (at >= 0) return image.slice(at + 8, at + 20);
    return image.slice(image.lastIndexOf(":") + 1);
}

/** UID and GID of `nobody`, which every image we run accepts. */
export const NOBODY = 65534;

/** Pod-level security context meeting the "restricted" Pod Security Standard. */
export function restrictedPodSecurity(uid = NOBODY): k8s.types.input.core.v1.PodSecurityContext {
    return {
        runAsNonRoot: true,
        runAsUser: uid,
        runAsGroup: uid,
        fsGroup: uid,
        seccompProfile: { type: "RuntimeDefault" },
    };
}

/** Container-level security context meeting the "restricted" Pod Security Standard, read-only root. */
export function restrictedContainerSecurity(readOnlyRootFilesystem = true): k8s.types.input.core.v1.SecurityContext {
    return {
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem,
        runAsNonRoot: true,
        capabilities: { drop: ["ALL"] },
        seccompProfile: { type: "RuntimeDefault" },
    };
}

export function resources(r: Resources): k8s.types.input.core.v1.ResourceRequirements {
    return {
        requests: { cpu: r.requests.cpu, memory: r.requests.memory },
        limits: { cpu: r.limits.cpu, memory: r.limits.memory },
    };
}

/** A workload's container: kx's (env and ports may be maps), with its resources from config; security is added. */
export type WorkloadContainer = Omit<kx.types.Container, "name" | "resources" | "securityContext"> & {
    readonly name: string;
    readonly resources: Resources;
};

/** A workload's pod: kx's pod spec without the parts every workload gets from `workloadPodSpec`. */
export type WorkloadPod = Omit<
    kx.types.PodSpec,
    "containers" | "initContainers" | "securityContext" | "automountServiceAccountToken"
> & {
    readonly serviceAccountName: pulumi.Input<string>;
    /** Whether the pod talks to the Kubernetes API (false for all but Prometheus, kube-state-metrics, the adapter). */
    readonly automountServiceAccountToken: boolean;
    readonly containers: readonly WorkloadContainer[];
};

/**
 * The pod spec of every workload, built by kx's PodBuilder: the restricted Pod Security Standard (non-root as nobody,
 * seccomp RuntimeDefault; per container no privilege escalation, every capability dropped, read-only root) and
 * each container's requests and limits. kx turns env and port maps into lists and always writes `initContainers`.
 * Selector and template labels stay with the caller: kx's own (`app: <first container>`) would make the three
 * vendors' gateways select each other's pods.
 */
export function workloadPodSpec(pod: WorkloadPod): pulumi.Output<k8s.types.input.core.v1.PodSpec> {
    const { containers, ...rest } = pod;
    return new kx.PodBuilder({
        ...rest,
        securityContext: restrictedPodSecurity(),
        containers: containers.map(({ resources: r, ...c }) => ({
            ...c,
            resources: resources(r),
            securityContext: restrictedContainerSecurity(),
        })),
    }).podSpec;
}

/** Short, stable hash of configuration text, for a pod-template annotation that rolls pods on change. */
export function contentHash(...parts: string[]): string {
    const h = crypto.createHash("sha256");
    for (const p of parts) h.update(p).update("\0");
    return h.digest("hex").slice(0, 16);
}

/** Preferred anti-affinity spreading replicas over nodes. */
export function spreadOverNodes(match: Record<string, string>): k8s.types.input.core.v1.Affinity {
    return {
        podAntiAffinity: {
            preferredDuringSchedulingIgnoredDuringExecution: [
                {
                    weight: 100,
                    podAffinityTerm: { topologyKey: "kubernetes.io/hostname", labelSelector: { matchLabels: match } },
                },
            ],
        },
    };
}

/**
 * The PodDisruptionBudget spec of our replicated workloads: all but one pod keep serving through voluntary
 * disruptions, and pods that are not ready may always be evicted, so a crash-looping fleet cannot block node drains
 * (the default policy, IfHealthyBudget, refuses evictions while the budget is not met).
 */
export function disruptionBudgetSpec(match: Record<string, string>): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
    return { maxUnavailable: 1, unhealthyPodEvictionPolicy: "AlwaysAllow", selector: { matchLabels: match } };
}

/**
 * The PodDisruptionBudget of a replicated workload (disruptionBudgetSpec), or none with one replica: a budget over a
 * single pod would block node drains forever.
 */
export function pdb(
    name: string,
    w: { namespace: string; labels: Record<string, string>; match: Record<string, string>; replicas: number },
    opts: pulumi.CustomResourceOptions,
): k8s.policy.v1.PodDisruptionBudget | undefined {
    if (w.replicas <= 1) return undefined;
    return new k8s.policy.v1.PodDisruptionBudget(
        name,
        { metadata: { namespace: w.namespace, labels: w.labels }, spec: disruptionBudgetSpec(w.match) },
        opts,
    );
}

/** What a workload's Service selects and is labelled with. */
export interface ServiceOf {
    readonly name: string;
    readonly namespace: pulumi.Input<string>;
    readonly labels: Record<string, string>;
    readonly match: Record<string, string>;
}

/**
 * A Service of a workload's pods. `headless`: each pod by DNS (clusterIP None); `publishNotReadyAddresses`: pods
 * that are not ready too (scraped, or peers finding each other, exactly when they are not ready).
 */
export function workloadService(
    logical: string,
    w: ServiceOf,
    ports: k8s.types.input.core.v1.ServicePort[],
    opts: pulumi.CustomResourceOptions,
    how: { headless?: boolean; publishNotReadyAddresses?: boolean } = {},
): k8s.core.v1.Service {
    return new k8s.core.v1.Service(
        logical,
        {
            metadata: { name: w.name, namespace: w.namespace, labels: w.labels },
            spec: {
                ...(how.headless ? { clusterIP: "None" } : {}),
                ...(how.publishNotReadyAddresses ? { publishNotReadyAddresses: true } : {}),
                selector: w.match,
                ports,
            },
        },
        opts,
    );
}

/** In-cluster DNS name of a Service. */
export function serviceHost(name: string, namespace: string): string {
    return `${name}.${namespace}.svc.cluster.local`;
}
