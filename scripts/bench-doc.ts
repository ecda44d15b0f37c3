/** Where benchmarks put their results: docs/performance-tuning.md, between `<!-- NAME:begin -->` and `:end` markers. */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export const PERFORMANCE_DOC = path.resolve(__dirname, "..", "docs", "performance-tuning.md");

/** Replaces the text between the named markers with `text`, then formats the document with prettier. */
export function writeBenchSection(name: string, text: string, doc = PERFORMANCE_DOC): void {
    const current = fs.readFileSync(doc, "utf8");
    const begin = `<!-- ${name}:begin -->`;
    const end = `<!-- ${name}:end -->`;
    const i = current.indexOf(begin);
    const j = current.indexOf(end);
    if (i < 0 || j < i) throw new Error(`${doc} has no ${begin} ... ${end} markers`);
    fs.writeFileSync(doc, current.slice(0, i + begin.length) + "\n" + text + "\n" + current.slice(j));
    spawnSync(process.execPath, [require.resolve("prettier/bin/prettier.cjs"), "--write", doc], { stdio: "ignore" });
    process.stderr.write(`wrote the results to ${path.relative(process.cwd(), doc)}\n`);
}
