import { spawnSync } from "child_process";
import { expect } from "chai";
import YAML from "yaml";
import { Alerting, buildAlertmanagerConfig } from "../../components/alerting";
import { StackConfig } from "../../components/config";
import { find, renderedStack, stackConfig, underMocks, validateObject } from "../harness";
import { workloadViolations } from "../pod-security";
import { tempDir, tool, writeYaml } from "../promtool";

/** Well-formed example secrets for each receiver type (amtool checks URL syntax). */
function exampleSecrets(cfg: StackConfig): Record<string, string> {
    const out: Record<string, string> = {};
    for (const r of cfg.alerting.receivers) {
        out[r.name] =
            r.type === "pagerduty"
                ? "0123456789abcdef0123456789abcdef"
                : r.type === "email"
                  ? "smtp-password"
                  : `https://hooks.example.com/${r.name}`;
    }
    return out;
}

function amtool(args: string[]): { code: number; out: string } {
    const r = spawnSync(tool("amtool", "prometheus-alertmanager"), args, { encoding: "utf8", timeout: 60_000 });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

/** Receivers amtool routes an alert with these labels to. */
function routesTo(file: string, labels: Record<string, string>): string[] {
    const r = spawnSync(
        tool("amtool", "prometheus-alertmanager"),
        ["config", "routes", "test", `--config.file=${file}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)],
        { encoding: "utf8", timeout: 60_000 },
    );
    expect(r.status, `${r.stdout}${r.stderr}`).to.equal(0);
    // stdout holds the receivers; amtool writes its warnings to stderr.
    return r.stdout
        .trim()
        .split(",")
        .map((x) => x.trim())
        .sort();
}

describe("Alertmanager configuration", function () {
    this.timeout(60_000);

    const withReceivers = stackConfig("prod", {
        alerting: {
            receivers: [
                { name: "oncall", type: "pagerduty" },
                { name: "proxy-alerts", type: "slack", channel: "#proxy-alerts" },
                { name: "vendor-c-team", type: "webhook" },
                {
                    name: "mail",
                    type: "email",
                    to: "team@example.com",
                    from: "am@example.com",
                    smarthost: "smtp.example.com:587",
                },
                { name: "deadman", type: "webhook" },
            ],
            criticalReceiver: "oncall",
            warningReceiver: "proxy-alerts",
            vendorReceivers: { "vendor-c": "vendor-c-team" },
            watchdogReceiver: "deadman",
        },
        alertingSecrets: { oncall: "k", "proxy-alerts": "u", "vendor-c-team": "u", deadman: "u" },
    });

    for (const stack of ["dev", "prod"]) {
        it(`the ${stack} config passes amtool check-config`, () => {
            const cfg = stackConfig(stack);
            const dir = tempDir("am-");
            const r = amtool([
                "check-config",
                writeYaml(dir, "alertmanager.yml", buildAlertmanagerConfig(cfg, exampleSecrets(cfg))),
            ]);
            expect(r.code, r.out).to.equal(0);
            expect(r.out).to.contain("SUCCESS");
        });
    }

    it("the rendered prod Secret, with its placeholders filled with well-formed examples, passes amtool", async () => {
        const { objects } = await renderedStack("prod");
        const secret = find(objects, "Secret").find((s) => (s.stringData as any)?.["alertmanager.yml"])!;
        const cfg = stackConfig("prod");
        let text = (secret.stringData as any)["alertmanager.yml"] as string;
        for (const [name, value] of Object.entries(exampleSecrets(cfg)))
            text = text.split(`<secret alertingSecrets.${name}>`).join(value);
        expect(text).to.not.contain("<secret");
        const file = writeYaml(tempDir("am-rendered-"), "alertmanager.yml", text);
        const r = amtool(["check-config", file]);
        expect(r.code, r.out).to.equal(0);
        // prod sends Watchdog to its dead man's switch, not nowhere.
        expect(routesTo(file, { severity: "info", alertname: "Watchdog", cluster: "prod-us" })).to.deep.equal([
            "deadmansswitch",
        ]);
    });

    it("routes by severity and vendor (amtool config routes test)", () => {
        const dir = tempDir("am-routes-");
        const file = writeYaml(
            dir,
            "alertmanager.yml",
            buildAlertmanagerConfig(withReceivers, exampleSecrets(withReceivers)),
        );
        expect(amtool(["check-config", file]).code).to.equal(0);
        expect(
            routesTo(file, { severity: "critical", vendor: "vendor-a", alertname: "VendorAllPoolsDown" }),
        ).to.deep.equal(["oncall"]);
        expect(
            routesTo(file, { severity: "warning", vendor: "vendor-b", alertname: "VendorLatencyHigh" }),
        ).to.deep.equal(["proxy-alerts"]);
        // A vendor with its own receiver: that team, and the severity route still pages or tickets.
        expect(
            routesTo(file, { severity: "critical", vendor: "vendor-c", alertname: "VendorAllPoolsDown" }),
        ).to.deep.equal(["oncall", "vendor-c-team"]);
        expect(routesTo(file, { severity: "warning", vendor: "vendor-c", alertname: "VendorPoolDown" })).to.deep.equal([
            "proxy-alerts",
            "vendor-c-team",
        ]);
        expect(routesTo(file, { severity: "warning", alertname: "PrometheusTargetDown" })).to.deep.equal([
            "proxy-alerts",
        ]);
        expect(routesTo(file, { severity: "info", alertname: "Watchdog" })).to.deep.equal(["deadman"]);
        expect(routesTo(file, { severity: "info", alertname: "SomethingElse" })).to.deep.equal(["null"]);
    });

    it("inhibits a vendor's effects while all its pools are down, and warnings only under a critical of the same symptom", () => {
        const am = buildAlertmanagerConfig(withReceivers, exampleSecrets(withReceivers)) as any;
        const [allDown, noReplica, noData, critical] = am.inhibit_rules;
        expect(am.inhibit_rules).to.have.length(4);
        expect([noReplica.equal, noData.equal]).to.deep.equal([
            ["cluster", "vendor"],
            ["cluster", "vendor"],
        ]);
        expect(allDown.source_matchers).to.deep.equal(['alertname="VendorAllPoolsDown"']);
        expect(allDown.target_matchers[0]).to.match(/VendorErrorBudgetBurnFast\|.*VendorLatencyHigh/);
        expect(allDown.target_matchers[0]).to.not.contain("VendorAuthErrors");
        expect(allDown.equal).to.deep.equal(["cluster", "vendor"]);
        expect(critical).to.deep.equal({
            source_matchers: ['severity="critical"', 'vendor=~".+"', 'symptom=~".+"'],
            target_matchers: ['severity="warning"'],
            equal: ["cluster", "vendor", "symptom"],
        });
        expect(am.route.group_by).to.deep.equal(["alertname", "cluster", "vendor"]);
    });

    it("puts receiver credentials only in the Secret, never in plain config", () => {
        const am = YAML.stringify(
            buildAlertmanagerConfig(withReceivers, {
                oncall: "ROUTING-KEY-123",
                "proxy-alerts": "https://hooks.example.com/x",
            }),
        );
        expect(am).to.contain("routing_key: ROUTING-KEY-123");
        expect(am).to.contain("api_url: https://hooks.example.com/x");
    });

    it("renders prod's three clustered replicas with peers, PVCs, PDB and a config Secret", async () => {
        const cfg = stackConfig("prod");
        const { objects, resources } = await underMocks(() => new Alerting("am-test", { config: cfg }));
        for (const o of objects) validateObject(o);
        expect(workloadViolations(objects).violations).to.deep.equal([]);
        const sts = find(objects, "StatefulSet", "alertmanager")[0].spec as any;
        expect(sts.replicas).to.equal(3);
        const args = sts.template.spec.containers[0].args as string[];
        expect(args.filter((a) => a.startsWith("--cluster.peer="))).to.deep.equal([
            "--cluster.peer=alertmanager-0.alertmanager-peers.proxy-monitor.svc:9094",
            "--cluster.peer=alertmanager-1.alertmanager-peers.proxy-monitor.svc:9094",
            "--cluster.peer=alertmanager-2.alertmanager-peers.proxy-monitor.svc:9094",
        ]);
        expect(sts.volumeClaimTemplates[0].spec.resources.requests.storage).to.equal("2Gi");
        expect(find(objects, "PodDisruptionBudget")).to.have.length(1);
        expect((find(objects, "Service", "alertmanager-peers")[0].spec as any).clusterIP).to.equal("None");
        const secretResource = resources.find((r) => r.type === "kubernetes:core/v1:Secret")!;
        expect(JSON.stringify(secretResource.state.stringData)).to.contain("4dabf18193072939515e22adb298388d"); // a Pulumi secret
    });

    it("runs a single replica without clustering in dev", async () => {
        const { objects } = await underMocks(() => new Alerting("am-dev-test", { config: stackConfig("dev") }));
        const args = (find(objects, "StatefulSet")[0].spec as any).template.spec.containers[0].args as string[];
        expect(args).to.include("--cluster.listen-address=");
        expect(find(objects, "PodDisruptionBudget")).to.deep.equal([]);
    });
});
