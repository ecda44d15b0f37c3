/**
 * What `npm run local` shows while the stack runs: a per-vendor table read from Prometheus, the alerts firing now
 * and the notifications Alertmanager delivered. Pure functions from query results to text, so the table's columns
 * are tested without a terminal.
 *
 * Rates: without `--fast` the table reads the dashboards' recorded series (5-minute windows). With `--fast` it reads
 * the same recording rules' expressions evaluated over 1 minute (`windowed`), so a run of a few minutes settles.
 */
import { DATA_MODEL, L, R } from "../catalog";
import { LOADGEN_METRICS } from "../catalog/loadgen";
import { GATEWAY_POOL } from "../catalog/gateway";
import { StackConfig } from "../components/config";
import { buildRecordingRules } from "../components/prometheus";
import { RecordingRule } from "../components/prometheus/rules";

type Sample = { metric: Record<string, string>; value: [number, string] };
export type Query = (q: string) => Promise<Sample[]>;

/** The window of the table's rates. */
export function tableWindow(fast: boolean): string {
    return fast ? "1m" : "5m";
}

const NAME = /[a-zA-Z_:][a-zA-Z0-9_:]*/.source;

/**
 * The expression of a recorded series (the rule with `labels`, when several rules record the name) with its `[5m]`
 * windows set to `window`, every recorded series it reads inlined the same way. Series recorded by several rules
 * (per-vendor `:config` constants) or read with a selector stay as they are: Prometheus serves them.
 */
export function windowed(
    rules: RecordingRule[],
    record: string,
    window: string,
    labels: Record<string, string> = {},
): string {
    const matches = rules.filter(
        (r) => r.record === record && Object.entries(labels).every(([k, v]) => r.labels?.[k] === v),
    );
    if (matches.length !== 1) throw new Error(`${record}${JSON.stringify(labels)}: ${matches.length} rules record it`);
    const inline = (expr: string, depth: number): string => {
        if (depth > 10) throw new Error(`${record}: recorded series nest too deep`);
        return expr
            .replace(/\[5m\]/g, `[${window}]`)
            .replace(new RegExp(`(?<![a-zA-Z0-9_:"])(${NAME})(?![a-zA-Z0-9_:({"])`, "g"), (name: string) => {
                const defs = rules.filter((r) => r.record === name);
                return defs.length === 1 ? `(${inline(defs[0].expr, depth + 1)})` : name;
            });
    };
    return inline(matches[0].expr, 0);
}

/** The columns of the table, in order. */
export const COLUMNS = [
    "vendor",
    "generator req/s",
    "requests/s",
    "tunnels/s",
    "success",
    "objective",
    "p95 ms",
    "SLA p95 ms",
    "p95 samples",
    "KiB/s",
    "cost $/h",
] as const;

/** The PromQL of each figure, by vendor. */
export function tableQueries(cfg: StackConfig, fast: boolean): Record<string, string> {
    const w = tableWindow(fast);
    const rules = buildRecordingRules(cfg).groups.flatMap((g) => g.rules);
    const recorded = (record: string, labels: Record<string, string> = {}) =>
        fast
            ? windowed(rules, record, w, labels)
            : `${record}${Object.keys(labels).length ? `{${Object.entries(labels).map(([k, v]) => `${k}="${v}"`)}}` : ""}`;
    const REQ = DATA_MODEL.requests.name;
    return {
        generator: `sum by (${L.vendor}) (rate(${LOADGEN_METRICS.requests.name}[${w}]))`,
        requests: `sum by (${L.vendor}) (rate(${REQ}{${L.protocol}!="CONNECT"}[${w}]))`,
        tunnels: `sum by (${L.vendor}) (rate(${REQ}{${L.protocol}="CONNECT"}[${w}]))`,
        success: recorded(R.vendorSuccessRatio),
        p95: recorded(R.vendorLatencyQuantile, { [L.quantile]: "0.95" }),
        // How many answers the p95 rests on: a p95 of a dozen answers is the upper part of the slowest one's bucket.
        samples: `sum by (${L.vendor}) (increase(${DATA_MODEL.duration.name}_count{${L.pool}!="${GATEWAY_POOL}"}[${w}]))`,
        bandwidth: recorded(R.vendorBandwidth),
        cost: recorded(R.vendorCostPerHour),
    };
}

export type Figures = Record<string, Record<string, number>>;

/** Fewer answers than this in the window: the p95 is shown but not judged against the SLA. */
export const MIN_P95_SAMPLES = 20;

/** Runs the table's queries; by figure, by vendor. */
export async function readFigures(cfg: StackConfig, fast: boolean, query: Query): Promise<Figures> {
    const qs = tableQueries(cfg, fast);
    const out: Figures = {};
    await Promise.all(
        Object.entries(qs).map(async ([k, q]) => {
            out[k] = Object.fromEntries((await query(q)).map((s) => [s.metric[L.vendor], Number(s.value[1])]));
        }),
    );
    return out;
}

const num = (n: number | undefined, digits: number) =>
    n === undefined || !Number.isFinite(n) ? "…" : n.toFixed(digits);

/** The table as text; "waiting for the first evaluation" until Prometheus has recorded a request rate. */
export function formatTable(cfg: StackConfig, fast: boolean, f: Figures): string {
    const head = `rates over ${tableWindow(fast)}${fast ? " (--fast)" : " (the dashboards' recorded series)"}`;
    const anyData = cfg.vendors.some((v) => f.success?.[v.name] !== undefined || f.requests?.[v.name] !== undefined);
    if (!anyData)
        return `${head}\nwaiting for the first evaluation: rates need two scrapes inside the window, then a rule evaluation`;
    const rows: string[][] = [[...COLUMNS]];
    for (const v of cfg.vendors) {
        const p95 = f.p95?.[v.name];
        const samples = f.samples?.[v.name];
        const few = samples === undefined || samples < MIN_P95_SAMPLES;
        const success = f.success?.[v.name];
        rows.push([
            v.name,
            num(f.generator?.[v.name], 2),
            num(f.requests?.[v.name] ?? (f.tunnels?.[v.name] !== undefined ? 0 : undefined), 2),
            num(f.tunnels?.[v.name] ?? (f.requests?.[v.name] !== undefined ? 0 : undefined), 2),
            success === undefined
                ? "…"
                : `${(success * 100).toFixed(2)}%${success < v.sla.successObjective ? " !" : ""}`,
            `${(v.sla.successObjective * 100).toFixed(2)}%`,
            p95 === undefined || !Number.isFinite(p95)
                ? "…"
                : `${p95.toFixed(0)}${few ? " ?" : p95 > v.sla.p95LatencyMs ? " !" : ""}`,
            String(v.sla.p95LatencyMs),
            num(samples, 0),
            num(f.bandwidth?.[v.name] === undefined ? undefined : f.bandwidth[v.name] / 1024, 1),
            num(f.cost?.[v.name], 4),
        ]);
    }
    const widths = COLUMNS.map((_, i) => Math.max(...rows.map((r) => r[i].length)));
    const lines = rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join("  "));
    return [
        head,
        ...lines,
        `(! outside the SLA; ? fewer than ${MIN_P95_SAMPLES} answers in the window, not judged; … no data yet)`,
        "generator req/s counts the crawler's requests, HTTPS inside open tunnels included; the gateway counts plain-HTTP",
        "requests (requests/s) and tunnel set-ups (tunnels/s), and only these carry its latency.",
    ].join("\n");
}

/** `Alert{vendor=...}` for the alerts of an ALERTS query, sorted, one entry per alert and vendor/pool. */
export function formatAlerts(samples: Sample[]): string {
    const names = samples.map((s) => describe(s.metric)).sort();
    return names.length === 0 ? "none" : [...new Set(names)].join(", ");
}

function describe(labels: Record<string, string>): string {
    const where = [labels[L.vendor], labels[L.pool]].filter((x) => x).join("/");
    return `${labels.alertname}${where ? ` (${where})` : ""}`;
}

/** Notifications grouped by status, alert name and vendor, with counts. */
export function formatNotifications(n: { status: string; labels: Record<string, string> }[]): string {
    const counts = new Map<string, number>();
    for (const x of n) {
        const k = `${x.status} ${describe(x.labels)}`;
        counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    return `${n.length}${n.length ? ": " : ""}${[...counts].map(([k, c]) => (c > 1 ? `${k} x${c}` : k)).join("; ")}`;
}

/** The whole screen: time, table, alerts firing, notifications. */
export async function screen(
    cfg: StackConfig,
    fast: boolean,
    query: Query,
    notifications: { status: string; labels: Record<string, string> }[],
    elapsedS: number,
): Promise<string> {
    const [figures, firing, pending] = await Promise.all([
        readFigures(cfg, fast, query),
        query(`ALERTS{alertstate="firing"}`),
        query(`ALERTS{alertstate="pending"}`),
    ]);
    return [
        `${new Date().toISOString().slice(11, 19)}  running for ${Math.round(elapsedS)} s`,
        formatTable(cfg, fast, figures),
        `alerts firing now: ${formatAlerts(firing)}`,
        `alerts pending: ${formatAlerts(pending)}`,
        `notifications received: ${formatNotifications(notifications)}`,
    ].join("\n");
}
