/**
 * What every benchmark checks before and after it measures: the tools it runs are installed (else it stops at once,
 * naming the install command), and a goal is "met" only for figures that were measured (a NaN, an infinity or a zero
 * is a failed measurement, reported as such, and makes the benchmark exit non-zero).
 */
import * as fs from "fs";
import * as path from "path";

export interface Tool {
    /** The executable looked up on PATH. */
    readonly bin: string;
    /** The Debian package that installs it. */
    readonly pkg: string;
}

/** The tools every benchmark runs, by benchmark (the README and `.ci/run` list the same packages). */
export const BENCH_TOOLS: Record<string, Tool[]> = {
    "bench:gateway": [
        { bin: "wrk", pkg: "wrk" },
        { bin: "tinyproxy", pkg: "tinyproxy" },
        { bin: "taskset", pkg: "util-linux" },
    ],
    "bench:loadgen": [{ bin: "taskset", pkg: "util-linux" }],
    "bench:soak": [],
    "bench:fleet": [
        { bin: "prometheus", pkg: "prometheus" },
        { bin: "promtool", pkg: "prometheus" },
    ],
};

/** True when an executable named `bin` is on PATH. */
export function onPath(bin: string, envPath = process.env.PATH ?? ""): boolean {
    return envPath
        .split(path.delimiter)
        .filter((d) => d !== "")
        .some((d) => {
            try {
                fs.accessSync(path.join(d, bin), fs.constants.X_OK);
                return fs.statSync(path.join(d, bin)).isFile();
            } catch {
                return false;
            }
        });
}

/** The tools that are missing and the one command that installs them, or undefined when none is missing. */
export function missingTools(tools: Tool[], envPath?: string): { missing: string[]; install: string } | undefined {
    const missing = tools.filter((t) => !onPath(t.bin, envPath));
    if (missing.length === 0) return undefined;
    const pkgs = [...new Set(missing.map((t) => t.pkg))];
    return { missing: missing.map((t) => t.bin), install: `sudo apt-get install -y ${pkgs.join(" ")}` };
}

/** Stops the process with exit code 3 when a tool of the benchmark is missing, before anything is started. */
export function requireTools(bench: string): void {
    const m = missingTools(BENCH_TOOLS[bench] ?? []);
    if (!m) return;
    process.stderr.write(
        `${bench}: ${m.missing.join(", ")} not found on PATH; nothing was measured.\nInstall with: ${m.install}\n`,
    );
    process.exit(3);
}

/** A measured figure: a finite number above zero. */
export function measured(n: number | undefined): n is number {
    return typeof n === "number" && Number.isFinite(n) && n > 0;
}

/** Goal lines of a benchmark; a goal that could not be judged (a figure not measured) fails the benchmark. */
export class Goals {
    readonly lines: string[] = [];
    unmeasured = 0;
    missed = 0;

    /**
     * One goal: `text` describes it and shows the figures, `figures` are every number the verdict rests on, `ok` is
     * the verdict when they were all measured.
     */
    add(text: string, figures: Record<string, number | undefined>, ok: () => boolean): string {
        const bad = Object.entries(figures)
            .filter(([, v]) => !measured(v))
            .map(([k, v]) => `${k} = ${v}`);
        let verdict: string;
        if (bad.length > 0) {
            this.unmeasured++;
            verdict = `NOT MEASURED (${bad.join(", ")})`;
        } else if (ok()) verdict = "met";
        else {
            this.missed++;
            verdict = "missed";
        }
        const line = `- ${text}: ${verdict}.`;
        this.lines.push(line);
        return line;
    }

    /** Exit code of the benchmark: 1 when a figure was not measured, 0 otherwise (a missed goal is a result). */
    get exitCode(): number {
        return this.unmeasured > 0 ? 1 : 0;
    }
}
