/** Real-socket helpers for the proxy program's tests: all on 127.0.0.1, every wait bounded. */
import * as http from "http";
import * as net from "net";
import { EXIT_IP_DEFAULTS, GatewayFileConfig, GatewayPool, HEALTH_DEFAULTS } from "../../proxy/gateway/config";
import { Gateway } from "../../proxy/gateway/server";
import { VendorSim, VendorSimConfig, validateVendorSimConfig } from "../../proxy/vendor-sim";
import { HOST, freePort } from "../../scripts/loopback";

export { HOST, freePort };

/** A destination: `/bytes/N` answers N bytes, anything else echoes the request body; counts requests. */
export async function startTarget(): Promise<{ server: http.Server; port: number; hits: () => number }> {
    let hits = 0;
    const server = http.createServer((req, res) => {
        hits++;
        const m = /^\/bytes\/([0-9]+)/.exec(req.url ?? "");
        const chunks: Buffer[] = [];
        req.on("data", (c: Buffer) => chunks.push(c));
        req.on("end", () => {
            const body = m ? Buffer.alloc(Number(m[1]), 97) : Buffer.concat(chunks);
            res.writeHead(200, { "content-length": body.length });
            res.end(body);
        });
    });
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    return { server, port: (server.address() as net.AddressInfo).port, hits: () => hits };
}

export const CREDS = { username: "crawl", password: "s3cret-pa55" };

export async function startSim(
    pool: string,
    over: Partial<VendorSimConfig> = {},
): Promise<{ sim: VendorSim; port: number; metricsPort: number }> {
    const cfg = validateVendorSimConfig({
        vendor: "vendor-t",
        pool,
        listen: { host: HOST, proxyPort: 0, metricsPort: 0 },
        username: CREDS.username,
        password: CREDS.password,
        ...over,
    });
    const sim = new VendorSim(cfg, { processMetrics: false });
    const { proxyPort, metricsPort } = await sim.start();
    return { sim, port: proxyPort, metricsPort };
}

export function gatewayConfig(
    pools: { name: string; port: number; weight?: number }[],
    over: Partial<GatewayFileConfig> = {},
): GatewayFileConfig {
    return {
        vendor: "vendor-t",
        profile: "generic",
        responseHeaders: false,
        listen: { host: HOST, proxyPort: 0, metricsPort: 0 },
        pools: pools.map((p) => ({
            name: p.name,
            host: HOST,
            port: p.port,
            weight: p.weight ?? 1,
            region: "test",
            usernameFile: "unused",
            passwordFile: "unused",
        })),
        // Tests reach loopback destinations on any port; the defaults (tested in faults.test.ts) refuse both.
        destinations: {
            tracked: ["127.0.0.1", "tracked.test"],
            allowed: ["*"],
            connectPorts: ["1-65535"],
            allowInternal: true,
        },
        timeouts: { connectMs: 2000, idleMs: 5000, totalMs: 20_000 },
        limits: { maxTunnels: 100, maxHeaderBytes: 8192, maxBodyBytes: 1_000_000 },
        probe: {
            intervalMs: 60_000,
            timeoutMs: 1000,
            destination: "probe.test:443",
            failuresToDown: 2,
            successesToUp: 2,
        },
        health: HEALTH_DEFAULTS,
        exitIp: EXIT_IP_DEFAULTS,
        logSampleRate: 0,
        shutdownGraceMs: 1000,
        metrics: true,
        ...over,
    };
}

export async function startGateway(
    cfg: GatewayFileConfig,
    creds: (p: GatewayPool) => string = () => basic(CREDS.username, CREDS.password),
    opts: { logger?: import("../../proxy/common/log").Logger } = {},
): Promise<{ gw: Gateway; port: number; metricsPort: number }> {
    const gw = new Gateway(cfg, { credentials: creds, processMetrics: false, logger: opts.logger });
    const { proxyPort, metricsPort } = await gw.start();
    return { gw, port: proxyPort, metricsPort };
}

export function basic(user: string, pass: string): string {
    return "Basic " + Buffer.from(`${user}:${pass}`).toString("base64");
}

/** Sends raw bytes and reads until the peer closes or `until` matches, within `ms`. */
export function rawExchange(port: number, data: string | Buffer, ms = 3000, until?: RegExp): Promise<string> {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, HOST);
        let out = "";
        const timer = setTimeout(() => {
            s.destroy();
            reject(new Error(`no answer within ${ms} ms; got ${JSON.stringify(out)}`));
        }, ms);
        s.on("data", (c) => {
            out += c.toString("latin1");
            if (until && until.test(out)) {
                clearTimeout(timer);
                s.destroy();
                resolve(out);
            }
        });
        s.on("error", () => undefined);
        s.on("close", () => {
            clearTimeout(timer);
            resolve(out);
        });
        s.write(data);
    });
}

export interface TunnelResult {
    status: number;
    /** Bytes the client sent and received inside the tunnel (after the CONNECT exchange). */
    sent: number;
    received: number;
    body: string;
}

/**
 * CONNECT through the gateway to `target`, then (on 200) a plain HTTP GET of `path` inside the tunnel, reading the
 * response to its end. Counts payload bytes each way as the client sees them.
 */
export function connectAndGet(
    port: number,
    target: string,
    path = "/bytes/1000",
    ms = 5000,
    headers = "",
): Promise<TunnelResult> {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, HOST);
        let buf = Buffer.alloc(0);
        let status = 0;
        let sent = 0;
        let received = 0;
        let headEnd = -1;
        const timer = setTimeout(() => {
            s.destroy();
            reject(new Error(`tunnel to ${target} did not finish within ${ms} ms`));
        }, ms);
        const finish = () => {
            clearTimeout(timer);
            s.destroy();
            resolve({ status, sent, received, body: headEnd >= 0 ? buf.subarray(headEnd).toString() : "" });
        };
        s.on("error", () => finish());
        s.on("close", () => finish());
        s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${headers}\r\n`);
        s.on("data", (c: Buffer) => {
            if (status === 0) {
                buf = Buffer.concat([buf, c]);
                const end = buf.indexOf("\r\n\r\n");
                if (end < 0) return;
                status = Number(/^HTTP\/1\.1 ([0-9]{3})/.exec(buf.toString("latin1"))?.[1] ?? -1);
                const rest = buf.subarray(end + 4);
                buf = Buffer.alloc(0);
                if (status !== 200) return finish();
                const req = `GET ${path} HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`;
                sent += Buffer.byteLength(req);
                s.write(req);
                if (rest.length) c = rest;
                else return;
            }
            received += c.length;
            buf = Buffer.concat([buf, c]);
            if (headEnd < 0) {
                const e = buf.indexOf("\r\n\r\n");
                if (e >= 0) headEnd = e + 4;
            }
        });
    });
}

/** Absolute-form GET through the gateway; resolves with status and body length. */
export function httpViaProxy(
    port: number,
    url: string,
    ms = 5000,
    agent?: http.Agent,
): Promise<{ status: number; bytes: number }> {
    return new Promise((resolve, reject) => {
        const u = new URL(url);
        const req = http.request(
            { host: HOST, port, method: "GET", path: url, headers: { host: u.host }, agent },
            (res) => {
                let bytes = 0;
                res.on("data", (c: Buffer) => (bytes += c.length));
                res.on("end", () => resolve({ status: res.statusCode ?? 0, bytes }));
            },
        );
        req.setTimeout(ms, () => req.destroy(new Error("timeout")));
        req.on("error", reject);
        req.end();
    });
}

/** The value of one series in a Prometheus exposition (0 when absent). */
export function metricValue(text: string, name: string, labels: Record<string, string>): number {
    for (const line of text.split("\n")) {
        if (!line.startsWith(name + "{") && line.split(" ")[0] !== name) continue;
        const m = /^([^{ ]+)(\{(.*)\})? (.+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const got: Record<string, string> = {};
        for (const pair of (m[3] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) got[pair[1]] = pair[2];
        if (Object.entries(labels).every(([k, v]) => got[k] === v)) return Number(m[4]);
    }
    return 0;
}

/** Sum of a metric over every series matching the labels. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
    let sum = 0;
    for (const line of text.split("\n")) {
        const m = /^([^{ ]+)(\{(.*)\})? (.+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const got: Record<string, string> = {};
        for (const pair of (m[3] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) got[pair[1]] = pair[2];
        if (Object.entries(labels).every(([k, v]) => got[k] === v)) sum += Number(m[4]);
    }
    return sum;
}

export async function scrape(metricsPort: number): Promise<string> {
    return new Promise((resolve, reject) => {
        http.get({ host: HOST, port: metricsPort, path: "/metrics" }, (res) => {
            let t = "";
            res.on("data", (c) => (t += c));
            res.on("end", () => resolve(t));
        }).on("error", reject);
    });
}

/** Polls `check` every 20 ms until true or `ms` pass. */
export async function waitFor(check: () => boolean | Promise<boolean>, ms = 3000, what = "condition"): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (await check()) return;
        await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`timed out after ${ms} ms waiting for ${what}`);
}

export function closeServer(s: { close(cb: () => void): void; closeAllConnections?: () => void }): Promise<void> {
    s.closeAllConnections?.();
    return new Promise((r) => s.close(() => r()));
}

export type Stoppable = { stop(): Promise<unknown> } | { close(cb: () => void): void };

/**
 * Per-test cleanup for a describe block: `track(x)` registers a server or component to stop after each test (in
 * reverse order), `untrack(x)` takes one back (a test that stopped it itself). Call inside `describe`.
 */
export function cleanupAfterEach(): { track: <T extends Stoppable>(x: T) => T; untrack: (x: Stoppable) => void } {
    const list: Stoppable[] = [];
    afterEach(async () => {
        for (const x of list.splice(0).reverse()) {
            if ("stop" in x) await x.stop();
            else await closeServer(x as never);
        }
    });
    return {
        track: (x) => {
            list.push(x);
            return x;
        },
        untrack: (x) => {
            const i = list.indexOf(x);
            if (i >= 0) list.splice(i, 1);
        },
    };
}

/** Outlier ejection the fault tests can reach quickly: 10 outcomes over 10 s, half the vendor's, two destinations. */
export const TEST_EJECTION = {
    windowMs: 10_000,
    minRequests: 10,
    failureRatio: 0.5,
    minDestinations: 2,
    ejectionMs: 60_000,
    maxEjectionMs: 60_000,
};
