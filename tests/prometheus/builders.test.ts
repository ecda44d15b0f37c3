import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";
import { R, allRecordedSeries } from "../../catalog";
import {
    Prometheus,
    budgetProblem,
    buildFederationConfig,
    buildRecordingRules,
    buildScrapeConfig,
    estimateActiveSeries,
} from "../../components/prometheus";
import { promqlString, regexEscape, regexOneOf } from "../../components/prometheus/escape";
import { federationMatchers } from "../../components/prometheus/federation";
import { KEPT, istioAttribution } from "../../components/prometheus/scrape";
import { PROMETHEUS_SYNTHETIC } from "../../catalog/infra";
import { find, runRender, stackConfig, underMocks, validateObject } from "../harness";
import { workloadViolations } from "../pod-security";
import { promqlErrors, selectedMetrics } from "../promql";
import { forDebianPromtool, promtool, tempDir, writeYaml } from "../promtool";

describe("Prometheus configuration", function () {
    this.timeout(60_000);

    describe("escaping config values", () => {
        const weird = ["a.b", "x*y+z", "(group)|alt", "[cls]", "back\\slash", "^anch$", "q?{1,2}"];
        it("regexEscape matches each literal exactly and nothing else", () => {
            for (const w of weird) {
                const re = new RegExp(`^(?:${regexEscape(w)})$`);
                expect(re.test(w), w).to.equal(true);
                expect(re.test(w + "x"), w).to.equal(false);
                expect(re.test("a-b"), w).to.equal(false);
            }
            const one = new RegExp(`^(?:${regexOneOf(["a.b", "c|d"])})$`);
            expect(["a.b", "c|d"].every((s) => one.test(s))).to.equal(true);
            expect(["axb", "c", "d"].some((s) => one.test(s))).to.equal(false);
        });
        it("promqlString quotes any value so that PromQL parses it back", () => {
            for (const w of [...weird, 'say "hi"', "line\nbreak"]) {
                expect(promqlErrors(`x{l=${promqlString(w)}}`), w).to.deep.equal([]);
            }
        });
        it("Prometheus itself reads the escaped regexes: promtool accepts a relabel rule of every odd value", () => {
            const dir = tempDir("escape-");
            const cfg = {
                scrape_configs: [
                    {
                        job_name: "x",
                        static_configs: [{ targets: ["127.0.0.1:1"] }],
                        metric_relabel_configs: weird.map((w) => ({
                            source_labels: ["a"],
                            regex: regexEscape(w),
                            action: "keep",
                        })),
                    },
                ],
            };
            const r = promtool(["check", "config", writeYaml(dir, "p.yml", cfg)]);
            expect(r.code, r.out).to.equal(0);
        });
    });

    describe("recording rules", () => {
        const cfg = stackConfig("prod");
        const rules = buildRecordingRules(cfg).groups.flatMap((g) => g.rules);
        it("record every series the catalog names, in level:metric:operations form", () => {
            // Config series exist only where configured: the dev stack sets what prod does not (an exit-IP floor).
            const dev = buildRecordingRules(stackConfig("dev")).groups.flatMap((g) => g.rules);
            const recorded = new Set([...rules, ...dev].map((r) => r.record));
            for (const name of allRecordedSeries()) expect(recorded.has(name), name).to.equal(true);
            for (const name of recorded) {
                if (name === R.durationSecondsByPercentile) continue;
                expect(name).to.match(/^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/);
            }
        });
        it("every expression parses with the PromQL grammar and reads only data-model, Istio, kept or recorded series", () => {
            const recorded = new Set([
                ...rules.map((r) => r.record),
                // Infrastructure series the scrape config keeps (the infra rules aggregate them).
                ...KEPT.cadvisor,
                ...KEPT.kubeStateMetrics,
                ...KEPT.prometheus,
                ...KEPT.alertmanager,
                ...KEPT.gateway,
                ...PROMETHEUS_SYNTHETIC,
                // Prometheus' own series of its alerts (the firing-alerts view records it with a cluster).
                "ALERTS",
            ]);
            for (const r of rules) {
                expect(promqlErrors(r.expr), r.record).to.deep.equal([]);
                for (const m of selectedMetrics(r.expr)) {
                    if (m.startsWith("~")) expect(m).to.equal("~istio_tcp_(sent|received)_bytes_total");
                    else
                        expect(recorded.has(m) || /^(proxy_|istio_tcp_)/.test(m), `${r.record} reads ${m}`).to.equal(
                            true,
                        );
                }
            }
        });
        it("record each vendor's price, objectives and budget as constant series with cluster and vendor", () => {
            const price = rules.filter((r) => r.record === R.vendorPricePerGb);
            expect(price.map((r) => [r.labels, r.expr])).to.deep.equal([
                [{ cluster: "prod-us", vendor: "vendor-a" }, "vector(0.6)"],
                [{ cluster: "prod-us", vendor: "vendor-b" }, "vector(8)"],
                [{ cluster: "prod-us", vendor: "vendor-c" }, "vector(15)"],
            ]);
            expect(rules.filter((r) => r.record === R.vendorDailyBudgetBytes).map((r) => r.expr)).to.deep.equal([
                "vector(2000000000000)",
                "vector(300000000000)",
                "vector(50000000000)",
            ]);
        });
        it("pass promtool check rules for dev and prod", () => {
            for (const stack of ["dev", "prod"]) {
                const dir = tempDir("rules-");
                const r = promtool([
                    "check",
                    "rules",
                    writeYaml(dir, "recording.yaml", buildRecordingRules(stackConfig(stack))),
                ]);
                expect(r.code, r.out).to.equal(0);
                expect(r.out).to.match(/SUCCESS: [0-9]+ rules found/);
            }
        });
    });

    describe("scrape configuration", () => {
        it("passes promtool check config for dev and prod (cluster and global)", () => {
            for (const stack of ["dev", "prod"]) {
                const cfg = stackConfig(stack);
                for (const [name, conf] of [
                    ["cluster", buildScrapeConfig(cfg, { replicaLabel: cfg.prometheus.replicas > 1 })],
                    ["global", buildFederationConfig(cfg)],
                ] as const) {
                    const dir = tempDir(`promcfg-${stack}-${name}-`);
                    fs.mkdirSync(path.join(dir, "rules"));
                    writeYaml(path.join(dir, "rules"), "recording.yaml", buildRecordingRules(cfg));
                    const r = promtool(["check", "config", forDebianPromtool(conf as Record<string, unknown>, dir)]);
                    expect(r.code, `${stack} ${name}: ${r.out}`).to.equal(0);
                }
            }
        });
        it("guards every job with sample, label and label-length limits, and labels every target with the cluster", () => {
            const cfg = stackConfig("prod");
            const conf = buildScrapeConfig(cfg, { replicaLabel: true }) as any;
            expect(conf.global).to.deep.include({ scrape_interval: "15s", evaluation_interval: "15s" });
            expect(conf.global.external_labels).to.deep.equal({ cluster: "prod-us", replica: "${POD_NAME}" });
            for (const j of conf.scrape_configs) {
                expect(j.sample_limit, j.job_name).to.be.a("number");
                expect(j.label_limit, j.job_name).to.equal(30);
                expect(j.label_value_length_limit, j.job_name).to.equal(200);
                expect(
                    j.relabel_configs.some((r: any) => r.target_label === "cluster" && r.replacement === "prod-us"),
                    j.job_name,
                ).to.equal(true);
            }
            const gw = conf.scrape_configs.find((j: any) => j.job_name === "proxy-gateways");
            expect(gw.dns_sd_configs[0].names).to.deep.equal([
                "vendor-a-gateway-pods.proxy-gateways.svc",
                "vendor-b-gateway-pods.proxy-gateways.svc",
                "vendor-c-gateway-pods.proxy-gateways.svc",
            ]);
        });
        it("attributes Istio TCP series to vendors by destination workload and keeps only the crawler namespace", () => {
            const rules = istioAttribution(stackConfig("prod")) as any[];
            expect(rules[2]).to.deep.equal({
                source_labels: ["destination_workload"],
                regex: "(vendor-a|vendor-b|vendor-c)-gateway",
                action: "keep",
            });
            expect(rules[rules.length - 1]).to.deep.equal({
                regex: "__name__|vendor|crawler_namespace|crawler_workload|cluster|job|instance",
                action: "labelkeep",
            });
        });
        it("federates every recorded series and nothing else, by one match[] regex that escapes the names", () => {
            const matchers = federationMatchers();
            expect(matchers).to.have.length(1);
            const [matcher] = matchers;
            expect(promqlErrors(matcher)).to.deep.equal([]);
            const re = new RegExp(`^(?:${/=~"(.*)"/.exec(matcher)![1].replace(/\\\\/g, "\\")})$`);
            for (const n of allRecordedSeries()) expect(re.test(n), n).to.equal(true);
            expect(re.test("proxy_requests_total")).to.equal(false);
            expect(re.test("up")).to.equal(false);
            const fed = buildFederationConfig(stackConfig("prod")) as any;
            expect(fed.scrape_configs.map((j: any) => j.job_name)).to.deep.equal([
                "federate-prod-us",
                "federate-prod-eu",
            ]);
            for (const j of fed.scrape_configs)
                expect(j).to.deep.include({ honor_labels: true, metrics_path: "/federate" });
            expect(fed.scrape_configs[1].authorization).to.deep.equal({
                credentials_file: "/etc/prometheus/federation/prod-eu",
            });
        });
    });

    describe("series budget", () => {
        it("estimates prod at 2,500 crawler pods under its 125,000 budget, flat in vendor series as pods grow", () => {
            const small = estimateActiveSeries(stackConfig("prod", { expectedCrawlerPods: 100 }));
            const big = estimateActiveSeries(stackConfig("prod"));
            expect(big.total).to.be.below(125_000);
            expect(big.parts.requests.series).to.equal(small.parts.requests.series);
            expect(big.parts.cadvisorPerPod.series).to.equal(25 * small.parts.cadvisorPerPod.series);
            expect(budgetProblem(big)).to.equal(undefined);
        });
        it("names the numbers when the config would exceed the budget", () => {
            const e = estimateActiveSeries(stackConfig("prod", { expectedCrawlerPods: 20_000 }));
            const msg = budgetProblem(e)!;
            expect(msg).to.match(/^expected active series [0-9,]+ exceed proxy-monitor:seriesBudget 125,000/);
            expect(msg).to.contain("kubeStateMetricsPerPod 140,000 (crawler pods 20000 x 7)");
        });
        it("fails render with that message", async () => {
            const dir = tempDir("budget-");
            fs.copyFileSync(path.join(__dirname, "..", "..", "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
            const dev = YAML.parse(fs.readFileSync(path.join(__dirname, "..", "..", "Pulumi.dev.yaml"), "utf8"));
            dev.config["proxy-monitor:expectedCrawlerPods"] = 5000;
            fs.writeFileSync(path.join(dir, "Pulumi.big.yaml"), YAML.stringify(dev));
            const run = await runRender("big", ["--config-dir", dir]);
            expect(run.code).to.not.equal(0);
            expect(run.stderr).to.match(/expected active series [0-9,]+ exceed proxy-monitor:seriesBudget 20,000/);
        });
    });

    describe("component", () => {
        it("renders the cluster HA pair: StatefulSet, PVCs, retention, reload, PDB, anti-affinity, least-privilege RBAC, kube-state-metrics", async () => {
            const cfg = stackConfig("prod");
            const { objects } = await underMocks(
                () =>
                    new Prometheus("prom-test", {
                        config: cfg,
                        role: "cluster",
                        ruleFiles: { "alerts.yaml": "groups: []\n" },
                    }),
            );
            for (const o of objects) validateObject(o);
            expect(workloadViolations(objects).violations).to.deep.equal([]);
            const sts = find(objects, "StatefulSet", "prometheus")[0].spec as any;
            expect(sts.replicas).to.equal(2);
            const args = sts.template.spec.containers[0].args as string[];
            expect(args).to.include.members([
                "--storage.tsdb.retention.time=30d",
                "--storage.tsdb.retention.size=90GB",
                "--web.enable-lifecycle",
                "--enable-feature=expand-external-labels",
            ]);
            expect(sts.volumeClaimTemplates[0].spec.resources.requests.storage).to.equal("100Gi");
            expect(sts.template.spec.affinity.podAntiAffinity).to.not.equal(undefined);
            expect(find(objects, "PodDisruptionBudget")).to.have.length(1);
            const role = find(objects, "ClusterRole").find(
                (r) => (r.metadata.labels as any)["app.kubernetes.io/name"] === "prometheus",
            )!;
            expect(role.rules).to.deep.equal([
                { apiGroups: [""], resources: ["nodes", "nodes/metrics"], verbs: ["get", "list", "watch"] },
                { nonResourceURLs: ["/metrics", "/metrics/cadvisor"], verbs: ["get"] },
            ]);
            const rules = find(objects, "ConfigMap").find((c) => (c.data as any)["recording.yaml"])!;
            expect(Object.keys(rules.data as object).sort()).to.deep.equal(["alerts.yaml", "recording.yaml"]);
            expect(find(objects, "Deployment", "kube-state-metrics")).to.have.length(1);
        });
        it("renders the global role with the federation Secret mounted and no RBAC", async () => {
            const cfg = stackConfig("prod");
            const { objects } = await underMocks(() => new Prometheus("promg-test", { config: cfg, role: "global" }));
            for (const o of objects) validateObject(o);
            expect(find(objects, "ClusterRole")).to.deep.equal([]);
            const secret = find(objects, "Secret")[0];
            expect(Object.keys(secret.stringData as object)).to.deep.equal(["prod-eu"]);
            const sts = find(objects, "StatefulSet", "prometheus-global")[0].spec as any;
            expect(sts.template.spec.containers[0].args).to.include("--storage.tsdb.retention.time=400d");
        });
    });
});
