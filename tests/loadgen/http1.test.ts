import { expect } from "chai";
import * as http from "http";
import * as net from "net";
import { ResponseReader } from "../../proxy/common/http1-reader";
import { Http1Agent } from "../../proxy/generate/http1";
import { HOST } from "../proxy/helpers";

/** The bytes a real server sends for one request (`raw` written as is), read until the server closes or `ms`. */
async function recorded(
    handler: http.RequestListener,
    request = "GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
    ms = 2000,
): Promise<Buffer> {
    const server = http.createServer(handler);
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    try {
        return await new Promise<Buffer>((resolve, reject) => {
            const chunks: Buffer[] = [];
            const s = net.connect((server.address() as net.AddressInfo).port, HOST, () => s.write(request));
            const timer = setTimeout(() => s.destroy(), ms);
            s.on("data", (c: Buffer) => chunks.push(c));
            s.on("error", reject);
            s.on("close", () => {
                clearTimeout(timer);
                resolve(Buffer.concat(chunks));
            });
        });
    } finally {
        server.closeAllConnections();
        await new Promise((r) => server.close(r));
    }
}

/** Feeds `bytes` to a reader in pieces of `step` bytes (0: all at once), then the end of the connection. */
function read(bytes: Buffer, step: number, head = false) {
    const r = new ResponseReader();
    r.reset(head);
    let left = -1;
    const size = step || bytes.length;
    for (let i = 0; i < bytes.length && left < 0; i += size) {
        // Each piece is copied into a larger, dirty buffer, as the agent's reused read buffer holds it.
        const piece = bytes.subarray(i, Math.min(bytes.length, i + size));
        const dirty = Buffer.alloc(piece.length + 64, "\r\n\r\nHTTP/1.1 200 OK\r\n\r\n");
        piece.copy(dirty);
        left = r.feed(dirty, 0, piece.length);
        if (left >= 0) left += bytes.length - Math.min(bytes.length, i + size);
    }
    const complete = left >= 0 || r.eof();
    return { complete, left, status: r.status, bytes: r.bytes, keepAlive: r.keepAlive, refused: r.refused };
}

/** The same response read whole, byte by byte, and in 7-byte pieces must give the same result. */
function readEveryWay(bytes: Buffer, head = false) {
    const whole = read(bytes, 0, head);
    expect(read(bytes, 1, head), "byte by byte").to.deep.equal(whole);
    expect(read(bytes, 7, head), "in 7-byte pieces").to.deep.equal(whole);
    return whole;
}

describe("load generator: HTTP/1.1 response reader", () => {
    it("reads a chunked body with extensions and trailers, split anywhere", async () => {
        const raw = Buffer.from(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n" +
                '5;name=value\r\nhello\r\n1A ; quoted="a;b"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nx-sum: 31\r\nx-more: yes\r\n\r\n',
            "latin1",
        );
        expect(readEveryWay(raw)).to.deep.equal({
            complete: true,
            left: 0,
            status: 200,
            bytes: 31,
            keepAlive: true,
            refused: false,
        });
        // And Node's own chunked encoder, with trailers and many chunks.
        const node = await recorded((_req, res) => {
            res.writeHead(200, { trailer: "x-t" });
            for (let i = 0; i < 50; i++) res.write(Buffer.alloc(100 + i, 120));
            res.addTrailers({ "x-t": "1" });
            res.end();
        });
        expect(node.toString("latin1")).to.match(/transfer-encoding: chunked/i);
        const r = readEveryWay(node);
        expect(r).to.include({ complete: true, status: 200, bytes: 50 * 100 + (49 * 50) / 2, keepAlive: false });
    });

    it("reads content-length 0, 204, 304 and HEAD answers as bodiless, and skips 1xx heads", async () => {
        const zero = await recorded((_req, res) => res.writeHead(200, { "content-length": 0 }).end());
        expect(readEveryWay(zero)).to.include({ complete: true, status: 200, bytes: 0 });
        const noContent = Buffer.from("HTTP/1.1 204 No Content\r\nx: y\r\n\r\n", "latin1");
        expect(readEveryWay(noContent)).to.include({ complete: true, left: 0, status: 204, bytes: 0, keepAlive: true });
        const notModified = Buffer.from("HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n", "latin1");
        expect(readEveryWay(notModified)).to.include({ complete: true, left: 0, status: 304, bytes: 0 });
        const head = await recorded(
            (_req, res) => res.writeHead(200, { "content-length": 5000 }).end(),
            "HEAD / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        );
        expect(readEveryWay(head, true)).to.include({ complete: true, left: 0, status: 200, bytes: 0 });
        const interim = await recorded((_req, res) => {
            res.writeContinue();
            res.writeEarlyHints({ link: "</a.css>; rel=preload" });
            res.writeHead(201, { "content-length": 3 }).end("abc");
        }, "POST / HTTP/1.1\r\nhost: x\r\nexpect: 100-continue\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        expect(interim.toString("latin1")).to.match(
            /^(HTTP\/1\.1 100 Continue\r\n\r\n)+HTTP\/1\.1 103 Early Hints\r\n[^]*\r\n\r\nHTTP\/1\.1 201/,
        );
        expect(readEveryWay(interim)).to.include({ complete: true, status: 201, bytes: 3 });
    });

    it("reads a close-delimited body to the end of the connection, and an HTTP/1.0 answer as not reusable", () => {
        const raw = Buffer.from("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + "z".repeat(3000), "latin1");
        const r = readEveryWay(raw);
        expect(r).to.include({ complete: true, left: -1, status: 200, bytes: 3000, keepAlive: false });
        const old = Buffer.from("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", "latin1");
        expect(readEveryWay(old)).to.include({ complete: true, left: 0, bytes: 2, keepAlive: false });
        const oldKept = Buffer.from(
            "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
            "latin1",
        );
        expect(readEveryWay(oldKept)).to.include({ keepAlive: true });
    });

    it("does not complete a body cut short, and counts what follows a response", () => {
        const cut = Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345", "latin1");
        expect(readEveryWay(cut)).to.include({ complete: false, bytes: 5 });
        const cutChunk = Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "latin1");
        expect(readEveryWay(cutChunk)).to.include({ complete: false, bytes: 3 });
        const extra = Buffer.from("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1", "latin1");
        expect(read(extra, 0)).to.include({ complete: true, left: 8 });
    });

    it("sees the gateway's refusal header and Connection: close, in any case", () => {
        const raw = Buffer.from(
            "HTTP/1.1 403 Forbidden\r\nX-Proxy-Monitor-Refusal: destination\r\nCONNECTION: Close\r\ncontent-length: 0\r\n\r\n",
            "latin1",
        );
        expect(readEveryWay(raw)).to.include({ complete: true, status: 403, refused: true, keepAlive: false });
    });

    it("rejects malformed responses", () => {
        for (const bad of [
            "HTTP/2 200 OK\r\n\r\n",
            "HTTP/1.1 2x0 OK\r\n\r\n",
            "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
            "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokXX",
        ]) {
            expect(() => read(Buffer.from(bad, "latin1"), 0), bad).to.throw(/Parse Error/);
        }
        expect(() => read(Buffer.from("HTTP/1.1 200 OK\r\nx: " + "a".repeat(20_000), "latin1"), 1000)).to.throw(
            /larger than 16 KiB/,
        );
    });
});

describe("load generator: HTTP/1.1 connections", function () {
    this.timeout(20_000);
    let agent: Http1Agent | undefined;
    afterEach(async () => agent?.close());

    type Result = { err?: Error & { code?: string }; status: number; refused: boolean; bytes: number };
    const send = (port: number, bytes: string, head = false) =>
        new Promise<Result>((resolve) =>
            agent!
                .pool(HOST, port)
                .request(Buffer.from(bytes, "latin1"), head, (err, status, refused, n) =>
                    resolve({ err, status, refused, bytes: n }),
                ),
        );
    const GET = "GET /x HTTP/1.1\r\nhost: t\r\nconnection: keep-alive\r\n\r\n";

    /** A raw server: `onRequest` gets the socket and the request count on it; counts connections. */
    async function rawServer(onRequest: (s: net.Socket, n: number) => void) {
        let connections = 0;
        const sockets = new Set<net.Socket>();
        const server = net.createServer((s) => {
            connections++;
            sockets.add(s);
            s.on("close", () => sockets.delete(s));
            s.on("error", () => undefined);
            let n = 0;
            let buf = "";
            s.on("data", (c) => {
                buf += c.toString("latin1");
                // Bounded: each pass removes one request head.
                for (let at = buf.indexOf("\r\n\r\n"); at >= 0; at = buf.indexOf("\r\n\r\n")) {
                    buf = buf.slice(at + 4);
                    onRequest(s, ++n);
                }
            });
        });
        await new Promise<void>((r) => server.listen(0, HOST, () => r()));
        return {
            port: (server.address() as net.AddressInfo).port,
            connections: () => connections,
            stop: () => {
                for (const s of sockets) s.destroy();
                return new Promise((r) => server.close(r));
            },
        };
    }

    it("keeps a connection alive across requests and reads each answer exactly", async () => {
        agent = new Http1Agent({ connections: 4, timeoutMs: 5000, keepAliveMs: 30_000 });
        const srv = await rawServer((s, n) =>
            s.write(
                n % 2
                    ? "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
                    : "HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3;x=1\r\nabc\r\n0\r\nt: 1\r\n\r\n",
            ),
        );
        try {
            const results: Result[] = [];
            for (let i = 0; i < 6; i++) results.push(await send(srv.port, GET));
            expect(results.map((r) => [r.status, r.bytes])).to.deep.equal([
                [200, 5],
                [404, 3],
                [200, 5],
                [404, 3],
                [200, 5],
                [404, 3],
            ]);
            expect(srv.connections()).to.equal(1);
        } finally {
            await srv.stop();
        }
    });

    it("queues requests beyond its connections, and gives each the answer to its own request", async () => {
        agent = new Http1Agent({ connections: 1, timeoutMs: 5000, keepAliveMs: 30_000 });
        const srv = await rawServer((s, n) =>
            s.write(`HTTP/1.1 ${200 + n} X\r\nContent-Length: ${n}\r\n\r\n${"x".repeat(n)}`),
        );
        try {
            const results = await Promise.all([1, 2, 3, 4].map(() => send(srv.port, GET)));
            expect(results.map((r) => [r.status, r.bytes])).to.deep.equal([
                [201, 1],
                [202, 2],
                [203, 3],
                [204, 0],
            ]);
            expect(srv.connections()).to.equal(1);
        } finally {
            await srv.stop();
        }
    });

    it("surfaces a reset mid-body and a close before the answer as undici does, and a close-delimited body as complete", async () => {
        agent = new Http1Agent({ connections: 4, timeoutMs: 5000, keepAliveMs: 30_000 });
        const reset = await rawServer((s) => {
            s.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + "x".repeat(100));
            setTimeout(() => s.resetAndDestroy(), 50);
        });
        const closed = await rawServer((s) => s.end());
        const delimited = await rawServer((s) => s.end("HTTP/1.1 200 OK\r\n\r\n" + "y".repeat(70_000)));
        try {
            const r = await send(reset.port, GET);
            expect(r.err?.code).to.equal("ECONNRESET");
            const c = await send(closed.port, GET);
            expect(c.err).to.include({ code: "UND_ERR_SOCKET", message: "other side closed" });
            const d = await send(delimited.port, GET);
            expect(d).to.deep.equal({ err: undefined, status: 200, refused: false, bytes: 70_000 });
        } finally {
            await Promise.all([reset.stop(), closed.stop(), delimited.stop()]);
        }
    });

    it("drops a kept-alive connection the server closes between requests, and one the server asks to close", async () => {
        agent = new Http1Agent({ connections: 4, timeoutMs: 5000, keepAliveMs: 30_000 });
        // Answers, then closes the idle connection 50 ms later (no Keep-Alive hint).
        const srv = await rawServer((s) => {
            s.write("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
            setTimeout(() => s.end(), 50);
        });
        try {
            expect((await send(srv.port, GET)).status).to.equal(200);
            await new Promise((r) => setTimeout(r, 200));
            const second = await send(srv.port, GET);
            expect(second).to.deep.equal({ err: undefined, status: 200, refused: false, bytes: 2 });
            expect(srv.connections()).to.equal(2);
        } finally {
            await srv.stop();
        }
        const closing = await rawServer((s) =>
            s.write("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok"),
        );
        try {
            for (let i = 0; i < 3; i++) expect((await send(closing.port, GET)).status).to.equal(200);
            expect(closing.connections()).to.equal(3);
        } finally {
            await closing.stop();
        }
    });

    it("times out a missing head and a stalled body with undici's errors, and never opens more connections than allowed", async () => {
        agent = new Http1Agent({ connections: 2, timeoutMs: 300, keepAliveMs: 30_000 });
        const silent = await rawServer(() => undefined);
        const stalled = await rawServer((s) => s.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
        try {
            const started = Date.now();
            const [a, b, c] = await Promise.all([
                send(silent.port, GET),
                send(silent.port, GET),
                send(silent.port, GET),
            ]);
            expect([a, b, c].map((r) => r.err?.code)).to.deep.equal(Array(3).fill("UND_ERR_HEADERS_TIMEOUT"));
            expect(a.err?.message).to.equal("Headers Timeout Error");
            // Two connections at most: the third request waited for a place, then timed out on its own connection.
            expect(silent.connections()).to.equal(3);
            expect(Date.now() - started).to.be.within(500, 3000);
            const s = await send(stalled.port, GET);
            expect(s.err).to.include({ code: "UND_ERR_BODY_TIMEOUT", message: "Body Timeout Error" });
            // Never early, whenever in the sweep's tick the request starts (undici's timers fire late, not early).
            await agent.close();
            agent = new Http1Agent({ connections: 8, timeoutMs: 1000, keepAliveMs: 30_000 });
            const starts = [0, 60, 130, 190].map(async (delay) => {
                await new Promise((r) => setTimeout(r, delay));
                const t0 = performance.now();
                const r = await send(silent.port, GET);
                return { code: r.err?.code, ms: performance.now() - t0 };
            });
            for (const r of await Promise.all(starts)) {
                expect(r.code).to.equal("UND_ERR_HEADERS_TIMEOUT");
                expect(r.ms).to.be.within(1000, 2000);
            }
        } finally {
            await Promise.all([silent.stop(), stalled.stop()]);
        }
    });
});
