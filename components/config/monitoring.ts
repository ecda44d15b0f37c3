/**
 * `monitoring`: whether the program runs its own Prometheus, Alertmanager and Grafana (`standalone`), or renders the
 * objects a Prometheus Operator already running in the cluster (kube-prometheus-stack) reads (`operator`).
 */
import { z } from "zod";
import { AutoscalingConfig } from "./autoscaling";
import { FederationConfig } from "./federation";
import { LABEL, Pattern, Problem, oneOf, section, str } from "./kit";
import { PrometheusConfig } from "./prometheus";

export const MONITORING_MODES = ["standalone", "operator"] as const;
export type MonitoringMode = (typeof MONITORING_MODES)[number];

/** A Kubernetes label key: an optional DNS-subdomain prefix and a name of at most 63 characters. */
export const LABEL_KEY: Pattern = {
    re: /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/,
    expected: "a Kubernetes label key such as release or example.com/team",
};
/** A Kubernetes label value: at most 63 letters, digits, '-', '_' and '.', starting and ending alphanumeric. */
export const LABEL_VALUE: Pattern = {
    re: /^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$/,
    expected: "a Kubernetes label value (at most 63 letters, digits, '-', '_' or '.')",
};

const operatorSchema = section({
    namespace: str(LABEL)
        .describe(
            "Namespace of the PodMonitors, PrometheusRules, AlertmanagerConfig and dashboard ConfigMaps. Defaults to `namespaces.monitoring`.",
        )
        .optional(),
    selectorLabels: z
        .record(str(LABEL_KEY), str(LABEL_VALUE), { error: "an object of label names to values" })
        .describe(
            "Labels every rendered object carries: what the Prometheus and Alertmanager CRs select on (kube-prometheus-stack: `release: <its release name>`).",
        )
        .default({ release: "kube-prometheus-stack" }),
    dashboardLabel: str(LABEL_KEY)
        .describe(
            "Label key of the dashboard ConfigMaps that Grafana's sidecar watches (`grafana.sidecar.dashboards.label`).",
        )
        .default("grafana_dashboard"),
    dashboardLabelValue: str(LABEL_VALUE).describe("Its value (`grafana.sidecar.dashboards.labelValue`).").default("1"),
    prometheusNamespace: str(LABEL)
        .describe(
            "Namespace of the operator's Prometheus pods (label `app.kubernetes.io/name: prometheus`), admitted by the gateways' NetworkPolicy to scrape them.",
        )
        .default("monitoring"),
});
export type OperatorConfig = z.output<typeof operatorSchema>;

export const monitoringSchema = section({
    mode: oneOf(MONITORING_MODES)
        .describe(
            "`standalone`: deploy the program's own Prometheus, Alertmanager and Grafana. `operator`: deploy none of them; render PodMonitors, PrometheusRules, an AlertmanagerConfig and dashboard ConfigMaps for the Prometheus Operator already in the cluster.",
        )
        .default("standalone"),
    operator: operatorSchema.describe("operator mode: where the objects go and the labels they carry"),
});
export type MonitoringConfig = z.output<typeof monitoringSchema>;

/**
 * Operator mode runs none of the program's Prometheus instances, so their settings would be silently ignored:
 * agent mode, remote_write and federation belong on the operator's Prometheus CR instead. A basic-auth user needs its
 * password.
 */
export function checkMonitoring(
    m: MonitoringConfig,
    p: PrometheusConfig,
    f: FederationConfig,
    a: AutoscalingConfig,
    secrets: Readonly<Record<string, string>> | undefined,
): Problem[] {
    const problems: Problem[] = [];
    if (m.mode === "operator") {
        const onCr = "(operator mode: set it on your Prometheus CR, see the deployment guide)";
        if (p.agent) problems.push({ path: ["prometheus", "agent"], expected: `false ${onCr}` });
        if (p.remoteWrite.url !== "")
            problems.push({ path: ["prometheus", "remoteWrite", "url"], expected: `empty ${onCr}` });
        if (f.enabled) problems.push({ path: ["federation", "enabled"], expected: `false ${onCr}` });
        if (a.customMetrics)
            problems.push({
                path: ["autoscaling", "customMetrics"],
                expected:
                    "false in operator mode (prometheus-adapter would query the program's own Prometheus, which operator mode does not deploy)",
            });
    }
    if (p.remoteWrite.basicAuthUsername !== undefined && secrets && secrets.remoteWrite === undefined)
        problems.push({
            path: ["federationSecrets", "remoteWrite"],
            expected:
                "the remote_write password of prometheus.remoteWrite.basicAuthUsername (pulumi config set --secret --path 'federationSecrets.remoteWrite' PASSWORD)",
            missingSecret: "value",
        });
    return problems;
}
