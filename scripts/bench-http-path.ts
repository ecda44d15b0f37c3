/**
 * The gateway's plain-HTTP path alone, by cost: client (wrk, absolute-form GET of a 100-byte body, 50 connections)
 * -> gateway -> vendor-sim -> target on 127.0.0.1, the gateway's CPU seconds per 10,000 requests read from /proc
 * (bench-cost.ts), repeated and reported as the median. Several gateway bundles (and proxy-chain) can be compared in
 * one run: their runs are interleaved, so that a change in the machine's load hits them alike. Also the gateway's
 * resident memory when idle (started, probed once, no request yet) and after the load.
 *
 *   npm run bench:http-path -- [--bundles a.js,b.js] [--proxy-chain] [--runs 3]
 *
 * `--save-bundle <file>` writes this tree's gateway bundle to a file (to compare it later against another tree's).
 * Every phase is bounded in time; every process it starts is killed at the end.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { bundleGateway, writeProgram } from "../proxy/bundle";
import { nodeFlags } from "../proxy/loader";
import { requireTools } from "./bench-checks";
import { cpuPer, loadAverage, percentile, usageOf } from "./bench-cost";
import {
    Started,
    benchSimConfig,
    benchWrk,
    startBenchGateway,
    startBenchProxyChain,
    writeBenchTarget,
} from "./bench-gateway-config";
import { BenchResult, BenchWorkspace, runBench } from "./bench-doc";
import { command, parseCommand } from "./cli";
import { HOST, freePort, waitListening } from "./loopback";

export const BENCH_HTTP_PATH = command({
    usage: "npm run bench:http-path --",
    description: `
CPU seconds per 10,000 plain-HTTP requests of the gateway (median of --runs runs of --seconds each, after a 2 s
warm-up; the gateway runs with the node flags of its pods), its idle and loaded resident memory, for this tree's bundle or the bundles given, optionally beside
proxy-chain; runs of the variants are interleaved. Needs wrk (sudo apt-get install -y wrk).`,
    flags: {
        bundles: {
            type: "string",
            value: "<a.js,b.js>",
            help: "gateway bundles to compare, comma-separated",
            defaultText: "this tree's bundle",
        },
        "proxy-chain": { type: "boolean", help: "also measure proxy-chain in the same runs" },
        runs: { type: "string", value: "<n>", help: "runs per variant (1 to 20)", default: "3" },
        seconds: { type: "string", value: "<s>", help: "seconds per run (1 to 60)", default: "8" },
        "save-bundle": { type: "string", value: "<file>", help: "write this tree's gateway bundle to <file> and exit" },
    },
});

const MB = 2 ** 20;
const WARMUP_SECONDS = 2;
const ws = new BenchWorkspace("bench-http-path-");

type Launch = (upstream: number) => Promise<Started>;

interface Run {
    cpuPer10k: number;
    rps: number;
    idleRssMb: number;
    loadedRssMb: number;
}

function bounded(flag: string, value: string | undefined, lo: number, hi: number): number {
    const n = Number(value);
    if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`--${flag} must be an integer from ${lo} to ${hi}`);
    return n;
}

async function main(): Promise<BenchResult> {
    const flags = parseCommand(BENCH_HTTP_PATH, process.argv.slice(2));
    if (flags["save-bundle"]) {
        fs.writeFileSync(flags["save-bundle"], bundleGateway());
        process.stderr.write(`wrote ${flags["save-bundle"]}\n`);
        return { table: "" };
    }
    const runs = bounded("runs", flags.runs, 1, 20);
    const seconds = bounded("seconds", flags.seconds, 1, 60);
    requireTools("bench:gateway");
    const tmp = ws.open();
    // The program as the pods get it: the loader runs the gateway's own bundle, the simulator the full one.
    const own = writeProgram(path.join(tmp, "program"));

    const targetPort = await freePort();
    ws.start("node", [writeBenchTarget(tmp, targetPort)]);
    const simPort = await freePort();
    ws.start("node", [
        own,
        "vendor-sim",
        "--config",
        ws.writeJson("sim.json", benchSimConfig("fwd", simPort, await freePort(), `${HOST}:${targetPort}`)),
    ]);
    await Promise.all([waitListening(targetPort), waitListening(simPort)]);

    const probe = `${HOST}:${targetPort}`;
    const variants: [string, Launch][] = (flags.bundles ? flags.bundles.split(",") : [own]).map((b) => [
        b === own ? "this tree" : path.basename(b),
        // With the node flags the gateway pods run with (proxy/loader.ts).
        (upstream) =>
            startBenchGateway(ws, {
                script: path.resolve(b),
                upstream,
                probeDestination: probe,
                metrics: true,
                nodeFlags: nodeFlags("gateway"),
            }),
    ]);
    if (flags["proxy-chain"]) variants.push(["proxy-chain", (upstream) => startBenchProxyChain(ws, upstream)]);

    const targetUrl = `http://${HOST}:${targetPort}/bytes/100`;
    const results = new Map<string, Run[]>(variants.map(([n]) => [n, []]));
    const loadBefore = loadAverage();
    for (let r = 0; r < runs; r++) {
        for (const [name, launch] of variants) {
            const x = await launch(simPort);
            const pid = x.proc.pid as number;
            // Settled: started, its first probe answered.
            await new Promise((res) => setTimeout(res, 1000));
            const idle = usageOf(pid).rssBytes;
            benchWrk(tmp, x.port, targetUrl, 50, { seconds: WARMUP_SECONDS });
            const before = usageOf(pid).cpuSeconds;
            const w = benchWrk(tmp, x.port, targetUrl, 50, { seconds });
            const after = usageOf(pid);
            x.proc.kill("SIGKILL");
            const run: Run = {
                cpuPer10k: cpuPer(after.cpuSeconds - before, w.requests, 10_000),
                rps: w.rps,
                idleRssMb: idle / MB,
                loadedRssMb: after.rssBytes / MB,
            };
            (results.get(name) as Run[]).push(run);
            process.stderr.write(
                `run ${r + 1}/${runs} ${name}: ${run.cpuPer10k.toFixed(2)} CPU s per 10k, ${Math.round(run.rps)} req/s, RSS idle ${run.idleRssMb.toFixed(1)} MB, loaded ${run.loadedRssMb.toFixed(1)} MB\n`,
            );
        }
    }
    const f = (n: number, d = 2) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");
    const lines = [
        `${runs} runs of ${seconds} s (after ${WARMUP_SECONDS} s warm-up), wrk 50 connections, Node ${process.version}, ${os.cpus().length} cores; load average ${loadBefore} before, ${loadAverage()} after.`,
        "",
        "| X | CPU s per 10k requests, median (runs) | req/s, median | idle RSS MB, median | loaded RSS MB, median |",
        "| --- | ---: | ---: | ---: | ---: |",
    ];
    let unmeasured = false;
    for (const [name, list] of results) {
        const med = (k: keyof Run) =>
            percentile(
                list.map((x) => x[k]),
                50,
            );
        if (!(med("cpuPer10k") > 0)) unmeasured = true;
        lines.push(
            `| ${name} | ${f(med("cpuPer10k"))} (${list.map((x) => f(x.cpuPer10k)).join(", ")}) | ${f(med("rps"), 0)} | ${f(med("idleRssMb"), 1)} | ${f(med("loadedRssMb"), 1)} |`,
        );
    }
    return { table: lines.join("\n"), exitCode: unmeasured ? 1 : 0 };
}

runBench("bench:http-path", "", main, ws.children, () => ws.dir);
