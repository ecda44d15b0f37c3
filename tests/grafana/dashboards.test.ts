import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { DATA_MODEL, PROMETHEUS_SYNTHETIC, allRecordedSeries, histogramSeries } from "../../catalog";
import { GATEWAY_METRICS } from "../../catalog/gateway";
import { buildRecordingRules } from "../../components/prometheus";
import { KEPT } from "../../components/prometheus/scrape";
import { allDashboards } from "../../dashboards";
import { dashboardFiles } from "../../scripts/dashboards";
import { ROOT, stackConfig } from "../harness";
import { parser } from "@prometheus-io/lezer-promql";
import { R, SLO_PERIOD } from "../../catalog";
import { federationMatchers } from "../../components/prometheus/federation";
import { promqlErrors, selectedMetrics } from "../promql";
import { BAN_RATIO_HIGH } from "../../components/alerting/rules";

/** The text of every vector selector of an expression (name and matchers). */
function selectors(expr: string): string[] {
    const out: string[] = [];
    parser.parse(expr).iterate({
        enter(n) {
            if (n.name !== "VectorSelector") return;
            out.push(expr.slice(n.from, n.to));
            return false;
        },
    });
    return out;
}

type Obj = Record<string, any>;
const cfg = stackConfig("prod");
const dashboards = allDashboards(cfg) as Record<string, Obj>;

/** Every series something produces: the data model, the gateway's own, recorded, kept from exporters, synthetic. */
function producedSeries(): Set<string> {
    // Config series exist where configured: dev sets what prod does not (an exit-IP floor).
    const recorded = [cfg, stackConfig("dev")].flatMap((c) =>
        buildRecordingRules(c).groups.flatMap((g) => g.rules.map((r) => r.record)),
    );
    return new Set([
        ...Object.values(DATA_MODEL).flatMap((m) => (m.type === "histogram" ? histogramSeries(m.name) : [m.name])),
        ...Object.values(GATEWAY_METRICS).map((m) => m.name),
        ...recorded,
        ...Object.values(KEPT).flat(),
        ...PROMETHEUS_SYNTHETIC,
    ]);
}

/** A Grafana query made parseable: interval macros become durations. */
function asPromQL(expr: string): string {
    return expr.replace(/\$__(rate_interval|interval|range)/g, "5m");
}

/** The panels with data (rows only group them, and have a title alone). */
const panelsOf = (d: Obj): Obj[] => (d.panels as Obj[]).filter((p) => p.type !== "row");
const targetsOf = (d: Obj): { panel: string; expr: string }[] =>
    panelsOf(d).flatMap((p) => (p.targets as Obj[]).map((t) => ({ panel: p.title as string, expr: t.expr as string })));

describe("dashboards", () => {
    it("are overview, vendor analytics, bandwidth and cost, and infrastructure, with fixed unique uids, tags and 5 s among the refresh choices", () => {
        expect(Object.values(dashboards).map((d) => d.title)).to.deep.equal([
            "Proxy overview",
            "Vendor analytics",
            "Bandwidth and cost",
            "Infrastructure",
        ]);
        const uids = Object.values(dashboards).map((d) => d.uid);
        expect(new Set(uids).size).to.equal(4);
        for (const d of Object.values(dashboards)) {
            expect(d.uid).to.match(/^proxy-monitor-[a-z]+$/);
            expect(d.tags).to.include("proxy-monitor");
            expect(d.timepicker.refresh_intervals).to.include("5s");
            expect(d.time).to.deep.equal({ from: "now-3h", to: "now" });
        }
    });

    it("give every panel a title, a description, a unit and the $datasource variable, and every target a refId", () => {
        for (const d of Object.values(dashboards)) {
            for (const p of panelsOf(d)) {
                expect(p.title, `${d.title}`).to.be.a("string").and.not.equal("");
                expect(p.description, `${d.title}/${p.title}`).to.be.a("string").and.not.equal("");
                expect(p.fieldConfig.defaults.unit, `${d.title}/${p.title}`).to.be.a("string").and.not.equal("");
                expect(p.datasource).to.deep.equal({ type: "prometheus", uid: "${datasource}" });
                const refIds = (p.targets as Obj[]).map((t) => t.refId);
                expect(
                    refIds.every((r) => /^[A-Z]$/.test(r)),
                    `${p.title} refIds`,
                ).to.equal(true);
                expect(new Set(refIds).size).to.equal(refIds.length);
            }
        }
    });

    it("parse every target and variable query with the Prometheus project's PromQL grammar", () => {
        let n = 0;
        for (const d of Object.values(dashboards)) {
            for (const t of targetsOf(d)) {
                expect(promqlErrors(asPromQL(t.expr)), `${d.title}/${t.panel}: ${t.expr}`).to.deep.equal([]);
                n++;
            }
            for (const v of d.templating.list as Obj[]) {
                if (v.type !== "query") continue;
                const inner = /^label_values\((.*), *[a-z_]+\)$/.exec(v.query)?.[1];
                expect(inner, v.query).to.be.a("string");
                expect(promqlErrors(inner!), v.query).to.deep.equal([]);
            }
        }
        expect(n).to.be.greaterThan(50);
    });

    it("read only series that a recording rule, the gateways, the scrape config or Prometheus itself produces", () => {
        const produced = producedSeries();
        for (const d of Object.values(dashboards)) {
            for (const t of targetsOf(d)) {
                for (const m of selectedMetrics(asPromQL(t.expr))) {
                    expect(produced.has(m), `${d.title}/${t.panel} reads ${m}, which nothing produces`).to.equal(true);
                }
            }
        }
        // The check itself rejects a name nothing produces.
        expect(produced.has("proxy_requests_per_vendor")).to.equal(false);
    });

    it("read recorded series for every vendor view (raw data-model series only where no recording exists)", () => {
        const raw = new Set(
            Object.values(DATA_MODEL).flatMap((m) => (m.type === "histogram" ? histogramSeries(m.name) : [m.name])),
        );
        const recorded = new Set(allRecordedSeries());
        for (const name of ["proxy-overview", "vendor-analytics", "bandwidth-cost"]) {
            for (const t of targetsOf(dashboards[name])) {
                const metrics = selectedMetrics(t.expr);
                expect(
                    metrics.filter((m) => raw.has(m)),
                    `${t.panel}`,
                ).to.deep.equal([]);
                expect(
                    metrics.some((m) => recorded.has(m) || m === "ALERTS"),
                    `${t.panel}`,
                ).to.equal(true);
            }
        }
    });

    it("show in the global view only what it federates: every query and annotation reads recorded series", () => {
        const federated = new RegExp(`^${/__name__=~"(.*)"/.exec(federationMatchers()[0])![1]}$`);
        for (const d of Object.values(dashboards)) {
            const exprs = [
                ...targetsOf(d).map((t) => ({ panel: t.panel, expr: t.expr })),
                ...((d.annotations?.list ?? []) as Obj[])
                    .filter((a) => a.expr)
                    .map((a) => ({ panel: `annotation ${a.name}`, expr: a.expr as string })),
            ];
            for (const t of exprs)
                for (const m of selectedMetrics(asPromQL(t.expr)))
                    expect(federated.test(m), `${d.title}/${t.panel} reads ${m}, which the global view lacks`).to.equal(
                        true,
                    );
        }
    });

    it("honour the cluster filter in every selector (the firing-alerts table included)", () => {
        for (const d of Object.values(dashboards)) {
            const exprs = [
                ...targetsOf(d),
                ...((d.annotations?.list ?? []) as Obj[])
                    .filter((a) => a.expr)
                    .map((a) => ({ panel: `annotation ${a.name}`, expr: a.expr as string })),
            ];
            for (const t of exprs)
                for (const sel of selectors(asPromQL(t.expr)))
                    expect(sel, `${d.title}/${t.panel}`).to.contain('cluster=~"$cluster"');
        }
    });

    it("give the on-call engineer thresholds from each SLA, runbook links, alert annotations, budget remaining", () => {
        for (const d of Object.values(dashboards)) {
            expect(
                ((d.links ?? []) as Obj[]).map((l) => l.url),
                d.title,
            ).to.include(cfg.alerting.runbookBaseUrl);
            expect(((d.annotations?.list ?? []) as Obj[]).map((a) => a.expr)).to.include(
                `${R.firingAlerts}{cluster=~"$cluster"}`,
            );
        }
        const overview = dashboards["proxy-overview"];
        const panel = (title: string) => panelsOf(overview).find((p) => p.title === title)!;
        const thresholdAt = (title: string, series: string) =>
            (panel(title).fieldConfig.overrides as Obj[])
                .find((o) => o.matcher.options === series)!
                .properties.find((p: Obj) => p.id === "thresholds").value.steps[1].value;
        for (const v of cfg.vendors) {
            expect(thresholdAt("p95 latency by vendor", v.name)).to.equal(v.sla.p95LatencyMs);
            expect(thresholdAt("Success ratio by vendor", v.name)).to.equal(v.sla.successObjective);
        }
        const budget = panel("Error budget remaining").targets[0].expr as string;
        expect(budget).to.contain(`sum_over_time(${R.vendorSloErrors}`).and.to.contain(`[${SLO_PERIOD}]`);
        expect(panel("Error budget remaining").targets[0].legendFormat).to.equal("{{vendor}}");
        // The series budget is a config series, not a number written into a panel.
        const infra = JSON.stringify(dashboards.infrastructure);
        expect(infra).to.not.contain("vector(");
        expect(infra).to.contain(R.seriesBudget);
    });

    it("define every variable a query uses", () => {
        const builtin = new Set(["__rate_interval", "__interval", "__range"]);
        for (const d of Object.values(dashboards)) {
            const defined = new Set((d.templating.list as Obj[]).map((v) => v.name));
            const texts = [
                ...targetsOf(d).map((t) => t.expr),
                ...(d.templating.list as Obj[]).map((v) => String(v.query ?? "")),
                ...panelsOf(d).map((p) => JSON.stringify(p.datasource)),
            ];
            for (const text of texts) {
                for (const m of text.matchAll(/\$\{?([A-Za-z_]+)\}?/g)) {
                    if (!builtin.has(m[1])) expect(defined.has(m[1]), `${d.title}: $${m[1]} in ${text}`).to.equal(true);
                }
            }
        }
    });

    it("have every panel the runbooks send users to", () => {
        const doc = fs.readFileSync(path.join(ROOT, "docs", "troubleshooting.md"), "utf8");
        const titles = new Map(
            Object.values(dashboards).map((d) => [
                d.title as string,
                new Set(panelsOf(d).map((p) => p.title as string)),
            ]),
        );
        const refs = [
            ...doc.matchAll(/(Proxy overview|Vendor analytics|Bandwidth and cost|Infrastructure), "([^"]+)"/g),
        ];
        expect(refs.length).to.be.greaterThan(15);
        for (const [, dash, panel] of refs) expect(titles.get(dash)!.has(panel), `${dash}: "${panel}"`).to.equal(true);
    });

    it("are committed as dashboards/*.json exactly as the code generates them (npm run dashboards)", () => {
        for (const [file, text] of Object.entries(dashboardFiles())) {
            expect(
                fs.readFileSync(path.join(ROOT, "dashboards", file), "utf8"),
                `dashboards/${file}: run npm run dashboards`,
            ).to.equal(text);
        }
    });
});

describe("the ban and cause panels (issue 19)", () => {
    it("show reported bans per vendor and pool against the alert's threshold, and failures by cause", () => {
        const panels = (dashboards["vendor-analytics"] as Obj).panels as Obj[];
        const byTitle = (t: string) => panels.find((p) => p.title === t) as Obj;
        const bans = byTitle("Reported bans");
        expect((bans.targets as Obj[]).map((t) => t.expr)).to.deep.equal([
            'vendor:proxy_crawler_bans:ratio_rate5m{cluster=~"$cluster", vendor=~"$vendor"}',
            'vendor_pool:proxy_crawler_bans:ratio_rate5m{cluster=~"$cluster", vendor=~"$vendor", pool=~"$pool"}',
        ]);
        const steps = (((bans.fieldConfig as Obj).defaults as Obj).thresholds as Obj).steps as Obj[];
        expect(steps.map((x) => x.value)).to.deep.equal([null, BAN_RATIO_HIGH]);
        expect(JSON.stringify(byTitle("Failures by cause").targets)).to.contain(
            "vendor_cause:proxy_pool_causes:ratio_rate5m",
        );
    });
});

describe("the Pool quality row", () => {
    it("shows each pool's distinct exit IPs per hour and day against the floor, reuse and sticky breaks", () => {
        const d = dashboards["vendor-analytics"] as Obj;
        const panels = d.panels as Obj[];
        const row = panels.findIndex((p) => p.type === "row" && p.title === "Pool quality");
        expect(row).to.be.greaterThan(-1);
        const after = panels
            .slice(row + 1)
            .map((p) => ({ title: p.title, exprs: (p.targets as Obj[]).map((t) => t.expr) }));
        expect(after.map((p) => p.title)).to.deep.equal([
            "Distinct exit IPs per hour and day",
            "Exit-IP reuse",
            "Sticky-session breaks",
        ]);
        expect(after[2].exprs.join(" ")).to.contain("vendor_pool:proxy_pool_sticky_session_breaks:ratio_rate5m");
        expect(after[0].exprs.join(" ")).to.contain("vendor_pool_window:proxy_pool_exit_ips_distinct:max");
        expect(after[0].exprs.join(" ")).to.contain("vendor:proxy_pool_exit_ips_min_per_hour:config");
    });
});
