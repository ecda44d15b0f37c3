import { expect } from "chai";
import { spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    CpuProfile,
    cpuPer,
    descendants,
    parseStat,
    parseWrk,
    percentile,
    readAllStats,
    topSelfTime,
    treeUsage,
    usageOf,
    wrkMs,
} from "../../scripts/bench-cost";

/** A /proc/<pid>/stat line with the given fields (the rest zero). */
function statLine(pid: number, comm: string, ppid: number, utime: number, stime: number, rss: number, c = [0, 0]) {
    const f = Array.from({ length: 50 }, () => "0");
    f[0] = "S";
    f[1] = String(ppid);
    f[11] = String(utime);
    f[12] = String(stime);
    f[13] = String(c[0]);
    f[14] = String(c[1]);
    f[21] = String(rss);
    return `${pid} (${comm}) ${f.join(" ")}\n`;
}

describe("benchmark cost accounting (scripts/bench-cost.ts)", function () {
    this.timeout(20_000);

    it("reads utime, stime, reaped children and RSS from a stat line whose command has spaces and parentheses", () => {
        const s = parseStat(statLine(42, "node (worker) x)", 7, 150, 50, 1000, [30, 20]));
        expect(s).to.deep.equal({ pid: 42, ppid: 7, utime: 150, stime: 50, cutime: 30, cstime: 20, rssPages: 1000 });
        expect(() => parseStat("garbage")).to.throw(/not a \/proc/);
        // A real line of this process: its own pid and parent.
        const me = parseStat(fs.readFileSync("/proc/self/stat", "utf8"));
        expect(me.ppid).to.be.above(0);
        expect(me.rssPages).to.be.above(0);
    });

    it("charges a process for its descendants (living, and reaped into cutime) and for nothing else", () => {
        const all = [
            parseStat(statLine(1, "init", 0, 1000, 1000, 10)),
            parseStat(statLine(10, "gw", 1, 100, 50, 100, [7, 3])),
            parseStat(statLine(11, "child", 10, 20, 10, 50)),
            parseStat(statLine(12, "grandchild", 11, 5, 5, 25)),
            parseStat(statLine(20, "other", 1, 999, 999, 999)),
        ];
        expect(descendants(10, all).map((s) => s.pid)).to.deep.equal([10, 11, 12]);
        expect(descendants(99, all)).to.deep.equal([]);
        const u = treeUsage(descendants(10, all), 100, 4096);
        expect(u.cpuSeconds).to.equal((100 + 50 + 7 + 3 + 20 + 10 + 5 + 5) / 100);
        expect(u.rssBytes).to.equal((100 + 50 + 25) * 4096);
        expect(u.processes).to.equal(3);
    });

    it("measures a real grandchild's CPU under its parent's pid (reaped into the parent's cutime), and not a sibling's", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "burn-"));
        const done = path.join(dir, "done");
        // Burns 0.5 s of CPU (not of wall time: the machine may be shared), then says so.
        const burn = `const c=()=>{const u=process.cpuUsage();return (u.user+u.system)/1e3};while(c()<500){}require("fs").writeFileSync(${JSON.stringify(done)},"")`;
        const parent = spawn("sh", ["-c", `"${process.execPath}" -e '${burn}'; sleep 10`], { stdio: "ignore" });
        const sibling = spawn(process.execPath, ["-e", "setTimeout(()=>{},10000)"], { stdio: "ignore" });
        try {
            const before = usageOf(parent.pid!);
            const tree = descendants(parent.pid!, readAllStats()).map((s) => s.pid);
            expect(tree).to.include(parent.pid).and.not.include(sibling.pid);
            for (let i = 0; i < 200 && !fs.existsSync(done); i++) await new Promise((r) => setTimeout(r, 100));
            expect(fs.existsSync(done), "the burner finished within 20 s").to.equal(true);
            await new Promise((r) => setTimeout(r, 300));
            const after = usageOf(parent.pid!);
            expect(after.cpuSeconds - before.cpuSeconds).to.be.within(0.45, 2);
        } finally {
            parent.kill("SIGKILL");
            sibling.kill("SIGKILL");
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("gives CPU per unit, and NaN (never free) for a phase that did nothing", () => {
        expect(cpuPer(2, 50_000, 10_000)).to.equal(0.4);
        expect(cpuPer(3, 1.5e9, 1e9)).to.equal(2);
        for (const bad of [
            [1, 0],
            [1, NaN],
            [NaN, 10],
            [-1, 10],
        ])
            expect(Number.isNaN(cpuPer(bad[0], bad[1], 10_000)), String(bad)).to.equal(true);
    });

    it("takes nearest-rank percentiles", () => {
        const v = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
        expect(percentile(v, 50)).to.equal(5);
        expect(percentile(v, 99)).to.equal(10);
        expect(percentile(v, 10)).to.equal(1);
        expect(Number.isNaN(percentile([], 50))).to.equal(true);
    });

    it("reads wrk's requests, rate and latency percentiles in milliseconds", () => {
        const out = [
            "Running 1s test @ http://127.0.0.1:18777/",
            "  Latency Distribution",
            "     50%  649.00us",
            "     75%    0.92ms",
            "     90%    2.11ms",
            "     99%    1.15s",
            "  1069 requests in 1.00s, 1.39MB read",
            "Requests/sec:   1067.64",
        ].join("\n");
        const w = parseWrk(out);
        expect(w.requests).to.equal(1069);
        expect(w.rps).to.equal(1067.64);
        expect(w.p50Ms).to.be.closeTo(0.649, 1e-9);
        expect(w.p99Ms).to.equal(1150);
        expect(wrkMs("2m")).to.equal(120_000);
        expect(Number.isNaN(wrkMs("fast"))).to.equal(true);
        const none = parseWrk("");
        expect(Number.isNaN(none.requests)).to.equal(true);
        expect(Number.isNaN(none.p50Ms)).to.equal(true);
    });

    it("ranks a CPU profile's functions by self time, summed over call sites, without idle", () => {
        const frame = (functionName: string, url: string, lineNumber: number) => ({ functionName, url, lineNumber });
        const profile: CpuProfile = {
            nodes: [
                { id: 1, callFrame: frame("(root)", "", -1) },
                { id: 2, callFrame: frame("parse", "file:///tmp/x/proxy.js", 9) },
                { id: 3, callFrame: frame("parse", "file:///tmp/x/proxy.js", 9) },
                { id: 4, callFrame: frame("", "node:net", 0) },
                { id: 5, callFrame: frame("(idle)", "", -1) },
            ],
            samples: [2, 3, 4, 5, 5, 2],
            timeDeltas: [1000, 2000, 1000, 50_000, 50_000, 1000],
        };
        const top = topSelfTime(profile, 5);
        expect(top.map((t) => t.name)).to.deep.equal(["parse (proxy.js:10)", "(anonymous) (node:net:1)"]);
        expect(top[0].ms).to.equal(4);
        expect(top[0].share).to.equal(0.8);
        expect(topSelfTime(profile, 1)).to.have.length(1);
    });

    it("reads the fixture tree from a /proc-like folder", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proc-"));
        try {
            for (const [pid, line] of [
                [10, statLine(10, "gw", 1, 100, 50, 100)],
                [11, statLine(11, "c", 10, 1, 1, 1)],
            ] as const) {
                fs.mkdirSync(path.join(dir, String(pid)));
                fs.writeFileSync(path.join(dir, String(pid), "stat"), line);
            }
            fs.mkdirSync(path.join(dir, "self"));
            expect(
                readAllStats(dir)
                    .map((s) => s.pid)
                    .sort(),
            ).to.deep.equal([10, 11]);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
