/**
 * A pool that drops SYNs. The plain-HTTP hop's connections to it (proxy/gateway/upstream-http.ts): one that does not
 * connect is given up after its connect timeout, with undici's error, and its slot is free again; without that it
 * would hang until the kernel gives up (about two minutes) and requests would queue behind it. Through the gateway, a
 * CONNECT and a GET to it are answered 504 at connectMs and charged to the pool as timeouts.
 *
 * A pool that drops SYNs, without privileges: a listener with a backlog of 1 in a child process whose event loop is
 * blocked, so it never accepts; once two connections fill its accept queue, Linux drops further SYNs and connect()
 * stays in progress.
 */
import { expect } from "chai";
import { ChildProcess, spawn } from "child_process";
import * as net from "net";
import { UpstreamConnections, UpstreamError, UpstreamHandler } from "../../proxy/gateway/upstream-http";
import { HOST, gatewayConfig, metricValue, rawExchange, scrape, startGateway } from "./helpers";

/** Starts the never-accepting listener (blocked for `ms`), fills its accept queue; its port, child and sockets. */
async function silentPool(ms: number): Promise<{ port: number; child: ChildProcess; fillers: net.Socket[] }> {
    const child = spawn(
        process.execPath,
        [
            "-e",
            `const s=require("net").createServer().listen({port:0,host:"${HOST}",backlog:1},()=>{process.stdout.write(s.address().port+"\\n");Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,${ms});process.exit(0)})`,
        ],
        { stdio: ["ignore", "pipe", "inherit"] },
    );
    const port = await new Promise<number>((resolve) => child.stdout!.once("data", (d) => resolve(Number(String(d)))));
    const fillers: net.Socket[] = [];
    // The accept queue holds backlog + 1 connections; connect until one stays in progress.
    for (let i = 0; i < 8; i++) {
        const s = net.connect(port, HOST);
        s.on("error", () => {});
        fillers.push(s);
        const connected = await new Promise<boolean>((resolve) => {
            const t = setTimeout(() => resolve(false), 300);
            s.once("connect", () => (clearTimeout(t), resolve(true)));
        });
        if (!connected) return { port, child, fillers };
    }
    throw new Error("the listener kept accepting connections: no SYN is dropped here");
}

/** A handler that records the error the exchange ends with (no other call is expected). */
function recorder(): { handler: UpstreamHandler; error: () => UpstreamError | undefined; calls: string[] } {
    let error: UpstreamError | undefined;
    const calls: string[] = [];
    const handler: UpstreamHandler = {
        onConnect: () => calls.push("connect"),
        onBodySent: () => calls.push("bodySent"),
        onHeaders: () => (calls.push("headers"), true),
        onData: () => (calls.push("data"), true),
        onComplete: () => calls.push("complete"),
        onError: (e) => (calls.push("error"), (error = e)),
    };
    return { handler, error: () => error, calls };
}

const request = { method: "GET", path: "http://dest.test/", headers: ["host", "dest.test"], body: null, fresh: false };

describe("a pool that drops SYNs", function () {
    this.timeout(15_000);
    let pool: Awaited<ReturnType<typeof silentPool>> | undefined;
    let conns: UpstreamConnections | undefined;
    afterEach(() => {
        conns?.destroy();
        pool?.fillers.forEach((s) => s.destroy());
        pool?.child.kill("SIGKILL");
    });

    it("gives a connection up after its connect timeout, with undici's error, and frees its slot", async () => {
        pool = await silentPool(10_000);
        conns = new UpstreamConnections(HOST, pool.port, { connections: 1, keepAliveMs: 1000, connectTimeoutMs: 300 });
        const first = recorder();
        const t0 = Date.now();
        conns.dispatch(request, first.handler);
        // The gateway sweeps every few hundred ms; here every 50 ms, until the exchange ends or 3 s pass.
        const sweepUntil = async (done: () => boolean) => {
            const deadline = Date.now() + 3000;
            while (!done() && Date.now() < deadline) {
                await new Promise((r) => setTimeout(r, 50));
                conns!.sweep(Date.now());
            }
        };
        await sweepUntil(() => first.error() !== undefined);
        expect(first.error()?.code, "the first exchange's error").to.equal("UND_ERR_CONNECT_TIMEOUT");
        expect(Date.now() - t0).to.be.within(300, 2000);
        expect(first.calls).to.deep.equal(["error"]);
        // One connection at most: had the first stayed, this one would wait in the queue behind it.
        const second = recorder();
        conns.dispatch(request, second.handler);
        await sweepUntil(() => second.error() !== undefined);
        expect(second.error()?.code, "the second exchange's error").to.equal("UND_ERR_CONNECT_TIMEOUT");
    });

    it("through the gateway: a CONNECT and a GET to that pool are answered at connectMs, charged as timeouts", async () => {
        pool = await silentPool(10_000);
        const g = await startGateway(
            gatewayConfig([{ name: "p1", port: pool.port }], {
                timeouts: { connectMs: 400, idleMs: 5000, totalMs: 10_000 },
            }),
        );
        try {
            for (const head of [
                "CONNECT dest.test:443 HTTP/1.1\r\nHost: dest.test:443\r\n\r\n",
                "GET http://dest.test/ HTTP/1.1\r\nHost: dest.test\r\n\r\n",
            ]) {
                const t0 = Date.now();
                const answer = await rawExchange(g.port, head);
                expect(answer, head).to.match(/^HTTP\/1\.1 504 /);
                expect(Date.now() - t0, head).to.be.within(350, 1500);
            }
            const m = await scrape(g.metricsPort);
            expect(metricValue(m, "proxy_upstream_failures_total", { pool: "p1", reason: "timeout" })).to.equal(2);
        } finally {
            await g.gw.stop();
        }
    });
});
