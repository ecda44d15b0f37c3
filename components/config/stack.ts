/**
 * The whole stack config: the sections' schemas under their keys, the checks across sections, and
 * `parseStackConfig`, which turns the raw `proxy-monitor:*` values into a StackConfig or one problem per root cause:
 * a section that fails is not checked against the others, so its failure is reported once.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import { ConfigProblem, show } from "../validate";
import { alertingSchema, checkAlerting } from "./alerting";
import { autoscalingSchema } from "./autoscaling";
import { crawlersSchema, resolveCrawlers } from "./crawlers";
import { destinationsSchema } from "./destinations";
import { checkFederation, federationSchema, secretMapSchema } from "./federation";
import { gatewaySchema } from "./gateway";
import { grafanaSchema } from "./grafana";
import { imagesSchema } from "./images";
import { LABEL, Problem, issueProblems, obj, str, toConfigProblems, unknownKey } from "./kit";
import { loadGeneratorSchema, resolveLoadGenerator } from "./load-generator";
import { meshSchema } from "./mesh";
import { checkMonitoring, monitoringSchema } from "./monitoring";
import { namespacesSchema } from "./namespaces";
import { prometheusSchema } from "./prometheus";
import { resourcesSchema } from "./resources";
import { RawConfig, SIMPLE_KEYS, foldSimpleKeys } from "./simple-keys";
import { PoolCredentials, checkCredentials, checkVendors, credentialsSchema, vendorsSchema } from "./vendors";

/** Config keys holding secrets; they must be set with `pulumi config set --secret`. */
export const SECRET_KEYS = ["credentials", "alertingSecrets", "federationSecrets", "crawlerSecrets"] as const;

/** The structured keys, each with its schema (defaults and checks within the section included). */
export const SECTIONS = {
    cluster: str(LABEL)
        .describe("The `cluster` label value of this cluster's series. Defaults to the stack name.")
        .optional(),
    namespaces: namespacesSchema.describe("the program's own namespaces"),
    vendors: vendorsSchema.describe("the proxy vendors (required, at least 1)"),
    destinations: destinationsSchema.describe(
        "destination hosts: which are tracked as labels, which the gateways accept",
    ),
    crawlers: crawlersSchema.describe("the crawlers that use the gateways"),
    images: imagesSchema.describe("container images, pinned to a tag or digest"),
    resources: resourcesSchema.describe("requests and limits of `cpu` and `memory` per component"),
    gateway: gatewaySchema.describe("the per-vendor gateways"),
    prometheus: prometheusSchema.describe("the cluster Prometheus (limits per scrape job)"),
    federation: federationSchema.describe("the global Prometheus"),
    alerting: alertingSchema.describe("Alertmanager, receivers and routes"),
    grafana: grafanaSchema.describe("Grafana"),
    loadGenerator: loadGeneratorSchema.describe("the synthetic load generator"),
    autoscaling: autoscalingSchema.describe("VPA, custom-metric HPAs and the crawler workloads they scale"),
    mesh: meshSchema.describe("how the program fits the Istio mesh"),
    monitoring: monitoringSchema.describe(
        "standalone monitoring, or objects for an existing Prometheus Operator (kube-prometheus-stack)",
    ),
    credentials: credentialsSchema
        .default({})
        .describe("secret: `<vendor>.<pool>.username` and `.password` for every pool that is not simulated"),
    alertingSecrets: secretMapSchema
        .default({})
        .describe("secret: per receiver, the Slack or webhook URL, PagerDuty routing key or SMTP password"),
    federationSecrets: secretMapSchema
        .default({})
        .describe("secret: the bearer token per remote cluster name, and `remoteWrite` for the remote-write store"),
    crawlerSecrets: secretMapSchema
        .describe("secret: the shared secret per crawler namespace, required for each when `gateway.crawlerAuth` is on")
        .default({}),
} as const;

/** The structured config as one schema (for the JSON Schema and the reference; parsing goes section by section). */
export const structuredSchema = obj(SECTIONS);

/** Every top-level key the program reads (under the `proxy-monitor:` namespace). */
export const KNOWN_KEYS = [
    "cluster",
    ...SIMPLE_KEYS.map((s) => s.key),
    ...Object.keys(SECTIONS).filter((k) => k !== "cluster"),
] as readonly string[];

type Parsed = { -readonly [K in keyof typeof SECTIONS]: z.output<(typeof SECTIONS)[K]> };

/** The secret values, validated; they only ever travel as a secret Output (see StackSecrets.values). */
export interface SecretValues {
    /** vendor → pool → username and password. */
    readonly credentials: Readonly<Record<string, Readonly<Record<string, PoolCredentials>>>>;
    /** Receiver name → webhook/Slack URL, PagerDuty routing key or SMTP password. */
    readonly alertingSecrets: Readonly<Record<string, string>>;
    /** Remote cluster name (and `remoteWrite`) → bearer token. */
    readonly federationSecrets: Readonly<Record<string, string>>;
    /** Crawler namespace → the secret its crawlers present to the gateways (gateway.crawlerAuth). */
    readonly crawlerSecrets: Readonly<Record<string, string>>;
}

/** The stack's secrets: which are set (plain names, for planning), and their values as one secret Output. */
export interface StackSecrets {
    readonly names: {
        /** vendor → the pools whose credentials are configured (the others are simulated, and generated). */
        readonly credentials: Readonly<Record<string, readonly string[]>>;
        readonly alertingSecrets: readonly string[];
        readonly federationSecrets: readonly string[];
        readonly crawlerSecrets: readonly string[];
    };
    readonly values: pulumi.Output<SecretValues>;
}

export interface StackConfig extends Omit<
    Parsed,
    | "cluster"
    | "crawlers"
    | "loadGenerator"
    | "credentials"
    | "alertingSecrets"
    | "federationSecrets"
    | "crawlerSecrets"
> {
    readonly stack: string;
    /** The `cluster` label value of this cluster's series. Defaults to the stack name. */
    readonly cluster: string;
    readonly crawlers: ReturnType<typeof resolveCrawlers>["crawlers"];
    readonly loadGenerator: ReturnType<typeof resolveLoadGenerator>["loadGenerator"];
    /** credentials, alertingSecrets, federationSecrets and crawlerSecrets: never as plain strings here. */
    readonly secrets: StackSecrets;
}

/** The secrets of a validated config, their values wrapped as a secret Output. */
function stackSecrets(v: SecretValues): StackSecrets {
    return {
        names: {
            credentials: Object.fromEntries(Object.entries(v.credentials).map(([k, pools]) => [k, Object.keys(pools)])),
            alertingSecrets: Object.keys(v.alertingSecrets),
            federationSecrets: Object.keys(v.federationSecrets),
            crawlerSecrets: Object.keys(v.crawlerSecrets),
        },
        values: pulumi.secret(v),
    };
}

/** Validates raw config. `secretKeys` names the keys Pulumi holds as secrets (without the namespace). */
export function parseStackConfig(
    input: RawConfig,
    stack: string,
    secretKeys: ReadonlySet<string> = new Set(SECRET_KEYS),
): { config?: StackConfig; problems: ConfigProblem[] } {
    const folded = foldSimpleKeys(input);
    const raw = folded.raw;
    const problems: Problem[] = [];
    for (const key of Object.keys(raw))
        if (!(key in SECTIONS))
            problems.push({ path: [key], expected: unknownKey(key, KNOWN_KEYS), found: "an unknown key" });
    for (const key of SECRET_KEYS)
        if (raw[key] !== undefined && !secretKeys.has(key))
            problems.push({
                path: [key],
                expected: `a secret (set it with \`pulumi config set --secret --path '${key}...'\`)`,
                found: "a plain-text value",
            });

    const p: Partial<Parsed> = {};
    for (const [key, schema] of Object.entries(SECTIONS) as [keyof Parsed, z.ZodType][]) {
        const r = schema.safeParse(raw[key]);
        if (r.success) (p as Record<string, unknown>)[key] = r.data;
        else problems.push(...issueProblems(schema, r.error.issues, [key]));
    }

    // Checks across sections, each only when the sections it reads are valid.
    const cluster = p.cluster ?? stack;
    const vendorNames = p.vendors?.map((v) => v.name);
    if (p.vendors && p.namespaces) problems.push(...checkVendors(p.vendors, p.namespaces.simulators));
    const creds = p.vendors && p.credentials ? checkCredentials(p.credentials, p.vendors, unknownKey) : undefined;
    problems.push(...(creds?.problems ?? []));
    const crawlers =
        p.crawlers && vendorNames && p.namespaces
            ? resolveCrawlers(p.crawlers, vendorNames, Object.values(p.namespaces))
            : undefined;
    problems.push(...(crawlers?.problems ?? []));
    if (p.gateway?.crawlerAuth && crawlers && p.crawlerSecrets)
        for (const ns of crawlers.crawlers.namespaces)
            if (p.crawlerSecrets[ns.name] === undefined)
                problems.push({
                    path: ["crawlerSecrets", ns.name],
                    expected: `the shared secret of crawler namespace ${ns.name}, since gateway.crawlerAuth is true (pulumi config set --secret --path 'crawlerSecrets.${ns.name}' SECRET)`,
                });
    if (p.federation) problems.push(...checkFederation(p.federation, cluster, p.federationSecrets));
    if (p.monitoring && p.prometheus && p.federation && p.autoscaling)
        problems.push(...checkMonitoring(p.monitoring, p.prometheus, p.federation, p.autoscaling, p.federationSecrets));
    if (p.alerting) problems.push(...checkAlerting(p.alerting, vendorNames, p.alertingSecrets));
    const loadGenerator =
        p.loadGenerator && vendorNames ? resolveLoadGenerator(p.loadGenerator, vendorNames) : undefined;
    problems.push(...(loadGenerator?.problems ?? []));
    if (loadGenerator && crawlers) {
        const names = crawlers.crawlers.namespaces.map((n) => n.name);
        if (loadGenerator.loadGenerator.enabled && !names.includes(loadGenerator.loadGenerator.namespace))
            problems.push({
                path: ["loadGenerator", "namespace"],
                expected: `one of crawlers.namespaces (${names.join(", ") || "none"}), so the generator may use the gateways`,
            });
    }
    if (p.vendors && p.loadGenerator) {
        const simulated = p.vendors.flatMap((v) =>
            v.pools.filter((x) => x.simulator).map((x) => `${v.name}/${x.name}`),
        );
        if (simulated.length > 0 && !p.loadGenerator.simulators)
            problems.push({
                path: ["simulatorsEnabled"],
                expected: `true, since pools ${simulated.join(", ")} point at simulators`,
                found: show(p.loadGenerator.simulators),
            });
    }

    const out = [...toConfigProblems(raw, folded.problems), ...toConfigProblems(raw, problems).map(folded.rename)];
    if (out.length > 0 || !creds || !crawlers || !loadGenerator) return { problems: out };
    const {
        cluster: _cluster,
        alertingSecrets,
        federationSecrets,
        crawlerSecrets,
        credentials: _c,
        ...sections
    } = p as Parsed;
    return {
        problems: [],
        config: {
            ...sections,
            stack,
            cluster,
            crawlers: crawlers.crawlers,
            loadGenerator: loadGenerator.loadGenerator,
            secrets: stackSecrets({
                credentials: creds.credentials,
                alertingSecrets,
                federationSecrets,
                crawlerSecrets,
            }),
        },
    };
}
