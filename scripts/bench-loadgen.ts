/**
 * `npm run bench:loadgen`: the generator's sustained requests per second and CPU per 10,000 requests against a local
 * target, directly and through one vendor simulator, side by side with autocannon at the same concurrency on the same
 * paths (plain HTTP GET of 1 KiB; through the simulator as absolute-form requests, as a crawler's HTTP_PROXY does),
 * with the cores shared and again with the tool pinned to one core and the target and simulator to the other.
 * `--write` puts the table in docs/performance-tuning.md between the loadgen-bench markers. All on 127.0.0.1; every
 * process it starts is killed at the end.
 */
import { ChildProcess, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { bundleProxy } from "../proxy/bundle";
import { Goals, requireTools } from "./bench-checks";
import { cpuPer, loadAverage, percentile, usageOf } from "./bench-cost";
import { BenchResult, runBench } from "./bench-doc";
import { command, parseCommand } from "./cli";
import { HOST, freePort, waitListening } from "./loopback";

export const BENCH_LOADGEN = command({
    usage: "npm run bench:loadgen --",
    description: `
The generator's sustained requests/s and CPU per 10,000 requests against a local target, directly and through a
vendor simulator, beside autocannon (from node_modules) at the same concurrency, with the cores shared and with the
tool pinned to one core (taskset, sudo apt-get install -y util-linux). The generator and autocannon take turns for
--repeat rounds of BENCH_SECONDS (environment, default 5) seconds each; the table has the medians.
Exit code 1 when a figure could not be measured, 3 when a tool is missing.`,
    flags: {
        write: { type: "boolean", help: "also write the table into docs/performance-tuning.md" },
        repeat: {
            type: "string",
            value: "<n>",
            default: "3",
            help: "run each tool n times on each path, taking turns, and report the medians",
        },
    },
});

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONNECTIONS = 50;
const ROOT = path.resolve(__dirname, "..");
let tmp = "";
const children: ChildProcess[] = [];

/** Core sets: the load tool alone on core 1, the target and the simulator on core 0 (pinned runs). */
const TOOL_CORE = "1";
const REST_CORE = "0";

/**
 * Runs a child to completion (pinned to `cores` when given), sampling the CPU of its process tree (bench-cost.ts)
 * until just before it exits; returns its stdout and CPU seconds.
 */
function runMeasured(cmd: string, args: string[], cores?: string): Promise<{ out: string; cpu: number }> {
    return new Promise((resolve, reject) => {
        const p = cores
            ? spawn("taskset", ["-c", cores, cmd, ...args], { stdio: ["ignore", "pipe", "inherit"] })
            : spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
        children.push(p);
        let out = "";
        let cpu = 0;
        const sampler = setInterval(() => {
            const u = usageOf(p.pid!);
            if (u.processes > 0) cpu = u.cpuSeconds;
        }, 100);
        p.stdout!.on("data", (c) => (out += c));
        p.on("exit", () => {
            clearInterval(sampler);
            resolve({ out, cpu });
        });
        p.on("error", reject);
    });
}

/** Moves a running process (all its threads) to `cores`. */
function pin(pid: number, cores: string): void {
    spawnSync("taskset", ["-a", "-p", "-c", cores, String(pid)], { stdio: "ignore" });
}

/** One run of a tool: requests/s answered 2xx, CPU seconds per 10,000 requests, requests not answered 2xx. */
interface Measured {
    rps: number;
    cpuPer10k: number;
    errors: number;
}

/** The medians of a tool's runs on one path (errors: the sum over the runs). */
interface Row extends Measured {
    path: string;
    tool: string;
    /** "shared" (both cores for everything) or "pinned" (the tool alone on one core). */
    cores: string;
}

async function main(): Promise<BenchResult> {
    const flags = parseCommand(BENCH_LOADGEN, process.argv.slice(2)) as { write?: boolean; repeat?: string };
    const rounds = Number(flags.repeat ?? "3");
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > 10)
        throw new Error(`--repeat must be a whole number from 1 to 10, got ${flags.repeat}`);
    requireTools("bench:loadgen");
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-loadgen-"));
    const loadBefore = loadAverage();
    const script = path.join(tmp, "proxy.js");
    fs.writeFileSync(script, bundleProxy());
    const targetHttp = await freePort();
    fs.writeFileSync(
        path.join(tmp, "target.json"),
        JSON.stringify({
            listen: { host: HOST, httpPort: targetHttp, httpsPort: await freePort(), metricsPort: await freePort() },
        }),
    );
    const target = spawn("node", [script, "target", "--config", path.join(tmp, "target.json")], { stdio: "ignore" });
    children.push(target);
    const simPort = await freePort();
    const sim = {
        vendor: "bench",
        pool: "p",
        listen: { host: HOST, proxyPort: simPort, metricsPort: await freePort() },
        username: "u",
        password: "p",
        forward: `${HOST}:${targetHttp}`,
    };
    fs.writeFileSync(path.join(tmp, "sim.json"), JSON.stringify(sim));
    const simProc = spawn("node", [script, "vendor-sim", "--config", path.join(tmp, "sim.json")], { stdio: "ignore" });
    children.push(simProc);
    await Promise.all([waitListening(targetHttp), waitListening(simPort)]);

    const rows: Row[] = [];
    const paths = [
        {
            name: "direct to the target",
            proxyUrl: "direct",
            cannonUrl: `http://${HOST}:${targetHttp}`,
            cannonPath: "/bytes/1024",
            headers: {},
        },
        {
            name: "through one vendor simulator",
            proxyUrl: `http://u:p@${HOST}:${simPort}`,
            cannonUrl: `http://${HOST}:${simPort}`,
            cannonPath: `http://${HOST}:${targetHttp}/bytes/1024`,
            headers: { "proxy-authorization": "Basic " + Buffer.from("u:p").toString("base64") },
        },
    ];
    /** One run of the generator on path `p`; its rate, CPU per 10,000 requests and errors. */
    const generator = async (p: (typeof paths)[number], pinned: boolean): Promise<Measured> => {
        const pattern = {
            vendors: [{ name: "bench", proxyUrl: p.proxyUrl }],
            destinations: [HOST],
            httpsShare: 0,
            responseBytes: [1024],
            http2: false,
            rate: { schedule: "constant", requestsPerSecond: 200_000 },
            concurrency: CONNECTIONS,
            retries: 0,
            durationSeconds: SECONDS,
            ports: { http: targetHttp, https: 443 },
            metricsPort: await freePort(),
        };
        fs.writeFileSync(path.join(tmp, "pattern.json"), JSON.stringify(pattern));
        const gen = await runMeasured(
            "node",
            [script, "generate", "--config", path.join(tmp, "pattern.json")],
            pinned ? TOOL_CORE : undefined,
        );
        const summary = JSON.parse(gen.out.split("\n").find((l) => l.includes('"msg":"summary"')) ?? "{}");
        const ok = summary.byVendor?.bench?.ok ?? 0;
        return {
            rps: ok / summary.seconds,
            cpuPer10k: cpuPer(gen.cpu, summary.finished, 10_000),
            errors: summary.finished - ok,
        };
    };
    /** One run of autocannon at the same concurrency on the same path. */
    const autocannon = async (p: (typeof paths)[number], pinned: boolean): Promise<Measured> => {
        const runner = path.join(tmp, "cannon.js");
        fs.writeFileSync(
            runner,
            `const a=require(${JSON.stringify(path.join(ROOT, "node_modules", "autocannon"))});a({url:${JSON.stringify(p.cannonUrl)},connections:${CONNECTIONS},duration:${SECONDS},requests:[{method:"GET",path:${JSON.stringify(p.cannonPath)},headers:${JSON.stringify(p.headers)}}]},(e,r)=>{if(e)throw e;process.stdout.write(JSON.stringify({total:r.requests.total,non2xx:r.non2xx,errors:r.errors,seconds:r.duration}))})`,
        );
        const cannon = await runMeasured("node", [runner], pinned ? TOOL_CORE : undefined);
        const r = JSON.parse(cannon.out || "{}");
        return {
            rps: (r.total - r.non2xx) / r.seconds,
            cpuPer10k: cpuPer(cannon.cpu, r.total, 10_000),
            errors: r.non2xx + r.errors,
        };
    };
    const tools = [
        { tool: "proxy-monitor generate", run: generator },
        { tool: "autocannon 8", run: autocannon },
    ];
    for (const pinned of [false, true]) {
        const cores = pinned ? "pinned" : "shared";
        for (const pr of [target, simProc]) pin(pr.pid!, pinned ? REST_CORE : "0-1");
        for (const p of paths) {
            // The tools take turns, round after round, so that a busy spell of the shared machine hits both.
            const runs = tools.map(() => [] as Measured[]);
            for (let round = 1; round <= rounds; round++)
                for (const [i, t] of tools.entries()) {
                    process.stderr.write(`${p.name}, ${cores}, round ${round}/${rounds}: ${t.tool}...\n`);
                    runs[i].push(await t.run(p, pinned));
                }
            const median = (xs: Measured[], k: "rps" | "cpuPer10k") =>
                percentile(
                    xs.map((x) => x[k]),
                    50,
                );
            for (const [i, t] of tools.entries())
                rows.push({
                    path: p.name,
                    tool: t.tool,
                    cores,
                    rps: median(runs[i], "rps"),
                    cpuPer10k: median(runs[i], "cpuPer10k"),
                    errors: runs[i].reduce((a, x) => a + x.errors, 0),
                });
        }
    }

    const fmt = (n: number) =>
        !Number.isFinite(n) ? "n/a" : n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2);
    const goals = new Goals();
    for (const cores of ["shared", "pinned"])
        for (const p of paths) {
            const g = rows.find((r) => r.cores === cores && r.path === p.name && r.tool.startsWith("proxy"))!;
            const a = rows.find((r) => r.cores === cores && r.path === p.name && r.tool.startsWith("autocannon"))!;
            goals.add(
                `${p.name}, ${cores === "pinned" ? "each tool pinned to one core" : "cores shared"}: ${fmt(g.rps / a.rps)}x the rate, ${fmt(g.cpuPer10k / a.cpuPer10k)}x the CPU per request`,
                { "generator req/s": g.rps, "autocannon req/s": a.rps },
                () => g.rps >= 0.8 * a.rps,
            );
        }
    const lines = [
        `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC by \`npm run bench:loadgen\` on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "unknown"}), Node ${process.version}; ${CONNECTIONS} connections, plain HTTP GET of 1 KiB; load average (1, 5, 15 min) ${loadBefore} before, ${loadAverage()} after (the machine is shared). "shared": the tool, the target and the simulator on both cores; "pinned": the tool alone on core 1, the target and the simulator on core 0. The two tools took turns for ${rounds} rounds of ${SECONDS} s on each path: requests/s and CPU are the medians of the rounds, errors their sum. CPU is the tool's process tree (utime + stime from /proc).`,
        "",
        "| path | cores | tool | requests/s | CPU s per 10,000 requests | errors |",
        "| --- | --- | --- | ---: | ---: | ---: |",
        ...rows.map(
            (r) => `| ${r.path} | ${r.cores} | ${r.tool} | ${fmt(r.rps)} | ${fmt(r.cpuPer10k)} | ${r.errors} |`,
        ),
        "",
        "Goal: at least 0.8 of autocannon's rate on each path:",
        ...goals.lines,
    ];
    return { table: lines.join("\n"), exitCode: goals.exitCode, write: flags.write };
}

runBench("bench:loadgen", "loadgen-bench", main, children, () => tmp);
