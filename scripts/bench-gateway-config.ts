/**
 * What bench:gateway and bench:http-path both run, written from here: the destination (a 100-byte answer that also
 * serves as a terminal pool), vendor simulators with the benchmarks' credentials, the gateway as the benchmarks run
 * it (one pool on 127.0.0.1 with those credentials in files, a policy that lets loopback destinations through,
 * limits no benchmark reaches, and a probe that stays out of the way), proxy-chain, and wrk driving plain HTTP.
 */
import { ChildProcess, spawnSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { parseWrk } from "./bench-cost";
import { BenchWorkspace } from "./bench-doc";
import { HOST, freePort, waitListening } from "./loopback";

/** The credentials the benchmarks' simulators expect, and the gateway's pool sends. */
export const BENCH_USER = "bench";
export const BENCH_PASS = "bench-pass";

/**
 * Writes the destination's program into `tmp` (returns its path): every request gets 200 and 100 bytes (an
 * absolute-form GET too, so it answers as a terminal pool), CONNECT gets 200 and nothing after; the tunnel's socket
 * is read, so that a proxy closing it closes it here too.
 */
export function writeBenchTarget(tmp: string, port: number): string {
    const file = path.join(tmp, "target.js");
    fs.writeFileSync(
        file,
        `const http=require("http");const body=Buffer.alloc(100,97);http.createServer((q,s)=>{s.writeHead(200,{"content-length":body.length});s.end(body)}).on("connect",(q,s)=>{s.on("error",()=>{});s.on("end",()=>s.destroy());s.resume();s.write("HTTP/1.1 200 Connection Established\\r\\n\\r\\n")}).listen(${port},"${HOST}")`,
    );
    return file;
}

/** A vendor simulator's config: no latency, no errors, forwarding to `forward` (host:port) or echoing without it. */
export function benchSimConfig(pool: string, proxyPort: number, metricsPort: number, forward?: string): object {
    return {
        vendor: "bench",
        username: BENCH_USER,
        password: BENCH_PASS,
        latencyP50Ms: 0,
        latencyP95Ms: 0,
        errorRate: 0,
        pool,
        listen: { host: HOST, proxyPort, metricsPort },
        ...(forward ? { forward } : {}),
    };
}

/** Writes a program running proxy-chain on `port` with `upstream` (a simulator's port) as its pool; returns its path. */
export function writeBenchProxyChain(tmp: string, port: number, upstream: number): string {
    const file = path.join(tmp, `pc-${port}.js`);
    const lib = path.resolve(__dirname, "..", "node_modules", "proxy-chain");
    fs.writeFileSync(
        file,
        `const P=require(${JSON.stringify(lib)});new P.Server({port:${port},host:"${HOST}",verbose:false,prepareRequestFunction:()=>({upstreamProxyUrl:"http://${BENCH_USER}:${BENCH_PASS}@${HOST}:${upstream}"})}).listen()`,
    );
    return file;
}

export interface BenchGatewayConfig {
    readonly proxyPort: number;
    readonly metricsPort: number;
    /** The pool's port on 127.0.0.1. */
    readonly upstream: number;
    /** host:port the pool probe asks for. */
    readonly probeDestination: string;
    readonly metrics: boolean;
}

/** Writes the credential files and the config into a new folder under `tmp`; returns the config file's path. */
export function writeBenchGatewayConfig(tmp: string, c: BenchGatewayConfig): string {
    const dir = fs.mkdtempSync(path.join(tmp, "gw-"));
    fs.writeFileSync(path.join(dir, "u"), BENCH_USER);
    fs.writeFileSync(path.join(dir, "p"), BENCH_PASS);
    const file = path.join(dir, "config.json");
    fs.writeFileSync(
        file,
        JSON.stringify({
            vendor: "bench",
            listen: { host: HOST, proxyPort: c.proxyPort, metricsPort: c.metricsPort },
            pools: [
                {
                    name: "p",
                    host: HOST,
                    port: c.upstream,
                    weight: 1,
                    region: "x",
                    usernameFile: path.join(dir, "u"),
                    passwordFile: path.join(dir, "p"),
                },
            ],
            // The benchmarks' destinations are loopback ports, which the default policy refuses.
            destinations: { tracked: [HOST], allowed: ["*"], connectPorts: ["1-65535"], allowInternal: true },
            limits: { maxTunnels: 100_000, maxHeaderBytes: 16384, maxBodyBytes: 1e7 },
            probe: {
                intervalMs: 60_000,
                timeoutMs: 1000,
                destination: c.probeDestination,
                failuresToDown: 3,
                successesToUp: 1,
            },
            logSampleRate: 0,
            metrics: c.metrics,
        }),
    );
    return file;
}

/** A proxy started for a benchmark: its process and the port it listens on. */
export interface Started {
    readonly proc: ChildProcess;
    readonly port: number;
}

/** Starts the gateway `script` with one pool at `upstream` (on `cores` when given) and waits for it to listen. */
export async function startBenchGateway(
    ws: BenchWorkspace,
    g: {
        readonly script: string;
        readonly upstream: number;
        readonly probeDestination: string;
        readonly metrics: boolean;
        /** Node flags before the script (the pods' are nodeFlags("gateway"), proxy/loader.ts). */
        readonly nodeFlags: readonly string[];
        readonly cores?: string;
    },
): Promise<Started> {
    const port = await freePort();
    const cfg = writeBenchGatewayConfig(ws.dir, {
        proxyPort: port,
        metricsPort: await freePort(),
        upstream: g.upstream,
        probeDestination: g.probeDestination,
        metrics: g.metrics,
    });
    return startListening(ws, port, "node", [...g.nodeFlags, g.script, "gateway", "--config", cfg], g.cores);
}

/** Starts proxy-chain with `upstream` as its pool (on `cores` when given) and waits for it to listen. */
export async function startBenchProxyChain(ws: BenchWorkspace, upstream: number, cores?: string): Promise<Started> {
    const port = await freePort();
    return startListening(ws, port, "node", [writeBenchProxyChain(ws.dir, port, upstream)], cores);
}

/** Starts `cmd` with `args` (on `cores` when given) and waits until it listens on `port`. */
export async function startListening(
    ws: BenchWorkspace,
    port: number,
    cmd: string,
    args: readonly string[],
    cores?: string,
): Promise<Started> {
    const proc = ws.start(cmd, args, cores);
    await waitListening(port);
    return { proc, port };
}

/**
 * wrk against the proxy on `port` with absolute-form requests for `targetUrl` (its script written into `dir`), on
 * `cores` when given; the request count, rate and latency percentiles. Says so on stderr when wrk gave no figure or
 * some answers were not 2xx/3xx.
 */
export function benchWrk(
    dir: string,
    port: number,
    targetUrl: string,
    connections: number,
    opts: { seconds: number; auth?: string; cores?: string },
): { requests: number; rps: number; p50Ms: number; p99Ms: number } {
    const script = path.join(dir, "abs.lua");
    fs.writeFileSync(script, `wrk.path = "${targetUrl}"\n`);
    const args = [
        `-t${Math.min(2, connections)}`,
        `-c${connections}`,
        `-d${opts.seconds}s`,
        "--timeout",
        "5s",
        "--latency",
        "-s",
        script,
        ...(opts.auth ? ["-H", `Proxy-Authorization: ${opts.auth}`] : []),
        `http://${HOST}:${port}/`,
    ];
    const out = spawnSync(opts.cores ? "taskset" : "wrk", opts.cores ? ["-c", opts.cores, "wrk", ...args] : args, {
        encoding: "utf8",
        timeout: (opts.seconds + 20) * 1000,
    });
    const w = parseWrk(out.stdout ?? "");
    if (!(w.rps > 0))
        process.stderr.write(`  wrk gave no figure (exit ${out.status}): ${(out.stderr || out.stdout || "").trim()}\n`);
    const non2xx = /Non-2xx or 3xx responses: ([0-9]+)/.exec(out.stdout ?? "");
    if (non2xx) process.stderr.write(`  warning: ${non2xx[1]} non-2xx answers through port ${port}\n`);
    return w;
}
