/**
 * Fixed names of the objects other components or crawlers address by DNS or by identity (Services and
 * ServiceAccounts: Istio principals are `cluster.local/ns/<namespace>/sa/<account>`), and their ports. Everything
 * else is auto-named by the provider.
 */

export const PORTS = {
    /** The forward-proxy port crawlers use (HTTP_PROXY=http://<vendor>-gateway.<ns>:3128). */
    gatewayProxy: 3128,
    /** Metrics (/metrics), liveness (/healthz) and readiness (/readyz) of the proxy program's modes. */
    proxyMetrics: 9102,
    /** Vendor simulators listen like a vendor pool endpoint. */
    simulatorProxy: 3128,
    targetHttp: 8080,
    targetHttps: 8443,
    prometheus: 9090,
    alertmanager: 9093,
    alertmanagerCluster: 9094,
    grafana: 3000,
    kubeStateMetrics: 8080,
    kubeStateMetricsTelemetry: 8081,
    prometheusAdapter: 6443,
    /** Istio sidecar agent: merged Envoy and application metrics, outside mTLS. */
    istioMergedMetrics: 15020,
} as const;

export const NAMES = {
    /**
     * The gateway's Service, ServiceAccount AND Deployment name: a fixed Deployment name makes Istio's
     * `destination_workload` equal to `<vendor>-gateway`, which the scrape config maps to the `vendor` label.
     */
    gateway: (vendor: string) => `${vendor}-gateway`,
    /**
     * Headless Service over a vendor's gateway pods: Prometheus finds every replica by DNS (A records), which needs no
     * Kubernetes API permission and works with Prometheus builds that lack Kubernetes discovery (Debian's).
     */
    gatewayPods: (vendor: string) => `${vendor}-gateway-pods`,
    /** Headless Service over the load generator's pods, likewise. */
    loadGeneratorPods: "loadgen-pods",
    prometheus: "prometheus",
    globalPrometheus: "prometheus-global",
    alertmanager: "alertmanager",
    /** Headless Service over the Alertmanager StatefulSet, for cluster peers. */
    alertmanagerPeers: "alertmanager-peers",
    grafana: "grafana",
    kubeStateMetrics: "kube-state-metrics",
    prometheusAdapter: "prometheus-adapter",
    loadGenerator: "loadgen",
    target: "target",
    /** The simulator Service of a simulated pool: the first label of the pool's host. */
    simulator: (poolHost: string) => poolHost.split(".")[0],
} as const;

/**
 * `app.kubernetes.io/name` of each workload's pods. Prometheus discovers its targets by these labels (and the
 * container port named `metrics`), so components and the scrape config must agree on them.
 */
export const APP = {
    gateway: "proxy-gateway",
    prometheus: "prometheus",
    globalPrometheus: "prometheus-global",
    alertmanager: "alertmanager",
    grafana: "grafana",
    kubeStateMetrics: "kube-state-metrics",
    prometheusAdapter: "prometheus-adapter",
    loadGenerator: "loadgen",
    simulator: "vendor-sim",
    target: "target",
} as const;

/** Pod label carrying the vendor on gateway and simulator pods (becomes the `vendor` target label). */
export const VENDOR_LABEL = "proxy-monitor.io/vendor";
/** Pod label carrying the pool on simulator pods. */
export const POOL_LABEL = "proxy-monitor.io/pool";
/** Name of the container port every workload exposes metrics on. */
export const METRICS_PORT_NAME = "metrics";

/**
 * Pod label of workloads whose metrics port the (out-of-mesh) Prometheus scrapes in plain text: a PeerAuthentication
 * makes that one port PERMISSIVE for pods with this label, and a NetworkPolicy admits only the monitoring namespace.
 */
export const SCRAPE_LABEL = "proxy-monitor.io/scrape";

/** API versions of the Istio kinds, the oldest that Istio 1.18 and every later release serve. */
export const ISTIO_API = {
    networking: "networking.istio.io/v1beta1",
    security: "security.istio.io/v1beta1",
    telemetry: "telemetry.istio.io/v1alpha1",
} as const;
