/** `crawlers`: the namespaces and pods that send traffic through the gateways. */
import { z } from "zod";
import { KeyPath, LABEL, Problem, list, num, obj, oneOf, section, str, uniqueNames } from "./kit";

/** An Istio Sidecar egress host: `<namespace>/<dnsName>`, namespace `*`, `.`, `~` or a name, host `*`, `*.suffix` or a name. */
const SIDECAR_HOST = {
    re: /^(\*|\.|~|[a-z0-9]([-a-z0-9]*[a-z0-9])?)\/(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/,
    expected: "an Istio Sidecar egress host <namespace>/<host>, such as queues/*, ./redis or */api.example.com",
};

const POD_SELECTOR = "a non-empty map of Kubernetes label names to label values";
const LABEL_NAME = /^([a-z0-9.-]+\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$/;

const namespace = obj({
    name: str(LABEL).describe("the namespace"),
    manage: oneOf(["create", "label"], "create or label")
        .describe(
            "`create`: the program creates the namespace; `label`: it labels an existing one (server-side apply).",
        )
        .default("create"),
    serviceAccounts: list(str(LABEL))
        .describe("Service accounts of crawlers in this namespace that may use the gateways.")
        .default(["default"]),
    vendors: list(str(LABEL)).describe("Vendors these crawlers may use. Defaults to every vendor.").optional(),
    egressHosts: list(str(SIDECAR_HOST))
        .describe(
            "Destinations the crawlers may reach besides the gateways and the control plane, as Istio Sidecar egress hosts (`<namespace>/<host>`, such as `queues/*`, `./redis` or `data/results.data.svc.cluster.local`). Their Sidecar is REGISTRY_ONLY: what is not listed here is refused (a host outside the cluster also needs a ServiceEntry).",
        )
        .default([]),
});

export const crawlersSchema = section({
    namespaces: list(namespace, 1)
        .describe("namespaces of crawlers that may use the gateways (at least 1)")
        .superRefine(uniqueNames("namespace")),
    podSelector: z
        .record(z.string(), z.string(), { error: POD_SELECTOR })
        .describe(
            "labels that select crawler pods: the pods the mesh policy applies to in a `label` namespace, and the cAdvisor series of dashboards",
        )
        .refine(
            (sel) =>
                Object.keys(sel).length > 0 &&
                Object.entries(sel).every(([k, v]) => LABEL_NAME.test(k) && LABEL_VALUE.test(v)),
            { error: POD_SELECTOR },
        )
        .default({ "app.kubernetes.io/component": "crawler" }),
    expectedPods: num({ min: 0, max: 1_000_000, int: true })
        .describe("Expected number of crawler pods, for the series budget.")
        .default(100),
});

export type CrawlerNamespaceConfig = Omit<z.output<typeof namespace>, "vendors"> & { vendors: string[] };
export type CrawlersConfig = Omit<z.output<typeof crawlersSchema>, "namespaces"> & {
    namespaces: CrawlerNamespaceConfig[];
};

/** Fills each namespace's vendors (default: all) and checks they and the namespace names are allowed. */
export function resolveCrawlers(
    c: z.output<typeof crawlersSchema>,
    vendorNames: readonly string[],
    programNamespaces: readonly string[],
): { problems: Problem[]; crawlers: CrawlersConfig } {
    const problems: Problem[] = [];
    const at = (i: number, ...p: (string | number)[]): KeyPath => ["crawlers", "namespaces", i, ...p];
    c.namespaces.forEach((n, i) => {
        n.vendors?.forEach((v, j) => {
            if (!vendorNames.includes(v))
                problems.push({
                    path: at(i, "vendors", j),
                    expected: `a configured vendor (${vendorNames.join(", ")})`,
                });
        });
        if (programNamespaces.includes(n.name))
            problems.push({
                path: at(i, "name"),
                expected: "a namespace other than the monitoring, gateway, simulator and Istio namespaces",
            });
    });
    const namespaces = c.namespaces.map((n) => ({ ...n, vendors: n.vendors ?? [...vendorNames] }));
    return { problems, crawlers: { ...c, namespaces } };
}
