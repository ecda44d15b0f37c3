/**
 * Tunnel timeouts (idle, total) and what they cost: they hold whatever the tunnels do, and open tunnels add no
 * timer of their own (one sweep covers every tunnel, as for plain-HTTP exchanges).
 */
import { expect } from "chai";
import * as net from "net";
import {
    HOST,
    cleanupAfterEach,
    gatewayConfig,
    metricValue,
    scrape,
    startGateway,
    startSim,
    startTarget,
} from "./helpers";

/** Opens a tunnel through the gateway to an echo pool; resolves once the 200 arrived, with the socket. */
function openTunnel(port: number, target: string): Promise<net.Socket> {
    return new Promise((resolve, reject) => {
        const s = net.connect(port, HOST);
        let head = "";
        const timer = setTimeout(() => (s.destroy(), reject(new Error("no 200 within 3 s"))), 3000);
        s.on("error", reject);
        const onData = (c: Buffer) => {
            head += c.toString("latin1");
            if (!head.includes("\r\n\r\n")) return;
            clearTimeout(timer);
            s.off("data", onData);
            if (!/^HTTP\/1\.1 200/.test(head)) return reject(new Error(head));
            resolve(s);
        };
        s.on("data", onData);
        s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    });
}

function closed(s: net.Socket, ms: number): Promise<number> {
    const t0 = Date.now();
    return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms);
        s.once("close", () => (clearTimeout(timer), resolve(Date.now() - t0)));
    });
}

const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === "Timeout").length;

describe("gateway tunnel timers", function () {
    this.timeout(20_000);
    const { track } = cleanupAfterEach();

    async function gateway(timeouts: { connectMs: number; idleMs: number; totalMs: number }) {
        const target = await startTarget();
        track(target.server);
        // No `forward`: the simulator echoes what goes through its tunnels.
        const sim = await startSim("p1");
        track(sim.sim);
        const g = await startGateway(gatewayConfig([{ name: "p1", port: sim.port }], { timeouts }));
        track(g.gw);
        return { ...g, target: `127.0.0.1:${target.port}` };
    }

    it("cuts a tunnel idle for idleMs, keeps one that is busy, and cuts that one at totalMs", async () => {
        const { port, metricsPort, target } = await gateway({ connectMs: 2000, idleMs: 400, totalMs: 1500 });
        const idle = await openTunnel(port, target);
        const busy = await openTunnel(port, target);
        busy.on("data", () => undefined);
        const ping = setInterval(() => busy.write("x"), 100);
        try {
            const idleAfter = await closed(idle, 3000);
            expect(idleAfter).to.be.within(350, 1200);
            expect(busy.destroyed, "a busy tunnel is not idle").to.equal(false);
            const busyAfter = await closed(busy, 3000);
            // Opened about idleAfter before; cut at totalMs (1500) plus at most one sweep.
            expect(idleAfter + busyAfter).to.be.within(1300, 2600);
        } finally {
            clearInterval(ping);
        }
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_upstream_failures_total", { pool: "p1", reason: "body_timeout" })).to.equal(2);
    });

    it("adds no timer per open tunnel", async () => {
        const { port, target, gw } = await gateway({ connectMs: 2000, idleMs: 10_000, totalMs: 20_000 });
        const warm = await openTunnel(port, target);
        const before = refTimers();
        const sockets = await Promise.all(Array.from({ length: 20 }, () => openTunnel(port, target)));
        try {
            expect(gw.open).to.equal(21);
            expect(refTimers() - before, "timers added by 20 open tunnels").to.be.at.most(2);
        } finally {
            for (const s of [warm, ...sockets]) s.destroy();
        }
    });
});
