/**
 * The typed stack configuration: schema, defaults (in one place: DEFAULTS) and validation with clear errors.
 *
 * `parseStackConfig` is pure: it takes the raw values of the `proxy-monitor:*` keys (JSON-decoded where the value is
 * JSON) and returns either a StackConfig or every problem found. `loadStackConfig` reads the keys from the Pulumi
 * runtime and throws a ConfigError listing all problems.
 */
import { isIP } from "net";
import * as pulumi from "@pulumi/pulumi";
import { parsePortRange } from "../proxy/gateway/destinations";
import {
    ConfigError,
    ConfigProblem,
    DNS_LABEL,
    DNS_SUBDOMAIN,
    K8S_BYTES,
    K8S_CPU,
    PROM_DURATION,
    PROM_SIZE,
    Reader,
    checkUnique,
    durationMs,
    isObject,
    show,
} from "./validate";

export const PROJECT = "proxy-monitor";

export const TIERS = ["datacenter", "residential", "mobile", "isp"] as const;
export type Tier = (typeof TIERS)[number];

export interface Resources {
    readonly requests: { readonly cpu: string; readonly memory: string };
    readonly limits: { readonly cpu: string; readonly memory: string };
}

export interface PoolConfig {
    /** DNS label, unique within the vendor; the `pool` label value. */
    readonly name: string;
    /** Host of the vendor's proxy endpoint for this pool. */
    readonly host: string;
    readonly port: number;
    /** Relative share of traffic among the vendor's healthy pools. */
    readonly weight: number;
    readonly region: string;
    /**
     * Fixed IP addresses of the pool's endpoint, when the vendor publishes them: its ServiceEntry then uses
     * `resolution: STATIC` with these as addresses and endpoints, so sidecars route it by IP without DNS capture.
     */
    readonly addresses?: readonly string[];
    /**
     * When set, the pool is an in-mesh vendor simulator deployed by this program (dev stacks): `host` must be
     * `<service>.<namespaces.simulators>.svc.cluster.local`, and credentials are generated unless given.
     */
    readonly simulator?: SimulatorConfig;
}

export interface SimulatorConfig {
    /** Median and 95th percentile latency of the simulated proxy answer, ms. */
    readonly latencyP50Ms: number;
    readonly latencyP95Ms: number;
    /** Fraction of requests answered with an error (spread over 403, 407, 429, 502, 503, timeouts, resets). */
    readonly errorRate: number;
    /** Bandwidth cap per connection, bytes per second (0: none). */
    readonly bandwidthBytesPerSecond: number;
}

export interface SlaConfig {
    /** Success-ratio objective, strictly between 0 and 1 (e.g. 0.995). */
    readonly successObjective: number;
    /** 95th percentile of the time to the proxy's answer, ms. */
    readonly p95LatencyMs: number;
}

export interface VendorConfig {
    /** DNS label; the `vendor` label value and the gateway's name. */
    readonly name: string;
    readonly tier: Tier;
    /** Price per GB (10^9 bytes, both directions), in the billing currency. */
    readonly pricePerGb: number;
    readonly sla: SlaConfig;
    /** Daily bandwidth budget in GB (10^9 bytes); 0 means no budget. */
    readonly dailyBudgetGb: number;
    readonly pools: readonly PoolConfig[];
}

export interface PoolCredentials {
    readonly username: string;
    readonly password: string;
}

export interface CrawlerNamespaceConfig {
    readonly name: string;
    /** `create`: the program creates the namespace; `label`: it labels an existing one (server-side apply). */
    readonly manage: "create" | "label";
    /** Service accounts of crawlers in this namespace that may use the gateways. */
    readonly serviceAccounts: readonly string[];
    /** Vendors these crawlers may use. Defaults to every vendor. */
    readonly vendors: readonly string[];
    /**
     * Destinations the crawlers may reach besides the gateways and the control plane, as Istio Sidecar egress hosts
     * (`<namespace>/<host>`, such as `queues/*`, `./redis` or `data/results.data.svc.cluster.local`). Their Sidecar is
     * REGISTRY_ONLY: what is not listed here is refused (a host outside the cluster also needs a ServiceEntry).
     */
    readonly egressHosts: readonly string[];
}

export interface ReceiverConfig {
    /** DNS label; referenced by routes. */
    readonly name: string;
    readonly type: "slack" | "pagerduty" | "webhook" | "email";
    /** Slack channel (slack), address (email). Credentials (URLs, keys, passwords) live in `alertingSecrets`. */
    readonly channel?: string;
    readonly to?: string;
    readonly from?: string;
    readonly smarthost?: string;
}

export interface RemoteClusterConfig {
    /** The remote cluster's `cluster` label value. */
    readonly name: string;
    /** Base URL of the remote cluster Prometheus (its `/federate` is scraped). */
    readonly url: string;
    /** Skip TLS verification (only for testing). */
    readonly insecureSkipVerify: boolean;
}

export interface StackConfig {
    readonly stack: string;
    /** The `cluster` label value of this cluster's series. Defaults to the stack name. */
    readonly cluster: string;
    readonly namespaces: {
        readonly monitoring: string;
        readonly gateways: string;
        readonly simulators: string;
        readonly istio: string;
    };
    readonly vendors: readonly VendorConfig[];
    /** Credentials per vendor and pool, from the secret key `credentials`. Simulated pools may omit them. */
    readonly credentials: Readonly<Record<string, Readonly<Record<string, PoolCredentials>>>>;
    readonly destinations: {
        /** Hosts that get their own `destination` label value; every other host is `other`. */
        readonly tracked: readonly string[];
        /** Host patterns the gateways accept (`*.example.com` allowed); others get 403. Defaults to all (`*`). */
        readonly allowed: readonly string[];
        /**
         * Ports crawlers may reach through the gateways, as numbers or `"lo-hi"` ranges; others get 403.
         * Defaults to 443 and 80.
         */
        readonly connectPorts: readonly string[];
        /**
         * Let crawlers reach loopback, private, link-local and cluster addresses and cluster DNS names through the
         * gateways. Defaults to false (403 `internal-address` / `internal-name`).
         */
        readonly allowInternal: boolean;
    };
    readonly crawlers: {
        readonly namespaces: readonly CrawlerNamespaceConfig[];
        /** Labels that select crawler pods (for cAdvisor series and dashboards). */
        readonly podSelector: Readonly<Record<string, string>>;
        /** Expected number of crawler pods, for the series budget. */
        readonly expectedPods: number;
    };
    readonly images: {
        readonly node: string;
        readonly prometheus: string;
        readonly alertmanager: string;
        readonly grafana: string;
        readonly kubeStateMetrics: string;
        readonly prometheusAdapter: string;
        /** A prebuilt gateway image (see proxy/Dockerfile); when empty, the bundled script runs on `node`. */
        readonly gateway: string;
    };
    readonly resources: {
        readonly gateway: Resources;
        readonly prometheus: Resources;
        readonly globalPrometheus: Resources;
        readonly alertmanager: Resources;
        readonly grafana: Resources;
        readonly kubeStateMetrics: Resources;
        readonly loadGenerator: Resources;
        readonly simulator: Resources;
        readonly prometheusAdapter: Resources;
    };
    readonly gateway: {
        readonly replicas: number;
        readonly maxReplicas: number;
        readonly targetCpuUtilization: number;
        readonly maxTunnels: number;
        readonly connectTimeout: string;
        readonly idleTimeout: string;
        readonly totalTimeout: string;
        readonly probeInterval: string;
        /** host:port the gateways CONNECT to through each pool to probe it. */
        readonly probeDestination: string;
        /** Fraction of finished requests logged, 0..1. */
        readonly logSampleRate: number;
        /**
         * Require crawlers to authenticate to the gateways (Proxy-Authorization Basic `<namespace>:<secret>`, the
         * secret from `crawlerSecrets.<namespace>`), for clusters where Istio's AuthorizationPolicy is not enforced.
         * Defaults to false.
         */
        readonly crawlerAuth: boolean;
    };
    readonly prometheus: {
        readonly replicas: number;
        readonly scrapeInterval: string;
        readonly evaluationInterval: string;
        readonly retention: string;
        readonly retentionSize: string;
        readonly storageSize: string;
        /** The most active series the configuration may be expected to produce; render and preview fail above. */
        readonly seriesBudget: number;
        readonly sampleLimit: number;
        readonly labelLimit: number;
        readonly labelValueLengthLimit: number;
    };
    readonly federation: {
        readonly enabled: boolean;
        readonly retention: string;
        readonly storageSize: string;
        readonly remoteClusters: readonly RemoteClusterConfig[];
        /** Optional remote_write URL of a long-term store (Thanos Receive, Mimir). */
        readonly remoteWriteUrl: string;
    };
    /** Bearer tokens per remote cluster name, and `remoteWrite` for the remote-write store; secret key. */
    readonly federationSecrets: Readonly<Record<string, string>>;
    /** Shared secret per crawler namespace for `gateway.crawlerAuth`; secret key. */
    readonly crawlerSecrets: Readonly<Record<string, string>>;
    readonly alerting: {
        readonly replicas: number;
        readonly storageSize: string;
        readonly receivers: readonly ReceiverConfig[];
        /** Receiver for critical alerts (pages) and for warnings (tickets). */
        readonly criticalReceiver: string;
        readonly warningReceiver: string;
        /** Per-vendor receivers (e.g. the team that owns the vendor contract); override the severity routes. */
        readonly vendorReceivers: Readonly<Record<string, string>>;
        /** Where alerts' runbook_url point: the troubleshooting page of your copy of this repository. */
        readonly runbookBaseUrl: string;
        /** Receiver of the always-firing Watchdog (a dead man's switch service); empty: nowhere. */
        readonly watchdogReceiver: string;
    };
    /** Receiver credentials by receiver name (webhook/Slack URL, PagerDuty routing key, SMTP password); secret. */
    readonly alertingSecrets: Readonly<Record<string, string>>;
    readonly grafana: {
        readonly replicas: number;
        /** Keep Grafana's sqlite on a PVC (true) or run stateless with everything provisioned (false). */
        readonly persistence: boolean;
        readonly storageSize: string;
    };
    readonly loadGenerator: {
        readonly enabled: boolean;
        /** Deploy a vendor simulator per simulated pool and a target (dev). */
        readonly simulators: boolean;
        readonly namespace: string;
        readonly replicas: number;
        readonly maxReplicas: number;
        readonly requestsPerSecond: number;
        readonly concurrency: number;
        readonly schedule: "constant" | "ramp" | "burst" | "diurnal";
        /** Relative share of generated traffic per vendor. Defaults to equal shares. */
        readonly vendorMix: Readonly<Record<string, number>>;
        /** Destination hosts the generator requests (served by the target in dev). */
        readonly destinations: readonly string[];
    };
    readonly mesh: {
        /**
         * Istio runs with its CNI plugin, so injected pods need no privileged init container and every namespace can
         * enforce the "restricted" Pod Security Standard. Without CNI, in-mesh namespaces enforce "privileged" and
         * warn on "restricted" (our own pods still meet "restricted").
         */
        readonly istioCni: boolean;
        /** Istio trust domain of workload identities (`<domain>/ns/<namespace>/sa/<account>`). */
        readonly trustDomain: string;
        /** Namespaces (e.g. an ingress controller's) allowed to reach Grafana and the Prometheus web port. */
        readonly ingressNamespaces: readonly string[];
        /**
         * How the gateways' sidecars tell apart pools that share a port without fixed addresses (TCP is routed on
         * destination IP and port only): `istiod` (DNS capture on the gateway pods, addresses allocated by istiod's
         * PILOT_ENABLE_IP_AUTOALLOCATE: Istio 1.23+, on by default from 1.25), `sidecar` (DNS capture and
         * ISTIO_META_DNS_AUTO_ALLOCATE on the gateway pods: Istio 1.9+, deprecated from 1.25) or `off` (every pool
         * that shares a port with another of its vendor must set `addresses`).
         */
        readonly addressAllocation: AddressAllocation;
    };
    readonly autoscaling: {
        /** Create VPA objects (needs the VPA CRDs in the cluster). */
        readonly vpa: boolean;
        readonly vpaMode: "Off" | "Initial" | "Auto";
        /** Deploy prometheus-adapter and custom-metric HPAs. */
        readonly customMetrics: boolean;
        /**
         * Register the deployed prometheus-adapter as the cluster's custom metrics API (the cluster-scoped APIService
         * v1beta1.custom.metrics.k8s.io). Cluster-wide: every custom-metrics HPA in the cluster then reads from it.
         * Defaults to false: where another adapter already serves that API, add our adapter rules to it instead.
         */
        readonly customMetricsApiService: boolean;
        readonly scaleUpStabilization: string;
        readonly scaleDownStabilization: string;
        readonly workloads: readonly CrawlerWorkloadConfig[];
    };
}

export const ADDRESS_ALLOCATIONS = ["istiod", "sidecar", "off"] as const;
export type AddressAllocation = (typeof ADDRESS_ALLOCATIONS)[number];

export interface CrawlerWorkloadConfig {
    readonly namespace: string;
    readonly kind: "Deployment" | "StatefulSet";
    readonly name: string;
    readonly minReplicas: number;
    readonly maxReplicas: number;
    readonly targetCpuUtilization: number;
    readonly targetMemoryUtilization: number;
    /** Per-pod proxy queue depth to hold (custom metric), 0 for none. */
    readonly targetQueueDepth: number;
}

const res = (reqCpu: string, reqMem: string, limCpu: string, limMem: string): Resources => ({
    requests: { cpu: reqCpu, memory: reqMem },
    limits: { cpu: limCpu, memory: limMem },
});

/** Every default, in one place. Pulumi.yaml declares the simple keys with these values (a test keeps them equal). */
export const DEFAULTS = {
    namespaces: {
        monitoring: "proxy-monitor",
        gateways: "proxy-gateways",
        simulators: "proxy-sim",
        istio: "istio-system",
    },
    destinations: { tracked: [] as string[], allowed: ["*"], connectPorts: ["443", "80"], allowInternal: false },
    crawlers: { podSelector: { "app.kubernetes.io/component": "crawler" }, expectedPods: 100 },
    images: {
        node: "docker.io/library/node:20.18.1-bookworm-slim",
        prometheus: "quay.io/prometheus/prometheus:v2.53.3",
        alertmanager: "quay.io/prometheus/alertmanager:v0.27.0",
        grafana: "docker.io/grafana/grafana:11.3.1",
        kubeStateMetrics: "registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0",
        prometheusAdapter: "registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0",
        gateway: "",
    },
    resources: {
        gateway: res("250m", "256Mi", "1", "512Mi"),
        prometheus: res("500m", "2Gi", "2", "4Gi"),
        globalPrometheus: res("250m", "1Gi", "1", "2Gi"),
        alertmanager: res("50m", "64Mi", "200m", "128Mi"),
        grafana: res("100m", "128Mi", "500m", "512Mi"),
        kubeStateMetrics: res("50m", "64Mi", "200m", "256Mi"),
        loadGenerator: res("250m", "128Mi", "1", "256Mi"),
        simulator: res("100m", "64Mi", "500m", "256Mi"),
        prometheusAdapter: res("50m", "64Mi", "250m", "256Mi"),
    },
    gateway: {
        replicas: 2,
        maxReplicas: 10,
        targetCpuUtilization: 70,
        maxTunnels: 4096,
        connectTimeout: "10s",
        idleTimeout: "60s",
        totalTimeout: "10m",
        probeInterval: "15s",
        probeDestination: "www.example.com:443",
        logSampleRate: 0.01,
        crawlerAuth: false,
    },
    prometheus: {
        replicas: 2,
        scrapeInterval: "15s",
        evaluationInterval: "15s",
        retention: "30d",
        retentionSize: "90GB",
        storageSize: "100Gi",
        seriesBudget: 100_000,
        sampleLimit: 20_000,
        labelLimit: 30,
        labelValueLengthLimit: 200,
    },
    federation: { enabled: false, retention: "90d", storageSize: "50Gi", remoteWriteUrl: "" },
    alerting: {
        replicas: 3,
        storageSize: "2Gi",
        runbookBaseUrl: "https://github.com/example-org/proxy-monitor/blob/main/docs/troubleshooting.md",
        watchdogReceiver: "",
    },
    grafana: { replicas: 1, persistence: false, storageSize: "5Gi" },
    loadGenerator: {
        enabled: false,
        simulators: false,
        namespace: "crawler-sim",
        replicas: 1,
        maxReplicas: 5,
        requestsPerSecond: 50,
        concurrency: 32,
        schedule: "constant" as const,
        destinations: ["example.com", "example.org", "example.net"],
    },
    autoscaling: {
        vpa: false,
        vpaMode: "Off" as const,
        customMetrics: false,
        customMetricsApiService: false,
        scaleUpStabilization: "0s",
        scaleDownStabilization: "5m",
    },
    mesh: {
        istioCni: true,
        trustDomain: "cluster.local",
        ingressNamespaces: [] as string[],
        addressAllocation: "istiod" as AddressAllocation,
    },
    simulator: { latencyP50Ms: 80, latencyP95Ms: 400, errorRate: 0.01, bandwidthBytesPerSecond: 0 },
    vendor: { dailyBudgetGb: 0 },
    pool: { weight: 1, region: "global" },
};

/**
 * The simple keys: scalars a user sets with `pulumi config set <key> <value>`, declared with type, default and
 * description in Pulumi.yaml (a test keeps Pulumi.yaml equal to this table and DEFAULTS). Each lands at `path` in
 * the structured config; setting the same value in the structured key as well is an error.
 */
export const SIMPLE_KEYS = [
    { key: "scrapeInterval", path: ["prometheus", "scrapeInterval"], description: "Prometheus scrape interval." },
    { key: "evaluationInterval", path: ["prometheus", "evaluationInterval"], description: "Rule evaluation interval." },
    { key: "retention", path: ["prometheus", "retention"], description: "Cluster Prometheus retention time." },
    {
        key: "retentionSize",
        path: ["prometheus", "retentionSize"],
        description: "Cluster Prometheus retention size (Prometheus units, e.g. 90GB).",
    },
    {
        key: "prometheusReplicas",
        path: ["prometheus", "replicas"],
        description: "Cluster Prometheus replicas (1, or 2 for an HA pair).",
    },
    {
        key: "prometheusStorageSize",
        path: ["prometheus", "storageSize"],
        description: "Volume size per Prometheus replica.",
    },
    {
        key: "seriesBudget",
        path: ["prometheus", "seriesBudget"],
        description: "Most active series the config may produce; preview fails above.",
    },
    {
        key: "alertmanagerReplicas",
        path: ["alerting", "replicas"],
        description: "Alertmanager replicas (clustered when above 1).",
    },
    { key: "gatewayReplicas", path: ["gateway", "replicas"], description: "Minimum gateway replicas per vendor." },
    {
        key: "gatewayMaxReplicas",
        path: ["gateway", "maxReplicas"],
        description: "Maximum gateway replicas per vendor (HPA).",
    },
    { key: "grafanaPersistence", path: ["grafana", "persistence"], description: "Keep Grafana's sqlite on a volume." },
    {
        key: "federationEnabled",
        path: ["federation", "enabled"],
        description: "Deploy the global Prometheus that federates recorded series.",
    },
    {
        key: "loadGeneratorEnabled",
        path: ["loadGenerator", "enabled"],
        description: "Deploy the synthetic load generator.",
    },
    {
        key: "simulatorsEnabled",
        path: ["loadGenerator", "simulators"],
        description: "Deploy vendor simulators for simulated pools, and a target.",
    },
    {
        key: "expectedCrawlerPods",
        path: ["crawlers", "expectedPods"],
        description: "Expected crawler pods, for the series budget.",
    },
    {
        key: "vpaEnabled",
        path: ["autoscaling", "vpa"],
        description: "Create VerticalPodAutoscaler objects (needs the VPA CRDs).",
    },
    {
        key: "customMetricsEnabled",
        path: ["autoscaling", "customMetrics"],
        description: "Deploy prometheus-adapter and custom-metric HPAs.",
    },
] as const;

/** The default of a simple key, from DEFAULTS. */
export function simpleKeyDefault(path: readonly string[]): string | number | boolean {
    let v: unknown = DEFAULTS;
    for (const p of path) v = (v as Record<string, unknown>)[p];
    return v as string | number | boolean;
}

/** Config keys holding secrets; they must be set with `pulumi config set --secret`. */
export const SECRET_KEYS = ["credentials", "alertingSecrets", "federationSecrets", "crawlerSecrets"] as const;

/** Every top-level key the program reads (under the `proxy-monitor:` namespace). */
export const KNOWN_KEYS = [
    "cluster",
    ...SIMPLE_KEYS.map((s) => s.key),
    "namespaces",
    "vendors",
    "destinations",
    "crawlers",
    "images",
    "resources",
    "gateway",
    "prometheus",
    "federation",
    "alerting",
    "grafana",
    "loadGenerator",
    "autoscaling",
    "mesh",
    ...SECRET_KEYS,
] as const;

const k = (key: string) => `${PROJECT}:${key}`;
const LABEL = { re: DNS_LABEL, expected: "a DNS label (lower-case letters, digits and '-', at most 63 characters)" };
const HOST = { re: DNS_SUBDOMAIN, expected: "a DNS host name (lower-case letters, digits, '-' and '.')" };
const DURATION = { re: PROM_DURATION, expected: "a duration such as 30s, 5m, 1h30m or 30d" };
/** An Istio Sidecar egress host: `<namespace>/<dnsName>`, namespace `*`, `.`, `~` or a name, host `*`, `*.suffix` or a name. */
const SIDECAR_HOST = {
    re: /^(\*|\.|~|[a-z0-9]([-a-z0-9]*[a-z0-9])?)\/(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/,
    expected: "an Istio Sidecar egress host <namespace>/<host>, such as queues/*, ./redis or */api.example.com",
};
const BYTES = { re: K8S_BYTES, expected: "a Kubernetes quantity such as 512Mi or 100Gi" };
const CPU = { re: K8S_CPU, expected: "a CPU quantity such as 250m or 2" };
const PROM_BYTES = { re: PROM_SIZE, expected: "a size such as 500MB or 90GB" };
const HOST_PATTERN = {
    re: /^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/,
    expected: "a host name or pattern such as example.com, *.example.com or *",
};

/** Raw config: each `proxy-monitor:` key (without the namespace) to its value, JSON-decoded where it was JSON. */
export type RawConfig = Record<string, unknown>;

/** Validates raw config. `secretKeys` names the keys Pulumi holds as secrets (without the namespace). */
export function parseStackConfig(
    raw: RawConfig,
    stack: string,
    secretKeys: ReadonlySet<string> = new Set(SECRET_KEYS),
): { config?: StackConfig; problems: ConfigProblem[] } {
    const problems: ConfigProblem[] = [];
    const nestedSimple: ConfigProblem[] = [];
    const flat = foldSimpleKeys(raw, nestedSimple);
    raw = flat.raw;
    for (const key of Object.keys(raw)) {
        if (!(KNOWN_KEYS as readonly string[]).includes(key)) {
            problems.push({
                path: k(key),
                expected: `one of the known keys (${KNOWN_KEYS.join(", ")})`,
                found: "an unknown key",
            });
        }
    }
    for (const key of SECRET_KEYS) {
        if (raw[key] !== undefined && !secretKeys.has(key)) {
            problems.push({
                path: k(key),
                expected: `a secret (set it with \`pulumi config set --secret --path '${key}...'\`)`,
                found: "a plain-text value",
            });
        }
    }
    const top = new Reader(problems, `${PROJECT}:`, raw);
    const at = (key: string) => Reader.of(problems, k(key), raw[key]);

    const cluster = (() => {
        const v = raw.cluster;
        if (v === undefined) return stack;
        if (typeof v !== "string" || !DNS_LABEL.test(v)) {
            top.problem(k("cluster"), LABEL.expected, v);
            return stack;
        }
        return v;
    })();

    const nsR = at("namespaces");
    nsR.only(Object.keys(DEFAULTS.namespaces));
    const namespaces = {
        monitoring: nsR.str("monitoring", DEFAULTS.namespaces.monitoring, LABEL),
        gateways: nsR.str("gateways", DEFAULTS.namespaces.gateways, LABEL),
        simulators: nsR.str("simulators", DEFAULTS.namespaces.simulators, LABEL),
        istio: nsR.str("istio", DEFAULTS.namespaces.istio, LABEL),
    };

    const vendors = parseVendors(problems, raw.vendors, namespaces.simulators);
    const vendorNames = vendors.map((v) => v.name);
    const credentials = parseCredentials(problems, raw.credentials, vendors);

    const dR = at("destinations");
    dR.only(["tracked", "allowed", "connectPorts", "allowInternal"]);
    const destinations = {
        tracked: dR.strList("tracked", DEFAULTS.destinations.tracked, HOST),
        allowed: dR.strList("allowed", DEFAULTS.destinations.allowed, HOST_PATTERN),
        connectPorts: dR.has("connectPorts")
            ? dR.list("connectPorts", (x, p) => {
                  const entry = typeof x === "number" || typeof x === "string" ? String(x) : "";
                  if (parsePortRange(entry)) return entry;
                  problems.push({ path: p, expected: 'a port (1-65535) or a range "lo-hi"', found: show(x) });
                  return undefined;
              })
            : DEFAULTS.destinations.connectPorts,
        allowInternal: dR.bool("allowInternal", DEFAULTS.destinations.allowInternal),
    };
    checkUnique(
        problems,
        destinations.tracked.map((name, i) => ({ name, path: `${dR.key("tracked")}[${i}]` })),
        "destination",
    );
    if (destinations.tracked.includes("other")) {
        problems.push({
            path: dR.key("tracked"),
            expected: "no host named 'other' (it is the bucket of untracked hosts)",
            found: show("other"),
        });
    }

    const crawlers = parseCrawlers(problems, at("crawlers"), vendorNames);
    const images = parseImages(at("images"));
    const resources = parseResources(at("resources"));

    const gR = at("gateway");
    const G = DEFAULTS.gateway;
    gR.only(Object.keys(G));
    const gateway = {
        replicas: gR.num("replicas", G.replicas, { min: 1, max: 100, int: true }),
        maxReplicas: gR.num("maxReplicas", G.maxReplicas, { min: 1, max: 500, int: true }),
        targetCpuUtilization: gR.num("targetCpuUtilization", G.targetCpuUtilization, { min: 1, max: 100, int: true }),
        maxTunnels: gR.num("maxTunnels", G.maxTunnels, { min: 1, max: 1_000_000, int: true }),
        connectTimeout: gR.str("connectTimeout", G.connectTimeout, DURATION),
        idleTimeout: gR.str("idleTimeout", G.idleTimeout, DURATION),
        totalTimeout: gR.str("totalTimeout", G.totalTimeout, DURATION),
        probeInterval: gR.str("probeInterval", G.probeInterval, DURATION),
        probeDestination: gR.str("probeDestination", G.probeDestination, {
            re: /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[0-9]{1,5}$/,
            expected: "host:port, such as www.example.com:443",
        }),
        logSampleRate: gR.num("logSampleRate", G.logSampleRate, { min: 0, max: 1 }),
        crawlerAuth: gR.bool("crawlerAuth", G.crawlerAuth),
    };
    if (gateway.maxReplicas < gateway.replicas) {
        gR.problem(gR.key("maxReplicas"), `at least gateway.replicas (${gateway.replicas})`, gateway.maxReplicas);
    }

    const pR = at("prometheus");
    const P = DEFAULTS.prometheus;
    pR.only(Object.keys(P));
    const prometheus = {
        replicas: pR.num("replicas", P.replicas, { min: 1, max: 2, int: true }),
        scrapeInterval: pR.str("scrapeInterval", P.scrapeInterval, DURATION),
        evaluationInterval: pR.str("evaluationInterval", P.evaluationInterval, DURATION),
        retention: pR.str("retention", P.retention, DURATION),
        retentionSize: pR.str("retentionSize", P.retentionSize, PROM_BYTES),
        storageSize: pR.str("storageSize", P.storageSize, BYTES),
        seriesBudget: pR.num("seriesBudget", P.seriesBudget, { min: 1000, int: true }),
        sampleLimit: pR.num("sampleLimit", P.sampleLimit, { min: 100, int: true }),
        labelLimit: pR.num("labelLimit", P.labelLimit, { min: 5, max: 1000, int: true }),
        labelValueLengthLimit: pR.num("labelValueLengthLimit", P.labelValueLengthLimit, {
            min: 16,
            max: 10_000,
            int: true,
        }),
    };
    if (durationMs(prometheus.scrapeInterval) < 1000) {
        pR.problem(pR.key("scrapeInterval"), "a duration of at least 1s", prometheus.scrapeInterval);
    }

    const fR = at("federation");
    const F = DEFAULTS.federation;
    fR.only(["enabled", "retention", "storageSize", "remoteClusters", "remoteWriteUrl"]);
    const remoteClusters = fR.list("remoteClusters", (x, p) => {
        const r = Reader.of(problems, p, x);
        r.only(["name", "url", "insecureSkipVerify"]);
        const name = r.str("name", undefined, LABEL);
        if (!r.has("name")) r.problem(r.key("name"), LABEL.expected, undefined);
        const url = r.str("url", undefined, { re: /^https?:\/\/[^\s/]+(\/[^\s]*)?$/, expected: "an http(s) URL" });
        if (!r.has("url")) r.problem(r.key("url"), "an http(s) URL", undefined);
        if (name === undefined || url === undefined) return undefined;
        return { name, url: url.replace(/\/+$/, ""), insecureSkipVerify: r.bool("insecureSkipVerify", false) };
    });
    checkUnique(
        problems,
        remoteClusters.map((c, i) => ({ name: c.name, path: `${fR.key("remoteClusters")}[${i}].name` })),
        "cluster",
    );
    for (const [i, c] of remoteClusters.entries()) {
        if (c.name === cluster) {
            problems.push({
                path: `${fR.key("remoteClusters")}[${i}].name`,
                expected: `a name other than this cluster's (${cluster})`,
                found: show(c.name),
            });
        }
    }
    const federation = {
        enabled: fR.bool("enabled", F.enabled),
        retention: fR.str("retention", F.retention, DURATION),
        storageSize: fR.str("storageSize", F.storageSize, BYTES),
        remoteClusters,
        remoteWriteUrl: fR.str("remoteWriteUrl", F.remoteWriteUrl, {
            re: /^(|https?:\/\/\S+)$/,
            expected: "an http(s) URL or empty",
        }),
    };
    const federationSecrets = parseSecretMap(problems, "federationSecrets", raw.federationSecrets);
    for (const c of remoteClusters) {
        if (federation.enabled && federationSecrets[c.name] === undefined) {
            problems.push({
                path: k(`federationSecrets.${c.name}`),
                expected: `the bearer token of remote cluster ${c.name} (pulumi config set --secret --path 'federationSecrets.${c.name}' TOKEN)`,
                found: show(undefined),
                missingSecret: "value",
            });
        }
    }

    const crawlerSecrets = parseSecretMap(problems, "crawlerSecrets", raw.crawlerSecrets);
    if (gateway.crawlerAuth) {
        for (const ns of crawlers.namespaces) {
            if (crawlerSecrets[ns.name] === undefined) {
                problems.push({
                    path: k(`crawlerSecrets.${ns.name}`),
                    expected: `the shared secret of crawler namespace ${ns.name}, since gateway.crawlerAuth is true (pulumi config set --secret --path 'crawlerSecrets.${ns.name}' SECRET)`,
                    found: show(undefined),
                });
            }
        }
    }
    const alertingSecrets = parseSecretMap(problems, "alertingSecrets", raw.alertingSecrets);
    const alerting = parseAlerting(problems, at("alerting"), vendorNames, alertingSecrets);

    const grR = at("grafana");
    grR.only(Object.keys(DEFAULTS.grafana));
    const grafana = {
        replicas: grR.num("replicas", DEFAULTS.grafana.replicas, { min: 1, max: 10, int: true }),
        persistence: grR.bool("persistence", DEFAULTS.grafana.persistence),
        storageSize: grR.str("storageSize", DEFAULTS.grafana.storageSize, BYTES),
    };
    if (grafana.persistence && grafana.replicas > 1) {
        grR.problem(
            grR.key("replicas"),
            "1 when grafana.persistence is true (sqlite on a volume cannot be shared)",
            grafana.replicas,
        );
    }

    const loadGenerator = parseLoadGenerator(at("loadGenerator"), vendorNames);
    const autoscaling = parseAutoscaling(problems, at("autoscaling"));

    const mR = at("mesh");
    mR.only(Object.keys(DEFAULTS.mesh));
    const mesh = {
        istioCni: mR.bool("istioCni", DEFAULTS.mesh.istioCni),
        trustDomain: mR.str("trustDomain", DEFAULTS.mesh.trustDomain, HOST),
        ingressNamespaces: mR.strList("ingressNamespaces", DEFAULTS.mesh.ingressNamespaces, LABEL),
        addressAllocation: mR.str("addressAllocation", DEFAULTS.mesh.addressAllocation, {
            re: new RegExp(`^(${ADDRESS_ALLOCATIONS.join("|")})$`),
            expected: `one of ${ADDRESS_ALLOCATIONS.join(", ")}`,
        }) as AddressAllocation,
    };

    // Cross-section checks.
    const crawlerNamespaces = crawlers.namespaces.map((n) => n.name);
    if (loadGenerator.enabled && !crawlerNamespaces.includes(loadGenerator.namespace)) {
        problems.push({
            path: k("loadGenerator.namespace"),
            expected: `one of crawlers.namespaces (${crawlerNamespaces.join(", ") || "none"}), so the generator may use the gateways`,
            found: show(loadGenerator.namespace),
        });
    }
    const programNamespaces = [namespaces.monitoring, namespaces.gateways, namespaces.simulators, namespaces.istio];
    crawlerNamespaces.forEach((n, i) => {
        if (programNamespaces.includes(n)) {
            problems.push({
                path: `${k("crawlers.namespaces")}[${i}].name`,
                expected: "a namespace other than the monitoring, gateway, simulator and Istio namespaces",
                found: show(n),
            });
        }
    });
    const simulated = vendors.flatMap((v) => v.pools.filter((p) => p.simulator).map((p) => `${v.name}/${p.name}`));
    if (simulated.length > 0 && !loadGenerator.simulators) {
        problems.push({
            path: k("simulatorsEnabled"),
            expected: `true, since pools ${simulated.join(", ")} point at simulators`,
            found: show(loadGenerator.simulators),
        });
    }

    if (problems.length + nestedSimple.length > 0) return { problems: [...nestedSimple, ...problems.map(flat.rename)] };
    return {
        problems,
        config: {
            stack,
            cluster,
            namespaces,
            vendors,
            credentials,
            destinations,
            crawlers,
            images,
            resources,
            gateway,
            prometheus,
            federation,
            federationSecrets,
            crawlerSecrets,
            alerting,
            alertingSecrets,
            grafana,
            loadGenerator,
            autoscaling,
            mesh,
        },
    };
}

/**
 * Moves the simple keys into the structured config where the parser reads them, and returns a function that renames
 * problem paths back to the simple key the user set.
 */
function foldSimpleKeys(
    raw: RawConfig,
    problems: ConfigProblem[],
): { raw: RawConfig; rename: (p: ConfigProblem) => ConfigProblem } {
    const out: RawConfig = { ...raw };
    const renames = new Map<string, string>();
    for (const s of SIMPLE_KEYS) {
        const [section, field] = s.path;
        const nested = out[section];
        if (isObject(nested) && nested[field] !== undefined) {
            problems.push({
                path: k(`${section}.${field}`),
                expected: `this setting in the simple key ${k(s.key)} (pulumi config set ${s.key} …)`,
                found: show(nested[field]),
            });
        }
        if (out[s.key] === undefined) continue;
        const value = out[s.key];
        delete out[s.key];
        if (nested !== undefined && !isObject(nested)) continue; // the section's own problem is reported
        out[section] = { ...(nested as Record<string, unknown> | undefined), [field]: value };
        renames.set(k(`${section}.${field}`), k(s.key));
    }
    return { raw: out, rename: (p) => ({ ...p, path: renames.get(p.path) ?? p.path }) };
}

function parseVendors(problems: ConfigProblem[], value: unknown, simNamespace: string): VendorConfig[] {
    const top = new Reader(problems, `${PROJECT}:`, { vendors: value });
    if (value === undefined) {
        problems.push({ path: k("vendors"), expected: "a list of at least 1 vendor", found: show(undefined) });
        return [];
    }
    const vendors = top.list(
        "vendors",
        (x, p) => {
            const r = Reader.of(problems, p, x);
            r.only(["name", "tier", "pricePerGb", "sla", "dailyBudgetGb", "pools"]);
            if (!r.has("name")) r.problem(r.key("name"), LABEL.expected, undefined);
            const name = r.str("name", undefined, LABEL);
            if (name !== undefined && name.length > 40) {
                r.problem(r.key("name"), "a vendor name of at most 40 characters (it prefixes object names)", name);
            }
            const tier = r.str("tier", undefined, {
                re: new RegExp(`^(${TIERS.join("|")})$`),
                expected: `one of ${TIERS.join(", ")}`,
            });
            if (!r.has("tier")) r.problem(r.key("tier"), `one of ${TIERS.join(", ")}`, undefined);
            if (!r.has("pricePerGb")) r.problem(r.key("pricePerGb"), "a price per GB of 0 or more", undefined);
            const pricePerGb = r.num("pricePerGb", 0, { min: 0 });
            const s = r.sub("sla");
            s.only(["successObjective", "p95LatencyMs"]);
            if (!s.has("successObjective"))
                s.problem(s.key("successObjective"), "a number strictly between 0 and 1", undefined);
            if (!s.has("p95LatencyMs")) s.problem(s.key("p95LatencyMs"), "a latency in ms above 0", undefined);
            const sla = {
                successObjective: s.num("successObjective", 0.99, { min: 0, max: 1, exclusive: true }),
                p95LatencyMs: s.num("p95LatencyMs", 1000, { min: 0, max: 600_000, exclusive: true }),
            };
            const dailyBudgetGb = r.num("dailyBudgetGb", DEFAULTS.vendor.dailyBudgetGb, { min: 0 });
            const pools = r.list("pools", (px, pp) => parsePool(problems, px, pp, simNamespace), { minItems: 1 });
            checkUnique(
                problems,
                pools.map((pl, i) => ({ name: pl.name, path: `${r.key("pools")}[${i}].name` })),
                "pool",
            );
            if (pools.length > 0 && pools.every((pl) => pl.weight === 0)) {
                r.problem(r.key("pools"), "at least one pool with a weight above 0", "every weight 0");
            }
            if (name === undefined || tier === undefined) return undefined;
            return { name, tier: tier as Tier, pricePerGb, sla, dailyBudgetGb, pools };
        },
        { minItems: 1 },
    );
    checkUnique(
        problems,
        vendors.map((v, i) => ({ name: v.name, path: `${k("vendors")}[${i}].name` })),
        "vendor",
    );
    return vendors;
}

function parsePool(problems: ConfigProblem[], x: unknown, p: string, simNamespace: string): PoolConfig | undefined {
    const r = Reader.of(problems, p, x);
    r.only(["name", "host", "port", "weight", "region", "addresses", "simulator"]);
    if (!r.has("name")) r.problem(r.key("name"), LABEL.expected, undefined);
    if (!r.has("host")) r.problem(r.key("host"), HOST.expected, undefined);
    if (!r.has("port")) r.problem(r.key("port"), "an integer from 1 to 65535", undefined);
    const name = r.str("name", undefined, LABEL);
    const host = r.str("host", undefined, HOST);
    const port = r.num("port", 0, { min: 1, max: 65535, int: true });
    const weight = r.num("weight", DEFAULTS.pool.weight, { min: 0, max: 1000 });
    const region = r.str("region", DEFAULTS.pool.region, LABEL);
    const addresses = r.has("addresses") ? parseAddresses(r) : undefined;
    let simulator: SimulatorConfig | undefined;
    if (r.has("simulator")) {
        const s = r.sub("simulator");
        const S = DEFAULTS.simulator;
        s.only(Object.keys(S));
        simulator = {
            latencyP50Ms: s.num("latencyP50Ms", S.latencyP50Ms, { min: 0, max: 600_000 }),
            latencyP95Ms: s.num("latencyP95Ms", S.latencyP95Ms, { min: 0, max: 600_000 }),
            errorRate: s.num("errorRate", S.errorRate, { min: 0, max: 1 }),
            bandwidthBytesPerSecond: s.num("bandwidthBytesPerSecond", S.bandwidthBytesPerSecond, { min: 0, int: true }),
        };
        if (simulator.latencyP95Ms < simulator.latencyP50Ms) {
            s.problem(
                s.key("latencyP95Ms"),
                `at least latencyP50Ms (${simulator.latencyP50Ms})`,
                simulator.latencyP95Ms,
            );
        }
        const suffix = `.${simNamespace}.svc.cluster.local`;
        if (host !== undefined && (!host.endsWith(suffix) || host.slice(0, -suffix.length).includes("."))) {
            r.problem(
                r.key("host"),
                `<service>${suffix} for a simulated pool (namespaces.simulators is ${simNamespace})`,
                host,
            );
        }
    }
    if (name === undefined || host === undefined || port === 0) return undefined;
    return {
        name,
        host,
        port,
        weight,
        region,
        ...(addresses && addresses.length > 0 ? { addresses } : {}),
        ...(simulator ? { simulator } : {}),
    };
}

/** A pool's fixed `addresses`: IPv4 or IPv6 literals, each once, not on a simulated pool. */
function parseAddresses(r: Reader): string[] {
    const key = r.key("addresses");
    const raw = r.strList("addresses", []);
    const out: string[] = [];
    raw.forEach((a, i) => {
        if (isIP(a) === 0) r.problem(`${key}[${i}]`, "an IPv4 or IPv6 address such as 203.0.113.10", a);
        else if (out.includes(a)) r.problem(`${key}[${i}]`, "each address once", a);
        else out.push(a);
    });
    if (raw.length === 0) r.problem(key, "a list of at least 1 IP address", raw);
    if (r.has("simulator")) r.problem(key, "no addresses on a simulated pool (its Service has a cluster IP)", raw);
    return out;
}

function parseCredentials(
    problems: ConfigProblem[],
    value: unknown,
    vendors: readonly VendorConfig[],
): Record<string, Record<string, PoolCredentials>> {
    const out: Record<string, Record<string, PoolCredentials>> = {};
    const root = Reader.of(problems, k("credentials"), value);
    root.only(vendors.map((v) => v.name));
    for (const v of vendors) {
        const vr = root.sub(v.name);
        vr.only(v.pools.map((p) => p.name));
        out[v.name] = {};
        for (const pool of v.pools) {
            const pr = vr.sub(pool.name);
            if (!vr.has(pool.name)) {
                if (!pool.simulator) {
                    problems.push({
                        path: pr.path,
                        expected: `the pool's username and password (pulumi config set --secret --path '${pr.path.slice(PROJECT.length + 1)}.password' …)`,
                        found: show(undefined),
                        missingSecret: "credentials",
                    });
                }
                continue;
            }
            pr.only(["username", "password"]);
            if (!pr.has("username")) pr.problem(pr.key("username"), "a non-empty string", undefined);
            if (!pr.has("password")) pr.problem(pr.key("password"), "a non-empty string", undefined);
            const nonEmpty = { re: /^[^\r\n:]+$/, expected: "a non-empty string without ':' or line breaks" };
            const username = pr.str("username", undefined, nonEmpty);
            const password = pr.str("password", undefined, {
                re: /^[^\r\n]+$/,
                expected: "a non-empty string without line breaks",
            });
            if (username !== undefined && password !== undefined) out[v.name][pool.name] = { username, password };
        }
    }
    return out;
}

function parseSecretMap(problems: ConfigProblem[], key: string, value: unknown): Record<string, string> {
    const out: Record<string, string> = {};
    const r = Reader.of(problems, k(key), value);
    if (!isObject(value)) return out;
    for (const name of Object.keys(value)) {
        const v = r.str(name, undefined, { re: /^\S.*$/, expected: "a non-empty string" });
        if (v !== undefined) out[name] = v;
    }
    return out;
}

function parseCrawlers(problems: ConfigProblem[], r: Reader, vendorNames: string[]): StackConfig["crawlers"] {
    r.only(["namespaces", "podSelector", "expectedPods"]);
    const namespaces = r.list(
        "namespaces",
        (x, p) => {
            const n = Reader.of(problems, p, x);
            n.only(["name", "manage", "serviceAccounts", "vendors", "egressHosts"]);
            if (!n.has("name")) n.problem(n.key("name"), LABEL.expected, undefined);
            const name = n.str("name", undefined, LABEL);
            const manage = n.str("manage", "create", { re: /^(create|label)$/, expected: "create or label" });
            const serviceAccounts = n.strList("serviceAccounts", ["default"], LABEL);
            const vendors = n.strList("vendors", vendorNames, LABEL);
            vendors.forEach((v, i) => {
                if (!vendorNames.includes(v)) {
                    n.problem(`${n.key("vendors")}[${i}]`, `a configured vendor (${vendorNames.join(", ")})`, v);
                }
            });
            const egressHosts = n.strList("egressHosts", [], SIDECAR_HOST);
            if (name === undefined) return undefined;
            return { name, manage: manage as "create" | "label", serviceAccounts, vendors, egressHosts };
        },
        { minItems: 1 },
    );
    checkUnique(
        problems,
        namespaces.map((n, i) => ({ name: n.name, path: `${r.key("namespaces")}[${i}].name` })),
        "namespace",
    );
    const sel = r.raw("podSelector");
    let podSelector: Record<string, string> = DEFAULTS.crawlers.podSelector;
    if (sel !== undefined) {
        const ok =
            isObject(sel) &&
            Object.keys(sel).length > 0 &&
            Object.entries(sel).every(
                ([lk, lv]) =>
                    /^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(lk) &&
                    typeof lv === "string" &&
                    /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/.test(lv),
            );
        if (!ok) r.problem(r.key("podSelector"), "a non-empty map of Kubernetes label names to label values", sel);
        else podSelector = sel as Record<string, string>;
    }
    return {
        namespaces,
        podSelector,
        expectedPods: r.num("expectedPods", DEFAULTS.crawlers.expectedPods, { min: 0, max: 1_000_000, int: true }),
    };
}

function parseImages(r: Reader): StackConfig["images"] {
    const I = DEFAULTS.images;
    r.only(Object.keys(I));
    const pinned = {
        re: /^[a-z0-9.-]+(:[0-9]+)?(\/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$/,
        expected: "an image pinned to a tag or digest, such as quay.io/prometheus/prometheus:v2.53.3 (not :latest)",
    };
    const get = (name: keyof typeof I) => {
        const v = r.str(
            name,
            I[name],
            name === "gateway" ? { re: new RegExp(`(^$)|${pinned.re.source}`), expected: pinned.expected } : pinned,
        );
        if (/:latest$/.test(v)) r.problem(r.key(name), pinned.expected, v);
        return v;
    };
    return {
        node: get("node"),
        prometheus: get("prometheus"),
        alertmanager: get("alertmanager"),
        grafana: get("grafana"),
        kubeStateMetrics: get("kubeStateMetrics"),
        prometheusAdapter: get("prometheusAdapter"),
        gateway: get("gateway"),
    };
}

function parseResources(r: Reader): StackConfig["resources"] {
    const D = DEFAULTS.resources;
    r.only(Object.keys(D));
    const one = (name: keyof typeof D): Resources => {
        const c = r.sub(name);
        c.only(["requests", "limits"]);
        const req = c.sub("requests");
        const lim = c.sub("limits");
        req.only(["cpu", "memory"]);
        lim.only(["cpu", "memory"]);
        return {
            requests: {
                cpu: req.str("cpu", D[name].requests.cpu, CPU),
                memory: req.str("memory", D[name].requests.memory, BYTES),
            },
            limits: {
                cpu: lim.str("cpu", D[name].limits.cpu, CPU),
                memory: lim.str("memory", D[name].limits.memory, BYTES),
            },
        };
    };
    return {
        gateway: one("gateway"),
        prometheus: one("prometheus"),
        globalPrometheus: one("globalPrometheus"),
        alertmanager: one("alertmanager"),
        grafana: one("grafana"),
        kubeStateMetrics: one("kubeStateMetrics"),
        loadGenerator: one("loadGenerator"),
        simulator: one("simulator"),
        prometheusAdapter: one("prometheusAdapter"),
    };
}

function parseAlerting(
    problems: ConfigProblem[],
    r: Reader,
    vendorNames: string[],
    secrets: Record<string, string>,
): StackConfig["alerting"] {
    r.only([
        "replicas",
        "storageSize",
        "receivers",
        "criticalReceiver",
        "warningReceiver",
        "vendorReceivers",
        "runbookBaseUrl",
        "watchdogReceiver",
    ]);
    const types = ["slack", "pagerduty", "webhook", "email"];
    const receivers = r.list("receivers", (x, p) => {
        const rr = Reader.of(problems, p, x);
        rr.only(["name", "type", "channel", "to", "from", "smarthost"]);
        if (!rr.has("name")) rr.problem(rr.key("name"), LABEL.expected, undefined);
        if (!rr.has("type")) rr.problem(rr.key("type"), `one of ${types.join(", ")}`, undefined);
        const name = rr.str("name", undefined, LABEL);
        const type = rr.str("type", undefined, {
            re: /^(slack|pagerduty|webhook|email)$/,
            expected: `one of ${types.join(", ")}`,
        });
        const channel = rr.str("channel", undefined, {
            re: /^#?[a-z0-9_-]{1,80}$/,
            expected: "a Slack channel such as #proxy-alerts",
        });
        const email = { re: /^[^@\s]+@[^@\s]+$/, expected: "an e-mail address" };
        const to = rr.str("to", undefined, email);
        const from = rr.str("from", undefined, email);
        const smarthost = rr.str("smarthost", undefined, { re: /^[a-z0-9.-]+:[0-9]{1,5}$/, expected: "host:port" });
        if (type === "email") {
            for (const f of ["to", "from", "smarthost"])
                if (!rr.has(f)) rr.problem(rr.key(f), "a value for an email receiver", undefined);
        }
        if (name !== undefined && type !== undefined && type !== "email" && secrets[name] === undefined) {
            const what = type === "pagerduty" ? "routing key" : type === "slack" ? "webhook URL" : "URL";
            problems.push({
                path: k(`alertingSecrets.${name}`),
                expected: `the ${what} of receiver ${name} (pulumi config set --secret --path 'alertingSecrets.${name}' …)`,
                found: show(undefined),
                missingSecret: "value",
            });
        }
        if (name === undefined || type === undefined) return undefined;
        return { name, type: type as ReceiverConfig["type"], channel, to, from, smarthost };
    });
    checkUnique(
        problems,
        receivers.map((x, i) => ({ name: x.name, path: `${r.key("receivers")}[${i}].name` })),
        "receiver",
    );
    const names = receivers.map((x) => x.name);
    const ref = (key: string): string => {
        const v = r.str(key, "", LABEL);
        if (v !== "" && !names.includes(v))
            r.problem(r.key(key), `a receiver named in alerting.receivers (${names.join(", ") || "none"})`, v);
        return v;
    };
    const criticalReceiver = ref("criticalReceiver");
    const warningReceiver = ref("warningReceiver");
    const vendorReceivers: Record<string, string> = {};
    const vrRaw = r.raw("vendorReceivers");
    if (vrRaw !== undefined) {
        const vr = r.sub("vendorReceivers");
        if (isObject(vrRaw)) {
            for (const [vendor, recv] of Object.entries(vrRaw)) {
                if (!vendorNames.includes(vendor))
                    vr.problem(vr.key(vendor), `a configured vendor (${vendorNames.join(", ")})`, vendor);
                else if (typeof recv !== "string" || !names.includes(recv))
                    vr.problem(vr.key(vendor), "a receiver named in alerting.receivers", recv);
                else vendorReceivers[vendor] = recv;
            }
        }
    }
    return {
        replicas: r.num("replicas", DEFAULTS.alerting.replicas, { min: 1, max: 5, int: true }),
        storageSize: r.str("storageSize", DEFAULTS.alerting.storageSize, BYTES),
        receivers,
        criticalReceiver,
        warningReceiver,
        vendorReceivers,
        runbookBaseUrl: r.str("runbookBaseUrl", DEFAULTS.alerting.runbookBaseUrl, {
            re: /^https?:\/\/\S+$/,
            expected: "an http(s) URL",
        }),
        watchdogReceiver: ref("watchdogReceiver"),
    };
}

function parseLoadGenerator(r: Reader, vendorNames: string[]): StackConfig["loadGenerator"] {
    const D = DEFAULTS.loadGenerator;
    r.only([...Object.keys(D), "vendorMix"]);
    const vendorMix: Record<string, number> = {};
    const mixRaw = r.raw("vendorMix");
    if (mixRaw !== undefined) {
        const m = r.sub("vendorMix");
        if (isObject(mixRaw)) {
            for (const v of Object.keys(mixRaw)) {
                if (!vendorNames.includes(v)) m.problem(m.key(v), `a configured vendor (${vendorNames.join(", ")})`, v);
                else vendorMix[v] = m.num(v, 0, { min: 0 });
            }
            if (Object.keys(vendorMix).length > 0 && Object.values(vendorMix).every((w) => w === 0)) {
                r.problem(r.key("vendorMix"), "at least one vendor with a share above 0", mixRaw);
            }
        }
    } else {
        for (const v of vendorNames) vendorMix[v] = 1;
    }
    const lg = {
        enabled: r.bool("enabled", D.enabled),
        simulators: r.bool("simulators", D.simulators),
        namespace: r.str("namespace", D.namespace, LABEL),
        replicas: r.num("replicas", D.replicas, { min: 1, max: 100, int: true }),
        maxReplicas: r.num("maxReplicas", D.maxReplicas, { min: 1, max: 1000, int: true }),
        requestsPerSecond: r.num("requestsPerSecond", D.requestsPerSecond, { min: 0, exclusive: true, max: 1_000_000 }),
        concurrency: r.num("concurrency", D.concurrency, { min: 1, max: 10_000, int: true }),
        schedule: r.str("schedule", D.schedule, {
            re: /^(constant|ramp|burst|diurnal)$/,
            expected: "one of constant, ramp, burst, diurnal",
        }) as StackConfig["loadGenerator"]["schedule"],
        vendorMix,
        destinations: r.strList("destinations", D.destinations, HOST),
    };
    if (lg.maxReplicas < lg.replicas)
        r.problem(r.key("maxReplicas"), `at least loadGenerator.replicas (${lg.replicas})`, lg.maxReplicas);
    return lg;
}

function parseAutoscaling(problems: ConfigProblem[], r: Reader): StackConfig["autoscaling"] {
    const D = DEFAULTS.autoscaling;
    r.only([...Object.keys(D), "workloads"]);
    const workloads = r.list("workloads", (x, p) => {
        const w = Reader.of(problems, p, x);
        w.only([
            "namespace",
            "kind",
            "name",
            "minReplicas",
            "maxReplicas",
            "targetCpuUtilization",
            "targetMemoryUtilization",
            "targetQueueDepth",
        ]);
        for (const f of ["namespace", "name"]) if (!w.has(f)) w.problem(w.key(f), LABEL.expected, undefined);
        const namespace = w.str("namespace", undefined, LABEL);
        const name = w.str("name", undefined, LABEL);
        const kind = w.str("kind", "Deployment", {
            re: /^(Deployment|StatefulSet)$/,
            expected: "Deployment or StatefulSet",
        });
        const minReplicas = w.num("minReplicas", 1, { min: 1, int: true });
        const maxReplicas = w.num("maxReplicas", 10, { min: 1, int: true });
        if (maxReplicas < minReplicas)
            w.problem(w.key("maxReplicas"), `at least minReplicas (${minReplicas})`, maxReplicas);
        if (namespace === undefined || name === undefined) return undefined;
        return {
            namespace,
            name,
            kind: kind as "Deployment" | "StatefulSet",
            minReplicas,
            maxReplicas,
            targetCpuUtilization: w.num("targetCpuUtilization", 70, { min: 1, max: 100, int: true }),
            targetMemoryUtilization: w.num("targetMemoryUtilization", 80, { min: 1, max: 100, int: true }),
            targetQueueDepth: w.num("targetQueueDepth", 0, { min: 0 }),
        };
    });
    const vpaMode = r.str("vpaMode", D.vpaMode, {
        re: /^(Off|Initial|Auto)$/,
        expected: "Off, Initial or Auto",
    }) as StackConfig["autoscaling"]["vpaMode"];
    return {
        vpa: r.bool("vpa", D.vpa),
        vpaMode,
        customMetrics: r.bool("customMetrics", D.customMetrics),
        customMetricsApiService: r.bool("customMetricsApiService", D.customMetricsApiService),
        scaleUpStabilization: r.str("scaleUpStabilization", D.scaleUpStabilization, DURATION),
        scaleDownStabilization: r.str("scaleDownStabilization", D.scaleDownStabilization, DURATION),
        workloads,
    };
}

/** Reads the `proxy-monitor:*` keys from the Pulumi runtime. */
export function readRawConfig(): { raw: RawConfig; secretKeys: Set<string> } {
    const all = pulumi.runtime.allConfig();
    // isConfigSecret is exported by the runtime's config module but not declared in its typings.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (key: string) => boolean };
    const raw: RawConfig = {};
    const secretKeys = new Set<string>();
    for (const [full, value] of Object.entries(all)) {
        if (!full.startsWith(`${PROJECT}:`)) continue;
        const key = full.slice(PROJECT.length + 1);
        raw[key] = decode(value);
        if (runtimeConfig.isConfigSecret?.(full)) secretKeys.add(key);
    }
    return { raw, secretKeys };
}

/** Config values arrive as strings; objects, lists, numbers and booleans as their JSON text. */
function decode(value: string): unknown {
    try {
        return JSON.parse(value);
    } catch {
        return value;
    }
}

/** Reads and validates the stack config; throws ConfigError naming every problem. */
export function loadStackConfig(): StackConfig {
    const { raw, secretKeys } = readRawConfig();
    const { config, problems } = parseStackConfig(raw, pulumi.getStack(), secretKeys);
    if (!config) throw new ConfigError(problems);
    return config;
}
