/**
 * proxy-monitor: reads and validates the stack config, composes the components, exports the stack outputs.
 * Every component lives in components/; this file only wires them together.
 */
import { Alerting, alertRuleFiles, globalAlertRuleFiles } from "./components/alerting";
import { Autoscaling, CUSTOM_METRICS } from "./components/autoscaling";
import { loadStackConfig } from "./components/config";
import { resolvePoolCredentials } from "./components/credentials";
import { VendorGateway, crawlerAuthLines } from "./components/gateway";
import { Grafana, grafanaArgs } from "./components/grafana";
import { labels } from "./components/k8s";
import { LoadGenerator } from "./components/load-generator";
import { ProxyMesh } from "./components/mesh";
import { OperatorMonitoring } from "./components/operator";
import { APP } from "./components/names";
import { Prometheus } from "./components/prometheus";
import { scriptConfigMap } from "./components/node-app";
import { VendorSimulators } from "./components/simulators";
import { allDashboards } from "./dashboards";

const config = loadStackConfig();

const mesh = new ProxyMesh("mesh", { config });
const credentials = resolvePoolCredentials(config);

// The bundled program, shared by the gateways (unless a built image is configured).
const gatewayScript =
    config.images.gateway === ""
        ? scriptConfigMap(
              "gateway-program",
              config.namespaces.gateways,
              labels(APP.gateway, "gateway-program", "gateway"),
              { dependsOn: [mesh] },
          )
        : undefined;

const gateways = config.vendors.map(
    (vendor) =>
        new VendorGateway(`gateway-${vendor.name}`, {
            config,
            vendor,
            namespace: config.namespaces.gateways,
            credentials: credentials[vendor.name],
            crawlerAuth: crawlerAuthLines(config, vendor),
            serviceAccount: mesh.gatewayServiceAccounts[vendor.name],
            scriptConfigMap: gatewayScript?.configMap.metadata.name,
            scriptHash: gatewayScript?.hash,
            dependsOn: [mesh],
        }),
);

// dev: a simulator behind every simulated pool's host, requiring the credentials the gateway presents.
const simulators = config.loadGenerator.simulators
    ? new VendorSimulators("simulators", { config, credentials, dependsOn: [mesh] })
    : undefined;

// The cluster Prometheus (HA pair in prod), and in stacks with federation the global one. In operator mode
// (monitoring.mode) none of the program's Prometheus, Alertmanager or Grafana: objects for the cluster's operator.
const standalone = config.monitoring.mode === "standalone";
const prometheus = standalone
    ? new Prometheus("prometheus", {
          config,
          role: "cluster",
          ruleFiles: alertRuleFiles(config),
          dependsOn: [mesh],
      })
    : undefined;
const globalPrometheus =
    standalone && config.federation.enabled
        ? new Prometheus("prometheus-global", {
              config,
              role: "global",
              ruleFiles: globalAlertRuleFiles(config),
              dependsOn: [mesh],
          })
        : undefined;
const alerting = standalone ? new Alerting("alerting", { config, dependsOn: [mesh] }) : undefined;
const grafana = standalone
    ? new Grafana("grafana", { ...grafanaArgs(config, allDashboards(config)), dependsOn: [mesh] })
    : undefined;
const operatorMonitoring = standalone
    ? undefined
    : new OperatorMonitoring("operator", { config, dashboards: allDashboards(config), dependsOn: [mesh] });

// Synthetic crawler traffic through the gateways (dev: to the simulators and the target; prod: a trickle).
// With custom metrics, the generator also scales on its queue depth (requests waiting for a connection).
if (config.loadGenerator.enabled) {
    new LoadGenerator("loadgen", {
        config,
        dependsOn: [mesh],
        hpaPodMetrics: config.autoscaling.customMetrics
            ? [{ name: CUSTOM_METRICS.queueDepth, averageValue: "10" }]
            : undefined,
    });
}

// HPAs (and VPAs) for the crawler workloads in config, and prometheus-adapter for custom metrics.
new Autoscaling("autoscaling", { config, dependsOn: [mesh] });

/** The proxy URL crawlers set as HTTP_PROXY and HTTPS_PROXY, per vendor. */
export const proxyUrls = Object.fromEntries(gateways.map((g, i) => [config.vendors[i].name, g.proxyUrl]));
export const cluster = config.cluster;
export const namespaces = mesh.namespaces;
export const prometheusUrl = prometheus?.url;
export const alertmanagerUrl = alerting?.url;
export const grafanaUrl = grafana?.url;
/** Grafana's admin password (user admin): `pulumi stack output grafanaAdminPassword --show-secrets`. */
export const grafanaAdminPassword = grafana?.adminPassword;
/** Operator mode: the namespace of the rendered objects and the labels they carry (select on these). */
export const operator = operatorMonitoring?.summary;
export const globalPrometheusUrl = globalPrometheus?.url;
/** Active series the configuration is expected to produce, and the budget it is checked against. */
export const seriesEstimate = prometheus?.seriesEstimate && {
    total: prometheus.seriesEstimate.total,
    budget: prometheus.seriesEstimate.budget,
    parts: Object.fromEntries(Object.entries(prometheus.seriesEstimate.parts).map(([k, p]) => [k, p.series])),
};
/** Simulator Services by vendor/pool (stacks with simulators). */
export const simulatorServices = simulators?.services;
