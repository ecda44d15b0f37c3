/**
 * ProxyMesh: the namespaces, identities and Istio and network policy of the traffic path
 * crawler -> vendor gateway -> vendor pool.
 *
 * - Crawler namespaces, the gateway namespace and (dev) the simulator namespace are in the mesh with STRICT mTLS.
 *   The monitoring namespace is outside the mesh (no sidecars: Prometheus scrapes plain text); NetworkPolicies
 *   decide who reaches Prometheus, Alertmanager and Grafana.
 * - Crawlers reach only the gateways of the vendors they may use (Sidecar REGISTRY_ONLY + AuthorizationPolicy);
 *   each gateway reaches only its vendor's pools (ServiceEntries exported to the gateway namespace, Sidecar).
 * - A Telemetry resource keeps, on the gateways, only the TCP series and labels the per-namespace cost view reads.
 *
 * The builders are pure and exported for tests; the component only turns their output into resources.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { CrawlerNamespaceConfig, PROJECT, StackConfig, VendorConfig } from "./config";
import { PART_OF } from "./k8s";
import { ConfigError, ConfigProblem, show } from "./validate";
import { ISTIO_STANDARD_LABELS, KEPT_ISTIO_LABELS } from "../catalog/infra";
import { APP, ISTIO_API, NAMES, PORTS, SCRAPE_LABEL, VENDOR_LABEL } from "./names";

/** The stack settings the mesh reads. */
export type MeshStackConfig = Pick<
    StackConfig,
    "namespaces" | "vendors" | "crawlers" | "loadGenerator" | "mesh" | "destinations" | "monitoring"
>;

/** A plain Kubernetes object: what the builders return and the component creates. */
export interface ObjectSpec {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace?: string; labels?: Record<string, string> };
    spec?: Record<string, unknown>;
}

const INJECTION = "istio-injection";

/** Pod Security labels of a namespace. Without Istio CNI, injected pods need a privileged init container. */
export function podSecurityLabels(inMesh: boolean, istioCni: boolean): Record<string, string> {
    const enforce = inMesh && !istioCni ? "privileged" : "restricted";
    return {
        "pod-security.kubernetes.io/enforce": enforce,
        "pod-security.kubernetes.io/enforce-version": "latest",
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/warn-version": "latest",
        "pod-security.kubernetes.io/audit": "restricted",
        "pod-security.kubernetes.io/audit-version": "latest",
    };
}

export interface NamespacePlan {
    /** Namespaces the program creates, with their labels. */
    create: { name: string; labels: Record<string, string> }[];
    /** Existing namespaces the program labels for sidecar injection. */
    label: { name: string; labels: Record<string, string> }[];
}

export function planNamespaces(cfg: MeshStackConfig): NamespacePlan {
    const ns = (name: string, inMesh: boolean) => ({
        name,
        labels: {
            "app.kubernetes.io/part-of": PART_OF,
            [INJECTION]: inMesh ? "enabled" : "disabled",
            ...podSecurityLabels(inMesh, cfg.mesh.istioCni),
        },
    });
    const create = [ns(cfg.namespaces.monitoring, false), ns(cfg.namespaces.gateways, true)];
    if (cfg.loadGenerator.simulators) create.push(ns(cfg.namespaces.simulators, true));
    const label: NamespacePlan["label"] = [];
    for (const c of cfg.crawlers.namespaces) {
        if (c.manage === "create") create.push(ns(c.name, true));
        else label.push({ name: c.name, labels: { [INJECTION]: "enabled" } });
    }
    return { create, label };
}

/**
 * The pods the program's policy applies to in a crawler namespace: every pod where the program created the namespace;
 * only the crawler pods (`crawlers.podSelector`) where it merely labels an existing one, so the other workloads there
 * keep their egress and their callers from outside the mesh. Undefined: the whole namespace.
 */
export function crawlerScope(cfg: MeshStackConfig, c: CrawlerNamespaceConfig): Record<string, string> | undefined {
    return c.manage === "label" ? { ...cfg.crawlers.podSelector } : undefined;
}

/** Istio identity of a service account. */
export function principal(cfg: MeshStackConfig, namespace: string, account: string): string {
    return `${cfg.mesh.trustDomain}/ns/${namespace}/sa/${account}`;
}

/** In-mesh namespaces, where the program enforces STRICT mTLS. */
export function meshNamespaces(cfg: MeshStackConfig): string[] {
    const out = [cfg.namespaces.gateways, ...cfg.crawlers.namespaces.map((c) => c.name)];
    if (cfg.loadGenerator.simulators) out.push(cfg.namespaces.simulators);
    return out;
}

/**
 * PeerAuthentications: STRICT in every in-mesh namespace, and for pods labelled SCRAPE_LABEL the metrics port
 * PERMISSIVE, so the out-of-mesh Prometheus can scrape it (NetworkPolicy admits only the monitoring namespace).
 */
export function buildPeerAuthentications(cfg: MeshStackConfig): ObjectSpec[] {
    return meshNamespaces(cfg).flatMap((namespace) => {
        const crawlers = cfg.crawlers.namespaces.find((c) => c.name === namespace);
        const scope = crawlers && crawlerScope(cfg, crawlers);
        return [
            scope
                ? {
                      apiVersion: ISTIO_API.security,
                      kind: "PeerAuthentication",
                      metadata: { name: "crawlers", namespace },
                      spec: { selector: { matchLabels: scope }, mtls: { mode: "STRICT" } },
                  }
                : {
                      apiVersion: ISTIO_API.security,
                      kind: "PeerAuthentication",
                      metadata: { name: "default", namespace },
                      spec: { mtls: { mode: "STRICT" } },
                  },
            {
                apiVersion: ISTIO_API.security,
                kind: "PeerAuthentication",
                metadata: { name: "metrics-scrape", namespace },
                spec: {
                    selector: { matchLabels: { [SCRAPE_LABEL]: "true" } },
                    mtls: { mode: "STRICT" },
                    portLevelMtls: { [String(PORTS.proxyMetrics)]: { mode: "PERMISSIVE" } },
                },
            },
        ];
    });
}

/** External (non-simulated) pool endpoints of a vendor. */
function externalPools(v: VendorConfig) {
    return v.pools.filter((p) => !p.simulator);
}

/**
 * One ServiceEntry per external vendor pool endpoint, visible only in the gateway namespace. A pool with fixed
 * `addresses` is `resolution: STATIC` with them as addresses and endpoints; the others are `resolution: DNS`
 * without addresses, which on TCP match every connection to their port unless the gateway's sidecar answers DNS
 * for them with an allocated address (gatewayProxyConfig; checkPoolRouting refuses the config otherwise).
 */
export function buildServiceEntries(cfg: MeshStackConfig): ObjectSpec[] {
    return cfg.vendors.flatMap((v) =>
        externalPools(v).map((p) => ({
            apiVersion: ISTIO_API.networking,
            kind: "ServiceEntry",
            metadata: {
                name: `${v.name}-${p.name}`,
                namespace: cfg.namespaces.gateways,
                labels: { [VENDOR_LABEL]: v.name, "app.kubernetes.io/part-of": PART_OF },
            },
            spec: {
                hosts: [p.host],
                ...(p.addresses ? { addresses: [...p.addresses] } : {}),
                location: "MESH_EXTERNAL",
                resolution: p.addresses ? "STATIC" : "DNS",
                ports: [{ number: p.port, name: `tcp-${p.port}`, protocol: "TCP" }],
                ...(p.addresses ? { endpoints: p.addresses.map((address) => ({ address })) } : {}),
                exportTo: ["."],
            },
        })),
    );
}

/** Istio proxy config (annotation `proxy.istio.io/config`) of a pod. */
export interface ProxyConfig {
    holdApplicationUntilProxyStarts?: boolean;
    proxyMetadata?: Record<string, string>;
}

/**
 * The gateway pods' proxy config. With `mesh.addressAllocation` `istiod` or `sidecar` the sidecar captures DNS
 * (ISTIO_META_DNS_CAPTURE), so the gateway's lookup of a pool host gets that ServiceEntry's own address (allocated
 * by istiod, or by the sidecar with ISTIO_META_DNS_AUTO_ALLOCATE) and its connection is routed to that pool.
 */
export function gatewayProxyConfig(cfg: Pick<StackConfig, "mesh">): ProxyConfig {
    const dns: Record<string, string> =
        cfg.mesh.addressAllocation === "off"
            ? {}
            : cfg.mesh.addressAllocation === "sidecar"
              ? { ISTIO_META_DNS_CAPTURE: "true", ISTIO_META_DNS_AUTO_ALLOCATE: "true" }
              : { ISTIO_META_DNS_CAPTURE: "true" };
    return {
        holdApplicationUntilProxyStarts: true,
        ...(Object.keys(dns).length > 0 ? { proxyMetadata: dns } : {}),
    };
}

/** Whether a proxy config gets allocated addresses for address-less ServiceEntries (DNS capture + allocation). */
export function allocatesAddresses(pc: ProxyConfig, cfg: Pick<StackConfig, "mesh">): boolean {
    const md = pc.proxyMetadata ?? {};
    if (md.ISTIO_META_DNS_CAPTURE !== "true") return false;
    return md.ISTIO_META_DNS_AUTO_ALLOCATE === "true" || cfg.mesh.addressAllocation === "istiod";
}

/**
 * The check `pulumi preview` fails on: two address-less TCP ServiceEntries visible to one gateway's sidecar (its
 * Sidecar egress hosts) on the same port, while that gateway's pods do not allocate addresses. Such a sidecar has
 * one listener on 0.0.0.0:<port> and sends every pool's connections to one of them. One problem per colliding pool,
 * naming its key.
 */
export function checkPoolRouting(cfg: MeshStackConfig): ConfigProblem[] {
    const entries = buildServiceEntries(cfg);
    const sidecars = buildSidecars(cfg);
    const problems: ConfigProblem[] = [];
    const allocates = allocatesAddresses(gatewayProxyConfig(cfg), cfg);
    cfg.vendors.forEach((v, vi) => {
        const sidecar = sidecars.find((s) => s.metadata.name === NAMES.gateway(v.name))!;
        const egress = ((sidecar.spec!.egress as { hosts: string[] }[]) ?? []).flatMap((e) => e.hosts);
        const visible = entries.filter((e) => {
            const spec = e.spec as { hosts: string[] };
            return spec.hosts.some((h) => egress.includes(`./${h}`) || egress.includes(`${e.metadata.namespace}/${h}`));
        });
        const byPort = new Map<number, string[]>();
        for (const e of visible) {
            const spec = e.spec as { addresses?: string[]; ports: { number: number; protocol?: string }[] };
            if ((spec.addresses ?? []).length > 0) continue;
            for (const port of spec.ports.filter((p) => !p.protocol || /^tcp$/i.test(p.protocol)))
                byPort.set(port.number, [...(byPort.get(port.number) ?? []), e.metadata.name]);
        }
        if (allocates) return;
        for (const [port, names] of byPort) {
            if (names.length < 2) continue;
            v.pools.forEach((p, pi) => {
                if (p.simulator || p.addresses || p.port !== port) return;
                problems.push({
                    path: `${PROJECT}:vendors[${vi}].pools[${pi}].addresses`,
                    expected: `the pool's fixed IP addresses, since pools ${names.join(", ")} share TCP port ${port} without addresses and mesh.addressAllocation is "off" (or set ${PROJECT}:mesh.addressAllocation to istiod or sidecar)`,
                    found: show(undefined),
                });
            });
        }
    });
    return problems;
}

const gatewayHost = (cfg: MeshStackConfig, vendor: string) =>
    `${cfg.namespaces.gateways}/${NAMES.gateway(vendor)}.${cfg.namespaces.gateways}.svc.cluster.local`;

/**
 * Sidecars: for the crawlers of each crawler namespace (crawlerScope), outbound only to the gateways of the vendors
 * they may use, the control plane and their configured `egressHosts` (REGISTRY_ONLY); on each vendor's gateway,
 * outbound only to that vendor's pools and the control plane.
 */
export function buildSidecars(cfg: MeshStackConfig): ObjectSpec[] {
    const controlPlane = `${cfg.namespaces.istio}/*`;
    const crawlers = cfg.crawlers.namespaces.map((c) => {
        const scope = crawlerScope(cfg, c);
        return {
            apiVersion: ISTIO_API.networking,
            kind: "Sidecar",
            metadata: { name: scope ? "crawlers" : "default", namespace: c.name },
            spec: {
                ...(scope ? { workloadSelector: { labels: scope } } : {}),
                outboundTrafficPolicy: { mode: "REGISTRY_ONLY" },
                egress: [{ hosts: [...c.vendors.map((v) => gatewayHost(cfg, v)), controlPlane, ...c.egressHosts] }],
            },
        };
    });
    const gateways = cfg.vendors.map((v) => ({
        apiVersion: ISTIO_API.networking,
        kind: "Sidecar",
        metadata: { name: NAMES.gateway(v.name), namespace: cfg.namespaces.gateways },
        spec: {
            workloadSelector: { labels: { "app.kubernetes.io/name": APP.gateway, [VENDOR_LABEL]: v.name } },
            outboundTrafficPolicy: { mode: "REGISTRY_ONLY" },
            egress: [
                {
                    hosts: [
                        ...v.pools.map((p) => (p.simulator ? `${cfg.namespaces.simulators}/${p.host}` : `./${p.host}`)),
                        controlPlane,
                    ],
                },
            ],
        },
    }));
    return [...crawlers, ...gateways];
}

/**
 * AuthorizationPolicies: each vendor gateway admits, on its proxy port, only the crawler service accounts allowed to
 * use that vendor, and its metrics port (for Prometheus; NetworkPolicy narrows it to the monitoring namespace).
 * In the simulator namespace, simulators admit only the gateways and the target admits only the simulators.
 */
export function buildAuthorizationPolicies(cfg: MeshStackConfig): ObjectSpec[] {
    const metricsRule = { to: [{ operation: { ports: [String(PORTS.proxyMetrics)] } }] };
    const out: ObjectSpec[] = cfg.vendors.map((v) => {
        const principals = cfg.crawlers.namespaces
            .filter((c) => c.vendors.includes(v.name))
            .flatMap((c) => c.serviceAccounts.map((sa) => principal(cfg, c.name, sa)));
        return {
            apiVersion: ISTIO_API.security,
            kind: "AuthorizationPolicy",
            metadata: { name: NAMES.gateway(v.name), namespace: cfg.namespaces.gateways },
            spec: {
                selector: { matchLabels: { "app.kubernetes.io/name": APP.gateway, [VENDOR_LABEL]: v.name } },
                action: "ALLOW",
                rules: [
                    ...(principals.length > 0
                        ? [
                              {
                                  from: [{ source: { principals } }],
                                  to: [{ operation: { ports: [String(PORTS.gatewayProxy)] } }],
                              },
                          ]
                        : []),
                    metricsRule,
                ],
            },
        };
    });
    if (cfg.loadGenerator.simulators) {
        const ns = cfg.namespaces.simulators;
        out.push(
            {
                apiVersion: ISTIO_API.security,
                kind: "AuthorizationPolicy",
                metadata: { name: "vendor-simulators", namespace: ns },
                spec: {
                    selector: { matchLabels: { "app.kubernetes.io/name": APP.simulator } },
                    action: "ALLOW",
                    rules: [
                        {
                            from: [
                                {
                                    source: {
                                        principals: cfg.vendors.map((v) =>
                                            principal(cfg, cfg.namespaces.gateways, NAMES.gateway(v.name)),
                                        ),
                                    },
                                },
                            ],
                            to: [{ operation: { ports: [String(PORTS.simulatorProxy)] } }],
                        },
                        metricsRule,
                    ],
                },
            },
            {
                apiVersion: ISTIO_API.security,
                kind: "AuthorizationPolicy",
                metadata: { name: "target", namespace: ns },
                spec: {
                    selector: { matchLabels: { "app.kubernetes.io/name": APP.target } },
                    action: "ALLOW",
                    rules: [
                        {
                            from: [{ source: { namespaces: [ns] } }],
                            to: [{ operation: { ports: [String(PORTS.targetHttp), String(PORTS.targetHttps)] } }],
                        },
                        metricsRule,
                    ],
                },
            },
        );
    }
    return out;
}

const TCP_METRICS = ["TCP_SENT_BYTES", "TCP_RECEIVED_BYTES", "TCP_OPENED_CONNECTIONS"];
const DISABLED_METRICS = [
    "REQUEST_COUNT",
    "REQUEST_DURATION",
    "REQUEST_SIZE",
    "RESPONSE_SIZE",
    "TCP_CLOSED_CONNECTIONS",
    "GRPC_REQUEST_MESSAGES",
    "GRPC_RESPONSE_MESSAGES",
];

/**
 * Telemetry: on the gateways (server side, reporter destination) keep the TCP bytes and opened connections with
 * only KEPT_ISTIO_LABELS, disable the rest, and disable every client-side metric (the gateway-to-pool hop is
 * measured by the gateway itself). In crawler namespaces disable Istio's metrics entirely: nobody scrapes crawler
 * sidecars, so their stats would only cost sidecar memory.
 */
export function buildTelemetry(cfg: MeshStackConfig): ObjectSpec[] {
    const tcpLabels = ISTIO_STANDARD_LABELS.filter(
        (l) => !KEPT_ISTIO_LABELS.includes(l) && l !== "response_code" && l !== "grpc_response_status",
    );
    const remove = Object.fromEntries(tcpLabels.map((l) => [l, { operation: "REMOVE" }]));
    const gateways: ObjectSpec = {
        apiVersion: ISTIO_API.telemetry,
        kind: "Telemetry",
        metadata: { name: "proxy-gateways", namespace: cfg.namespaces.gateways },
        spec: {
            selector: { matchLabels: { "app.kubernetes.io/name": APP.gateway } },
            metrics: [
                {
                    providers: [{ name: "prometheus" }],
                    overrides: [
                        { match: { metric: "ALL_METRICS", mode: "CLIENT" }, disabled: true },
                        ...DISABLED_METRICS.map((metric) => ({ match: { metric, mode: "SERVER" }, disabled: true })),
                        ...TCP_METRICS.map((metric) => ({ match: { metric, mode: "SERVER" }, tagOverrides: remove })),
                    ],
                },
            ],
        },
    };
    const crawlers: ObjectSpec[] = cfg.crawlers.namespaces.map((c) => ({
        apiVersion: ISTIO_API.telemetry,
        kind: "Telemetry",
        metadata: { name: "crawler-metrics-off", namespace: c.name },
        spec: {
            ...(crawlerScope(cfg, c) ? { selector: { matchLabels: crawlerScope(cfg, c) } } : {}),
            metrics: [
                {
                    providers: [{ name: "prometheus" }],
                    overrides: [{ match: { metric: "ALL_METRICS", mode: "CLIENT_AND_SERVER" }, disabled: true }],
                },
            ],
        },
    }));
    return [gateways, ...crawlers];
}

const byName = (namespace: string) => ({
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": namespace } },
});
const app = (name: string) => ({ matchLabels: { "app.kubernetes.io/name": name } });
const tcp = (...ports: number[]) => ports.map((port) => ({ protocol: "TCP", port }));

/**
 * NetworkPolicies: default-deny ingress in every namespace the program runs workloads in, then the narrow allows
 * each component needs.
 */
export function buildNetworkPolicies(cfg: MeshStackConfig): ObjectSpec[] {
    const mon = cfg.namespaces.monitoring;
    const fromMonitoring = byName(mon);
    // Operator mode: the operator's Prometheus pods (app.kubernetes.io/name: prometheus) in their own namespace.
    const fromPrometheus =
        cfg.monitoring.mode === "operator"
            ? [{ ...byName(cfg.monitoring.operator.prometheusNamespace), podSelector: app(APP.prometheus) }]
            : [
                  { ...fromMonitoring, podSelector: app(APP.prometheus) },
                  { ...fromMonitoring, podSelector: app(APP.globalPrometheus) },
              ];
    const np = (namespace: string, name: string, spec: Record<string, unknown>): ObjectSpec => ({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name, namespace, labels: { "app.kubernetes.io/part-of": PART_OF } },
        spec,
    });
    const denyAll = (namespace: string) =>
        np(namespace, "default-deny-ingress", { podSelector: {}, policyTypes: ["Ingress"] });
    const ingressFrom = cfg.mesh.ingressNamespaces.map(byName);
    const gw = cfg.namespaces.gateways;
    const out: ObjectSpec[] = [
        denyAll(mon),
        np(mon, "prometheus", {
            podSelector: app(APP.prometheus),
            policyTypes: ["Ingress"],
            ingress: [
                {
                    from: [
                        { podSelector: app(APP.grafana) },
                        { podSelector: app(APP.globalPrometheus) },
                        { podSelector: app(APP.prometheusAdapter) },
                        { podSelector: app(APP.prometheus) },
                        ...ingressFrom,
                    ],
                    ports: tcp(PORTS.prometheus),
                },
            ],
        }),
        np(mon, "prometheus-global", {
            podSelector: app(APP.globalPrometheus),
            policyTypes: ["Ingress"],
            ingress: [{ from: [{ podSelector: app(APP.grafana) }, ...ingressFrom], ports: tcp(PORTS.prometheus) }],
        }),
        np(mon, "alertmanager", {
            podSelector: app(APP.alertmanager),
            policyTypes: ["Ingress"],
            ingress: [
                {
                    from: [
                        { podSelector: app(APP.prometheus) },
                        { podSelector: app(APP.globalPrometheus) },
                        { podSelector: app(APP.grafana) },
                        ...ingressFrom,
                    ],
                    ports: tcp(PORTS.alertmanager),
                },
                {
                    from: [{ podSelector: app(APP.alertmanager) }],
                    ports: [...tcp(PORTS.alertmanagerCluster), { protocol: "UDP", port: PORTS.alertmanagerCluster }],
                },
            ],
        }),
        np(mon, "grafana", {
            podSelector: app(APP.grafana),
            policyTypes: ["Ingress"],
            // Prometheus scrapes Grafana (job grafana) whether or not an ingress also reaches it.
            ingress: [{ from: [{ podSelector: app(APP.prometheus) }, ...ingressFrom], ports: tcp(PORTS.grafana) }],
        }),
        np(mon, "kube-state-metrics", {
            podSelector: app(APP.kubeStateMetrics),
            policyTypes: ["Ingress"],
            ingress: [
                {
                    from: [{ podSelector: app(APP.prometheus) }],
                    ports: tcp(PORTS.kubeStateMetrics, PORTS.kubeStateMetricsTelemetry),
                },
            ],
        }),
        // The API server calls the adapter from the control plane, whose addresses vary by cluster.
        np(mon, "prometheus-adapter", {
            podSelector: app(APP.prometheusAdapter),
            policyTypes: ["Ingress"],
            ingress: [{ ports: tcp(PORTS.prometheusAdapter) }],
        }),
        denyAll(gw),
        np(gw, "gateways", {
            podSelector: app(APP.gateway),
            policyTypes: ["Ingress"],
            ingress: [
                { from: cfg.crawlers.namespaces.map((c) => byName(c.name)), ports: tcp(PORTS.gatewayProxy) },
                { from: fromPrometheus, ports: tcp(PORTS.proxyMetrics, PORTS.istioMergedMetrics) },
            ],
        }),
    ];
    if (cfg.loadGenerator.simulators) {
        const sim = cfg.namespaces.simulators;
        out.push(
            denyAll(sim),
            np(sim, "vendor-simulators", {
                podSelector: app(APP.simulator),
                policyTypes: ["Ingress"],
                ingress: [
                    { from: [byName(gw)], ports: tcp(PORTS.simulatorProxy) },
                    { from: fromPrometheus, ports: tcp(PORTS.proxyMetrics) },
                ],
            }),
            np(sim, "target", {
                podSelector: app(APP.target),
                policyTypes: ["Ingress"],
                ingress: [
                    { from: [{ podSelector: app(APP.simulator) }], ports: tcp(PORTS.targetHttp, PORTS.targetHttps) },
                    { from: fromPrometheus, ports: tcp(PORTS.proxyMetrics) },
                ],
            }),
        );
    }
    if (cfg.loadGenerator.enabled) {
        const lg = cfg.loadGenerator.namespace;
        // Default-deny only in a namespace of ours: in a labelled one it would isolate every workload there.
        const owned = planNamespaces(cfg).create.some((n) => n.name === lg);
        out.push(
            ...(owned ? [denyAll(lg)] : []),
            np(lg, "loadgen-metrics", {
                podSelector: app(APP.loadGenerator),
                policyTypes: ["Ingress"],
                ingress: [{ from: fromPrometheus, ports: tcp(PORTS.proxyMetrics) }],
            }),
        );
    }
    return out;
}

/** Every Istio and NetworkPolicy object of the mesh, in creation order. */
export function buildMeshPolicies(cfg: MeshStackConfig): ObjectSpec[] {
    return [
        ...buildPeerAuthentications(cfg),
        ...buildServiceEntries(cfg),
        ...buildSidecars(cfg),
        ...buildAuthorizationPolicies(cfg),
        ...buildTelemetry(cfg),
        ...buildNetworkPolicies(cfg),
    ];
}

/** Args for the ProxyMesh component. */
export interface ProxyMeshArgs {
    /** The validated stack config. */
    readonly config: MeshStackConfig;
}

/** Namespaces, gateway identities, Istio policy and NetworkPolicies of the traffic path. */
export class ProxyMesh extends pulumi.ComponentResource {
    /** Namespaces by name (created ones and labelled existing ones). */
    public readonly namespaces: Record<string, pulumi.Output<string>> = {};
    /** The gateway ServiceAccount of each vendor. */
    public readonly gatewayServiceAccounts: Record<string, k8s.core.v1.ServiceAccount> = {};

    constructor(name: string, args: ProxyMeshArgs, opts?: pulumi.ComponentResourceOptions) {
        super("proxy-monitor:index:ProxyMesh", name, {}, opts);
        const cfg = args.config;
        const routing = checkPoolRouting(cfg);
        if (routing.length > 0) throw new ConfigError(routing);
        const plan = planNamespaces(cfg);
        // What the rest of the mesh waits for; workloads depend on the component itself (`dependsOn: [mesh]`).
        const nsDeps: pulumi.Resource[] = [];
        for (const n of plan.create) {
            const ns = new k8s.core.v1.Namespace(
                `${name}-ns-${n.name}`,
                { metadata: { name: n.name, labels: n.labels } },
                { parent: this },
            );
            this.namespaces[n.name] = ns.metadata.name;
            nsDeps.push(ns);
        }
        for (const n of plan.label) {
            const ns = new k8s.core.v1.NamespacePatch(
                `${name}-ns-${n.name}`,
                {
                    metadata: {
                        name: n.name,
                        labels: n.labels,
                        annotations: { "pulumi.com/patchForce": "true" },
                    },
                },
                { parent: this },
            );
            this.namespaces[n.name] = ns.metadata.name;
            nsDeps.push(ns);
        }
        for (const v of cfg.vendors) {
            this.gatewayServiceAccounts[v.name] = new k8s.core.v1.ServiceAccount(
                `${name}-sa-${v.name}-gateway`,
                {
                    metadata: {
                        name: NAMES.gateway(v.name),
                        namespace: cfg.namespaces.gateways,
                        labels: {
                            "app.kubernetes.io/name": APP.gateway,
                            [VENDOR_LABEL]: v.name,
                            "app.kubernetes.io/part-of": PART_OF,
                        },
                    },
                    automountServiceAccountToken: false,
                },
                { parent: this, dependsOn: nsDeps },
            );
        }
        for (const o of buildMeshPolicies(cfg)) {
            const logical = `${name}-${o.kind.toLowerCase()}-${o.metadata.namespace}-${o.metadata.name}`;
            if (o.kind === "NetworkPolicy")
                new k8s.networking.v1.NetworkPolicy(logical, o as k8s.networking.v1.NetworkPolicyArgs, {
                    parent: this,
                    dependsOn: nsDeps,
                });
            else new k8s.apiextensions.CustomResource(logical, o, { parent: this, dependsOn: nsDeps });
        }
        this.registerOutputs({ namespaces: this.namespaces });
    }
}
