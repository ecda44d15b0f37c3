/**
 * Long-term storage: the cluster Prometheus's remote_write to a store (Thanos Receive, Mimir, VictoriaMetrics), and
 * agent mode, where it keeps nothing to query and only scrapes and forwards. The external `cluster` label (and the
 * `replica` label of an HA pair, for the store's deduplication) travels with every sample.
 */
import { allRecordedSeries } from "../../catalog";
import { StackConfig } from "../config";
import { regexOneOf } from "./escape";
import { Obj } from "./scrape";

/** The stack settings remote_write and agent mode read. */
export type RemoteWriteStackConfig = Pick<StackConfig, "prometheus" | "secrets">;

/** Where the cluster Prometheus mounts the remote_write credential (`federationSecrets.remoteWrite`). */
export const REMOTE_WRITE_SECRET_DIR = "/etc/prometheus/remote-write";
export const REMOTE_WRITE_SECRET = "remoteWrite";

/** Whether the cluster Prometheus needs the remote_write credential mounted. */
export function remoteWriteHasCredential(cfg: RemoteWriteStackConfig): boolean {
    return cfg.prometheus.remoteWrite.url !== "" && cfg.secrets.names.federationSecrets.includes(REMOTE_WRITE_SECRET);
}

/** The cluster Prometheus's remote_write entry, or undefined without `prometheus.remoteWrite.url`. */
export function remoteWriteConfig(cfg: RemoteWriteStackConfig): Obj | undefined {
    const rw = cfg.prometheus.remoteWrite;
    if (rw.url === "") return undefined;
    const file = `${REMOTE_WRITE_SECRET_DIR}/${REMOTE_WRITE_SECRET}`;
    const auth = !remoteWriteHasCredential(cfg)
        ? {}
        : rw.basicAuthUsername !== undefined
          ? { basic_auth: { username: rw.basicAuthUsername, password_file: file } }
          : { authorization: { credentials_file: file } };
    const q = rw.queue;
    return {
        url: rw.url,
        ...auth,
        queue_config: {
            capacity: q.capacity,
            min_shards: q.minShards,
            max_shards: q.maxShards,
            max_samples_per_send: q.maxSamplesPerSend,
            batch_send_deadline: q.batchSendDeadline,
            min_backoff: q.minBackoff,
            max_backoff: q.maxBackoff,
        },
        // By default only what federation carries: the recorded series the dashboards and alerts read.
        ...(rw.series === "recorded"
            ? {
                  write_relabel_configs: [
                      { source_labels: ["__name__"], regex: regexOneOf(allRecordedSeries()), action: "keep" },
                  ],
              }
            : {}),
    };
}

/** The storage flags of the cluster Prometheus: a TSDB with retention, or an agent's write-ahead log only. */
export function storageArgs(cfg: RemoteWriteStackConfig): string[] {
    if (cfg.prometheus.agent) return ["--enable-feature=agent", "--storage.agent.path=/prometheus"];
    return [
        "--storage.tsdb.path=/prometheus",
        `--storage.tsdb.retention.time=${cfg.prometheus.retention}`,
        `--storage.tsdb.retention.size=${cfg.prometheus.retentionSize}`,
    ];
}

/**
 * Applies remote_write and agent mode to a cluster Prometheus configuration: an agent evaluates no rules and sends no
 * alerts (Prometheus refuses `rule_files` and `alerting` in agent mode); the central store does both.
 */
export function withLongTermStorage(cfg: RemoteWriteStackConfig, config: Obj): Obj {
    const rw = remoteWriteConfig(cfg);
    const out: Obj = { ...config, ...(rw ? { remote_write: [rw] } : {}) };
    if (cfg.prometheus.agent) {
        delete out.alerting;
        delete out.rule_files;
        out.global = { ...(out.global as Obj) };
        delete (out.global as Obj).evaluation_interval;
    }
    return out;
}
