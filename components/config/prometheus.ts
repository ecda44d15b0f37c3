/** `prometheus`: the cluster Prometheus. */
import { z } from "zod";
import { durationMs } from "../validate";
import { BYTES, DURATION, PROM_BYTES, bool, num, oneOf, section, str } from "./kit";

/** What the cluster Prometheus remote-writes: the recorded series (what federation carries) or every kept series. */
export const REMOTE_WRITE_SERIES = ["recorded", "all"] as const;

const remoteWriteSchema = section({
    url: str({ re: /^(|https?:\/\/\S+)$/, expected: "an http(s) URL or empty" })
        .describe(
            "remote_write URL of a long-term store (Thanos Receive `/api/v1/receive`, Mimir `/api/v1/push`, VictoriaMetrics `/api/v1/write`); empty: none. The bearer token (or basic-auth password) is `federationSecrets.remoteWrite`.",
        )
        .default(""),
    basicAuthUsername: str({ re: /^\S{1,256}$/, expected: "a user name without spaces" })
        .describe(
            "Basic-auth user name (Mimir tenant, VictoriaMetrics); the password is `federationSecrets.remoteWrite`. Unset: that secret is a bearer token.",
        )
        .optional(),
    series: oneOf(REMOTE_WRITE_SERIES)
        .describe(
            "`recorded`: only the recorded series (cheap, what dashboards and alerts read); `all`: every series kept at scrape time.",
        )
        .default("recorded"),
    queue: section({
        capacity: num({ min: 100, int: true }).describe("samples buffered per shard").default(10_000),
        minShards: num({ min: 1, int: true }).describe("shards at start").default(1),
        maxShards: num({ min: 1, int: true }).describe("most parallel senders").default(50),
        maxSamplesPerSend: num({ min: 100, int: true }).describe("samples per request").default(2_000),
        batchSendDeadline: str(DURATION).describe("longest wait before a partial batch is sent").default("5s"),
        minBackoff: str(DURATION).describe("first retry delay (doubles per retry)").default("30ms"),
        maxBackoff: str(DURATION).describe("longest retry delay").default("5s"),
    }).describe("queue_config: sized for the fleet (see the deployment guide)"),
});
export type RemoteWriteConfig = z.output<typeof remoteWriteSchema>;

export const prometheusSchema = section({
    replicas: num({ min: 1, max: 2, int: true }).describe("1, or 2 for an HA pair").default(2),
    scrapeInterval: str(DURATION).describe("scrape interval (at least 1s)").default("15s"),
    evaluationInterval: str(DURATION).describe("rule evaluation interval").default("15s"),
    retention: str(DURATION).describe("retention time").default("30d"),
    retentionSize: str(PROM_BYTES).describe("retention size").default("90GB"),
    storageSize: str(BYTES).describe("volume per replica").default("100Gi"),
    seriesBudget: num({ min: 1000, int: true })
        .describe("The most active series the configuration may be expected to produce; render and preview fail above.")
        .default(100_000),
    sampleLimit: num({ min: 100, int: true }).describe("samples per scrape, per job").default(20_000),
    labelLimit: num({ min: 5, max: 1000, int: true }).describe("labels per series, per job").default(30),
    labelValueLengthLimit: num({ min: 16, max: 10_000, int: true })
        .describe("label value length, per job")
        .default(200),
    remoteWrite: remoteWriteSchema.describe("remote_write to a long-term store"),
    agent: bool()
        .describe(
            "Run the cluster Prometheus in agent mode (`--enable-feature=agent`): scrape and remote-write every kept series, no local queries, rules or alerts (the central store evaluates them). Needs `prometheus.remoteWrite.url` and `series: all`.",
        )
        .default(false),
}).superRefine((p, ctx) => {
    if (p.agent && p.remoteWrite.url === "")
        ctx.addIssue({
            code: "custom",
            path: ["remoteWrite", "url"],
            message: "a remote_write URL, since prometheus.agent is true (an agent keeps nothing it can query)",
            input: p.remoteWrite.url,
        });
    if (p.agent && p.remoteWrite.series !== "all")
        ctx.addIssue({
            code: "custom",
            path: ["remoteWrite", "series"],
            message: "all, since prometheus.agent is true (an agent evaluates no recording rules)",
            input: p.remoteWrite.series,
        });
    if (durationMs(p.scrapeInterval) < 1000)
        ctx.addIssue({
            code: "custom",
            path: ["scrapeInterval"],
            message: "a duration of at least 1s",
            input: p.scrapeInterval,
        });
});
export type PrometheusConfig = z.output<typeof prometheusSchema>;
