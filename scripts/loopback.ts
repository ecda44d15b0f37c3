/** Loopback helpers shared by the local pipeline and the benchmarks: every server they start binds 127.0.0.1. */
import * as net from "net";

export const HOST = "127.0.0.1";

const handedOut = new Set<number>();

/**
 * A free loopback port, never one handed out before in this process: children bind their ports later, and the kernel
 * may offer a port again while its first taker is still starting.
 */
export async function freePort(): Promise<number> {
    for (let attempt = 0; attempt < 1000; attempt++) {
        const s = net.createServer();
        await new Promise<void>((r) => s.listen(0, HOST, () => r()));
        const port = (s.address() as net.AddressInfo).port;
        await new Promise<void>((r) => s.close(() => r()));
        if (!handedOut.has(port)) {
            handedOut.add(port);
            return port;
        }
    }
    throw new Error("no free loopback port found in 1000 attempts");
}

/** Does something accept TCP connections on the loopback port now? */
export function accepts(port: number): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
        const s = net.connect(port, HOST, () => (s.destroy(), resolve(true)));
        s.on("error", () => resolve(false));
    });
}

/** Waits until something accepts TCP connections on the loopback port, polling every 50 ms for up to `ms`. */
export async function waitListening(port: number, ms = 10_000): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
        if (await accepts(port)) return;
        await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`nothing listens on ${port} after ${ms} ms`);
}
