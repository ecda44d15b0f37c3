/**
 * Operator mode (monitoring.mode: operator), from the rendered `operator` stack: no Prometheus, Alertmanager or Grafana
 * workload; every operator object valid against the prometheus-operator CRD schemas and carrying the selector labels;
 * the PrometheusRules holding exactly the standalone rule groups (promtool accepts them); the PodMonitors carrying the
 * standalone jobs' relabelling, keep lists and limits; the dashboards loadable by Grafana's sidecar.
 */
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";
import { parseStackConfig } from "../../components/config";
import { buildOperatorAlertmanagerConfig, toOperatorRelabel } from "../../components/operator";
import { formatProblem } from "../../components/validate";
import { DASHBOARDS } from "../../dashboards";
import {
    K8sObject,
    find,
    rawStackConfig,
    readRendered,
    renderedStack,
    runRenderChanged,
    stackConfig,
    validateObject,
} from "../harness";
import { promtool, tempDir, writeYaml } from "../promtool";

const OPERATOR_KINDS = ["PodMonitor", "PrometheusRule", "AlertmanagerConfig"];

/** The objects of the operator stack rendered in standalone mode: what standalone ships for the same config. */
async function standaloneTwin(): Promise<K8sObject[]> {
    const run = await runRenderChanged("operator", "operator-standalone", (c) => {
        c["proxy-monitor:monitoring"].mode = "standalone";
    });
    if (run.code !== 0) throw new Error(run.stderr);
    return readRendered(run.dir);
}

function configMapData(objects: K8sObject[], name: RegExp): Record<string, string> {
    const cm = objects.find((o) => o.kind === "ConfigMap" && name.test(o.metadata.name));
    if (!cm) throw new Error(`no ConfigMap ${name}`);
    return (cm as unknown as { data: Record<string, string> }).data;
}

describe("operator mode (the rendered operator stack)", function () {
    this.timeout(180_000);
    let objects: K8sObject[] = [];
    let outputs: Record<string, any> = {};
    let standalone: K8sObject[] = [];

    before(async () => {
        const r = await renderedStack("operator");
        objects = r.objects;
        outputs = YAML.parse(fs.readFileSync(path.join(r.run.dir, "_stack-outputs.yaml"), "utf8"));
        standalone = await standaloneTwin();
    });

    it("deploys no Prometheus, Alertmanager or Grafana workload (standalone mode of the same config does)", () => {
        const monitoringApps = ["prometheus", "prometheus-global", "alertmanager", "grafana", "kube-state-metrics"];
        const workloads = (objs: K8sObject[]) =>
            objs
                .filter((o) => ["Deployment", "StatefulSet", "DaemonSet"].includes(o.kind))
                .map((o) => o.metadata.labels?.["app.kubernetes.io/name"])
                .filter((n) => monitoringApps.includes(n ?? ""));
        expect(workloads(objects)).to.deep.equal([]);
        expect(workloads(standalone)).to.include.members(["prometheus", "alertmanager", "grafana"]);
        expect(
            objects.filter((o) => /Role/.test(o.kind) && /prometheus|alertmanager|grafana/.test(o.metadata.name)),
        ).to.deep.equal([]);
    });

    it("renders PodMonitors, PrometheusRules and an AlertmanagerConfig, each valid against the operator's CRD schema", () => {
        const ops = objects.filter((o) => OPERATOR_KINDS.includes(o.kind));
        expect(ops.map((o) => o.kind).sort()).to.deep.equal([
            "AlertmanagerConfig",
            "PodMonitor",
            "PodMonitor",
            "PodMonitor",
            "PodMonitor",
            "PrometheusRule",
            "PrometheusRule",
        ]);
        for (const o of objects) validateObject(o);
    });

    it("labels every operator object and dashboard with the selector labels, and names them in a stack output", () => {
        for (const o of objects.filter((x) => OPERATOR_KINDS.includes(x.kind) || /dashboard/.test(x.metadata.name)))
            expect(o.metadata.labels, `${o.kind} ${o.metadata.name}`).to.include({ release: "kube-prometheus-stack" });
        expect(outputs.operator).to.deep.include({
            namespace: "proxy-monitor",
            selectorLabels: { release: "kube-prometheus-stack" },
            dashboardLabel: { grafana_dashboard: "1" },
        });
        expect(outputs.prometheusUrl).to.equal(undefined);
    });

    it("PrometheusRules hold exactly the standalone recording and alert rule groups, and promtool accepts them", () => {
        const rules = configMapData(standalone, /^prometheus-rules/);
        const ruleObjects = find(objects, "PrometheusRule") as unknown as {
            metadata: { name: string };
            spec: { groups: { name: string }[] };
        }[];
        const groupsOf = (name: string) => ruleObjects.find((r) => r.metadata.name === name)!.spec.groups;
        expect(groupsOf("proxy-monitor-recording")).to.deep.equal(YAML.parse(rules["recording.yaml"]).groups);
        expect(groupsOf("proxy-monitor-alerts")).to.deep.equal(YAML.parse(rules["alerts.yaml"]).groups);
        expect(ruleObjects.flatMap((r) => r.spec.groups).length).to.be.greaterThan(5);
        const dir = tempDir("operator-rules-");
        ruleObjects.forEach((r, i) => {
            const f = writeYaml(dir, `rules-${i}.yaml`, { groups: r.spec.groups });
            const check = promtool(["check", "rules", f]);
            expect(check.code, check.out).to.equal(0);
        });
    });

    it("PodMonitors carry the standalone jobs' keep lists, relabelling, limits and cluster label", () => {
        const prom = YAML.parse(configMapData(standalone, /^prometheus-config/)["prometheus.yml"]);
        const monitors = find(objects, "PodMonitor") as unknown as { metadata: { name: string }; spec: any }[];
        for (const m of monitors) {
            const ep = m.spec.podMetricsEndpoints[0];
            const jobName = ep.relabelings.find((r: any) => r.targetLabel === "job").replacement;
            const job = prom.scrape_configs.find((j: any) => j.job_name === jobName);
            expect(job, `standalone job ${jobName}`).to.not.equal(undefined);
            expect(ep.metricRelabelings ?? []).to.deep.equal((job.metric_relabel_configs ?? []).map(toOperatorRelabel));
            expect(ep.relabelings).to.deep.include(toOperatorRelabel(job.relabel_configs.at(-1)));
            expect(ep.relabelings).to.deep.include({
                targetLabel: "cluster",
                replacement: "operator",
                action: "replace",
            });
            expect(m.spec).to.include({
                sampleLimit: job.sample_limit,
                labelLimit: job.label_limit,
                labelValueLengthLimit: job.label_value_length_limit,
            });
            expect(ep.path ?? "/metrics").to.equal(job.metrics_path ?? "/metrics");
        }
        const standalonePodJobs = ["proxy-gateways", "istio-gateways", "load-generator", "vendor-simulators"];
        expect(monitors.map((m) => m.metadata.name).sort()).to.deep.equal(
            standalonePodJobs.map((j) => `proxy-monitor-${j}`).sort(),
        );
    });

    it("admits the operator's Prometheus (not the program's own) to the gateways' metrics ports", () => {
        const np = find(objects, "NetworkPolicy", "gateways", "proxy-gateways")[0] as any;
        const metrics = np.spec.ingress.find((i: any) => i.ports.some((p: any) => p.port === 9102));
        expect(metrics.from).to.deep.equal([
            {
                namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
                podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
            },
        ]);
    });

    it("dashboard ConfigMaps load as the sidecar reads them: valid JSON, the label, the uid of the standalone dashboard", async () => {
        const cms = objects.filter((o) => o.kind === "ConfigMap" && o.metadata.labels?.grafana_dashboard === "1");
        expect(cms.length).to.equal(Object.keys(DASHBOARDS).length);
        const again = readRendered((await runRenderChanged("operator", "operator-again", () => undefined)).dir);
        const standaloneDashboards = configMapData(standalone, /^grafana-dashboards/);
        for (const cm of cms as unknown as { metadata: { name: string }; data: Record<string, string> }[]) {
            const [file, text] = Object.entries(cm.data)[0];
            const json = JSON.parse(text);
            expect(json.uid, file)
                .to.be.a("string")
                .and.match(/^[a-z0-9-]{1,40}$/);
            const twin = again.find((o) => o.metadata.name === cm.metadata.name) as unknown as typeof cm;
            expect(JSON.parse(twin.data[file]).uid, "uid stable across renders").to.equal(json.uid);
            expect(JSON.parse(standaloneDashboards[file]).uid, "uid as in standalone").to.equal(json.uid);
            // The datasource is a template variable, so the sidecar-provisioned dashboard uses the user's Prometheus.
            expect(json.templating.list.find((v: any) => v.name === "datasource")).to.include({ type: "datasource" });
            const refs = JSON.stringify(json.panels).match(/"uid":"[^"]*"/g) ?? [];
            expect(refs.length).to.be.greaterThan(0);
            expect([...new Set(refs)]).to.deep.equal(['"uid":"${datasource}"']);
        }
    });
});

describe("operator mode: AlertmanagerConfig from the standalone alertmanager.yml builder", () => {
    it("keeps the vendor routes and receivers, credentials as Secret references, valid against the CRD schema", () => {
        const cfg = stackConfig("operator", {
            alerting: {
                receivers: [
                    { name: "oncall", type: "pagerduty" },
                    { name: "team-b", type: "slack", channel: "#vendor-b" },
                    { name: "hook", type: "webhook" },
                ],
                criticalReceiver: "oncall",
                warningReceiver: "hook",
                vendorReceivers: { "vendor-b": "team-b" },
            },
            alertingSecrets: { oncall: "key", "team-b": "https://hooks.slack.invalid/x", hook: "https://hook.invalid" },
        });
        const am = buildOperatorAlertmanagerConfig(cfg) as any;
        validateObject(am);
        const routes = am.spec.route.routes;
        expect(routes).to.deep.include({
            receiver: "team-b",
            matchers: [
                { name: "vendor", matchType: "=", value: "vendor-b" },
                { name: "severity", matchType: "=~", value: "critical|warning" },
            ],
            continue: true,
        });
        const byName = Object.fromEntries(am.spec.receivers.map((r: any) => [r.name, r]));
        expect(byName.oncall.pagerdutyConfigs[0].routingKey).to.deep.equal({
            name: "proxy-monitor-alerting",
            key: "oncall",
        });
        expect(byName["team-b"].slackConfigs[0].apiURL).to.deep.equal({
            name: "proxy-monitor-alerting",
            key: "team-b",
        });
        expect(byName.hook.webhookConfigs[0].urlSecret).to.deep.equal({ name: "proxy-monitor-alerting", key: "hook" });
        expect(JSON.stringify(am)).to.not.match(/hooks\.slack\.invalid|hook\.invalid|"key":"key"/);
        expect(am.spec.route.matchers[0]).to.include({ name: "alertname", matchType: "=~" });
        expect(am.spec.route.matchers[0].value).to.contain("VendorErrorBudgetBurnFast");
        expect(am.spec.inhibitRules.length).to.be.greaterThan(2);
    });
});

describe("operator mode and long-term storage config: errors name the key", () => {
    const problems = (change: (raw: Record<string, any>) => void, stack = "operator") => {
        const raw = JSON.parse(JSON.stringify(rawStackConfig(stack)));
        change(raw);
        return parseStackConfig(raw, stack).problems.map(formatProblem);
    };
    it("an unknown mode", () => {
        const p = problems((r) => (r.monitoring.mode = "kube"));
        expect(p.join("\n"))
            .to.match(/monitoring\.mode/)
            .and.match(/standalone, operator/);
    });
    it("agent mode, remote_write or custom metrics in operator mode", () => {
        expect(
            problems(
                (r) => (r.prometheus = { agent: true, remoteWrite: { url: "http://x.invalid", series: "all" } }),
            ).join("\n"),
        )
            .to.match(/prometheus\.agent/)
            .and.match(/prometheus\.remoteWrite\.url/);
        expect(problems((r) => (r.autoscaling = { customMetrics: true })).join("\n")).to.match(
            /autoscaling\.customMetrics/,
        );
    });
    it("agent mode without a URL, or sending only recorded series", () => {
        expect(problems((r) => (r.prometheus = { agent: true }), "dev").join("\n"))
            .to.match(/prometheus\.remoteWrite\.url/)
            .and.match(/prometheus\.remoteWrite\.series/);
    });
    it("a bad label key, and a basic-auth user without its password", () => {
        expect(problems((r) => (r.monitoring.operator.dashboardLabel = "bad label")).join("\n")).to.match(
            /monitoring\.operator\.dashboardLabel/,
        );
        expect(
            problems(
                (r) => (r.prometheus = { remoteWrite: { url: "http://x.invalid", basicAuthUsername: "u" } }),
                "dev",
            ).join("\n"),
        ).to.match(/federationSecrets\.remoteWrite/);
    });
});
