/**
 * alertmanager.yml from the stack config: receivers (credentials from `alertingSecrets`), routes by severity and
 * vendor, grouping, repeat intervals and inhibition. Generated only with fields both Debian's amtool (0.25) and the
 * pinned image (0.27) accept; since 0.25 has no `url_file` for webhooks, credentials are written inline and the whole
 * file lives in a Secret.
 */
import { L, eq, re } from "../../catalog";
import { StackConfig } from "../config";
import { regexOneOf } from "../prometheus/escape";

/** The stack settings the Alertmanager config reads. */
export type AlertmanagerStackConfig = Pick<StackConfig, "alerting">;

export type Obj = Record<string, unknown>;

/** The receiver that drops what reaches it (no integration). */
export const NULL_RECEIVER = "null";

/**
 * Alerts silenced while every pool of their vendor is down: each is an effect of that one cause. Not VendorAuthErrors
 * (rejected credentials can be why the probes fail) nor the silence and cost alerts.
 */
export const ALL_POOLS_DOWN_INHIBITS = [
    "VendorErrorBudgetBurnFast",
    "VendorErrorBudgetBurnSlow",
    "VendorServerErrorsHigh",
    "VendorRefusalsHigh",
    "VendorLatencyHigh",
    "VendorPoolDown",
    "GatewayServiceUnavailable",
];

/**
 * Inhibitions scoped like kube-prometheus': a cause silences its effects only for the same cluster and vendor, and a
 * critical alert silences a warning only of the same vendor and symptom (label `symptom`, see Symptom). One pool
 * down silences nothing of its vendor: the other pools still answer, and what they answer still matters.
 */
export function inhibitRules(): Obj[] {
    return [
        {
            source_matchers: ['alertname="VendorAllPoolsDown"'],
            target_matchers: [`alertname=~"${regexOneOf(ALL_POOLS_DOWN_INHIBITS)}"`],
            equal: [L.cluster, L.vendor],
        },
        // Silence has one root: no gateway replica explains no data, and no data explains no traffic.
        {
            source_matchers: ['alertname="GatewayNoAvailableReplica"'],
            target_matchers: ['alertname=~"VendorNoData|VendorTrafficStopped"'],
            equal: [L.cluster, L.vendor],
        },
        {
            source_matchers: ['alertname="VendorNoData"'],
            target_matchers: ['alertname="VendorTrafficStopped"'],
            equal: [L.cluster, L.vendor],
        },
        {
            source_matchers: ['severity="critical"', re(L.vendor, ".+"), 'symptom=~".+"'],
            target_matchers: ['severity="warning"'],
            equal: [L.cluster, L.vendor, "symptom"],
        },
    ];
}

function receiver(cfg: AlertmanagerStackConfig, name: string, secrets: Readonly<Record<string, string>>): Obj {
    const r = cfg.alerting.receivers.find((x) => x.name === name);
    if (!r) return { name };
    const secret = secrets[name];
    const sendResolved = { send_resolved: true };
    switch (r.type) {
        case "slack":
            return {
                name,
                slack_configs: [
                    {
                        ...sendResolved,
                        api_url: secret,
                        channel: r.channel ?? "#alerts",
                        title: "{{ .CommonLabels.alertname }}{{ if .CommonLabels.vendor }} ({{ .CommonLabels.vendor }}){{ end }}",
                        text: "{{ range .Alerts }}{{ .Annotations.description }}\n{{ .Annotations.runbook_url }}\n{{ end }}",
                    },
                ],
            };
        case "pagerduty":
            return {
                name,
                pagerduty_configs: [
                    { ...sendResolved, routing_key: secret, description: "{{ .CommonAnnotations.summary }}" },
                ],
            };
        case "webhook":
            return { name, webhook_configs: [{ ...sendResolved, url: secret }] };
        case "email":
            return {
                name,
                email_configs: [
                    {
                        ...sendResolved,
                        to: r.to,
                        from: r.from,
                        smarthost: r.smarthost,
                        ...(secret !== undefined ? { auth_username: r.from, auth_password: secret } : {}),
                    },
                ],
            };
    }
}

export function buildAlertmanagerConfig(cfg: AlertmanagerStackConfig, secrets: Readonly<Record<string, string>>): Obj {
    const a = cfg.alerting;
    const or = (name: string) => name || NULL_RECEIVER;
    const routes: Obj[] = [
        {
            receiver: or(a.watchdogReceiver),
            matchers: ['alertname="Watchdog"'],
            group_wait: "0s",
            group_interval: "1m",
            repeat_interval: "1m",
        },
        ...Object.entries(a.vendorReceivers).map(([vendor, recv]) => ({
            receiver: recv,
            matchers: [eq(L.vendor, vendor), 'severity=~"critical|warning"'],
            continue: true,
        })),
        {
            receiver: or(a.criticalReceiver),
            matchers: ['severity="critical"'],
            group_wait: "30s",
            repeat_interval: "1h",
        },
        { receiver: or(a.warningReceiver), matchers: ['severity="warning"'], repeat_interval: "12h" },
        { receiver: NULL_RECEIVER, matchers: ['severity="info"'] },
    ];
    const used = new Set([NULL_RECEIVER, ...a.receivers.map((r) => r.name)]);
    return {
        global: { resolve_timeout: "5m" },
        route: {
            receiver: or(a.warningReceiver),
            group_by: ["alertname", L.cluster, L.vendor],
            group_wait: "30s",
            group_interval: "5m",
            repeat_interval: "12h",
            routes,
        },
        inhibit_rules: inhibitRules(),
        receivers: [...used].map((name) => receiver(cfg, name, secrets)),
    };
}
