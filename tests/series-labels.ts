/**
 * The labels each series carries where it is read: what the exporters expose (the catalog), through each scrape
 * job's relabelling (the generated prometheus.yml), then through the recording rules (inferred from their PromQL).
 */
import { DATA_MODEL, EXPORTED_LABELS, MetricSpec, PROMETHEUS_SYNTHETIC, histogramSeries } from "../catalog";
import { GATEWAY_METRICS, POOL_QUALITY_METRICS } from "../catalog/gateway";
import { LOADGEN_METRICS } from "../catalog/loadgen";
import { SIMULATOR_METRICS } from "../catalog/simulator";
import { KEPT } from "../components/prometheus/scrape";
import { inferLabels } from "./promql-labels";

type Obj = Record<string, unknown>;
export type SeriesLabels = Map<string, Set<string>>;

/** Series name to exposed labels, from metric specs (histograms: `_bucket` adds `le`). */
export function fromSpecs(specs: readonly MetricSpec[]): [string, string[]][] {
    return specs.flatMap((m) =>
        m.type === "histogram"
            ? histogramSeries(m.name).map((s): [string, string[]] => [
                  s,
                  s.endsWith("_bucket") ? [...m.labels, "le"] : [...m.labels],
              ])
            : [[m.name, [...m.labels]]],
    );
}

function fromExported(names: readonly string[]): [string, string[]][] {
    return names.map((n) => {
        const labels = EXPORTED_LABELS[n];
        if (!labels) throw new Error(`catalog/infra.ts EXPORTED_LABELS lacks ${n}`);
        return [n, [...labels]];
    });
}

const PROCESS = ["process_cpu_seconds_total", "process_resident_memory_bytes"];

/**
 * What each scrape job's targets expose, by job name. A job this does not know fails the label test: a new job
 * must say what it scrapes before its series can be read.
 */
export const EXPOSED_BY_JOB: Readonly<Record<string, () => [string, string[]][]>> = {
    "proxy-gateways": () => [
        ...fromSpecs([
            ...Object.values(DATA_MODEL),
            ...Object.values(GATEWAY_METRICS),
            ...Object.values(POOL_QUALITY_METRICS),
        ]),
        ...fromExported([...PROCESS, "nodejs_eventloop_lag_p99_seconds"]),
    ],
    "istio-gateways": () =>
        fromExported([
            "istio_tcp_sent_bytes_total",
            "istio_tcp_received_bytes_total",
            "istio_tcp_connections_opened_total",
        ]),
    "kubelet-cadvisor": () => fromExported(KEPT.cadvisor),
    "kube-state-metrics": () => fromExported(KEPT.kubeStateMetrics),
    prometheus: () => fromExported(KEPT.prometheus),
    alertmanager: () => fromExported(KEPT.alertmanager),
    grafana: () => fromExported(KEPT.grafana),
    "load-generator": () => [...fromSpecs(Object.values(LOADGEN_METRICS)), ...fromExported(PROCESS)],
    "vendor-simulators": () => [...fromSpecs(Object.values(SIMULATOR_METRICS)), ...fromExported(PROCESS)],
    "crawler-pods": () => fromSpecs(Object.values(LOADGEN_METRICS)),
};

const fullMatch = (regex: string, s: string): boolean => new RegExp(`^(?:${regex})$`).test(s);

/** Apply relabel rules to a label-name set (values unknown): what a stored series of this target can carry. */
function relabelNames(rules: readonly Obj[], names: Set<string>, metric?: string): Set<string> | undefined {
    const out = new Set(names);
    for (const r of rules) {
        const action = (r.action as string | undefined) ?? "replace";
        const regex = (r.regex as string | undefined) ?? "(.*)";
        const sources = (r.source_labels as string[] | undefined) ?? [];
        if (action === "replace" && r.target_label) {
            // A replace whose sources the series lacks writes an empty value (no label) unless the replacement is a
            // constant: the series then carries the label only if one of its sources exists.
            const constant = !/\$/.test((r.replacement as string | undefined) ?? "$1");
            if (constant || sources.some((s) => out.has(s))) out.add(r.target_label as string);
        } else if (action === "labeldrop") {
            for (const n of [...out]) if (fullMatch(regex, n)) out.delete(n);
        } else if (action === "labelkeep") {
            for (const n of [...out]) if (!n.startsWith("__") && !fullMatch(regex, n)) out.delete(n);
        } else if ((action === "keep" || action === "drop") && metric !== undefined) {
            // Decidable from the name alone; a keep or drop on other labels' values may pass or not: assume it passes.
            if (sources.length === 1 && sources[0] === "__name__") {
                if (fullMatch(regex, metric) !== (action === "keep")) return undefined;
            }
        } else if (action === "labelmap") {
            throw new Error("labelmap is not modelled by tests/series-labels.ts");
        }
    }
    return out;
}

function add(map: SeriesLabels, name: string, labels: Iterable<string>): void {
    const set = map.get(name) ?? new Set<string>();
    for (const l of labels) if (!l.startsWith("__")) set.add(l);
    map.set(name, set);
}

/** Every series the scrape config stores, with its labels (union over the jobs that store it). */
export function scrapedSeries(scrapeConfig: Obj): SeriesLabels {
    const out: SeriesLabels = new Map();
    for (const job of scrapeConfig.scrape_configs as Obj[]) {
        const name = job.job_name as string;
        const exposed = EXPOSED_BY_JOB[name];
        if (!exposed) throw new Error(`tests/series-labels.ts EXPOSED_BY_JOB does not know scrape job ${name}`);
        const statics = ((job.static_configs as { labels?: Record<string, string> }[] | undefined) ?? []).flatMap((s) =>
            Object.keys(s.labels ?? {}),
        );
        const target = relabelNames(
            (job.relabel_configs as Obj[] | undefined) ?? [],
            new Set(["job", "instance", ...statics]),
        )!;
        const targetLabels = [...target].filter((l) => !l.startsWith("__"));
        for (const synthetic of PROMETHEUS_SYNTHETIC) if (synthetic !== "ALERTS") add(out, synthetic, targetLabels);
        for (const [metric, labels] of exposed()) {
            // Target labels win over exposed ones of the same name (honor_labels is off): the set is their union.
            const stored = relabelNames(
                (job.metric_relabel_configs as Obj[] | undefined) ?? [],
                new Set([...labels, ...targetLabels]),
                metric,
            );
            if (stored) add(out, metric, stored);
        }
    }
    return out;
}

export interface RuleLike {
    readonly record?: string;
    readonly alert?: string;
    readonly expr: string;
    readonly labels?: Readonly<Record<string, string>>;
}

/**
 * Extend `series` with the series recording rules write, in order (a rule may read what an earlier one records), and
 * return each rule's problems. A recorded series' labels are its expression's plus the rule's own labels.
 */
export function recordRules(series: SeriesLabels, rules: readonly RuleLike[]): { rule: string; problems: string[] }[] {
    const out: { rule: string; problems: string[] }[] = [];
    for (const r of rules) {
        const inferred = inferLabels(r.expr, (n) => series.get(n));
        out.push({ rule: r.record ?? r.alert ?? r.expr, problems: inferred.problems });
        if (r.record) {
            if (inferred.labels === "any") throw new Error(`${r.record}: labels not inferable from ${r.expr}`);
            add(series, r.record, [...inferred.labels, ...Object.keys(r.labels ?? {})]);
        }
    }
    return out;
}
