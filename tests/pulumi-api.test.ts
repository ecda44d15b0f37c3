import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { ROOT } from "./harness";

/** Every TypeScript file of the project (node_modules and render output left out). */
function sourceFiles(dir = ROOT, depth = 0): string[] {
    if (depth > 8) return [];
    const out: string[] = [];
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        if (e.name === "node_modules" || e.name === "rendered" || e.name.startsWith(".")) continue;
        const full = path.join(dir, e.name);
        if (e.isDirectory()) out.push(...sourceFiles(full, depth + 1));
        else if (/\.(ts|mjs|js)$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(full);
    }
    return out;
}

describe("Pulumi's public API only", () => {
    it("no file imports or requires a module path inside a @pulumi package (runtime/config, runtime/settings...)", () => {
        const files = sourceFiles();
        expect(files.length).to.be.greaterThan(50);
        const offenders: string[] = [];
        // An import, dynamic import or require of anything below a package root (@pulumi/pulumi/runtime/...).
        const deep = /(?:from\s+|import\s*\(\s*|require\s*\(\s*)["'](@pulumi\/[^/"']+\/[^"']+)["']/g;
        for (const f of files) {
            const text = fs.readFileSync(f, "utf8");
            for (const m of text.matchAll(deep)) offenders.push(`${path.relative(ROOT, f)}: ${m[1]}`);
        }
        expect(offenders).to.deep.equal([]);
    });
});
