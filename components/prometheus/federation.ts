/**
 * The global Prometheus (prod): federates the recorded series (and `up`) of the local cluster Prometheus and of the
 * remote clusters in config, keeps them for its own retention, and optionally remote-writes to a long-term store.
 */
import { L, allRecordedSeries } from "../../catalog";
import { StackConfig } from "../config";
import { NAMES, PORTS } from "../names";
import { regexOneOf } from "./escape";
import { Obj, RULES_DIR, svcDns } from "./scrape";

/** The stack settings the global Prometheus config reads. */
export type FederationStackConfig = Pick<
    StackConfig,
    "cluster" | "namespaces" | "prometheus" | "federation" | "secrets"
>;

/** Where the global Prometheus mounts the federation Secret (one file per remote cluster, plus remoteWrite). */
export const FEDERATION_SECRETS_DIR = "/etc/prometheus/federation";

/**
 * The headless governing Service of the cluster Prometheus StatefulSet: each replica has a stable DNS name,
 * `prometheus-<i>.prometheus-pods.<namespace>.svc`, so the global Prometheus can name one.
 */
export const PROMETHEUS_PODS = "prometheus-pods";

/** The replica the global Prometheus federates from: the first of the pair (a name, not a load-balanced Service). */
export function federatedReplica(cfg: FederationStackConfig): string {
    return `${NAMES.prometheus}-0.${svcDns(PROMETHEUS_PODS, cfg.namespaces.monitoring)}:${PORTS.prometheus}`;
}

/** The `match[]` selector: every recorded series, and nothing else. */
export function federationMatchers(): string[] {
    // Not raw `up`: one series per scrape target grows with the fleet; `job:up:sum` and `job:up:count` are recorded.
    return [`{__name__=~"${regexOneOf(allRecordedSeries())}"}`];
}

export function buildFederationConfig(cfg: FederationStackConfig): Obj {
    const params = { "match[]": federationMatchers() };
    const base = {
        honor_labels: true,
        metrics_path: "/federate",
        params,
        scrape_interval: "30s",
        scrape_timeout: "25s",
        sample_limit: Math.max(cfg.prometheus.sampleLimit, 100_000),
        // One stored series per recorded series, whichever member of an HA pair answered: no replica label.
        metric_relabel_configs: [{ regex: L.replica, action: "labeldrop" }],
    };
    const jobs: Obj[] = [
        {
            job_name: `federate-${cfg.cluster}`,
            ...base,
            static_configs: [
                {
                    targets: [federatedReplica(cfg)],
                    labels: { [L.cluster]: cfg.cluster },
                },
            ],
        },
        ...cfg.federation.remoteClusters.map((c) => {
            const url = new URL(c.url);
            return {
                job_name: `federate-${c.name}`,
                ...base,
                scheme: url.protocol.replace(":", ""),
                ...(url.pathname !== "/" ? { metrics_path: `${url.pathname.replace(/\/$/, "")}/federate` } : {}),
                authorization: { credentials_file: `${FEDERATION_SECRETS_DIR}/${c.name}` },
                tls_config: { insecure_skip_verify: c.insecureSkipVerify },
                static_configs: [{ targets: [url.host], labels: { [L.cluster]: c.name } }],
            };
        }),
    ];
    const config: Obj = {
        global: { scrape_interval: "30s", evaluation_interval: "30s", external_labels: { role: "global" } },
        alerting: {
            alertmanagers: [
                {
                    dns_sd_configs: [
                        {
                            names: [svcDns(NAMES.alertmanagerPeers, cfg.namespaces.monitoring)],
                            type: "A",
                            port: PORTS.alertmanager,
                        },
                    ],
                },
            ],
        },
        rule_files: [`${RULES_DIR}/*.yaml`],
        scrape_configs: jobs,
    };
    if (cfg.federation.remoteWriteUrl) {
        config.remote_write = [
            {
                url: cfg.federation.remoteWriteUrl,
                ...(cfg.secrets.names.federationSecrets.includes("remoteWrite")
                    ? { authorization: { credentials_file: `${FEDERATION_SECRETS_DIR}/remoteWrite` } }
                    : {}),
            },
        ];
    }
    return config;
}
