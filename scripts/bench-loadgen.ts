/**
 * `npm run bench:loadgen`: the generator's sustained requests per second and CPU per 10,000 requests against a local
 * target, directly and through one vendor simulator, side by side with autocannon at the same concurrency on the same
 * paths (plain HTTP GET of 1 KiB; through the simulator as absolute-form requests, as a crawler's HTTP_PROXY does).
 * `--write` puts the table in docs/performance-tuning.md between the loadgen-bench markers. All on 127.0.0.1; every
 * process it starts is killed at the end.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { bundleProxy } from "../proxy/bundle";
import { Goals, requireTools } from "./bench-checks";
import { BenchResult, runBench } from "./bench-doc";
import { command, parseCommand } from "./cli";
import { HOST, freePort, waitListening } from "./loopback";

export const BENCH_LOADGEN = command({
    usage: "npm run bench:loadgen --",
    description: `
The generator's sustained requests/s and CPU per 10,000 requests against a local target, directly and through a
vendor simulator, beside autocannon (from node_modules) at the same concurrency; no other tool is needed. Each run
lasts BENCH_SECONDS (environment, default 8) seconds. Exit code 1 when a figure could not be measured.`,
    flags: {
        write: { type: "boolean", help: "also write the table into docs/performance-tuning.md" },
    },
});

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const CONNECTIONS = 50;
const ROOT = path.resolve(__dirname, "..");
let tmp = "";
const children: ChildProcess[] = [];

function cpuSeconds(pid: number): number {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
}

/** Runs a child to completion, sampling its CPU just before it exits; returns its stdout and CPU seconds. */
function runMeasured(cmd: string, args: string[]): Promise<{ out: string; cpu: number }> {
    return new Promise((resolve, reject) => {
        const p = spawn(cmd, args, { stdio: ["ignore", "pipe", "inherit"] });
        children.push(p);
        let out = "";
        let cpu = 0;
        const sampler = setInterval(() => {
            try {
                cpu = cpuSeconds(p.pid!);
            } catch {
                // exited between samples
            }
        }, 100);
        p.stdout!.on("data", (c) => (out += c));
        p.on("exit", () => {
            clearInterval(sampler);
            resolve({ out, cpu });
        });
        p.on("error", reject);
    });
}

interface Row {
    path: string;
    tool: string;
    rps: number;
    cpuPer10k: number;
    errors: number;
}

async function main(): Promise<BenchResult> {
    const flags = parseCommand(BENCH_LOADGEN, process.argv.slice(2));
    requireTools("bench:loadgen");
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-loadgen-"));
    const script = path.join(tmp, "proxy.js");
    fs.writeFileSync(script, bundleProxy());
    const targetHttp = await freePort();
    fs.writeFileSync(
        path.join(tmp, "target.json"),
        JSON.stringify({
            listen: { host: HOST, httpPort: targetHttp, httpsPort: await freePort(), metricsPort: await freePort() },
        }),
    );
    children.push(spawn("node", [script, "target", "--config", path.join(tmp, "target.json")], { stdio: "ignore" }));
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
    children.push(spawn("node", [script, "vendor-sim", "--config", path.join(tmp, "sim.json")], { stdio: "ignore" }));
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
    for (const p of paths) {
        process.stderr.write(`${p.name}: generator...\n`);
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
        const gen = await runMeasured("node", [script, "generate", "--config", path.join(tmp, "pattern.json")]);
        const summary = JSON.parse(gen.out.split("\n").find((l) => l.includes('"msg":"summary"')) ?? "{}");
        const ok = summary.byVendor?.bench?.ok ?? 0;
        rows.push({
            path: p.name,
            tool: "proxy-monitor generate",
            rps: ok / summary.seconds,
            cpuPer10k: (gen.cpu / Math.max(1, summary.finished)) * 10_000,
            errors: summary.finished - ok,
        });

        process.stderr.write(`${p.name}: autocannon...\n`);
        const runner = path.join(tmp, "cannon.js");
        fs.writeFileSync(
            runner,
            `const a=require(${JSON.stringify(path.join(ROOT, "node_modules", "autocannon"))});a({url:${JSON.stringify(p.cannonUrl)},connections:${CONNECTIONS},duration:${SECONDS},requests:[{method:"GET",path:${JSON.stringify(p.cannonPath)},headers:${JSON.stringify(p.headers)}}]},(e,r)=>{if(e)throw e;process.stdout.write(JSON.stringify({total:r.requests.total,non2xx:r.non2xx,errors:r.errors,seconds:r.duration}))})`,
        );
        const cannon = await runMeasured("node", [runner]);
        const r = JSON.parse(cannon.out);
        rows.push({
            path: p.name,
            tool: "autocannon 8",
            rps: (r.total - r.non2xx) / r.seconds,
            cpuPer10k: (cannon.cpu / Math.max(1, r.total)) * 10_000,
            errors: r.non2xx + r.errors,
        });
    }

    const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(2));
    const goals = new Goals();
    for (const p of paths) {
        const g = rows.find((r) => r.path === p.name && r.tool.startsWith("proxy"))!;
        const a = rows.find((r) => r.path === p.name && r.tool.startsWith("autocannon"))!;
        goals.add(
            `${p.name}: ${fmt(g.rps / a.rps)}x`,
            { "generator req/s": g.rps, "autocannon req/s": a.rps },
            () => g.rps >= 0.8 * a.rps,
        );
    }
    const lines = [
        `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench:loadgen\` on ${os.cpus().length} cores (${os.cpus()[0]?.model ?? "unknown"}), Node ${process.version}; ${SECONDS} s per run, ${CONNECTIONS} connections, plain HTTP GET of 1 KiB; the target and the simulator share the machine.`,
        "",
        "| path | tool | requests/s | CPU s per 10,000 requests | errors |",
        "| --- | --- | ---: | ---: | ---: |",
        ...rows.map((r) => `| ${r.path} | ${r.tool} | ${fmt(r.rps)} | ${fmt(r.cpuPer10k)} | ${r.errors} |`),
        "",
        "Goal: at least 0.8 of autocannon's rate on each path:",
        ...goals.lines,
    ];
    return { table: lines.join("\n"), exitCode: goals.exitCode, write: flags.write };
}

runBench("bench:loadgen", "loadgen-bench", main, children, () => tmp);
