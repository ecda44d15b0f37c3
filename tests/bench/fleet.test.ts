import { expect } from "chai";
import { DATA_MODEL, MetricSpec } from "../../catalog";
import { GATEWAY_METRICS, POOL_QUALITY_METRICS } from "../../catalog/gateway";
import { Fleet } from "../../scripts/fleet";
import { stackConfig } from "../harness";
import { fromSpecs } from "../series-labels";

/** Series name to the label names it carries, from an exposition. */
function parse(text: string): Map<string, Set<string>> {
    const out = new Map<string, Set<string>>();
    for (const line of text.split("\n")) {
        const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? /.exec(line);
        if (!m) continue;
        const labels = out.get(m[1]) ?? new Set<string>();
        for (const [, l] of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)) labels.add(l);
        out.set(m[1], labels);
    }
    return out;
}

describe("the fleet benchmark's emulated gateway (scripts/fleet.ts)", () => {
    it("exports every series the real gateway exports, with the catalog's labels, so the benchmark counts and evaluates them", () => {
        for (const stack of ["dev", "prod"]) {
            const cfg = stackConfig(stack);
            const fleet = new Fleet(cfg, 10, 0);
            for (const v of cfg.vendors) {
                const got = parse(fleet.exposition(`/gateway/${v.name}/0/metrics`, 60)!);
                const specs: MetricSpec[] = [...Object.values(DATA_MODEL), ...Object.values(GATEWAY_METRICS)];
                if (v.exitIp) specs.push(...Object.values(POOL_QUALITY_METRICS));
                const missing: string[] = [];
                for (const [name, labels] of fromSpecs(specs)) {
                    const have = got.get(name);
                    if (!have) missing.push(`${stack}/${v.name}: ${name}`);
                    else expect([...have].sort(), `${stack}/${v.name}: ${name}`).to.deep.equal([...labels].sort());
                }
                expect(missing).to.deep.equal([]);
            }
        }
    });
});
