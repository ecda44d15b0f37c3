/**
 * `npm run bench:gateway`: client -> X -> vendor-sim -> target, all on 127.0.0.1, for X = our gateway (metrics on
 * and off), proxy-chain and Debian's tinyproxy, plus a bare TCP relay as the tunnel-throughput baseline.
 *
 * For each X and each phase (plain HTTP with wrk at 50 and 500 connections, new CONNECT tunnels from 50 loops, bytes
 * echoed through 4 established tunnels) it reads X's process tree from /proc before and after (bench-cost.ts) and
 * reports what the work cost: CPU seconds per 10,000 requests, per 10,000 new tunnels and per GB relayed, beside the
 * rates; peak and steady resident memory; the p50/p99 latency X adds to one request and one tunnel at a time (client
 * -> X -> simulator against client -> simulator). Then a second set of rates with X pinned to core 1 and everything
 * else (wrk, the target, this process) pinned to core 0 (taskset), X's pool being the target answering as a terminal
 * pool, so that X's own ceiling shows; how busy X's core was says whether it did. `--repeat n` measures every X n
 * times, interleaved, and reports medians.
 * Prints a Markdown table; `--write` also puts it in docs/performance-tuning.md between the gateway-bench markers.
 * `--profile` instead runs the gateway under `node --cpu-prof` for the plain-HTTP and the CONNECT phase and
 * summarises the functions with the most self time (gateway-profile markers).
 *
 * Every phase is bounded in time; every process it starts is killed at the end.
 */
import { ChildProcess, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { ENTRIES, bundle, writeProgram } from "../proxy/bundle";
import { nodeFlags } from "../proxy/loader";
import { Goals, requireTools } from "./bench-checks";
import { CpuProfile, cpuPer, loadAverage, peakRssBytes, percentile, topSelfTime, usageOf } from "./bench-cost";
import { BenchResult, BenchWorkspace, runBench, writeBenchSection } from "./bench-doc";
import {
    BENCH_PASS,
    BENCH_USER,
    Started,
    benchSimConfig,
    benchWrk,
    startBenchGateway,
    startBenchProxyChain,
    startListening,
    writeBenchTarget,
} from "./bench-gateway-config";
import { command, parseCommand } from "./cli";
import { HOST, freePort, waitListening } from "./loopback";

export const BENCH_GATEWAY = command({
    usage: "npm run bench:gateway --",
    description: `
CPU seconds per 10,000 requests, per 10,000 new tunnels and per GB relayed, rates, memory and added latency of our
gateway (metrics on and off), proxy-chain and tinyproxy between a client and a vendor simulator on 127.0.0.1, the
rates again with X pinned to one core and the rest to the other, and whether the goals are met. Needs wrk, tinyproxy
and taskset (sudo apt-get install -y wrk tinyproxy util-linux). Each phase lasts BENCH_SECONDS (environment, default
8) seconds. Exit code 1 when a figure could not be measured, 3 when a tool is missing.`,
    flags: {
        write: { type: "boolean", help: "also write the results into docs/performance-tuning.md" },
        profile: {
            type: "boolean",
            help: "profile the gateway (node --cpu-prof) on the plain-HTTP and CONNECT paths instead of the table",
        },
        only: {
            type: "string",
            value: "<text>",
            help: "measure only the proxy named <text>, or those whose name contains it (gateway, proxy-chain, tinyproxy, floor); not with --write",
        },
        repeat: {
            type: "string",
            value: "<n>",
            default: "1",
            help: "measure every proxy n times, interleaved, and report the median of each figure (peak RSS: the highest)",
        },
        "node-flags": {
            type: "string",
            value: "<flags>",
            defaultText: "the flags the gateway pods run with (proxy/loader.ts nodeFlags)",
            help: "node/V8 flags for the gateway rows instead of the shipped ones, to try others; not with --write",
        },
    },
});

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
/** One request or tunnel at a time, for the latency X adds. */
const LATENCY_SECONDS = Math.min(3, SECONDS);
const USER = BENCH_USER;
const PASS = BENCH_PASS;
/** The reference row: the least a Node forward proxy does (scripts/bench-node-floor.ts), no goal of its own. */
const NODE_FLOOR = "minimal Node proxy (floor)";

/** scripts/bench-node-floor.ts bundled into the benchmark's folder (once); its path. */
let floorFile: string | undefined;
function nodeFloor(): string {
    if (floorFile) return floorFile;
    const file = path.join(ws.dir, "node-floor.js");
    fs.writeFileSync(file, bundle(path.join(__dirname, "bench-node-floor.ts"), false).text);
    return (floorFile = file);
}
const AUTH = "Basic " + Buffer.from(`${USER}:${PASS}`).toString("base64");
const MB = 2 ** 20;
const ws = new BenchWorkspace("bench-gateway-");

/** Core sets: X alone on core 1, the rest on core 0 (pinned runs); every core otherwise. */
const X_CORE = "1";
const REST_CORE = "0";
const ALL_CORES = `0-${Math.max(1, os.cpus().length - 1)}`;

/** Moves a running process (all its threads) to `cores`. */
function pin(pid: number, cores: string): void {
    spawnSync("taskset", ["-a", "-p", "-c", cores, String(pid)], { stdio: "ignore" });
}

/** wrk against `port` (benchWrk) for SECONDS unless told, with the benchmarks' credentials when `auth`. */
function wrk(
    port: number,
    targetUrl: string,
    connections: number,
    opts: { seconds?: number; auth?: boolean; cores?: string } = {},
): { requests: number; rps: number; p50Ms: number; p99Ms: number } {
    return benchWrk(ws.dir, port, targetUrl, connections, {
        seconds: opts.seconds ?? SECONDS,
        auth: opts.auth ? AUTH : undefined,
        cores: opts.cores,
    });
}

/**
 * New tunnels: `concurrency` loops of connect, CONNECT, read 200, close, for `seconds`. Returns the tunnels
 * established and the time each took to its 200 (ms).
 */
async function connectLoops(
    port: number,
    target: string,
    concurrency: number,
    seconds: number,
    auth?: string,
): Promise<{ ok: number; perSecond: number; ms: number[] }> {
    const deadline = Date.now() + seconds * 1000;
    let ok = 0;
    const ms: number[] = [];
    const request = `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ""}\r\n`;
    const one = () =>
        new Promise<boolean>((resolve) => {
            const t0 = performance.now();
            const s = net.connect(port, HOST);
            let buf = "";
            const timer = setTimeout(() => (s.destroy(), resolve(false)), 5000);
            s.on("error", () => (clearTimeout(timer), resolve(false)));
            s.on("data", (c) => {
                buf += c.toString("latin1");
                if (buf.includes("\r\n\r\n")) {
                    clearTimeout(timer);
                    s.destroy();
                    const good = /^HTTP\/1\.[01] 200/.test(buf);
                    if (good) ms.push(performance.now() - t0);
                    resolve(good);
                }
            });
            s.write(request);
        });
    const loop = async () => {
        while (Date.now() < deadline) if (await one()) ok++;
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    return { ok, perSecond: ok / seconds, ms };
}

/** Bytes echoed back through `tunnels` established tunnels to an echoing upstream, and the MB/s. */
async function tunnelThroughput(
    port: number,
    target: string,
    tunnels: number,
    auth?: string,
): Promise<{ bytes: number; mbps: number }> {
    const chunk = Buffer.alloc(64 * 1024, 7);
    let received = 0;
    const run = () =>
        new Promise<void>((resolve) => {
            const s = net.connect(port, HOST);
            let established = false;
            let head = "";
            const stopAt = Date.now() + SECONDS * 1000;
            const finish = () => (s.destroy(), resolve());
            const timer = setTimeout(finish, SECONDS * 1000 + 5000);
            s.on("error", () => (clearTimeout(timer), resolve()));
            const pump = () => {
                while (Date.now() < stopAt) if (!s.write(chunk)) return;
                clearTimeout(timer);
                finish();
            };
            s.on("drain", pump);
            s.on("data", (c: Buffer) => {
                if (!established) {
                    head += c.toString("latin1");
                    if (!head.includes("\r\n\r\n")) return;
                    established = /^HTTP\/1\.[01] 200/.test(head);
                    if (!established) return finish();
                    pump();
                    return;
                }
                received += c.length;
            });
            s.write(
                `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ""}\r\n`,
            );
        });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: tunnels }, run));
    return { bytes: received, mbps: received / 1e6 / ((Date.now() - t0) / 1000) };
}

/** Resident memory of X's tree, sampled every 250 ms while `during` runs; CPU seconds X spent over it. */
class Meter {
    readonly rss: number[] = [];
    constructor(readonly pid: number) {}

    async phase<T>(during: () => Promise<T> | T): Promise<{ result: T; cpu: number }> {
        const before = usageOf(this.pid).cpuSeconds;
        const sampler = setInterval(() => this.rss.push(usageOf(this.pid).rssBytes), 250);
        try {
            const result = await during();
            return { result, cpu: usageOf(this.pid).cpuSeconds - before };
        } finally {
            clearInterval(sampler);
            this.rss.push(usageOf(this.pid).rssBytes);
        }
    }

    /** Peak: the highest sample or the kernel's high-water mark of the root process. */
    peakMb(): number {
        return Math.max(peakRssBytes(this.pid), ...this.rss) / MB;
    }
}

export interface Row {
    name: string;
    http50: number;
    http500: number;
    connects: number;
    mbps: number;
    /** The bare TCP relay's MB/s measured right before X's (same tunnels, same echo), and X's MB/s over it. */
    relayMbps: number;
    relayCpuGb: number;
    vsRelay: number;
    /** CPU seconds per 10,000 plain-HTTP requests (50 connections), per 10,000 new tunnels, per GB relayed. */
    cpuHttp: number;
    cpuTunnel: number;
    cpuGb: number;
    rssPeakMb: number;
    rssSteadyMb: number;
    /** Latency added over client -> simulator, one at a time: plain HTTP and tunnel setup, p50 and p99 (ms). */
    httpAdd: [number, number];
    tunnelAdd: [number, number];
    pinnedHttp: number;
    pinnedConnects: number;
    pinnedCpuHttp: number;
    pinnedCpuTunnel: number;
    /** X's CPU over the pinned plain-HTTP and tunnel phases, as a percentage of its one core. */
    pinnedBusy: [number, number];
}

type Launch = (upstream: number, cores?: string, nodeFlags?: string[]) => Promise<Started>;

interface Topology {
    script: string;
    targetPort: number;
    simPort: number;
    echoPort: number;
    sims: ChildProcess[];
    /** Our gateway with metrics on or off, from `script` (the shipped loader by default), under node with `nodeFlags`. */
    gateway: (metrics: boolean, script?: string, nodeFlags?: readonly string[]) => Launch;
}

async function topology(): Promise<Topology> {
    // The program as the pods get it: the loader runs the gateway's own bundle, the simulators the full one.
    const script = writeProgram(path.join(ws.dir, "program"));
    // Target: plain-HTTP destination.
    const targetPort = await freePort();
    // It also answers as a terminal pool for the pinned phases.
    const target = ws.start("node", [writeBenchTarget(ws.dir, targetPort)]);
    // Vendor simulators: one forwarding to the target (HTTP and CONNECT rate), one echoing (tunnel throughput).
    const simPort = await freePort();
    const echoPort = await freePort();
    const sim = ws.start("node", [
        script,
        "vendor-sim",
        "--config",
        ws.writeJson("sim.json", benchSimConfig("fwd", simPort, await freePort(), `${HOST}:${targetPort}`)),
    ]);
    const echo = ws.start("node", [
        script,
        "vendor-sim",
        "--config",
        ws.writeJson("echo.json", benchSimConfig("echo", echoPort, await freePort())),
    ]);
    await Promise.all([waitListening(targetPort), waitListening(simPort), waitListening(echoPort)]);

    const gateway =
        (metrics: boolean, gwScript = script, gwFlags: readonly string[] = nodeFlags("gateway")): Launch =>
        (upstream, cores, extraFlags = []) =>
            startBenchGateway(ws, {
                script: gwScript,
                upstream,
                probeDestination: `${HOST}:${targetPort}`,
                metrics,
                nodeFlags: [...gwFlags, ...extraFlags],
                cores,
            });
    return { script, targetPort, simPort, echoPort, sims: [target, sim, echo], gateway };
}

/** The median of each figure over repeated rows of one X (peak RSS: the highest). */
export function medianRow(runs: Row[]): Row {
    const med = (f: (r: Row) => number) => percentile(runs.map(f), 50);
    const pairMed = (f: (r: Row) => [number, number]): [number, number] => [med((r) => f(r)[0]), med((r) => f(r)[1])];
    return {
        name: runs[0].name,
        http50: med((r) => r.http50),
        http500: med((r) => r.http500),
        connects: med((r) => r.connects),
        mbps: med((r) => r.mbps),
        relayMbps: med((r) => r.relayMbps),
        relayCpuGb: med((r) => r.relayCpuGb),
        vsRelay: med((r) => r.vsRelay),
        cpuHttp: med((r) => r.cpuHttp),
        cpuTunnel: med((r) => r.cpuTunnel),
        cpuGb: med((r) => r.cpuGb),
        rssPeakMb: Math.max(...runs.map((r) => r.rssPeakMb)),
        rssSteadyMb: med((r) => r.rssSteadyMb),
        httpAdd: pairMed((r) => r.httpAdd),
        tunnelAdd: pairMed((r) => r.tunnelAdd),
        pinnedHttp: med((r) => r.pinnedHttp),
        pinnedConnects: med((r) => r.pinnedConnects),
        pinnedCpuHttp: med((r) => r.pinnedCpuHttp),
        pinnedCpuTunnel: med((r) => r.pinnedCpuTunnel),
        pinnedBusy: [med((r) => r.pinnedBusy[0]), med((r) => r.pinnedBusy[1])],
    };
}

/** The gateway's node flags: `--node-flags` when given, else the ones its pods run with. */
function gatewayFlagsOf(flags: TableFlags): string[] {
    return flags["node-flags"]?.split(/\s+/).filter(Boolean) ?? [...nodeFlags("gateway")];
}

interface TableFlags {
    write?: boolean;
    only?: string;
    repeat?: string;
    "node-flags"?: string;
}

async function table(flags: TableFlags): Promise<BenchResult> {
    const repeat = Number(flags.repeat ?? "1");
    if (!Number.isInteger(repeat) || repeat < 1 || repeat > 10)
        throw new Error(`--repeat must be a whole number from 1 to 10, got ${flags.repeat}`);
    if (flags.write && (flags.only !== undefined || flags["node-flags"] !== undefined))
        throw new Error("--write records the shipped gateway beside every other proxy: drop --only and --node-flags");
    const gatewayFlags = gatewayFlagsOf(flags);
    const loadBefore = loadAverage();
    const topo = await topology();
    const { targetPort, simPort, echoPort } = topo;
    const targetUrl = `http://${HOST}:${targetPort}/bytes/100`;
    const tunnelTarget = `${HOST}:${targetPort}`;

    // Bare TCP relay: the tunnel-throughput baseline (no parsing; the client's CONNECT goes to the sim as is). It
    // runs right before each X's throughput phase: on a shared machine the MB/s of one loopback relay moved from 220
    // to 650 between runs, so X is compared with the relay of its own round, not with one measured minutes apart.
    const relayPort = await freePort();
    const relayJs = path.join(ws.dir, "relay.js");
    fs.writeFileSync(
        relayJs,
        `const net=require("net");net.createServer(c=>{const u=net.connect(${echoPort},"${HOST}");c.pipe(u);u.pipe(c);c.on("error",()=>u.destroy());u.on("error",()=>c.destroy())}).listen(${relayPort},"${HOST}")`,
    );
    const relay = ws.start("node", [relayJs]);
    await waitListening(relayPort);
    const rm = new Meter(relay.pid!);

    // What X adds is measured against the simulator alone, one request (tunnel) at a time.
    process.stderr.write("simulator alone (latency baseline)...\n");
    const baseHttp = wrk(simPort, targetUrl, 1, { seconds: LATENCY_SECONDS, auth: true });
    const baseTunnel = await connectLoops(simPort, tunnelTarget, 1, LATENCY_SECONDS, AUTH);
    const base = {
        http: [baseHttp.p50Ms, baseHttp.p99Ms],
        tunnel: [percentile(baseTunnel.ms, 50), percentile(baseTunnel.ms, 99)],
    };

    const measure = async (name: string, launch: Launch, authForClient?: string): Promise<Row> => {
        process.stderr.write(`${name}...\n`);
        const fwd = await launch(simPort);
        const m = new Meter(fwd.proc.pid!);
        const h50 = await m.phase(() => wrk(fwd.port, targetUrl, 50));
        const h500 = await m.phase(() => wrk(fwd.port, targetUrl, 500));
        const conn = await m.phase(() => connectLoops(fwd.port, tunnelTarget, 50, SECONDS, authForClient));
        const latHttp = wrk(fwd.port, targetUrl, 1, { seconds: LATENCY_SECONDS });
        const latTunnel = await connectLoops(fwd.port, tunnelTarget, 1, LATENCY_SECONDS, authForClient);
        fwd.proc.kill("SIGKILL");
        const relayed = await rm.phase(() => tunnelThroughput(relayPort, tunnelTarget, 4, AUTH));
        const echo = await launch(echoPort);
        const e = new Meter(echo.proc.pid!);
        const thr = await e.phase(() => tunnelThroughput(echo.port, tunnelTarget, 4, authForClient));
        echo.proc.kill("SIGKILL");

        // Pinned: X alone on one core, the load tools, the target and this process on the other. X's pool is the
        // target itself, answering as a terminal pool: through a simulator (a proxy as costly as X) the other core
        // ran out first and the rate showed its ceiling, not X's.
        const pinned = await launch(targetPort, X_CORE);
        for (const p of [...topo.sims, process]) pin(p.pid!, REST_CORE);
        const pm = new Meter(pinned.proc.pid!);
        const ph = await pm.phase(() => wrk(pinned.port, targetUrl, 50, { cores: REST_CORE }));
        const pc = await pm.phase(() => connectLoops(pinned.port, tunnelTarget, 50, SECONDS, authForClient));
        for (const p of [...topo.sims, process]) pin(p.pid!, ALL_CORES);
        pinned.proc.kill("SIGKILL");

        const samples = [...m.rss].sort((a, b) => a - b);
        return {
            name,
            http50: h50.result.rps,
            http500: h500.result.rps,
            connects: conn.result.perSecond,
            mbps: thr.result.mbps,
            relayMbps: relayed.result.mbps,
            relayCpuGb: cpuPer(relayed.cpu, 2 * relayed.result.bytes, 1e9),
            vsRelay: thr.result.mbps / relayed.result.mbps,
            cpuHttp: cpuPer(h50.cpu, h50.result.requests, 10_000),
            cpuTunnel: cpuPer(conn.cpu, conn.result.ok, 10_000),
            // Each echoed byte crosses X twice (out and back).
            cpuGb: cpuPer(thr.cpu, 2 * thr.result.bytes, 1e9),
            rssPeakMb: Math.max(m.peakMb(), e.peakMb(), pm.peakMb()),
            rssSteadyMb: percentile(samples, 50) / MB,
            httpAdd: [latHttp.p50Ms - base.http[0], latHttp.p99Ms - base.http[1]],
            tunnelAdd: [percentile(latTunnel.ms, 50) - base.tunnel[0], percentile(latTunnel.ms, 99) - base.tunnel[1]],
            pinnedHttp: ph.result.rps,
            pinnedConnects: pc.result.perSecond,
            pinnedCpuHttp: cpuPer(ph.cpu, ph.result.requests, 10_000),
            pinnedCpuTunnel: cpuPer(pc.cpu, pc.result.ok, 10_000),
            // How busy X's one core was: near 100% means X was the bottleneck, lower means the other core was.
            pinnedBusy: [(100 * ph.cpu) / SECONDS, (100 * pc.cpu) / SECONDS],
        };
    };

    const proxies: [string, Launch][] = [
        ["proxy-monitor gateway", topo.gateway(true, undefined, gatewayFlags)],
        ["proxy-monitor gateway, metrics off", topo.gateway(false, undefined, gatewayFlags)],
        ["proxy-chain 2.7", (upstream, cores) => startBenchProxyChain(ws, upstream, cores)],
        [
            "tinyproxy " + (spawnSync("tinyproxy", ["-v"], { encoding: "utf8" }).stdout.trim().split(" ")[1] ?? ""),
            async (upstream, cores) => {
                const port = await freePort();
                const conf = path.join(ws.dir, `tp-${port}.conf`);
                fs.writeFileSync(
                    conf,
                    [
                        `Port ${port}`,
                        `Listen ${HOST}`,
                        "Timeout 30",
                        "MaxClients 2000",
                        `Allow ${HOST}`,
                        "LogLevel Critical",
                        `Upstream http ${USER}:${PASS}@${HOST}:${upstream}`,
                        "",
                    ].join("\n"),
                );
                return startListening(ws, port, "tinyproxy", ["-d", "-c", conf], cores);
            },
        ],
        [
            NODE_FLOOR,
            async (upstream, cores) => {
                const port = await freePort();
                return startListening(
                    ws,
                    port,
                    "node",
                    [nodeFloor(), String(port), String(upstream), `${USER}:${PASS}`],
                    cores,
                );
            },
        ],
    ];
    // A name given whole picks that proxy alone ("proxy-monitor gateway" is also part of the metrics-off row's name).
    const chosen =
        flags.only === undefined
            ? proxies
            : proxies.some(([name]) => name === flags.only)
              ? proxies.filter(([name]) => name === flags.only)
              : proxies.filter(([name]) => name.includes(flags.only!));
    if (chosen.length === 0) throw new Error(`--only ${flags.only}: no proxy's name contains it`);
    // Interleaved (every X once, then again), so that a change in the machine's load affects each X alike.
    const runs = new Map<string, Row[]>(chosen.map(([name]) => [name, []]));
    for (let i = 0; i < repeat; i++)
        for (const [name, launch] of chosen) runs.get(name)!.push(await measure(name, launch));
    const rows = [...runs.values()].map(medianRow);

    relay.kill("SIGKILL");
    // Every relay run, for its row: the median MB/s and CPU per GB.
    const relayRuns = [...runs.values()].flat();
    const relayMbps = percentile(
        relayRuns.map((r) => r.relayMbps),
        50,
    );
    const relayCpuGb = percentile(
        relayRuns.map((r) => r.relayCpuGb),
        50,
    );

    const cpu = os.cpus()[0]?.model ?? "unknown";
    const fmt = (n: number) =>
        !Number.isFinite(n)
            ? "n/a"
            : Math.abs(n) >= 100
              ? Math.round(n).toLocaleString("en-US")
              : Math.abs(n) >= 1
                ? n.toFixed(1)
                : n.toFixed(3);
    const pair = (p: [number, number]) => `${fmt(p[0])} / ${fmt(p[1])}`;
    const lines = [
        `Measured ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC by \`npm run bench:gateway\` on ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, gateway flags \`${gatewayFlags.join(" ") || "none"}\`; ${SECONDS} s per phase${repeat > 1 ? `, every proxy measured ${repeat} times interleaved, the median of each figure (peak RSS: the highest)` : ""}, latency ${LATENCY_SECONDS} s one at a time; load average (1, 5, 15 min) ${loadBefore} before, ${loadAverage()} after (the machine is shared).`,
        "",
        "Cost: X's process tree, CPU seconds per unit of work (utime + stime from /proc over each phase), and memory:",
        "",
        "| X | CPU s per 10k HTTP requests | CPU s per 10k new tunnels | CPU s per GB relayed | peak RSS MB | steady RSS MB | added HTTP latency p50 / p99 ms | added tunnel setup p50 / p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ...rows.map(
            (r) =>
                `| ${r.name} | ${fmt(r.cpuHttp)} | ${fmt(r.cpuTunnel)} | ${fmt(r.cpuGb)} | ${fmt(r.rssPeakMb)} | ${fmt(r.rssSteadyMb)} | ${pair(r.httpAdd)} | ${pair(r.tunnelAdd)} |`,
        ),
        `| bare TCP relay (baseline) | | | ${fmt(relayCpuGb)} | | | | |`,
        "",
        "Rates: everything sharing both cores, then X pinned to one core and the rest to the other (X's core well below 100% busy means the other core, not X, set the pinned rate):",
        "",
        "| X | HTTP req/s, 50 conns | HTTP req/s, 500 conns | new CONNECT tunnels/s | tunnel MB/s (4 tunnels; over the relay run just before) | pinned: HTTP req/s, 50 conns | pinned: new tunnels/s | pinned: CPU s per 10k HTTP / 10k tunnels | pinned: X's core busy, HTTP / tunnels |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ...rows.map(
            (r) =>
                `| ${r.name} | ${fmt(r.http50)} | ${fmt(r.http500)} | ${fmt(r.connects)} | ${fmt(r.mbps)} (${fmt(r.vsRelay)}x the relay) | ${fmt(r.pinnedHttp)} | ${fmt(r.pinnedConnects)} | ${fmt(r.pinnedCpuHttp)} / ${fmt(r.pinnedCpuTunnel)} | ${fmt(r.pinnedBusy[0])}% / ${fmt(r.pinnedBusy[1])}% |`,
        ),
        `| bare TCP relay (baseline) | | | | ${fmt(relayMbps)} | | | | |`,
    ];
    const row = (prefix: string) => rows.find((r) => r.name.startsWith(prefix));
    const gw = row("proxy-monitor gateway");
    const off = row("proxy-monitor gateway, metrics off");
    const pc = row("proxy-chain");
    const tp = row("tinyproxy");
    const goals = new Goals();
    const skipped: string[] = [];
    /** A goal over the rows it names; with `--only`, one whose rows were not measured is listed as not run. */
    const goal = <R extends (Row | undefined)[]>(
        text: string,
        needed: R,
        add: (...r: { [K in keyof R]: Row }) => void,
    ) => {
        if (needed.every((r) => r !== undefined)) add(...(needed as { [K in keyof R]: Row }));
        else skipped.push(`- ${text}: not run (--only ${flags.only}).`);
    };
    // CPU per unit is judged where X has a core to itself (the pinned phases): in the shared ones X's cost swings with
    // what the simulator and wrk do on the same cores (the same gateway, metrics on or off, differed by 40% in one
    // run). The shared figure is printed beside it.
    goal("CPU per plain-HTTP request at most half proxy-chain's", [gw, pc], (gw, pc) =>
        goals.add(
            `CPU per plain-HTTP request at most half proxy-chain's, pinned: ${fmt(gw.pinnedCpuHttp)} vs ${fmt(pc.pinnedCpuHttp)} s per 10k (${fmt(gw.pinnedCpuHttp / pc.pinnedCpuHttp)}x; shared cores ${fmt(gw.cpuHttp)} vs ${fmt(pc.cpuHttp)}, ${fmt(gw.cpuHttp / pc.cpuHttp)}x)`,
            { "gateway CPU per request": gw.pinnedCpuHttp, "proxy-chain CPU per request": pc.pinnedCpuHttp },
            () => gw.pinnedCpuHttp <= 0.5 * pc.pinnedCpuHttp,
        ),
    );
    goal("CPU per new CONNECT tunnel at most tinyproxy's", [gw, tp], (gw, tp) =>
        goals.add(
            `CPU per new CONNECT tunnel at most tinyproxy's, pinned: ${fmt(gw.pinnedCpuTunnel)} vs ${fmt(tp.pinnedCpuTunnel)} s per 10k (${fmt(gw.pinnedCpuTunnel / tp.pinnedCpuTunnel)}x; shared cores ${fmt(gw.cpuTunnel)} vs ${fmt(tp.cpuTunnel)}, ${fmt(gw.cpuTunnel / tp.cpuTunnel)}x)`,
            { "gateway CPU per tunnel": gw.pinnedCpuTunnel, "tinyproxy CPU per tunnel": tp.pinnedCpuTunnel },
            () => gw.pinnedCpuTunnel <= tp.pinnedCpuTunnel,
        ),
    );
    goal("pinned to one core, plain HTTP at least 2x proxy-chain's", [gw, pc], (gw, pc) =>
        goals.add(
            `pinned to one core, plain HTTP at least 2x proxy-chain's: ${fmt(gw.pinnedHttp / pc.pinnedHttp)}x (X's core ${fmt(gw.pinnedBusy[0])}% and ${fmt(pc.pinnedBusy[0])}% busy)`,
            { "gateway pinned req/s": gw.pinnedHttp, "proxy-chain pinned req/s": pc.pinnedHttp },
            () => gw.pinnedHttp >= 2 * pc.pinnedHttp,
        ),
    );
    goal("pinned to one core, new tunnels at least tinyproxy's", [gw, tp], (gw, tp) =>
        goals.add(
            `pinned to one core, new tunnels at least tinyproxy's: ${fmt(gw.pinnedConnects)} vs ${fmt(tp.pinnedConnects)}/s (X's core ${fmt(gw.pinnedBusy[1])}% and ${fmt(tp.pinnedBusy[1])}% busy)`,
            { "gateway pinned tunnels/s": gw.pinnedConnects, "tinyproxy pinned tunnels/s": tp.pinnedConnects },
            () => gw.pinnedConnects >= tp.pinnedConnects,
        ),
    );
    goal("tunnel throughput at least 0.9x a bare TCP relay", [gw], (gw) =>
        goals.add(
            `tunnel throughput at least 0.9x a bare TCP relay: ${fmt(gw.vsRelay)}x (median over rounds of X's MB/s over the relay's, measured right before it: ${fmt(gw.mbps)} vs ${fmt(gw.relayMbps)} MB/s)`,
            { "gateway MB/s": gw.mbps, "relay MB/s": gw.relayMbps, "gateway over relay": gw.vsRelay },
            () => gw.vsRelay >= 0.9,
        ),
    );
    goal("gateway peak RSS under the benchmark at most 100 MB", [gw], (gw) =>
        goals.add(
            `gateway peak RSS under the benchmark at most 100 MB: ${fmt(gw.rssPeakMb)} MB`,
            { "gateway peak RSS": gw.rssPeakMb },
            () => gw.rssPeakMb <= 100,
        ),
    );
    goal("metrics cost under 10%", [gw, off], (gw, off) =>
        goals.add(
            `metrics cost under 10% (CPU per plain-HTTP request pinned, metrics on vs off): ${fmt((gw.pinnedCpuHttp / off.pinnedCpuHttp - 1) * 100)}% (shared cores ${fmt((gw.cpuHttp / off.cpuHttp - 1) * 100)}%)`,
            { "CPU per request with metrics": gw.pinnedCpuHttp, "CPU per request without metrics": off.pinnedCpuHttp },
            () => gw.pinnedCpuHttp <= 1.1 * off.pinnedCpuHttp,
        ),
    );
    lines.push("", "Goals:", ...goals.lines, ...skipped);
    return { table: lines.join("\n"), exitCode: goals.exitCode, write: flags.write };
}

/**
 * The line ranges of an unminified esbuild bundle by source file (esbuild marks each with `// <path>`), so a
 * profile's bundle line names the file it came from.
 */
function sourceFiles(bundle: string): { line: number; file: string }[] {
    const out: { line: number; file: string }[] = [];
    bundle.split("\n").forEach((l, i) => {
        const m = /^\/\/ ((?:proxy|catalog|node_modules)\/\S+\.[jt]s)$/.exec(l);
        if (m) out.push({ line: i + 1, file: m[1].replace(/^node_modules\//, "") });
    });
    return out;
}

async function profile(flags: TableFlags): Promise<BenchResult> {
    if (flags.write && flags["node-flags"] !== undefined)
        throw new Error("--write records the shipped gateway: drop --node-flags");
    const loadBefore = loadAverage();
    const topo = await topology();
    // The gateway's bundle unminified, so that the profile names functions (minifying renames, it does not reorder work).
    const readable = path.join(ws.dir, "proxy-readable.js");
    const built = bundle(ENTRIES.gateway, false).text;
    fs.writeFileSync(readable, built);
    const files = sourceFiles(built);
    const fileOf = (name: string) => {
        const m = /\(proxy-readable\.js:([0-9]+)\)$/.exec(name);
        if (!m) return name;
        const line = Number(m[1]);
        let file = "?";
        for (const f of files) if (f.line <= line) file = f.file;
        return name.replace(/\(proxy-readable\.js:[0-9]+\)$/, `(${file})`);
    };
    const targetUrl = `http://${HOST}:${topo.targetPort}/bytes/100`;
    const tunnelTarget = `${HOST}:${topo.targetPort}`;
    const sections: string[] = [];
    const runs: [string, (port: number) => Promise<number>][] = [
        ["plain HTTP (wrk, 50 connections)", async (port) => wrk(port, targetUrl, 50).requests],
        ["new CONNECT tunnels (50 loops)", async (port) => (await connectLoops(port, tunnelTarget, 50, SECONDS)).ok],
    ];
    let unmeasured = 0;
    for (const [what, drive] of runs) {
        process.stderr.write(`profiling ${what}...\n`);
        const dir = fs.mkdtempSync(path.join(ws.dir, "prof-"));
        const gw = await topo.gateway(true, readable, gatewayFlagsOf(flags))(topo.simPort, undefined, [
            "--cpu-prof",
            `--cpu-prof-dir=${dir}`,
        ]);
        const units = await drive(gw.port);
        const exited = new Promise((r) => gw.proc.once("exit", r));
        gw.proc.kill("SIGINT");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 15_000))]);
        const file = fs.readdirSync(dir).find((f) => f.endsWith(".cpuprofile"));
        if (!file || !(units > 0)) {
            unmeasured++;
            sections.push(`${what}: no profile was written or nothing was done (${units} units).`);
            continue;
        }
        const prof = JSON.parse(fs.readFileSync(path.join(dir, file), "utf8")) as CpuProfile;
        const top = topSelfTime(prof, 15);
        sections.push(
            `${what}, ${Math.round(units).toLocaleString("en-US")} done in ${SECONDS} s, the 15 functions with the most self time:`,
            "",
            "| function (source) | self ms | share of sampled time |",
            "| --- | ---: | ---: |",
            ...top.map(
                (t) =>
                    `| ${fileOf(t.name).replace(/\|/g, "\\|")} | ${Math.round(t.ms)} | ${(t.share * 100).toFixed(1)}% |`,
            ),
            "",
        );
    }
    const text = [
        `Profiled ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC by \`npm run bench:gateway -- --profile\` (node --cpu-prof on the unminified bundle), Node ${process.version}, gateway flags \`${gatewayFlagsOf(flags).join(" ") || "none"}\`; load average ${loadBefore} before, ${loadAverage()} after.`,
        "",
        ...sections,
    ].join("\n");
    if (flags.write && unmeasured === 0) writeBenchSection("gateway-profile", text);
    return { table: text, exitCode: unmeasured > 0 ? 1 : 0, write: false };
}

async function main(): Promise<BenchResult> {
    const flags = parseCommand(BENCH_GATEWAY, process.argv.slice(2));
    requireTools("bench:gateway");
    ws.open();
    return flags.profile ? profile(flags) : table(flags);
}

runBench("bench:gateway", "gateway-bench", main, ws.children, () => ws.dir);
