/**
 * The gateway as the benchmarks run it: one pool (a simulator or a terminal pool on 127.0.0.1) with the benchmarks'
 * credentials in files, a policy that lets loopback destinations through, limits no benchmark reaches, and a probe
 * that stays out of the way. bench:gateway and bench:http-path write the same config from here.
 */
import * as fs from "fs";
import * as path from "path";
import { HOST } from "./loopback";

/** The credentials the benchmarks' simulators expect, and the gateway's pool sends. */
export const BENCH_USER = "bench";
export const BENCH_PASS = "bench-pass";

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
