import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { DATA_MODEL, allRecordedSeries } from "../catalog";
import { GATEWAY_METRICS } from "../catalog/gateway";
import { KNOWN_KEYS, SIMPLE_KEYS } from "../components/config";
import { ROOT } from "./harness";

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), "utf8");

describe("docs match the code", () => {
    it("docs/data-model.md names every data-model series, gateway series and recorded series", () => {
        const doc = read("docs/data-model.md");
        for (const m of [...Object.values(DATA_MODEL), ...Object.values(GATEWAY_METRICS)])
            expect(doc, m.name).to.contain(`\`${m.name}`);
        for (const r of allRecordedSeries()) {
            const windowed = /^vendor:proxy_request_errors:ratio_rate/.test(r)
                ? "vendor:proxy_request_errors:ratio_rate<w>"
                : r;
            expect(doc, r).to.contain(windowed);
        }
    });

    it("README's configuration reference names every config key", () => {
        const readme = read("README.md");
        for (const k of [...KNOWN_KEYS, ...SIMPLE_KEYS.map((s) => s.key)]) expect(readme, k).to.contain(`\`${k}\``);
    });

    it("every npm script the README and docs name exists", () => {
        const scripts = JSON.parse(read("package.json")).scripts as Record<string, string>;
        const docs = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).map((f) => `docs/${f}`)];
        for (const f of docs) {
            for (const m of read(f).matchAll(/npm run ([a-z][a-z0-9:-]*)/g))
                expect(scripts[m[1]], `${f}: npm run ${m[1]}`).to.be.a("string");
        }
    });
});
