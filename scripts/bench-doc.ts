/** Where benchmarks put their results: docs/performance-tuning.md, between `<!-- NAME:begin -->` and `:end` markers. */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
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

/**
 * A benchmark's child processes and temporary folder, which runBench kills and removes at the end
 * (`runBench(name, section, main, ws.children, () => ws.dir)`).
 */
export class BenchWorkspace {
    readonly children: ChildProcess[] = [];
    /** The temporary folder, once `open` made it ("" before). */
    dir = "";

    constructor(private readonly prefix: string) {}

    /** Makes the temporary folder (when `main` runs, so that --help and bad flags leave nothing behind). */
    open(): string {
        return (this.dir = fs.mkdtempSync(path.join(os.tmpdir(), this.prefix)));
    }

    /** Starts `cmd` (under `taskset -c cores` when given), its stderr shown; killed at the end. */
    start(cmd: string, args: readonly string[], cores?: string): ChildProcess {
        const stdio: ["ignore", "ignore", "inherit"] = ["ignore", "ignore", "inherit"];
        const p = cores ? spawn("taskset", ["-c", cores, cmd, ...args], { stdio }) : spawn(cmd, args, { stdio });
        this.children.push(p);
        return p;
    }

    /** Writes `obj` as JSON into the folder; returns the file's path. */
    writeJson(name: string, obj: unknown): string {
        const f = path.join(this.dir, name);
        fs.writeFileSync(f, JSON.stringify(obj));
        return f;
    }
}

/** What a benchmark's `main` hands back: its Markdown table, its exit code, and whether `--write` asked for the doc. */
export interface BenchResult {
    readonly table: string;
    /** 0 when every figure was measured (see bench-checks.ts `Goals`). Defaults to 0. */
    readonly exitCode?: number;
    /** Write the table between the `section` markers (only when `exitCode` is 0). */
    readonly write?: boolean;
}

/**
 * Runs a benchmark's `main`, prints its table, writes it between the `section` markers when asked and every figure
 * was measured, then kills every child still running, removes the temporary folder (`tmp()` at that time) and exits
 * with the benchmark's code (1 on an error).
 */
export function runBench(
    name: string,
    section: string,
    main: () => Promise<BenchResult>,
    children: readonly ChildProcess[],
    tmp: () => string,
): void {
    const cleanup = () => {
        for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
        if (tmp()) fs.rmSync(tmp(), { recursive: true, force: true });
    };
    main().then(
        (r) => {
            const code = r.exitCode ?? 0;
            process.stdout.write(r.table + "\n");
            if (code !== 0) process.stderr.write(`${name}: some figures were not measured; see the goals\n`);
            else if (r.write) writeBenchSection(section, r.table);
            cleanup();
            process.exit(code);
        },
        (e: Error) => {
            cleanup();
            process.stderr.write(`${name} failed: ${e.message}\n`);
            process.exit(1);
        },
    );
}
