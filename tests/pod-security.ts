/**
 * Checks a pod spec against the Kubernetes "restricted" Pod Security Standard (v1.25+ rules) and this project's own
 * rules: requests and limits for CPU and memory on every container, a read-only root filesystem unless the
 * container is listed as needing a writable one.
 */
import { K8sObject } from "../scripts/offline";

type Obj = Record<string, unknown>;

const ALLOWED_VOLUME_KINDS = [
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/** Pod template of a workload object, with a label for messages; undefined for objects without pods. */
export function podSpecOf(o: K8sObject): { where: string; spec: Obj; annotations: Obj } | undefined {
    const where = `${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name}`;
    const spec = o.spec as Obj | undefined;
    if (!spec) return undefined;
    if (o.kind === "Pod") return { where, spec, annotations: (o.metadata.annotations ?? {}) as Obj };
    if (["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"].includes(o.kind)) {
        const t = spec.template as Obj;
        return { where, spec: t.spec as Obj, annotations: ((t.metadata as Obj)?.annotations ?? {}) as Obj };
    }
    if (o.kind === "CronJob") {
        const t = ((spec.jobTemplate as Obj).spec as Obj).template as Obj;
        return { where, spec: t.spec as Obj, annotations: ((t.metadata as Obj)?.annotations ?? {}) as Obj };
    }
    return undefined;
}

/** Every violation of the restricted standard and of the project's rules; empty when the pod spec is fine. */
export function restrictedViolations(where: string, spec: Obj): string[] {
    const v: string[] = [];
    const pod = (spec.securityContext ?? {}) as Obj;
    for (const f of ["hostNetwork", "hostPID", "hostIPC"]) if (spec[f]) v.push(`${where}: ${f} is set`);
    for (const vol of (spec.volumes ?? []) as Obj[]) {
        const kinds = Object.keys(vol).filter((k) => k !== "name");
        for (const k of kinds) if (!ALLOWED_VOLUME_KINDS.includes(k)) v.push(`${where}: volume ${vol.name} is ${k}`);
    }
    if (pod.sysctls) v.push(`${where}: sysctls are set`);
    const containers = [
        ...((spec.initContainers ?? []) as Obj[]),
        ...((spec.containers ?? []) as Obj[]),
        ...((spec.ephemeralContainers ?? []) as Obj[]),
    ];
    if (containers.length === 0) v.push(`${where}: no containers`);
    for (const c of containers) {
        const at = `${where} container ${c.name}`;
        const sc = (c.securityContext ?? {}) as Obj;
        if (sc.privileged) v.push(`${at}: privileged`);
        if (sc.allowPrivilegeEscalation !== false) v.push(`${at}: allowPrivilegeEscalation is not false`);
        const caps = (sc.capabilities ?? {}) as Obj;
        if (!((caps.drop ?? []) as string[]).includes("ALL")) v.push(`${at}: capabilities do not drop ALL`);
        const added = ((caps.add ?? []) as string[]).filter((c) => c !== "NET_BIND_SERVICE");
        if (added.length > 0) v.push(`${at}: adds capabilities ${added.join(", ")}`);
        const nonRoot = sc.runAsNonRoot ?? pod.runAsNonRoot;
        if (nonRoot !== true) v.push(`${at}: runAsNonRoot is not true`);
        const uid = sc.runAsUser ?? pod.runAsUser;
        if (uid === 0) v.push(`${at}: runAsUser is 0`);
        const seccomp = ((sc.seccompProfile ?? pod.seccompProfile) as Obj | undefined)?.type;
        if (seccomp !== "RuntimeDefault" && seccomp !== "Localhost")
            v.push(`${at}: seccompProfile is not RuntimeDefault`);
        if (sc.procMount !== undefined && sc.procMount !== "Default") v.push(`${at}: procMount is ${sc.procMount}`);
        for (const p of (c.ports ?? []) as Obj[]) if (p.hostPort) v.push(`${at}: hostPort ${p.hostPort}`);
        const res = (c.resources ?? {}) as Obj;
        for (const kind of ["requests", "limits"]) {
            for (const r of ["cpu", "memory"]) {
                if (((res[kind] ?? {}) as Obj)[r] === undefined) v.push(`${at}: no ${r} ${kind}`);
            }
        }
        if (sc.readOnlyRootFilesystem !== true) v.push(`${at}: root filesystem is writable`);
    }
    return v;
}

/** Violations of every workload among the objects. */
export function workloadViolations(objects: K8sObject[]): { workloads: number; violations: string[] } {
    let workloads = 0;
    const violations: string[] = [];
    for (const o of objects) {
        const p = podSpecOf(o);
        if (!p) continue;
        workloads++;
        violations.push(...restrictedViolations(p.where, p.spec));
    }
    return { workloads, violations };
}
