import { expect } from "chai";
import YAML from "yaml";
import { Grafana, buildDatasources, grafanaArgs } from "../../components/grafana";
import { StackConfig } from "../../components/config";
import { allDashboards } from "../../dashboards";
import { find, promiseOf, stackConfig, underMocks, validateObject } from "../harness";
import { workloadViolations } from "../pod-security";

const argsOf = (cfg: StackConfig) => grafanaArgs(cfg, allDashboards(cfg));

describe("Grafana component", () => {
    it("provisions the cluster Prometheus as default, the global one with federation, and Alertmanager", () => {
        const prod = buildDatasources("proxy-monitor", argsOf(stackConfig("prod")).datasources) as any;
        expect(prod.datasources.map((d: any) => [d.uid, d.type, d.url, d.isDefault ?? false])).to.deep.equal([
            ["prometheus", "prometheus", "http://prometheus.proxy-monitor.svc:9090", true],
            ["alertmanager", "alertmanager", "http://alertmanager.proxy-monitor.svc:9093", false],
            ["prometheus-global", "prometheus", "http://prometheus-global.proxy-monitor.svc:9090", false],
        ]);
        const dev = buildDatasources("proxy-monitor", argsOf(stackConfig("dev")).datasources) as any;
        expect(dev.datasources.map((d: any) => d.uid)).to.deep.equal(["prometheus", "alertmanager"]);
    });

    it("renders a restricted, probed Deployment with a random admin password as a secret, no anonymous access, 5 s minimum refresh", async () => {
        let grafana: Grafana | undefined;
        const { objects, resources } = await underMocks(
            () => (grafana = new Grafana("grafana-test", argsOf(stackConfig("prod")))),
        );
        for (const o of objects) validateObject(o);
        expect(workloadViolations(objects).violations).to.deep.equal([]);
        const dep = find(objects, "Deployment", "grafana")[0].spec as any;
        const c = dep.template.spec.containers[0];
        const env = Object.fromEntries((c.env as any[]).map((e) => [e.name, e.value ?? e.valueFrom]));
        expect(env).to.include({
            GF_AUTH_ANONYMOUS_ENABLED: "false",
            GF_DASHBOARDS_MIN_REFRESH_INTERVAL: "5s",
            GF_USERS_ALLOW_SIGN_UP: "false",
        });
        expect(env.GF_SECURITY_ADMIN_PASSWORD.secretKeyRef.key).to.equal("admin-password");
        expect(JSON.stringify(objects)).to.not.match(/admin:admin|"admin-password":"admin"/);
        expect(c.readinessProbe.httpGet.path).to.equal("/api/health");
        expect(resources.some((r) => r.type === "random:index/randomPassword:RandomPassword")).to.equal(true);
        const password = resources.find((r) => r.type === "kubernetes:core/v1:Secret")!;
        expect(JSON.stringify(password.state.stringData)).to.contain("4dabf18193072939515e22adb298388d"); // a Pulumi secret
        expect(await promiseOf(grafana!.adminPassword)).to.match(/^<generated at deploy time/);
        const dashboards = find(objects, "ConfigMap").find((m) => (m.data as any)["proxy-overview.json"])!;
        expect(Object.keys(dashboards.data as object).sort()).to.deep.equal([
            "bandwidth-cost.json",
            "infrastructure.json",
            "proxy-overview.json",
            "vendor-analytics.json",
        ]);
        const provisioning = find(objects, "ConfigMap").find((m) => (m.data as any)["datasources.yaml"])!;
        expect(YAML.parse((provisioning.data as any)["dashboards.yaml"]).providers[0].options.path).to.equal(
            "/etc/grafana/dashboards",
        );
        expect(find(objects, "PersistentVolumeClaim")).to.deep.equal([]);
    });

    it("keeps sqlite on a PVC and recreates rather than rolls with grafanaPersistence", async () => {
        const { objects } = await underMocks(
            () => new Grafana("grafana-pvc-test", argsOf(stackConfig("dev", { grafanaPersistence: true }))),
        );
        expect(find(objects, "PersistentVolumeClaim")).to.have.length(1);
        expect((find(objects, "Deployment")[0].spec as any).strategy).to.deep.equal({ type: "Recreate" });
    });
});
