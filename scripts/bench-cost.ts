/**
 * What the benchmarks charge a process for its work: CPU seconds (utime + stime, from `/proc/<pid>/stat`) and
 * resident memory of a process and every process below it, read before and after each phase, and the per-unit
 * arithmetic (CPU seconds per 10,000 requests, per 10,000 tunnels, per GB). Rates on a shared machine say who got
 * the cores; CPU per unit says what the work cost. Also the summary of a V8 CPU profile (`node --cpu-prof`) by
 * self time, which the gateway benchmark writes into docs/performance-tuning.md.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

/** The fields of `/proc/<pid>/stat` the benchmarks read. */
export interface ProcStat {
    readonly pid: number;
    readonly ppid: number;
    /** Clock ticks in user and kernel mode of the process (all its threads). */
    readonly utime: number;
    readonly stime: number;
    /** Clock ticks of its children that have exited and been waited for. */
    readonly cutime: number;
    readonly cstime: number;
    /** Resident set size, in pages. */
    readonly rssPages: number;
}

/**
 * Parses one `/proc/<pid>/stat` line. The command name (field 2) is in parentheses and may itself hold spaces and
 * parentheses, so fields are counted from the last `)`.
 */
export function parseStat(text: string): ProcStat {
    const open = text.indexOf("(");
    const close = text.lastIndexOf(")");
    if (open < 0 || close < open) throw new Error(`not a /proc/<pid>/stat line: ${text.slice(0, 80)}`);
    // After ")": field 3 (state) is index 0, so field n is index n - 3.
    const f = text
        .slice(close + 2)
        .trim()
        .split(" ");
    const n = (field: number) => {
        const v = Number(f[field - 3]);
        if (!Number.isFinite(v)) throw new Error(`/proc/<pid>/stat field ${field} is not a number: ${f[field - 3]}`);
        return v;
    };
    return {
        pid: Number(text.slice(0, open).trim()),
        ppid: n(4),
        utime: n(14),
        stime: n(15),
        cutime: n(16),
        cstime: n(17),
        rssPages: n(24),
    };
}

/** `root` and every process below it, by parent pid, from a list of every process's stat. */
export function descendants(root: number, all: readonly ProcStat[]): ProcStat[] {
    const byParent = new Map<number, ProcStat[]>();
    for (const s of all) {
        const list = byParent.get(s.ppid);
        if (list) list.push(s);
        else byParent.set(s.ppid, [s]);
    }
    const self = all.find((s) => s.pid === root);
    if (!self) return [];
    const out: ProcStat[] = [];
    const queue = [self];
    // Bounded: a pid is visited once (a cycle cannot occur in /proc, but a fixture could hold one).
    const seen = new Set<number>();
    while (queue.length > 0 && out.length < all.length) {
        const s = queue.shift() as ProcStat;
        if (seen.has(s.pid)) continue;
        seen.add(s.pid);
        out.push(s);
        queue.push(...(byParent.get(s.pid) ?? []));
    }
    return out;
}

/** A process tree at one instant: CPU seconds spent so far (the living and the reaped), resident bytes now. */
export interface TreeUsage {
    readonly cpuSeconds: number;
    readonly rssBytes: number;
    readonly processes: number;
}

/** Adds up a tree's stats: utime+stime of each process, plus what its reaped children spent; RSS of the living. */
export function treeUsage(tree: readonly ProcStat[], ticksPerSecond: number, pageBytes: number): TreeUsage {
    let ticks = 0;
    let pages = 0;
    for (const s of tree) {
        ticks += s.utime + s.stime + s.cutime + s.cstime;
        pages += s.rssPages;
    }
    return { cpuSeconds: ticks / ticksPerSecond, rssBytes: pages * pageBytes, processes: tree.length };
}

/** Every readable `/proc/<pid>/stat` (processes may exit while being read: those are skipped). */
export function readAllStats(procDir = "/proc"): ProcStat[] {
    const out: ProcStat[] = [];
    for (const name of fs.readdirSync(procDir)) {
        if (!/^[0-9]+$/.test(name)) continue;
        try {
            out.push(parseStat(fs.readFileSync(path.join(procDir, name, "stat"), "utf8")));
        } catch {
            // exited between readdir and read
        }
    }
    return out;
}

let sysconf: { ticks: number; page: number } | undefined;

/** CLK_TCK and the page size of this machine (getconf, read once). */
export function systemUnits(): { ticks: number; page: number } {
    sysconf ??= {
        ticks: Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()),
        page: Number(execFileSync("getconf", ["PAGESIZE"]).toString().trim()),
    };
    return sysconf;
}

/** CPU and memory of the process `root` and its descendants now. */
export function usageOf(root: number, procDir = "/proc"): TreeUsage {
    const { ticks, page } = systemUnits();
    return treeUsage(descendants(root, readAllStats(procDir)), ticks, page);
}

/** Peak resident memory (VmHWM) of one process, in bytes; 0 when it cannot be read. */
export function peakRssBytes(pid: number, procDir = "/proc"): number {
    try {
        const status = fs.readFileSync(path.join(procDir, String(pid), "status"), "utf8");
        return Number(/VmHWM:\s+([0-9]+) kB/.exec(status)?.[1] ?? 0) * 1024;
    } catch {
        return 0;
    }
}

/**
 * CPU seconds per `per` units of work (requests, tunnels, bytes): NaN when nothing was done or the CPU reading is
 * not a number, so that a failed phase is never reported as free.
 */
export function cpuPer(cpuSeconds: number, units: number, per: number): number {
    if (!(units > 0) || !Number.isFinite(cpuSeconds) || cpuSeconds < 0) return NaN;
    return (cpuSeconds / units) * per;
}

/** The p-th percentile (0..100) of a list of numbers, nearest rank; NaN for an empty list. */
export function percentile(values: readonly number[], p: number): number {
    if (values.length === 0) return NaN;
    const sorted = [...values].sort((a, b) => a - b);
    const rank = Math.ceil((p / 100) * sorted.length);
    return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))];
}

/** wrk's latency figure (`853.00us`, `1.20ms`, `2.01s`) in milliseconds; NaN when it is not one. */
export function wrkMs(text: string): number {
    const m = /^([0-9.]+)(us|ms|s|m)$/.exec(text.trim());
    if (!m) return NaN;
    const scale: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };
    return Number(m[1]) * scale[m[2]];
}

/** What `wrk --latency` printed: requests done, requests/s, and the 50th and 99th percentile latency in ms. */
export function parseWrk(out: string): { requests: number; rps: number; p50Ms: number; p99Ms: number } {
    const requests = /([0-9]+) requests in /.exec(out)?.[1];
    const rps = /Requests\/sec:\s+([0-9.]+)/.exec(out)?.[1];
    const p = (q: string) => wrkMs(new RegExp(`^\\s+${q}%\\s+(\\S+)`, "m").exec(out)?.[1] ?? "");
    return {
        requests: requests === undefined ? NaN : Number(requests),
        rps: rps === undefined ? NaN : Number(rps),
        p50Ms: p("50"),
        p99Ms: p("99"),
    };
}

/** The part of a V8 `.cpuprofile` the summary reads. */
export interface CpuProfile {
    readonly nodes: readonly {
        readonly id: number;
        readonly callFrame: {
            readonly functionName: string;
            readonly url: string;
            readonly lineNumber: number;
        };
    }[];
    readonly samples: readonly number[];
    readonly timeDeltas: readonly number[];
}

export interface SelfTime {
    /** `function (file:line)`; `(anonymous)` for unnamed functions, V8's own names for `(garbage collector)` etc. */
    readonly name: string;
    readonly ms: number;
    /** Share of all sampled time, 0..1. */
    readonly share: number;
}

/**
 * The functions with the most self time in a profile (time sampled while that function itself ran), summed over
 * every call site of the same function. `(idle)` is left out of the ranking and of the total.
 */
export function topSelfTime(profile: CpuProfile, n: number): SelfTime[] {
    const nameOf = new Map<number, string>();
    for (const node of profile.nodes) {
        const f = node.callFrame;
        const file = f.url ? path.basename(f.url.replace(/^file:\/\//, "")) : "";
        const where = file ? ` (${file}:${f.lineNumber + 1})` : "";
        nameOf.set(node.id, `${f.functionName || "(anonymous)"}${where}`);
    }
    const self = new Map<string, number>();
    let total = 0;
    for (let i = 0; i < profile.samples.length; i++) {
        const name = nameOf.get(profile.samples[i]) ?? "(unknown)";
        // timeDeltas[i] is the time before sample i; the sample stands for the interval that ends at it.
        const us = profile.timeDeltas[i] ?? 0;
        if (name === "(idle)" || us < 0) continue;
        self.set(name, (self.get(name) ?? 0) + us);
        total += us;
    }
    return [...self.entries()]
        .sort((a, b) => b[1] - a[1])
        .slice(0, n)
        .map(([name, us]) => ({ name, ms: us / 1000, share: total > 0 ? us / total : 0 }));
}

/** The 1-minute, 5-minute and 15-minute load averages, as `/proc/loadavg` has them. */
export function loadAverage(procDir = "/proc"): string {
    try {
        return fs.readFileSync(path.join(procDir, "loadavg"), "utf8").split(" ").slice(0, 3).join(" ");
    } catch {
        return "unknown";
    }
}
