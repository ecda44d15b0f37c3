/**
 * What bench:gateway and bench:http-path both run, written from here: the destination (a 100-byte answer that also
 * serves as a terminal pool), vendor simulators with the benchmarks' credentials, and the gateway as the benchmarks
 * run it: one pool on 127.0.0.1 with those credentials in files, a policy that lets loopback destinations through,
 * limits no benchmark reaches, and a probe that stays out of the way.
 */
import * as fs from "fs";
import * as path from "path";
import { HOST } from "./loopback";

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
