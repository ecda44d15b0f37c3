/**
 * The simple keys: scalars a user sets with `pulumi config set <key> <value>`, declared with type, default and
 * description in Pulumi.yaml (generated from this table and the schema's defaults; a test keeps it so). Each lands
 * at `path` in the structured config; setting the same value in the structured key as well is an error.
 */
import { ConfigProblem, isObject } from "../validate";
import { PROJECT, Problem } from "./kit";

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

export type RawConfig = Record<string, unknown>;

/**
 * Moves the simple keys into the structured config where the schema reads them; reports a setting made both ways;
 * returns a function that renames problem paths back to the simple key the user set.
 */
export function foldSimpleKeys(raw: RawConfig): {
    raw: RawConfig;
    problems: Problem[];
    rename: (p: ConfigProblem) => ConfigProblem;
} {
    const out: RawConfig = { ...raw };
    const problems: Problem[] = [];
    const renames = new Map<string, string>();
    for (const s of SIMPLE_KEYS) {
        const [section, field] = s.path;
        const nested = out[section];
        if (isObject(nested) && nested[field] !== undefined)
            problems.push({
                path: [section, field],
                expected: `this setting in the simple key ${PROJECT}:${s.key} (pulumi config set ${s.key} …)`,
            });
        if (out[s.key] === undefined) continue;
        const value = out[s.key];
        delete out[s.key];
        if (nested !== undefined && !isObject(nested)) continue; // the section's own problem is reported
        out[section] = { ...nested, [field]: value };
        renames.set(`${PROJECT}:${section}.${field}`, `${PROJECT}:${s.key}`);
    }
    return { raw: out, problems, rename: (p) => ({ ...p, path: renames.get(p.path) ?? p.path }) };
}
