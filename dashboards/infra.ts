/** Infrastructure: crawler pods, gateways, autoscaling, and the monitoring stack's own health. */
import { L, R, re } from "../catalog";
import { StackConfig } from "../components/config";
import { regexOneOf } from "../components/prometheus/escape";
import { dashboard, query, statPanel, timeseriesPanel } from "./common";

export function infrastructure(cfg: StackConfig) {
    const crawlerNs = regexOneOf(cfg.crawlers.namespaces.map((n) => n.name));
    const c = re(L.cluster, "$cluster");
    const ns = `${c}, namespace=~"${crawlerNs}"`;
    return dashboard(
        "proxy-monitor-infrastructure",
        "Infrastructure",
        "Crawler pods, gateway capacity, autoscaling, and Prometheus and Alertmanager health. Every panel reads recorded series, which the global Prometheus federates.",
        cfg,
        [],
    )
        .withPanel(
            statPanel("Crawler pods running", "Running pods in the crawler namespaces (kube-state-metrics).", "short", [
                query(`sum(${R.namespacePodsRunning}{${ns}})`, "pods"),
            ]),
        )
        .withPanel(
            statPanel("Active series", "Series in Prometheus' head block.", "short", [
                query(`max(${R.instanceHeadSeries}{${c}})`, "series"),
            ]),
        )
        .withPanel(
            statPanel("Scrape targets down", "Targets whose last scrape failed.", "short", [
                query(`sum(${R.jobTargets}{${c}}) - sum(${R.jobTargetsUp}{${c}})`, "down"),
            ]),
        )
        .withPanel(
            statPanel("Series budget", "The configured seriesBudget (a recorded config series).", "short", [
                query(`max(${R.seriesBudget}{${c}})`, "budget"),
            ]),
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
                query(`${R.hpaCurrentReplicas}{${c}}`, "{{namespace}}/{{horizontalpodautoscaler}}"),
                query(`${R.hpaMaxReplicas}{${c}}`, "{{namespace}}/{{horizontalpodautoscaler}} max"),
            ]),
        )
        .withPanel(
            timeseriesPanel("Gateway CPU", "CPU seconds per second of each gateway replica.", "cores", [
                query(`${R.gatewayCpu}{${c}}`, "{{instance}}"),
            ]),
        )
        .withPanel(
            timeseriesPanel(
                "Gateway in-flight tunnels",
                "Open tunnels and plain requests per gateway replica (the tunnel limit answers 503 beyond it).",
                "short",
                [query(`${R.gatewayInflight}{${c}}`, "{{vendor}} {{instance}}")],
            ),
        )
        .withPanel(
            timeseriesPanel("Prometheus ingestion", "Samples appended per second.", "short", [
                query(`${R.instanceSamplesAppended}{${c}}`, "{{instance}}"),
            ]),
        )
        .withPanel(
            timeseriesPanel("Active series vs budget", "Head series against the configured series budget.", "short", [
                query(`${R.instanceHeadSeries}{${c}}`, "{{instance}}"),
                query(`${R.seriesBudget}{${c}}`, "budget {{cluster}}"),
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
                query(`${R.instanceSampleLimitHits}{${c}}`, "{{instance}}"),
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
                [query(`${R.instanceStorageBytes}{${c}}`, "{{instance}}")],
            ),
        )
        .withPanel(
            timeseriesPanel(
                "Rule evaluation",
                "Rule evaluation failures over 10 minutes, and the slowest group's duration.",
                "short",
                [
                    query(`sum(${R.clusterRuleFailures}{${c}})`, "failures"),
                    query(`max(${R.clusterRuleGroupDuration}{${c}})`, "slowest group (s)"),
                ],
            ),
        )
        .withPanel(
            timeseriesPanel(
                "Alertmanager notifications",
                "Notifications sent and failed per second, by integration.",
                "short",
                [
                    query(`sum by (integration) (${R.integrationNotifications}{${c}})`, "{{integration}} sent"),
                    query(`sum by (integration) (${R.integrationNotificationsFailed}{${c}})`, "{{integration}} failed"),
                ],
            ),
        );
}
