/**
 * Operator mode: the objects a Prometheus Operator already in the cluster (kube-prometheus-stack) reads, built from the
 * same builders as standalone mode, never a second copy:
 * - PodMonitors from the pod jobs of the standalone scrape config (components/prometheus/scrape.ts `podJobs`): the same
 *   job names, keep lists, relabelling, limits and `cluster` label;
 * - PrometheusRules holding exactly the standalone recording and alert rule groups;
 * - an AlertmanagerConfig converted from the standalone alertmanager.yml builder (routes, receivers, inhibitions),
 *   its credentials referenced from a Secret instead of written inline;
 * - the dashboards as ConfigMaps for Grafana's dashboard sidecar.
 * Every object carries `monitoring.operator.selectorLabels`, which the user's Prometheus and Alertmanager CRs select on.
 */
import { StackConfig } from "../config";
import { AlertmanagerStackConfig, buildAlertmanagerConfig } from "../alerting/alertmanager-config";
import { AlertRulesStackConfig, allAlertNames, buildAlertRules } from "../alerting/rules";
import { PART_OF } from "../k8s";
import { regexOneOf } from "../prometheus/escape";
import { RulesStackConfig, buildRecordingRules } from "../prometheus/rules";
import { Obj, PodJob, ScrapeStackConfig, clusterLabel, podJobs } from "../prometheus/scrape";
import { PORTS } from "../names";

/** A Kubernetes object as plain data (apiVersion, kind, metadata, and spec or data). */
export interface OperatorObject {
    apiVersion: string;
    kind: string;
    metadata: { name: string; namespace: string; labels: Record<string, string>; annotations?: Record<string, string> };
    spec?: Obj;
    data?: Record<string, string>;
}

/**
 * The stack settings operator mode reads: the scrape, rule and Alertmanager builders' sections and `monitoring`
 * (dashboards are built by the caller).
 */
export type OperatorStackConfig = ScrapeStackConfig &
    RulesStackConfig &
    AlertRulesStackConfig &
    AlertmanagerStackConfig &
    Pick<StackConfig, "monitoring">;

export const MONITORING_V1 = "monitoring.coreos.com/v1";
export const MONITORING_V1ALPHA1 = "monitoring.coreos.com/v1alpha1";
/** The Secret holding the receivers' credentials (`alertingSecrets`), one key per receiver name. */
export const ALERTING_SECRET = "proxy-monitor-alerting";
/** The container of Istio's sidecar, whose merged-metrics port (15020) it does not declare. */
export const ISTIO_PROXY_CONTAINER = "istio-proxy";
/**
 * Target labels the operator adds to every PodMonitor target that the standalone jobs do not have: dropped, so a
 * series has the same labels (and identity) in both modes, as docs/data-model.md lists them.
 */
export const OPERATOR_TARGET_LABELS = ["namespace", "pod", "container", "endpoint", "service"];

export function operatorNamespace(cfg: OperatorStackConfig): string {
    return cfg.monitoring.operator.namespace ?? cfg.namespaces.monitoring;
}

/** The labels every operator-mode object carries: the configured selector labels and `part-of`. */
export function operatorLabels(cfg: OperatorStackConfig): Record<string, string> {
    return { "app.kubernetes.io/part-of": PART_OF, ...cfg.monitoring.operator.selectorLabels };
}

const CAMEL: Record<string, string> = {
    source_labels: "sourceLabels",
    target_label: "targetLabel",
    separator: "separator",
    regex: "regex",
    replacement: "replacement",
    modulus: "modulus",
    action: "action",
};

/** A prometheus.yml relabel rule in the operator's RelabelConfig spelling (sourceLabels, targetLabel, …). */
export function toOperatorRelabel(r: Obj): Obj {
    return Object.fromEntries(
        Object.entries(r).map(([k, v]) => {
            const key = CAMEL[k];
            if (!key) throw new Error(`relabel field ${k} has no RelabelConfig equivalent`);
            return [key, v];
        }),
    );
}

function podMonitorName(j: PodJob): string {
    return `proxy-monitor-${j.job}`;
}

/** One PodMonitor per pod job of the standalone config. */
export function buildPodMonitors(cfg: OperatorStackConfig): OperatorObject[] {
    return podJobs(cfg).map((j) => {
        const relabel: Obj[] = [
            // The operator names the job `<namespace>/<PodMonitor>`; rules and dashboards read the standalone name.
            { target_label: "job", replacement: j.job, action: "replace" },
            clusterLabel(cfg),
            { regex: OPERATOR_TARGET_LABELS.join("|"), action: "labeldrop" },
        ];
        const address = j.portName
            ? []
            : [
                  // The sidecar's merged-metrics port is not a declared container port: keep the sidecar's targets
                  // and address the port on the pod IP (IPv6 in brackets), as Istio documents for the operator.
                  {
                      source_labels: ["__meta_kubernetes_pod_container_name"],
                      regex: ISTIO_PROXY_CONTAINER,
                      action: "keep",
                  },
                  {
                      source_labels: ["__meta_kubernetes_pod_ip"],
                      regex: "(.*:.*)",
                      target_label: "__address__",
                      replacement: `[$1]:${j.port}`,
                      action: "replace",
                  },
                  {
                      source_labels: ["__meta_kubernetes_pod_ip"],
                      regex: "([^:]+)",
                      target_label: "__address__",
                      replacement: `$1:${j.port}`,
                      action: "replace",
                  },
              ];
        const limits = j.limits as { sample_limit: number; label_limit: number; label_value_length_limit: number };
        return {
            apiVersion: MONITORING_V1,
            kind: "PodMonitor",
            metadata: { name: podMonitorName(j), namespace: operatorNamespace(cfg), labels: operatorLabels(cfg) },
            spec: {
                namespaceSelector: { matchNames: [j.namespace] },
                selector: { matchLabels: { "app.kubernetes.io/name": j.app } },
                sampleLimit: limits.sample_limit,
                labelLimit: limits.label_limit,
                labelValueLengthLimit: limits.label_value_length_limit,
                podMetricsEndpoints: [
                    {
                        ...(j.portName ? { port: j.portName } : {}),
                        ...(j.path ? { path: j.path } : {}),
                        relabelings: [...address, ...relabel].map(toOperatorRelabel),
                        ...(j.metricRelabel.length > 0
                            ? { metricRelabelings: j.metricRelabel.map(toOperatorRelabel) }
                            : {}),
                    },
                ],
            },
        };
    });
}

/** PrometheusRule objects: the standalone recording groups and alert groups, each group as built there. */
export function buildPrometheusRules(cfg: OperatorStackConfig): OperatorObject[] {
    const rule = (name: string, groups: unknown[]): OperatorObject => ({
        apiVersion: MONITORING_V1,
        kind: "PrometheusRule",
        metadata: { name, namespace: operatorNamespace(cfg), labels: operatorLabels(cfg) },
        spec: { groups },
    });
    return [
        rule("proxy-monitor-recording", buildRecordingRules(cfg).groups),
        rule("proxy-monitor-alerts", buildAlertRules(cfg).groups),
    ];
}

/** `name="value"`, `name=~"re"`, … as an AlertmanagerConfig Matcher. */
export function toMatcher(m: string): Obj {
    const x = /^([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)"(.*)"$/.exec(m);
    if (!x) throw new Error(`matcher ${m} is not name<op>"value"`);
    return { name: x[1], matchType: x[2], value: x[3].replace(/\\"/g, '"').replace(/\\\\/g, "\\") };
}

const SECRET_MARK = "\u0000secret:";

const DURATIONS: Record<string, string> = {
    group_wait: "groupWait",
    group_interval: "groupInterval",
    repeat_interval: "repeatInterval",
    group_by: "groupBy",
};

function toRoute(r: Obj): Obj {
    const out: Obj = {};
    for (const [k, v] of Object.entries(r)) {
        if (k === "matchers") out.matchers = (v as string[]).map(toMatcher);
        else if (k === "routes") out.routes = (v as Obj[]).map(toRoute);
        else if (k === "receiver" || k === "continue") out[k] = v;
        else if (DURATIONS[k]) out[DURATIONS[k]] = v;
        else throw new Error(`route field ${k} has no AlertmanagerConfig equivalent`);
    }
    return out;
}

const RECEIVER_FIELDS: Record<string, { list: string; fields: Record<string, string> }> = {
    slack_configs: {
        list: "slackConfigs",
        fields: { send_resolved: "sendResolved", api_url: "apiURL", channel: "channel", title: "title", text: "text" },
    },
    pagerduty_configs: {
        list: "pagerdutyConfigs",
        fields: { send_resolved: "sendResolved", routing_key: "routingKey", description: "description" },
    },
    webhook_configs: { list: "webhookConfigs", fields: { send_resolved: "sendResolved", url: "urlSecret" } },
    email_configs: {
        list: "emailConfigs",
        fields: {
            send_resolved: "sendResolved",
            to: "to",
            from: "from",
            smarthost: "smarthost",
            auth_username: "authUsername",
            auth_password: "authPassword",
        },
    },
};

/** A receiver of alertmanager.yml with credentials marked by SECRET_MARK, credentials as Secret key references. */
function toReceiver(r: Obj): Obj {
    const out: Obj = { name: r.name };
    for (const [k, v] of Object.entries(r)) {
        if (k === "name") continue;
        const spec = RECEIVER_FIELDS[k];
        if (!spec) throw new Error(`receiver field ${k} has no AlertmanagerConfig equivalent`);
        out[spec.list] = (v as Obj[]).map((c) =>
            Object.fromEntries(
                Object.entries(c).map(([f, value]) => {
                    const field = spec.fields[f];
                    if (!field) throw new Error(`${k}.${f} has no AlertmanagerConfig equivalent`);
                    return [
                        field,
                        typeof value === "string" && value.startsWith(SECRET_MARK)
                            ? { name: ALERTING_SECRET, key: value.slice(SECRET_MARK.length) }
                            : value,
                    ];
                }),
            ),
        );
    }
    return out;
}

/**
 * The AlertmanagerConfig: the standalone configuration's routes, receivers and inhibitions, credentials read from the
 * ALERTING_SECRET Secret. Its top route matches this stack's alerts by name, so with the Alertmanager CR's
 * `alertmanagerConfigMatcherStrategy: None` (see the deployment guide) it routes exactly them.
 */
export function buildOperatorAlertmanagerConfig(cfg: OperatorStackConfig): OperatorObject {
    const marks = Object.fromEntries(cfg.secrets.names.alertingSecrets.map((n) => [n, `${SECRET_MARK}${n}`]));
    const am = buildAlertmanagerConfig(cfg, marks) as { route: Obj; receivers: Obj[]; inhibit_rules: Obj[] };
    const route = toRoute(am.route);
    route.matchers = [toMatcher(`alertname=~"${regexOneOf([...new Set(allAlertNames(cfg))])}"`)];
    return {
        apiVersion: MONITORING_V1ALPHA1,
        kind: "AlertmanagerConfig",
        metadata: { name: "proxy-monitor", namespace: operatorNamespace(cfg), labels: operatorLabels(cfg) },
        spec: {
            route,
            receivers: am.receivers.map(toReceiver),
            inhibitRules: am.inhibit_rules.map((i) => ({
                sourceMatch: (i.source_matchers as string[]).map(toMatcher),
                targetMatch: (i.target_matchers as string[]).map(toMatcher),
                equal: i.equal,
            })),
        },
    };
}

/** The dashboards as ConfigMaps Grafana's sidecar loads: one JSON file each, labelled as configured. */
export function buildDashboardConfigMaps(
    cfg: OperatorStackConfig,
    dashboards: Readonly<Record<string, unknown>>,
): OperatorObject[] {
    const op = cfg.monitoring.operator;
    return Object.entries(dashboards).map(([file, json]) => ({
        apiVersion: "v1",
        kind: "ConfigMap",
        metadata: {
            name: `proxy-monitor-dashboard-${file}`,
            namespace: operatorNamespace(cfg),
            labels: { ...operatorLabels(cfg), [op.dashboardLabel]: op.dashboardLabelValue },
            // The sidecar's folder annotation (grafana.sidecar.dashboards.folderAnnotation), when enabled.
            annotations: { grafana_folder: "proxy-monitor" },
        },
        data: { [`${file}.json`]: JSON.stringify(json, null, 2) },
    }));
}

/** What a user needs to know: where the objects are, and the labels to select them by. */
export function operatorSummary(cfg: OperatorStackConfig): Obj {
    const op = cfg.monitoring.operator;
    return {
        namespace: operatorNamespace(cfg),
        selectorLabels: op.selectorLabels,
        dashboardLabel: { [op.dashboardLabel]: op.dashboardLabelValue },
        scrapedBy: `Prometheus pods (app.kubernetes.io/name=prometheus) in namespace ${op.prometheusNamespace}, on ports ${PORTS.proxyMetrics} and ${PORTS.istioMergedMetrics}`,
    };
}
