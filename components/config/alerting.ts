/** `alerting`: Alertmanager, its receivers and routes; `alertingSecrets` (secret) holds the receivers' credentials. */
import { z } from "zod";
import { BYTES, HTTP_URL, LABEL, Problem, list, num, obj, oneOf, section, str, uniqueNames } from "./kit";

const RECEIVER_TYPES = ["slack", "pagerduty", "webhook", "email"] as const;
const EMAIL = { re: /^[^@\s]+@[^@\s]+$/, expected: "an e-mail address" };

const receiver = obj({
    name: str(LABEL).describe("DNS label; referenced by routes."),
    type: oneOf(RECEIVER_TYPES).describe(
        "where notifications go; the credential is in `alertingSecrets.<name>` (not for email)",
    ),
    channel: str({ re: /^#?[a-z0-9_-]{1,80}$/, expected: "a Slack channel such as #proxy-alerts" })
        .describe("Slack channel")
        .optional(),
    to: str(EMAIL).describe("email: recipient").optional(),
    from: str(EMAIL).describe("email: sender").optional(),
    smarthost: str({ re: /^[a-z0-9.-]+:[0-9]{1,5}$/, expected: "host:port" })
        .describe("email: SMTP host:port")
        .optional(),
}).superRefine((r, ctx) => {
    if (r.type !== "email") return;
    for (const f of ["to", "from", "smarthost"] as const)
        if (r[f] === undefined)
            ctx.addIssue({ code: "custom", path: [f], message: "a value for an email receiver", input: undefined });
});
export type ReceiverConfig = z.output<typeof receiver>;

const receiverRef = str(LABEL).default("");

export const alertingSchema = section({
    replicas: num({ min: 1, max: 5, int: true }).describe("Alertmanager replicas (clustered when above 1)").default(3),
    storageSize: str(BYTES).describe("volume per replica").default("2Gi"),
    receivers: list(receiver).describe("notification receivers").default([]).superRefine(uniqueNames("receiver")),
    criticalReceiver: receiverRef.describe("receiver of critical alerts (pages)"),
    warningReceiver: receiverRef.describe("receiver of warnings (tickets)"),
    vendorReceivers: z
        .record(z.string(), z.string({ error: "a receiver named in alerting.receivers" }), {
            error: "an object",
        })
        .describe("vendor to receiver (e.g. the team that owns the contract), in addition to the severity route")
        .default({}),
    runbookBaseUrl: str(HTTP_URL)
        .describe("Where alerts' runbook_url point: the troubleshooting page of your copy of this repository.")
        .default("https://github.com/example-org/proxy-monitor/blob/main/docs/troubleshooting.md"),
    watchdogReceiver: receiverRef.describe(
        "Receiver of the always-firing Watchdog (a dead man's switch service); empty: nowhere.",
    ),
}).superRefine((a, ctx) => {
    const names = a.receivers.map((r) => r.name);
    for (const key of ["criticalReceiver", "warningReceiver", "watchdogReceiver"] as const)
        if (a[key] !== "" && !names.includes(a[key]))
            ctx.addIssue({
                code: "custom",
                path: [key],
                message: `a receiver named in alerting.receivers (${names.join(", ") || "none"})`,
                input: a[key],
            });
    for (const [vendor, recv] of Object.entries(a.vendorReceivers))
        if (!names.includes(recv))
            ctx.addIssue({
                code: "custom",
                path: ["vendorReceivers", vendor],
                message: "a receiver named in alerting.receivers",
                input: recv,
            });
});
export type AlertingConfig = z.output<typeof alertingSchema>;

/** Per-vendor receivers name configured vendors; every receiver but email has its credential in alertingSecrets. */
export function checkAlerting(
    a: AlertingConfig,
    vendorNames: readonly string[] | undefined,
    secrets: Readonly<Record<string, string>> | undefined,
): Problem[] {
    const problems: Problem[] = [];
    if (vendorNames)
        for (const vendor of Object.keys(a.vendorReceivers))
            if (!vendorNames.includes(vendor))
                problems.push({
                    path: ["alerting", "vendorReceivers", vendor],
                    expected: `a configured vendor (${vendorNames.join(", ")})`,
                    found: JSON.stringify(vendor),
                });
    if (secrets)
        for (const r of a.receivers)
            if (r.type !== "email" && secrets[r.name] === undefined) {
                const what = r.type === "pagerduty" ? "routing key" : r.type === "slack" ? "webhook URL" : "URL";
                problems.push({
                    path: ["alertingSecrets", r.name],
                    expected: `the ${what} of receiver ${r.name} (pulumi config set --secret --path 'alertingSecrets.${r.name}' …)`,
                    missingSecret: "value",
                });
            }
    return problems;
}
