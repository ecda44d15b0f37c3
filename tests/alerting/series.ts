/** Shared pieces of the promtool rule tests: input series, and a run of the generated rules under test. */
import { expect } from "chai";
import YAML from "yaml";
import { buildAlertRules } from "../../components/alerting/rules";
import { StackConfig } from "../../components/config";
import { buildRecordingRules } from "../../components/prometheus";
import { promtool, tempDir, writeYaml } from "../promtool";

export type Series = { series: string; values: string };

/** A promtool input series. */
export function series(name: string, labels: Record<string, string>, values: string): Series {
    return {
        series: `${name}{${Object.entries(labels)
            .map(([k, v]) => `${k}="${v}"`)
            .join(",")}}`,
        values,
    };
}

/**
 * `promtool test rules` over the recording and alert rules of `cfg`, with annotations removed so that scenarios
 * compare labels only (annotations are checked per alert in alerts.test.ts). Fails the test with promtool's output.
 */
export function expectRuleTestsPass(cfg: StackConfig, name: string, tests: unknown[]): void {
    const dir = tempDir(`rules-${name}-`);
    writeYaml(dir, "recording.yaml", buildRecordingRules(cfg));
    const alerts = buildAlertRules(cfg);
    for (const g of alerts.groups) for (const r of g.rules) (r as { annotations?: unknown }).annotations = undefined;
    writeYaml(dir, "alerts.yaml", YAML.parse(YAML.stringify(alerts)));
    const file = writeYaml(dir, `${name}.test.yaml`, {
        rule_files: ["recording.yaml", "alerts.yaml"],
        evaluation_interval: "1m",
        tests,
    });
    const r = promtool(["test", "rules", file], dir);
    expect(r.code, r.out).to.equal(0);
}
