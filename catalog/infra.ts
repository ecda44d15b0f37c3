/**
 * Series the dashboards read that are not the data model: kept by the scrape config from cAdvisor,
 * kube-state-metrics, Prometheus and Alertmanager (components/prometheus/scrape.ts `KEPT` lists them), and the
 * series Prometheus makes itself for every target and alert rule.
 */
export const PROMETHEUS_SYNTHETIC = [
    "up",
    "scrape_duration_seconds",
    "scrape_samples_post_metric_relabeling",
    "ALERTS",
] as const;
