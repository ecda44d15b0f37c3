/**
 * Labels cannot drift: every label name a recording rule, alert, Alertmanager route or dashboard uses exists on the
 * series it reads there, and every value a selector names for a catalog-owned label is one the catalog allows.
 * The series' labels come from the catalog (what exporters expose) through the generated scrape config's
 * relabelling and the recording rules themselves (tests/series-labels.ts); nothing is listed twice.
 */
import { expect } from "chai";
import { parser } from "@prometheus-io/lezer-promql";
import { DATA_MODEL, L, LABEL_VALUES } from "../catalog";
import { buildAlertRules, buildAlertmanagerConfig } from "../components/alerting";
import { buildRecordingRules, buildScrapeConfig } from "../components/prometheus";
import { federationMatchers } from "../components/prometheus/federation";
import { allDashboards } from "../dashboards";
import { stackConfig } from "./harness";
import { inferLabels } from "./promql-labels";
import { RuleLike, SeriesLabels, recordRules, scrapedSeries } from "./series-labels";

type Obj = Record<string, unknown>;
const STACKS = ["dev", "prod"];

/** The cluster Prometheus' series after scrape relabelling and recording rules, and each recording rule's problems. */
function clusterSeries(stack: string): { series: SeriesLabels; problems: string[] } {
    const cfg = stackConfig(stack);
    const series = scrapedSeries(buildScrapeConfig(cfg, { replicaLabel: true }));
    const rules = buildRecordingRules(cfg).groups.flatMap((g) => g.rules as RuleLike[]);
    const problems = recordRules(series, rules).flatMap((r) => r.problems.map((p) => `${stack} ${r.rule}: ${p}`));
    return { series, problems };
}

/** Alerts' labels: the expression's, the rule's own, alertname, and the external label cluster. */
function alertLabels(stack: string, series: SeriesLabels): Map<string, Set<string>> {
    const cfg = stackConfig(stack);
    const out = new Map<string, Set<string>>();
    for (const r of buildAlertRules(cfg).groups.flatMap((g) => g.rules)) {
        const inferred = inferLabels(r.expr, (n) => series.get(n));
        if (inferred.labels === "any") continue;
        const set = out.get(r.alert) ?? new Set<string>();
        for (const l of [...inferred.labels, ...Object.keys(r.labels), "alertname", L.cluster]) set.add(l);
        out.set(r.alert, set);
    }
    return out;
}

/** Selector values checked against the catalog: `label="v"` and literal `label=~"a|b"` (no template variables). */
function valueProblems(expr: string): string[] {
    const problems: string[] = [];
    parser.parse(expr.replace(/\$__(rate_interval|interval|range)/g, "5m")).iterate({
        enter(n) {
            if (n.name !== "UnquotedLabelMatcher") return;
            const text = (c: { from: number; to: number }) => expr.slice(c.from, c.to);
            const label = text(n.node.getChild("LabelName")!);
            const op = text(n.node.getChild("MatchOp")!);
            const value = JSON.parse(text(n.node.getChild("StringLiteral")!)) as string;
            const allowed = LABEL_VALUES[label as keyof typeof LABEL_VALUES] as readonly string[] | undefined;
            if (!allowed || value.includes("$") || op.startsWith("!")) return;
            const re = new RegExp(`^(?:${value})$`);
            const matched = op === "=" ? allowed.includes(value) : allowed.some((a) => re.test(a));
            if (!matched) problems.push(`${label}${op}"${value}" matches none of ${allowed.join(", ")}`);
        },
    });
    return problems;
}

describe("labels come from the catalog and exist where they are read", function () {
    this.timeout(60_000);

    describe("the check itself", () => {
        it("finds a renamed data-model label in the recording rules (the drift it exists for)", () => {
            const { series } = clusterSeries("dev");
            const renamed: SeriesLabels = new Map(
                [...series].map(([n, ls]) => [
                    n,
                    n.startsWith("proxy_") ? new Set([...ls].map((l) => (l === L.vendor ? "provider" : l))) : ls,
                ]),
            );
            const cfg = stackConfig("dev");
            const problems = buildRecordingRules(cfg)
                .groups.flatMap((g) => g.rules)
                .flatMap((r) => inferLabels(r.expr, (n) => renamed.get(n)).problems);
            expect(problems.length).to.be.greaterThan(10);
            expect(problems.join("\n")).to.match(/label "vendor" is not on \[.*provider/);
        });
        it("rejects a value no series can carry", () => {
            expect(valueProblems(`x{${L.fault}="vendr"}`)).to.have.length(1);
            expect(valueProblems(`x{${L.fault}=~"vendor|destination"}`)).to.deep.equal([]);
            expect(valueProblems(`x{${L.fault}=~"$fault"}`)).to.deep.equal([]);
        });
    });

    for (const stack of STACKS) {
        describe(`${stack} stack`, () => {
            const { series, problems } = clusterSeries(stack);
            const cfg = stackConfig(stack);

            it("the gateways' stored series carry the data model's labels and the cluster", () => {
                for (const m of Object.values(DATA_MODEL)) {
                    const name = m.type === "histogram" ? `${m.name}_count` : m.name;
                    expect([...series.get(name)!].sort(), name).to.include.members([...m.labels, L.cluster]);
                }
            });

            it("every recording rule uses only labels its input has, and names only values the catalog allows", () => {
                const values = buildRecordingRules(cfg)
                    .groups.flatMap((g) => g.rules)
                    .flatMap((r) => valueProblems(r.expr).map((p) => `${r.record}: ${p}`));
                expect([...problems, ...values]).to.deep.equal([]);
            });

            it("every alert uses only labels its input has, and its annotations only labels its result has", () => {
                const out: string[] = [];
                for (const r of buildAlertRules(cfg).groups.flatMap((g) => g.rules)) {
                    const inferred = inferLabels(r.expr, (n) => series.get(n));
                    out.push(...inferred.problems.map((p) => `${r.alert}: ${p}`));
                    out.push(...valueProblems(r.expr).map((p) => `${r.alert}: ${p}`));
                    const result = inferred.labels;
                    if (result === "any") continue;
                    const text = Object.values(r.annotations).join(" ");
                    for (const [, l] of text.matchAll(/\$labels\.([a-zA-Z_][a-zA-Z0-9_]*)/g)) {
                        if (!result.has(l) && l !== L.cluster)
                            out.push(
                                `${r.alert}: annotation reads $labels.${l}, result has {${[...result].join(", ")}}`,
                            );
                    }
                }
                expect(out).to.deep.equal([]);
            });

            it("every Alertmanager route, grouping and inhibition names a label some alert carries", () => {
                const alerts = alertLabels(stack, series);
                const any = new Set([...alerts.values()].flatMap((s) => [...s]));
                const am = buildAlertmanagerConfig(cfg, {});
                const used: { where: string; label: string }[] = [];
                const matcherLabel = (m: string) => /^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)/.exec(m)![1];
                const walk = (route: Obj, where: string) => {
                    for (const l of (route.group_by as string[] | undefined) ?? [])
                        used.push({ where: `${where} group_by`, label: l });
                    for (const m of (route.matchers as string[] | undefined) ?? [])
                        used.push({ where: `${where} matcher ${m}`, label: matcherLabel(m) });
                    ((route.routes as Obj[] | undefined) ?? []).forEach((r, i) => walk(r, `${where}.routes[${i}]`));
                };
                walk(am.route as Obj, "route");
                for (const [i, r] of (am.inhibit_rules as Obj[]).entries()) {
                    for (const m of [...(r.source_matchers as string[]), ...(r.target_matchers as string[])])
                        used.push({ where: `inhibit_rules[${i}] ${m}`, label: matcherLabel(m) });
                    for (const l of r.equal as string[]) used.push({ where: `inhibit_rules[${i}] equal`, label: l });
                }
                expect(used.length).to.be.greaterThan(10);
                const missing = used.filter((u) => !any.has(u.label)).map((u) => `${u.where}: no alert has ${u.label}`);
                expect(missing).to.deep.equal([]);
                // Inhibitions by alert name: the source and target alerts both carry every `equal` label.
                for (const r of am.inhibit_rules as Obj[]) {
                    const names = (ms: string[]) =>
                        ms
                            .map((m) => /^alertname(=~|=)"(.*)"$/.exec(m))
                            .filter((m): m is RegExpExecArray => !!m)
                            .flatMap((m) => [...alerts.keys()].filter((a) => new RegExp(`^(?:${m[2]})$`).test(a)));
                    for (const a of [...names(r.source_matchers as string[]), ...names(r.target_matchers as string[])])
                        for (const l of r.equal as string[])
                            expect(alerts.get(a)!.has(l), `inhibition equal ${l} on ${a}`).to.equal(true);
                }
            });

            it("every dashboard query, legend and variable uses only labels the series it reads have", () => {
                // The global view reads the same recorded series, federated with their labels (honor_labels).
                const federated = new RegExp(`^${/__name__=~"(.*)"/.exec(federationMatchers()[0])![1]}$`);
                const globalOnly: SeriesLabels = new Map([...series].filter(([n]) => federated.test(n)));
                const out: string[] = [];
                for (const d of Object.values(allDashboards(cfg))) {
                    const title = d.title as string;
                    for (const p of (d.panels as Obj[]).filter((x) => x.type !== "row")) {
                        for (const t of p.targets as { expr: string; legendFormat?: string }[]) {
                            const r = inferLabels(t.expr, (n) => series.get(n));
                            out.push(...r.problems.map((x) => `${title}/${p.title}: ${x}`));
                            // A legend naming a label the result lacks shows an empty name for every line.
                            for (const [, l] of (t.legendFormat ?? "").matchAll(
                                /\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}/g,
                            ))
                                if (r.labels !== "any" && !r.labels.has(l))
                                    out.push(
                                        `${title}/${p.title}: legend {{${l}}} is not on the result {${[...r.labels].join(", ")}}`,
                                    );
                            out.push(...valueProblems(t.expr).map((x) => `${title}/${p.title}: ${x}`));
                        }
                    }
                    for (const v of ((d.templating as Obj).list as Obj[]).filter((x) => x.type === "query")) {
                        const m = /^label_values\((.*), *([a-z_]+)\)$/.exec(v.query as string)!;
                        const r = inferLabels(m[1], (n) => globalOnly.get(n) ?? series.get(n));
                        out.push(...r.problems.map((x) => `${title} variable ${v.name}: ${x}`));
                        if (r.labels !== "any" && !r.labels.has(m[2]))
                            out.push(`${title} variable ${v.name}: ${m[2]} is not on ${m[1]}`);
                    }
                }
                expect(out).to.deep.equal([]);
            });
        });
    }
});
