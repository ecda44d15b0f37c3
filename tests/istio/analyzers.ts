/**
 * Istio's configuration analyzers (`istioctl analyze`), as offline checks over the objects this program renders.
 *
 * Written in our own code from the rules Istio documents for each message (https://istio.io/latest/docs/reference/
 * config/analysis/) and implements in istio/istio pkg/config/analysis/analyzers. Each check is named by its IST
 * code. Where Istio reads the live cluster (running pods, the mesh config), these read what the program renders
 * (pod templates, the pods' proxy config) and a small MeshContext taken from the stack config.
 *
 * Analyzers that do not apply to anything this program renders (VirtualService, DestinationRule, Gateway,
 * EnvoyFilter, RequestAuthentication, webhooks, multicluster, Gateway API, waypoints, image: auto, and those that need
 * running pods or the control plane's own objects: IST0103, IST0143, IST0139, IST0158) are not implemented.
 */
import { isIP } from "net";
import { StackConfig } from "../../components/config";
import { K8sObject } from "../../scripts/offline";

type Obj = Record<string, any>;

export interface Finding {
    /** IST code, e.g. IST0134. */
    code: string;
    /** `Kind namespace/name` of the object the finding is about. */
    object: string;
    message: string;
}

/** What the analyzers know about the cluster beyond the rendered objects (Istio reads these from the cluster). */
export interface MeshContext {
    /** Istio's trust domain. */
    trustDomain: string;
    /** The Istio control-plane namespace (istiod): exists, and is not checked for injection. */
    istioNamespace: string;
    /**
     * Namespaces that exist in the cluster without being created by the program (labelled crawler namespaces,
     * ingress namespaces, kube-system). Their workloads are the user's, so selectors and service accounts there
     * are not checked against rendered objects (the preflight checks them in the cluster).
     */
    externalNamespaces: string[];
    /** istiod allocates addresses for address-less ServiceEntries (PILOT_ENABLE_IP_AUTOALLOCATE). */
    controlPlaneAutoAllocate: boolean;
}

/** What the analyzers assume of the cluster, from the stack config. */
export function meshContext(cfg: StackConfig): MeshContext {
    return {
        trustDomain: cfg.mesh.trustDomain,
        istioNamespace: cfg.namespaces.istio,
        externalNamespaces: [
            "kube-system",
            ...cfg.crawlers.namespaces.filter((c) => c.manage === "label").map((c) => c.name),
            ...cfg.mesh.ingressNamespaces,
        ],
        controlPlaneAutoAllocate: cfg.mesh.addressAllocation === "istiod",
    };
}

/** Message page of an IST code. */
export const messageUrl = (code: string) =>
    `https://istio.io/latest/docs/reference/config/analysis/${code.toLowerCase()}/`;

const ref = (o: K8sObject) => `${o.kind} ${o.metadata.namespace ? o.metadata.namespace + "/" : ""}${o.metadata.name}`;
const spec = (o: K8sObject): Obj => (o.spec ?? {}) as Obj;
const POD_OWNERS = ["Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"];

/** A pod as a workload controller would create it. */
export interface PodTemplate {
    owner: K8sObject;
    namespace: string;
    labels: Record<string, string>;
    annotations: Record<string, string>;
    spec: Obj;
}

export function podTemplates(objects: K8sObject[]): PodTemplate[] {
    const out: PodTemplate[] = [];
    for (const o of objects) {
        if (!POD_OWNERS.includes(o.kind)) continue;
        const t = spec(o).template ?? {};
        out.push({
            owner: o,
            namespace: o.metadata.namespace ?? "default",
            labels: t.metadata?.labels ?? {},
            annotations: t.metadata?.annotations ?? {},
            spec: t.spec ?? {},
        });
    }
    return out;
}

const matches = (selector: Record<string, string> | undefined, labels: Record<string, string>) =>
    selector !== undefined && Object.entries(selector).every(([k, v]) => labels[k] === v);

const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);

/** Namespaces that exist: rendered ones, the Istio namespace and the external ones. */
function knownNamespaces(objects: K8sObject[], ctx: MeshContext): Set<string> {
    return new Set([
        ...byKind(objects, "Namespace").map((n) => n.metadata.name),
        ctx.istioNamespace,
        ...ctx.externalNamespaces,
    ]);
}

/** Namespaces whose workloads are all rendered by the program. */
function ownNamespace(ns: string, ctx: MeshContext): boolean {
    return !ctx.externalNamespaces.includes(ns) && ns !== ctx.istioNamespace;
}

/** Namespaces with sidecar injection enabled (label istio-injection=enabled or istio.io/rev). */
function injectedNamespaces(objects: K8sObject[]): Set<string> {
    return new Set(
        byKind(objects, "Namespace")
            .filter((n) => {
                const l = n.metadata.labels ?? {};
                return l["istio-injection"] === "enabled" || (l["istio-injection"] === undefined && l["istio.io/rev"]);
            })
            .map((n) => n.metadata.name),
    );
}

/** Pods that get a sidecar: in an injected namespace, not opted out by label or annotation. */
function inMesh(p: PodTemplate, injected: Set<string>): boolean {
    const opt = p.labels["sidecar.istio.io/inject"] ?? p.annotations["sidecar.istio.io/inject"];
    if (opt !== undefined) return opt === "true" || (opt !== "false" && injected.has(p.namespace));
    return injected.has(p.namespace) && !p.spec.hostNetwork;
}

// ---------------------------------------------------------------------------------------------------------------
// The proxy config of a pod (annotation proxy.istio.io/config, YAML or JSON) and its DNS settings.

export function proxyConfigOf(p: PodTemplate): Obj | undefined {
    const text = p.annotations["proxy.istio.io/config"];
    if (text === undefined) return undefined;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const YAML = require("yaml") as typeof import("yaml");
    return YAML.parse(text) as Obj;
}

/** The pod's sidecar answers DNS for ServiceEntry hosts with an allocated address (DNS capture + allocation). */
export function usesAllocatedAddresses(p: PodTemplate, ctx: MeshContext): boolean {
    const md = (proxyConfigOf(p)?.proxyMetadata ?? {}) as Record<string, string>;
    if (md.ISTIO_META_DNS_CAPTURE !== "true") return false;
    return md.ISTIO_META_DNS_AUTO_ALLOCATE === "true" || ctx.controlPlaneAutoAllocate;
}

// ---------------------------------------------------------------------------------------------------------------
// Visibility: which ServiceEntries a pod's sidecar is given.

/** The Sidecar resource that applies to a pod: the one selecting it, else its namespace's selector-less one. */
function sidecarOf(p: PodTemplate, objects: K8sObject[]): K8sObject | undefined {
    const inNs = byKind(objects, "Sidecar").filter((s) => s.metadata.namespace === p.namespace);
    return (
        inNs.find((s) => matches(spec(s).workloadSelector?.labels, p.labels)) ??
        inNs.find((s) => !spec(s).workloadSelector)
    );
}

function exportedTo(se: K8sObject, ns: string): boolean {
    const exportTo: string[] = spec(se).exportTo ?? ["*"];
    return exportTo.some((e) => e === "*" || (e === "." ? se.metadata.namespace === ns : e === ns));
}

/** Whether a Sidecar egress host `ns/host` admits a host declared in namespace `declaredIn`. */
function egressAdmits(entry: string, host: string, declaredIn: string, sidecarNs: string): boolean {
    const [nsPart, hostPart] = entry.includes("/") ? entry.split("/", 2) : ["*", entry];
    const nsOk = nsPart === "*" || (nsPart === "." ? declaredIn === sidecarNs : nsPart === declaredIn);
    const hostOk =
        hostPart === "*" || hostPart === host || (hostPart.startsWith("*.") && host.endsWith(hostPart.slice(1)));
    return nsOk && hostOk;
}

export function visibleServiceEntries(p: PodTemplate, objects: K8sObject[]): K8sObject[] {
    const sc = sidecarOf(p, objects);
    const hosts: string[] | undefined = sc ? (spec(sc).egress ?? []).flatMap((e: Obj) => e.hosts ?? []) : undefined;
    return byKind(objects, "ServiceEntry").filter(
        (se) =>
            exportedTo(se, p.namespace) &&
            (hosts === undefined ||
                (spec(se).hosts as string[]).some((h) =>
                    hosts.some((e) => egressAdmits(e, h, se.metadata.namespace!, p.namespace)),
                )),
    );
}

// ---------------------------------------------------------------------------------------------------------------
// The analyzers.

export type Analyzer = (objects: K8sObject[], ctx: MeshContext) => Finding[];

const isTcp = (protocol: string | undefined) => protocol === undefined || protocol === "" || /^tcp$/i.test(protocol);

/**
 * IST0134 ServiceEntryAddressesRequired: a ServiceEntry without `addresses` whose port is TCP (or has no protocol)
 * matches all traffic on that port, whatever the host. It is fine only for proxies that answer DNS for it with an
 * allocated address (DNS capture with ISTIO_META_DNS_AUTO_ALLOCATE, or istiod's PILOT_ENABLE_IP_AUTOALLOCATE), so
 * every in-mesh pod that is given the entry must have that; an entry no pod is given is checked as the mesh default
 * (no DNS capture) would see it.
 */
export const IST0134: Analyzer = (objects, ctx) => {
    const injected = injectedNamespaces(objects);
    const pods = podTemplates(objects).filter((p) => inMesh(p, injected));
    const out: Finding[] = [];
    for (const se of byKind(objects, "ServiceEntry")) {
        const s = spec(se);
        if ((s.addresses ?? []).length > 0) continue;
        const tcpPorts = (s.ports ?? []).filter((p: Obj) => isTcp(p.protocol));
        if (tcpPorts.length === 0) continue;
        const viewers = pods.filter((p) => visibleServiceEntries(p, objects).includes(se));
        const lacking = viewers.filter((p) => !usesAllocatedAddresses(p, ctx));
        if (viewers.length > 0 && lacking.length === 0) continue;
        const who =
            viewers.length === 0
                ? "no pod is given it, so the mesh default (no DNS capture) applies"
                : `seen by ${lacking.map((p) => ref(p.owner)).join(", ")} without DNS capture and address allocation`;
        out.push({
            code: "IST0134",
            object: ref(se),
            message: `port(s) ${tcpPorts.map((p: Obj) => p.number).join(", ")} serve TCP without addresses (${who}): the entry matches all traffic on the port, regardless of host`,
        });
    }
    return out;
};

/**
 * IST0177 ConflictingServiceEntryProtocol: ServiceEntries exported to the same scope declare the same host and
 * port with different protocols.
 */
export const IST0177: Analyzer = (objects) => {
    const index = new Map<string, { protocol: string; se: K8sObject }[]>();
    for (const se of byKind(objects, "ServiceEntry")) {
        const s = spec(se);
        const exportTo: string[] = s.exportTo ?? ["*"];
        const scopes = exportTo.includes("*") ? ["*"] : exportTo.map((e) => (e === "." ? se.metadata.namespace! : e));
        for (const scope of scopes)
            for (const h of s.hosts ?? [])
                for (const p of s.ports ?? []) {
                    const key = `${scope}|${h}|${p.number}`;
                    index.set(key, [
                        ...(index.get(key) ?? []),
                        { protocol: String(p.protocol ?? "").toUpperCase(), se },
                    ]);
                }
    }
    const out: Finding[] = [];
    for (const [key, entries] of index) {
        const [scope, host, port] = key.split("|");
        const all = scope === "*" ? entries : [...entries, ...(index.get(`*|${host}|${port}`) ?? [])];
        const protocols = [...new Set(all.map((e) => e.protocol))].sort();
        if (protocols.length < 2) continue;
        for (const se of new Set(all.map((e) => e.se)))
            out.push({
                code: "IST0177",
                object: ref(se),
                message: `host ${host} port ${port} is declared with protocols ${protocols.join(", ")}`,
            });
    }
    return out;
};

/** Istio's protocol of a Kubernetes Service port: appProtocol, else the port name's prefix (pkg/config/kube). */
export function servicePortProtocol(port: Obj): string {
    if (port.protocol === "UDP") return "UDP";
    let name: string = port.appProtocol ?? port.name ?? "";
    if (port.appProtocol === "kubernetes.io/h2c") return "HTTP2";
    if (port.appProtocol === "kubernetes.io/ws") return "HTTP";
    if (port.appProtocol === "kubernetes.io/wss") return "HTTPS";
    if (/^grpc-web/i.test(name)) return "GRPC-WEB";
    if (name.includes("-")) name = name.slice(0, name.indexOf("-"));
    const known = ["tcp", "udp", "grpc", "http", "http_proxy", "http2", "https", "tls", "mongo", "redis", "mysql"];
    if (known.includes(name.toLowerCase())) return name.toUpperCase();
    if ([25, 53, 3306, 27017].includes(port.port)) return "TCP";
    return "UNSUPPORTED";
}

/**
 * IST0118 PortNameIsNotUnderNamingConvention: a Service port whose appProtocol or name prefix names no protocol
 * Istio knows, so Istio falls back to protocol sniffing (which turns a forward proxy's CONNECT into a 404).
 */
export const IST0118: Analyzer = (objects) =>
    byKind(objects, "Service").flatMap((svc) =>
        (spec(svc).ports ?? [])
            .filter((p: Obj) => servicePortProtocol(p) === "UNSUPPORTED")
            .map((p: Obj) => ({
                code: "IST0118",
                object: ref(svc),
                message: `port ${p.port} (name ${JSON.stringify(p.name ?? "")}, appProtocol ${p.appProtocol ?? "unset"}) follows no Istio protocol naming convention`,
            })),
    );

function servicesOf(p: PodTemplate, objects: K8sObject[]): K8sObject[] {
    return byKind(objects, "Service").filter(
        (s) =>
            s.metadata.namespace === p.namespace &&
            Object.keys(spec(s).selector ?? {}).length > 0 &&
            matches(spec(s).selector, p.labels),
    );
}

/**
 * IST0116 DeploymentAssociatedToMultipleServices: Services selecting one in-mesh Deployment use the same port with
 * different protocols.
 */
export const IST0116: Analyzer = (objects) => {
    const injected = injectedNamespaces(objects);
    const out: Finding[] = [];
    for (const p of podTemplates(objects).filter((x) => x.owner.kind === "Deployment" && inMesh(x, injected))) {
        const byPort = new Map<number, Map<string, string[]>>();
        for (const svc of servicesOf(p, objects))
            for (const port of spec(svc).ports ?? []) {
                const m = byPort.get(port.port) ?? new Map<string, string[]>();
                const proto = port.protocol ?? "TCP";
                m.set(proto, [...(m.get(proto) ?? []), svc.metadata.name]);
                byPort.set(port.port, m);
            }
        for (const [port, m] of byPort)
            if (m.size > 1)
                out.push({
                    code: "IST0116",
                    object: ref(p.owner),
                    message: `port ${port} is exposed with protocols ${[...m.keys()].join(", ")} by ${[...m.values()].flat().join(", ")}`,
                });
    }
    return out;
};

/** IST0137 DeploymentConflictingPorts: two Services selecting one in-mesh Deployment send different ports to one targetPort. */
export const IST0137: Analyzer = (objects) => {
    const injected = injectedNamespaces(objects);
    const out: Finding[] = [];
    for (const p of podTemplates(objects).filter((x) => x.owner.kind === "Deployment" && inMesh(x, injected))) {
        const byTarget = new Map<string, Map<number, string>>();
        for (const svc of servicesOf(p, objects))
            for (const port of spec(svc).ports ?? []) {
                const target = String(port.targetPort ?? port.port);
                const m = byTarget.get(target) ?? new Map<number, string>();
                m.set(port.port, svc.metadata.name);
                byTarget.set(target, m);
            }
        for (const [target, m] of byTarget)
            if (m.size > 1)
                out.push({
                    code: "IST0137",
                    object: ref(p.owner),
                    message: `targetPort ${target} is reached through ports ${[...m.keys()].join(", ")} (${[...m.values()].join(", ")})`,
                });
    }
    return out;
};

/** IST0102 NamespaceNotInjected: a namespace with neither `istio-injection` nor `istio.io/rev`. */
export const IST0102: Analyzer = (objects, ctx) =>
    byKind(objects, "Namespace")
        .filter((n) => n.metadata.name !== ctx.istioNamespace)
        .filter((n) => {
            const l = n.metadata.labels ?? {};
            return l["istio-injection"] === undefined && l["istio.io/rev"] === undefined;
        })
        .map((n) => ({
            code: "IST0102",
            object: ref(n),
            message: "the namespace says nothing about injection (istio-injection or istio.io/rev)",
        }));

/** IST0123 NamespaceMultipleInjectionLabels: a namespace with both `istio-injection=enabled` and `istio.io/rev`. */
export const IST0123: Analyzer = (objects) =>
    byKind(objects, "Namespace")
        .filter((n) => {
            const l = n.metadata.labels ?? {};
            const inj = l["istio-injection"];
            const others = ["istio.io/rev", "istio.io/dataplane-mode"].filter((k) => l[k] !== undefined);
            return (inj !== undefined ? 1 : 0) + (inj === undefined || inj === "enabled" ? others.length : 0) > 1;
        })
        .map((n) => ({ code: "IST0123", object: ref(n), message: "more than one injection label" }));

/**
 * IST0101 ReferencedResourceNotFound, for what this program references: Sidecar egress hosts that resolve to no
 * rendered Service or ServiceEntry (nor a namespace that exists), Sidecar and Telemetry workload selectors that
 * select no pod, and AuthorizationPolicy source namespaces and principals (trust domain, namespace, service
 * account) that do not exist.
 */
export const IST0101: Analyzer = (objects, ctx) => {
    const out: Finding[] = [];
    const namespaces = knownNamespaces(objects, ctx);
    const pods = podTemplates(objects);
    const report = (o: K8sObject, message: string) => out.push({ code: "IST0101", object: ref(o), message });
    const serviceHosts = byKind(objects, "Service").map((s) => ({
        ns: s.metadata.namespace!,
        host: `${s.metadata.name}.${s.metadata.namespace}.svc.cluster.local`,
    }));
    for (const sc of byKind(objects, "Sidecar")) {
        const scNs = sc.metadata.namespace!;
        for (const entry of (spec(sc).egress ?? []).flatMap((e: Obj) => e.hosts ?? []) as string[]) {
            const [nsPart, host] = entry.split("/", 2);
            const ns = nsPart === "." ? scNs : nsPart;
            if (ns !== "*" && !namespaces.has(ns)) {
                report(sc, `egress host ${entry}: namespace ${ns} does not exist`);
                continue;
            }
            if (host === "*" || ns === "*" || !ownNamespace(ns, ctx)) continue;
            const declared = [
                ...serviceHosts.filter((s) => s.ns === ns).map((s) => s.host),
                ...byKind(objects, "ServiceEntry")
                    .filter((se) => se.metadata.namespace === ns && exportedTo(se, scNs))
                    .flatMap((se) => spec(se).hosts as string[]),
            ];
            if (!declared.some((h) => egressAdmits(`${ns}/${host}`, h, ns, scNs)))
                report(sc, `egress host ${entry} matches no Service or ServiceEntry visible to ${scNs}`);
        }
    }
    for (const kind of ["Sidecar", "Telemetry"]) {
        for (const o of byKind(objects, kind)) {
            const sel = kind === "Sidecar" ? spec(o).workloadSelector?.labels : spec(o).selector?.matchLabels;
            if (!sel || !ownNamespace(o.metadata.namespace!, ctx)) continue;
            if (!pods.some((p) => p.namespace === o.metadata.namespace && matches(sel, p.labels)))
                report(o, `selector ${JSON.stringify(sel)} selects no pod`);
        }
    }
    const accounts = new Set(
        byKind(objects, "ServiceAccount").map((s) => `${s.metadata.namespace}/${s.metadata.name}`),
    );
    for (const ap of byKind(objects, "AuthorizationPolicy")) {
        for (const rule of spec(ap).rules ?? [])
            for (const from of rule.from ?? []) {
                const src = from.source ?? {};
                for (const ns of [...(src.namespaces ?? []), ...(src.notNamespaces ?? [])] as string[]) {
                    const re = new RegExp(`^${ns.replace(/[.]/g, "\\.").replace(/\*/g, ".*")}$`);
                    if (![...namespaces].some((n) => re.test(n))) report(ap, `source namespace ${ns} does not exist`);
                }
                for (const pr of [...(src.principals ?? []), ...(src.notPrincipals ?? [])] as string[]) {
                    const m = /^([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/.exec(pr);
                    if (!m) {
                        if (!pr.includes("*"))
                            report(ap, `principal ${pr} is not <trust domain>/ns/<namespace>/sa/<account>`);
                        continue;
                    }
                    const [, td, ns, sa] = m;
                    if (td !== ctx.trustDomain) report(ap, `principal ${pr}: trust domain is ${ctx.trustDomain}`);
                    else if (!namespaces.has(ns)) report(ap, `principal ${pr}: namespace ${ns} does not exist`);
                    else if (ownNamespace(ns, ctx) && !accounts.has(`${ns}/${sa}`))
                        report(ap, `principal ${pr}: no service account ${sa} in ${ns}`);
                }
            }
    }
    return out;
};

/**
 * IST0127 NoMatchingWorkloadsFound: an AuthorizationPolicy whose selector matches no in-mesh pod of its namespace
 * (or, selector-less, in a namespace with no in-mesh pod).
 */
export const IST0127: Analyzer = (objects, ctx) => {
    const injected = injectedNamespaces(objects);
    const pods = podTemplates(objects).filter((p) => inMesh(p, injected));
    return byKind(objects, "AuthorizationPolicy")
        .filter((ap) => ownNamespace(ap.metadata.namespace!, ctx))
        .filter((ap) => {
            const sel = spec(ap).selector?.matchLabels;
            const inNs = pods.filter((p) => p.namespace === ap.metadata.namespace);
            return sel ? !inNs.some((p) => matches(sel, p.labels)) : inNs.length === 0;
        })
        .map((ap) => ({ code: "IST0127", object: ref(ap), message: "no workload matches the policy" }));
};

/**
 * Two selectors on one pod (conflictCode), or several selector-less objects of the kind in one namespace
 * (nsWideCode): Istio then applies one of them arbitrarily.
 */
function selectorConflicts(
    kind: string,
    selectorOf: (o: K8sObject) => Record<string, string> | undefined,
    conflictCode: string,
    nsWideCode: string,
): Analyzer {
    return (objects) => {
        const out: Finding[] = [];
        const all = byKind(objects, kind);
        for (const p of podTemplates(objects)) {
            const selecting = all.filter(
                (o) => o.metadata.namespace === p.namespace && matches(selectorOf(o), p.labels),
            );
            if (selecting.length > 1)
                for (const o of selecting)
                    out.push({
                        code: conflictCode,
                        object: ref(o),
                        message: `selects ${ref(p.owner)} with ${selecting.map((x) => x.metadata.name).join(", ")}`,
                    });
        }
        const nsWide = new Map<string, K8sObject[]>();
        for (const o of all.filter((x) => !selectorOf(x)))
            nsWide.set(o.metadata.namespace!, [...(nsWide.get(o.metadata.namespace!) ?? []), o]);
        for (const [ns, list] of nsWide)
            if (list.length > 1)
                for (const o of list)
                    out.push({
                        code: nsWideCode,
                        object: ref(o),
                        message: `more than one selector-less ${kind} in ${ns}`,
                    });
        return out;
    };
}

/** IST0110 ConflictingSidecarWorkloadSelectors and IST0111 MultipleSidecarsWithoutWorkloadSelectors. */
export const IST0110_IST0111 = selectorConflicts(
    "Sidecar",
    (o) => spec(o).workloadSelector?.labels,
    "IST0110",
    "IST0111",
);

/** IST0159 ConflictingTelemetryWorkloadSelectors and IST0160 MultipleTelemetriesWithoutWorkloadSelectors. */
export const IST0159_IST0160 = selectorConflicts(
    "Telemetry",
    (o) => spec(o).selector?.matchLabels,
    "IST0159",
    "IST0160",
);

/** Providers Istio's default mesh config defines (extensionProviders prometheus, stackdriver, envoy). */
export const DEFAULT_TELEMETRY_PROVIDERS = ["prometheus", "stackdriver", "envoy"];

/**
 * IST0157 InvalidTelemetryProvider: a Telemetry entry that is not disabled but names no provider (and the mesh
 * sets no default provider) is ignored; we also hold every named provider to the mesh's defined ones.
 */
export const IST0157: Analyzer = (objects) => {
    const out: Finding[] = [];
    for (const t of byKind(objects, "Telemetry"))
        for (const section of ["accessLogging", "metrics", "tracing"])
            for (const entry of (spec(t)[section] ?? []) as Obj[]) {
                if (entry.disabled === true) continue;
                const providers = (entry.providers ?? []) as Obj[];
                if (section === "accessLogging" && providers.length === 0)
                    out.push({ code: "IST0157", object: ref(t), message: `${section} entry names no provider` });
                for (const pr of providers)
                    if (!DEFAULT_TELEMETRY_PROVIDERS.includes(pr.name))
                        out.push({
                            code: "IST0157",
                            object: ref(t),
                            message: `${section} provider ${pr.name} is not defined in the mesh config`,
                        });
            }
    return out;
};

/** IST0144 InvalidApplicationUID: an application container (or the pod) runs as UID 1337, the proxy's UID. */
export const IST0144: Analyzer = (objects) =>
    podTemplates(objects)
        .filter(
            (p) =>
                p.spec.securityContext?.runAsUser === 1337 ||
                (p.spec.containers ?? []).some(
                    (c: Obj) => c.name !== "istio-proxy" && c.securityContext?.runAsUser === 1337,
                ),
        )
        .map((p) => ({ code: "IST0144", object: ref(p.owner), message: "runs as UID 1337 (the sidecar's)" }));

/**
 * IST0167 IneffectivePolicy, for PeerAuthentication port-level settings: `portLevelMtls` applies only with a
 * workload selector, and only to ports the selected workloads expose (container ports).
 */
export const IST0167: Analyzer = (objects, ctx) => {
    const out: Finding[] = [];
    const pods = podTemplates(objects);
    for (const pa of byKind(objects, "PeerAuthentication")) {
        const ports = Object.keys(spec(pa).portLevelMtls ?? {});
        if (ports.length === 0) continue;
        const sel = spec(pa).selector?.matchLabels;
        if (!sel) {
            out.push({ code: "IST0167", object: ref(pa), message: "portLevelMtls without a selector has no effect" });
            continue;
        }
        if (!ownNamespace(pa.metadata.namespace!, ctx)) continue;
        for (const p of pods.filter((x) => x.namespace === pa.metadata.namespace && matches(sel, x.labels))) {
            const exposed = (p.spec.containers ?? []).flatMap((c: Obj) =>
                (c.ports ?? []).map((cp: Obj) => String(cp.containerPort)),
            );
            for (const port of ports.filter((x) => !exposed.includes(x)))
                out.push({
                    code: "IST0167",
                    object: ref(pa),
                    message: `port ${port} is not a container port of ${ref(p.owner)}`,
                });
        }
    }
    return out;
};

/**
 * Istio annotations on Pods (from istio/api annotation/annotations.yaml): the ones this program may set, with the
 * resources they attach to and whether they are deprecated.
 */
export const ISTIO_ANNOTATIONS: Record<string, { resources: string[]; deprecated?: string }> = {
    "sidecar.istio.io/inject": { resources: ["Pod"], deprecated: 'in favor of the "sidecar.istio.io/inject" label' },
    "proxy.istio.io/config": { resources: ["Pod"] },
    "sidecar.istio.io/statsHistogramBuckets": { resources: ["Pod"] },
    "sidecar.istio.io/statsEvictionInterval": { resources: ["Pod"] },
    "sidecar.istio.io/proxyCPU": { resources: ["Pod"] },
    "sidecar.istio.io/proxyMemory": { resources: ["Pod"] },
    "sidecar.istio.io/proxyCPULimit": { resources: ["Pod"] },
    "sidecar.istio.io/proxyMemoryLimit": { resources: ["Pod"] },
    "prometheus.istio.io/merge-metrics": { resources: ["Pod"] },
    "traffic.sidecar.istio.io/excludeOutboundPorts": { resources: ["Pod"] },
    "traffic.sidecar.istio.io/excludeInboundPorts": { resources: ["Pod"] },
    "networking.istio.io/exportTo": { resources: ["Service"] },
};

/** ProxyConfig fields (istio.mesh.v1alpha1.ProxyConfig) this program may set in proxy.istio.io/config. */
const PROXY_CONFIG_FIELDS = [
    "holdApplicationUntilProxyStarts",
    "proxyMetadata",
    "terminationDrainDuration",
    "concurrency",
    "drainDuration",
    "proxyStatsMatcher",
];

/**
 * IST0107 MisplacedAnnotation, IST0108 UnknownAnnotation, IST0125 InvalidAnnotation, IST0135 DeprecatedAnnotation:
 * Istio annotations on Namespaces, Services, Deployments and pods (pod templates).
 */
export const ANNOTATIONS: Analyzer = (objects) => {
    const out: Finding[] = [];
    const check = (o: K8sObject, kind: string, annotations: Record<string, string>, labels: Record<string, string>) => {
        for (const [name, value] of Object.entries(annotations)) {
            if (!name.split("/")[0].endsWith("istio.io")) continue;
            const def = ISTIO_ANNOTATIONS[name];
            const where = kind === "Pod" ? `${ref(o)} pod template` : ref(o);
            if (!def) {
                out.push({ code: "IST0108", object: ref(o), message: `${where}: unknown annotation ${name}` });
                continue;
            }
            if (def.deprecated && !(name === "sidecar.istio.io/inject" && labels[name] !== undefined))
                out.push({
                    code: "IST0135",
                    object: ref(o),
                    message: `${where}: ${name} is deprecated ${def.deprecated}`,
                });
            if (!def.resources.includes(kind)) {
                out.push({
                    code: "IST0107",
                    object: ref(o),
                    message: `${where}: ${name} belongs on ${def.resources.join(", ")}`,
                });
                continue;
            }
            if (name === "proxy.istio.io/config") {
                let cfg: Obj | undefined;
                try {
                    // eslint-disable-next-line @typescript-eslint/no-require-imports
                    cfg = (require("yaml") as typeof import("yaml")).parse(value) as Obj;
                } catch (e) {
                    out.push({
                        code: "IST0125",
                        object: ref(o),
                        message: `${where}: ${name} is not YAML: ${(e as Error).message}`,
                    });
                    continue;
                }
                const unknown = Object.keys(cfg ?? {}).filter((k) => !PROXY_CONFIG_FIELDS.includes(k));
                const badMeta = Object.entries((cfg?.proxyMetadata ?? {}) as Obj).filter(
                    ([, v]) => typeof v !== "string",
                );
                if (typeof cfg !== "object" || cfg === null || unknown.length > 0 || badMeta.length > 0)
                    out.push({
                        code: "IST0125",
                        object: ref(o),
                        message: `${where}: ${name} is not a ProxyConfig (unknown ${unknown.join(", ") || "-"}, non-string proxyMetadata ${badMeta.map(([k]) => k).join(", ") || "-"})`,
                    });
            }
        }
    };
    for (const o of objects) {
        if (["Namespace", "Service", "Deployment"].includes(o.kind))
            check(o, o.kind, o.metadata.annotations ?? {}, o.metadata.labels ?? {});
    }
    for (const p of podTemplates(objects)) check(p.owner, "Pod", p.annotations, p.labels);
    return out;
};

const PROTOCOLS = ["HTTP", "HTTPS", "GRPC", "GRPC-WEB", "HTTP2", "MONGO", "REDIS", "MYSQL", "TCP", "TLS", "UDP"];
const isIpOrCidr = (a: string) => {
    const [ip, bits] = a.split("/");
    if (isIP(ip) === 0) return false;
    if (bits === undefined) return true;
    return /^\d+$/.test(bits) && Number(bits) <= (isIP(ip) === 4 ? 32 : 128);
};

/**
 * IST0106 SchemaValidationError and IST0133 SchemaWarning: the semantic rules Istio's validating webhook applies
 * beyond the OpenAPI schema (istio/istio pkg/config/validation), for the kinds this program renders with rules
 * that can fail: ServiceEntry (addresses, ports, protocols, hosts per resolution, endpoints; the warning that TCP
 * ports need addresses when istiod does not allocate them) and Telemetry (providers, tag overrides).
 */
export const IST0106_IST0133: Analyzer = (objects, ctx) => {
    const out: Finding[] = [];
    const err = (o: K8sObject, m: string) => out.push({ code: "IST0106", object: ref(o), message: m });
    const warn = (o: K8sObject, m: string) => out.push({ code: "IST0133", object: ref(o), message: m });
    for (const se of byKind(objects, "ServiceEntry")) {
        const s = spec(se);
        const resolution: string = s.resolution ?? "NONE";
        const addresses: string[] = s.addresses ?? [];
        for (const a of addresses) if (!isIpOrCidr(a)) err(se, `address ${a} is not an IP or CIDR`);
        if (addresses.some((a) => a.includes("/")) && !["NONE", "STATIC"].includes(resolution))
            err(se, "CIDR addresses are allowed only for NONE/STATIC resolution types");
        const names = new Set<string>();
        const numbers = new Set<number>();
        const optedOut = se.metadata.labels?.["networking.istio.io/enable-autoallocate-ip"] === "false";
        const allocated = ctx.controlPlaneAutoAllocate && resolution !== "NONE" && !optedOut;
        for (const p of (s.ports ?? []) as Obj[]) {
            if (names.has(p.name)) err(se, `port name ${p.name} already defined`);
            if (numbers.has(p.number)) err(se, `port ${p.number} already defined`);
            names.add(p.name);
            numbers.add(p.number);
            if (p.protocol && !PROTOCOLS.includes(String(p.protocol).toUpperCase()))
                err(se, `unsupported protocol ${p.protocol}`);
            if (addresses.length === 0 && !allocated && isTcp(p.protocol))
                warn(
                    se,
                    "addresses are required for ports serving TCP (or unset) protocol when IP Autoallocation is not enabled",
                );
        }
        if (
            resolution !== "NONE" &&
            (s.hosts ?? []).length > 1 &&
            ((s.ports ?? []) as Obj[]).some((p) => !/^(HTTP|HTTP2|GRPC|GRPC-WEB|HTTPS|TLS)$/i.test(p.protocol ?? ""))
        )
            err(se, "multiple hosts provided with non-HTTP, non-TLS ports");
        const endpoints = (s.endpoints ?? []) as Obj[];
        if (resolution === "STATIC")
            for (const e of endpoints)
                if (isIP(e.address ?? "") === 0) err(se, `STATIC endpoint address ${e.address} is not an IP`);
        if (resolution === "NONE" && endpoints.length > 0)
            err(se, "no endpoints should be provided for resolution type none");
        for (const e of endpoints)
            for (const name of Object.keys(e.ports ?? {}))
                if (!names.has(name)) err(se, `endpoint port ${name} is not defined by the service entry`);
    }
    for (const t of byKind(objects, "Telemetry")) {
        const s = spec(t);
        for (const section of ["metrics", "accessLogging", "tracing"])
            for (const entry of (s[section] ?? []) as Obj[])
                for (const pr of (entry.providers ?? []) as Obj[])
                    if (!pr?.name) err(t, "providers.name may not be empty");
        if ((s.tracing ?? []).length > 1) warn(t, "multiple tracing is not currently supported");
        for (const m of (s.metrics ?? []) as Obj[])
            for (const o of (m.overrides ?? []) as Obj[]) {
                if (o.match?.customMetric === "") err(t, "customMetric may not be empty");
                for (const [tag, to] of Object.entries((o.tagOverrides ?? {}) as Obj)) {
                    if (tag === "") warn(t, "tagOverrides.name may not be empty");
                    if (to?.operation === "REMOVE" && to.value)
                        err(t, `tagOverrides.${tag}: value may only be set when operation is UPSERT`);
                    if ((to?.operation ?? "UPSERT") === "UPSERT" && !to?.value)
                        err(t, `tagOverrides.${tag}: value must be set when operation is UPSERT`);
                }
            }
    }
    return out;
};

/** Every analyzer, by the IST codes it reports. */
export const ANALYZERS: Record<string, Analyzer> = {
    IST0101,
    IST0102,
    "IST0106/IST0133": IST0106_IST0133,
    "IST0107/IST0108/IST0125/IST0135": ANNOTATIONS,
    "IST0110/IST0111": IST0110_IST0111,
    IST0116,
    IST0118,
    IST0123,
    IST0127,
    IST0134,
    IST0137,
    IST0144,
    IST0157,
    "IST0159/IST0160": IST0159_IST0160,
    IST0167,
    IST0177,
};
