/** Infrastructure: crawler pods, gateways, autoscaling, and the monitoring stack's own health. */
import { R } from "../catalog";
import { StackConfig } from "../components/config";
import { regexOneOf } from "../components/prometheus/escape";
import { dashboard, query, statPanel, timeseriesPanel } from "./common";

export function infrastructure(cfg: StackConfig) {
    const crawlerNs = regexOneOf(cfg.crawlers.namespaces.map((n) => n.name));
    const c = 'cluster=~"$cluster"';
    const ns = `${c}, namespace=~"${crawlerNs}"`;
    const budget = cfg.prometheus.seriesBudget;
    return dashboard(
        "proxy-monitor-infrastructure",
        "Infrastructure",
        "Crawler pods, gateway capacity, autoscaling, and Prometheus and Alertmanager health.",
        [],
    )
        .withPanel(
            statPanel("Crawler pods running", "Running pods in the crawler namespaces (kube-state-metrics).", "short", [
                query(`sum(${R.namespacePodsRunning}{${ns}})`, "pods"),
            ]),
        )
        .withPanel(
            statPanel("Active series", "Series in Prometheus' head block.", "short", [
                query('max(prometheus_tsdb_head_series{cluster=~"$cluster"})', "series"),
            ]),
        )
        .withPanel(
            statPanel("Scrape targets down", "Targets whose last scrape failed.", "short", [
                query(`sum(${R.jobTargets}{${c}}) - sum(${R.jobTargetsUp}{${c}})`, "down"),
            ]),
        )
        .withPanel(
            statPanel("Series budget", "The configured seriesBudget.", "short", [query(`vector(${budget})`, "budget")]),
        )
        .withPanel(
            timeseriesPanel("Crawler CPU by namespace", "CPU cores used by crawler containers (cAdvisor).", "cores", [
                query(`${R.namespaceCpu}{${ns}}`, "{{namespace}}"),
            ]),
        )
        .withPanel(
            timeseriesPanel(
                "Crawler memory by namespace",
                "Working-set memory of crawler containers (cAdvisor).",
                "bytes",
                [query(`${R.namespaceMemory}{${ns}}`, "{{namespace}}")],
            ),
        )
        .withPanel(
            timeseriesPanel("Container restarts", "Restarts per 5 minutes, by namespace.", "short", [
                query(`${R.namespaceRestarts}{${c}}`, "{{namespace}}"),
            ]),
        )
        .withPanel(
            timeseriesPanel("HPA replicas", "Current and maximum replicas of each HorizontalPodAutoscaler.", "short", [
                query(
                    'kube_horizontalpodautoscaler_status_current_replicas{cluster=~"$cluster"}',
                    "{{namespace}}/{{horizontalpodautoscaler}}",
                ),
                query(
                    'kube_horizontalpodautoscaler_spec_max_replicas{cluster=~"$cluster"}',
                    "{{namespace}}/{{horizontalpodautoscaler}} max",
                ),
            ]),
        )
        .withPanel(
            timeseriesPanel("Gateway CPU", "CPU seconds per second of each gateway replica.", "cores", [
                query(
                    'rate(process_cpu_seconds_total{cluster=~"$cluster", job="proxy-gateways"}[$__rate_interval])',
                    "{{instance}}",
                ),
            ]),
        )
        .withPanel(
            timeseriesPanel(
                "Gateway in-flight tunnels",
                "Open tunnels and plain requests per gateway replica (the tunnel limit answers 503 beyond it).",
                "short",
                [query('proxy_inflight_requests{cluster=~"$cluster"}', "{{vendor}} {{instance}}")],
            ),
        )
        .withPanel(
            timeseriesPanel("Prometheus ingestion", "Samples appended per second.", "short", [
                query(
                    'rate(prometheus_tsdb_head_samples_appended_total{cluster=~"$cluster"}[$__rate_interval])',
                    "{{instance}}",
                ),
            ]),
        )
        .withPanel(
            timeseriesPanel("Active series vs budget", "Head series against the configured series budget.", "short", [
                query('prometheus_tsdb_head_series{cluster=~"$cluster"}', "{{instance}}"),
                query(`vector(${budget})`, "budget"),
            ]),
        )
        .withPanel(
            timeseriesPanel("Scrape durations", "Time each job's scrapes take, slowest target per job.", "s", [
                query(`${R.jobScrapeDuration}{${c}}`, "{{job}}"),
            ]),
        )
        .withPanel(
            timeseriesPanel(
                "Samples per scrape",
                "Samples kept after relabelling, per job (the sample limit applies to it).",
                "short",
                [query(`${R.jobSamplesPerScrape}{${c}}`, "{{job}}")],
            ),
        )
        .withPanel(
            timeseriesPanel("Sample limit hits", "Scrapes dropped whole for exceeding their sample limit.", "short", [
                query(
                    'increase(prometheus_target_scrapes_exceeded_sample_limit_total{cluster=~"$cluster"}[1h])',
                    "{{instance}}",
                ),
            ]),
        )
        .withPanel(
            timeseriesPanel("Scrape targets up", "1 when a target's last scrape succeeded, per job.", "short", [
                query(`${R.jobTargetsUp}{${c}}`, "{{job}}"),
            ]),
        )
        .withPanel(
            timeseriesPanel(
                "TSDB size",
                "Bytes of persisted blocks on disk (what the retention size limits; Prometheus 2.42 exports no WAL size).",
                "bytes",
                [query('prometheus_tsdb_storage_blocks_bytes{cluster=~"$cluster"}', "{{instance}}")],
            ),
        )
        .withPanel(
            timeseriesPanel(
                "Rule evaluation",
                "Rule evaluation failures over 10 minutes, and the slowest group's duration.",
                "short",
                [
                    query(
                        'sum(increase(prometheus_rule_evaluation_failures_total{cluster=~"$cluster"}[10m]))',
                        "failures",
                    ),
                    query('max(prometheus_rule_group_last_duration_seconds{cluster=~"$cluster"})', "slowest group (s)"),
                ],
            ),
        )
        .withPanel(
            timeseriesPanel(
                "Alertmanager notifications",
                "Notifications sent and failed per second, by integration.",
                "short",
                [
                    query(
                        'sum by (integration) (rate(alertmanager_notifications_total{cluster=~"$cluster"}[$__rate_interval]))',
                        "{{integration}} sent",
                    ),
                    query(
                        'sum by (integration) (rate(alertmanager_notifications_failed_total{cluster=~"$cluster"}[$__rate_interval]))',
                        "{{integration}} failed",
                    ),
                ],
            ),
        );
}
