/** `federation`: the global Prometheus and the remote clusters it federates; `federationSecrets` (secret). */
import { z } from "zod";
import { BYTES, DURATION, LABEL, Problem, bool, list, obj, section, str, uniqueNames } from "./kit";

const remoteCluster = obj({
    name: str(LABEL).describe("The remote cluster's `cluster` label value."),
    url: str({ re: /^https?:\/\/[^\s/]+(\/[^\s]*)?$/, expected: "an http(s) URL" })
        .describe("Base URL of the remote cluster Prometheus (its `/federate` is scraped).")
        .overwrite((u) => u.replace(/\/+$/, "")),
    insecureSkipVerify: bool().describe("Skip TLS verification (only for testing).").default(false),
});
export type RemoteClusterConfig = z.output<typeof remoteCluster>;

export const federationSchema = section({
    enabled: bool().describe("deploy the global Prometheus that federates recorded series").default(false),
    retention: str(DURATION).describe("global Prometheus retention").default("90d"),
    storageSize: str(BYTES).describe("global Prometheus volume").default("50Gi"),
    remoteClusters: list(remoteCluster)
        .describe(
            "other clusters whose recorded series the global Prometheus federates (their bearer tokens in `federationSecrets`)",
        )
        .default([])
        .superRefine(uniqueNames("cluster")),
    remoteWriteUrl: str({ re: /^(|https?:\/\/\S+)$/, expected: "an http(s) URL or empty" })
        .describe("Optional remote_write URL of a long-term store (Thanos Receive, Mimir).")
        .default(""),
});
export type FederationConfig = z.output<typeof federationSchema>;

/** A secret map: names to non-empty strings. */
export const secretMapSchema = z.record(
    z.string(),
    z.string({ error: "a non-empty string" }).regex(/^\S.*$/, { error: "a non-empty string", abort: true }),
    { error: "an object" },
);

/** No remote cluster is this one, and each has its bearer token when federation is on. */
export function checkFederation(
    f: FederationConfig,
    cluster: string,
    secrets: Readonly<Record<string, string>> | undefined,
): Problem[] {
    const problems: Problem[] = [];
    f.remoteClusters.forEach((c, i) => {
        if (c.name === cluster)
            problems.push({
                path: ["federation", "remoteClusters", i, "name"],
                expected: `a name other than this cluster's (${cluster})`,
            });
        if (f.enabled && secrets && secrets[c.name] === undefined)
            problems.push({
                path: ["federationSecrets", c.name],
                expected: `the bearer token of remote cluster ${c.name} (pulumi config set --secret --path 'federationSecrets.${c.name}' TOKEN)`,
                missingSecret: "value",
            });
    });
    return problems;
}
