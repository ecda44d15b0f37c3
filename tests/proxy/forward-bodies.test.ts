/**
 * The plain-HTTP path's bodies, both ways, on real loopback sockets (crawler -> gateway -> vendor-sim ->
 * destination): request bodies with a length and chunked, streamed and counted; the body limit on a chunked body;
 * responses without a length (chunked), without a body (HEAD, 204, 304), and a kept-alive crawler connection that
 * goes on after each of them.
 */
import { expect } from "chai";
import * as http from "http";
import * as net from "net";
import {
    HOST,
    cleanupAfterEach,
    gatewayConfig,
    metricValue,
    rawExchange,
    scrape,
    startGateway,
    waitFor,
    startSim,
} from "./helpers";

/**
 * A destination: `/echo` answers the request body (with its length), `/chunked/N` N bytes in three chunks without a
 * length, `/status/N` an empty answer with status N, `/head` a length but (to HEAD) no body, `/big/N` N bytes
 * written as fast as the socket takes them.
 */
async function startDestination() {
    const server = http.createServer((req, res) => {
        const url = req.url ?? "";
        const n = Number(/\/([0-9]+)$/.exec(url)?.[1] ?? 0);
        if (url === "/echo") {
            const chunks: Buffer[] = [];
            req.on("data", (c: Buffer) => chunks.push(c));
            req.on("end", () => {
                const body = Buffer.concat(chunks);
                res.writeHead(200, {
                    "content-length": body.length,
                    "x-request-te": req.headers["transfer-encoding"] ?? "",
                });
                res.end(body);
            });
            return;
        }
        if (url.startsWith("/chunked/")) {
            res.writeHead(200, { "content-type": "application/octet-stream" });
            const third = Math.floor(n / 3);
            res.write(Buffer.alloc(third, 97));
            setTimeout(() => {
                res.write(Buffer.alloc(third, 98));
                res.end(Buffer.alloc(n - 2 * third, 99));
            }, 20);
            return;
        }
        if (url.startsWith("/status/")) {
            res.writeHead(n, n === 304 ? { etag: '"x"' } : {});
            res.end();
            return;
        }
        if (url.startsWith("/big/")) {
            res.writeHead(200, { "content-length": n });
            let left = n;
            const pump = () => {
                while (left > 0) {
                    const c = Buffer.alloc(Math.min(left, 65_536), 101);
                    left -= c.length;
                    if (!res.write(c)) return void res.once("drain", pump);
                }
                res.end();
            };
            pump();
            return;
        }
        if (url === "/head") {
            res.writeHead(200, { "content-length": 1234 });
            res.end(req.method === "HEAD" ? undefined : Buffer.alloc(1234, 100));
            return;
        }
        res.writeHead(404, { "content-length": 0 });
        res.end();
    });
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    return { server, port: (server.address() as net.AddressInfo).port };
}

/**
 * One request through the proxy on `agent`; `chunks` are written one by one (no length: chunked), `gapMs` apart
 * (the body is then still arriving when the gateway starts sending it on).
 */
function send(
    port: number,
    agent: http.Agent,
    method: string,
    url: string,
    body?: { length?: boolean; chunks: Buffer[]; gapMs?: number },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; socket: net.Socket }> {
    return new Promise((resolve, reject) => {
        const headers: http.OutgoingHttpHeaders = { host: new URL(url).host };
        if (body?.length) headers["content-length"] = body.chunks.reduce((s, c) => s + c.length, 0);
        const req = http.request({ host: HOST, port, method, path: url, headers, agent }, (res) => {
            const got: Buffer[] = [];
            res.on("data", (c: Buffer) => got.push(c));
            res.on("end", () =>
                resolve({
                    status: res.statusCode ?? 0,
                    headers: res.headers,
                    body: Buffer.concat(got),
                    socket: req.socket as net.Socket,
                }),
            );
        });
        req.setTimeout(5000, () => req.destroy(new Error("timeout")));
        req.on("error", reject);
        const chunks = [...(body?.chunks ?? [])];
        const next = () => {
            const c = chunks.shift();
            if (c === undefined) {
                req.end();
                return;
            }
            req.write(c);
            if (body?.gapMs) setTimeout(next, body.gapMs);
            else next();
        };
        next();
    });
}

describe("plain HTTP: request and response bodies through the gateway", function () {
    this.timeout(20_000);
    const { track } = cleanupAfterEach();

    async function topology(maxBodyBytes = 1_000_000) {
        const dest = await startDestination();
        track(dest.server);
        const sim = await startSim("p1", { forward: `${HOST}:${dest.port}` });
        track(sim.sim);
        const base = gatewayConfig([{ name: "p1", port: sim.port }]);
        const g = await startGateway({ ...base, limits: { ...base.limits, maxBodyBytes } });
        track(g.gw);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        track({ close: (cb: () => void) => (agent.destroy(), cb()) });
        return { dest, agent, ...g };
    }

    it("a request body with a length reaches the destination whole, counted egress byte for byte", async () => {
        const { port, metricsPort, dest, agent } = await topology();
        const body = Buffer.alloc(50_000, 120);
        const r = await send(port, agent, "POST", `http://tracked.test:${dest.port}/echo`, {
            length: true,
            chunks: [body],
        });
        expect(r.status).to.equal(200);
        expect(r.body.equals(body)).to.equal(true);
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { direction: "egress", pool: "p1" })).to.equal(50_000);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { direction: "ingress", pool: "p1" })).to.equal(50_000);
    });

    it("a chunked request body still arriving is streamed on chunked and arrives whole", async () => {
        const { port, metricsPort, dest, agent } = await topology();
        const chunks = [Buffer.alloc(7000, 49), Buffer.alloc(9000, 50), Buffer.alloc(11, 51)];
        const r = await send(port, agent, "PUT", `http://tracked.test:${dest.port}/echo`, { chunks, gapMs: 30 });
        expect(r.status).to.equal(200);
        expect(r.body.equals(Buffer.concat(chunks))).to.equal(true);
        expect(r.headers["x-request-te"], "sent on chunked").to.equal("chunked");
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { direction: "egress", pool: "p1" })).to.equal(16_011);
    });

    it("a chunked request body over maxBodyBytes is answered 413 by the gateway", async () => {
        const { port, metricsPort, dest } = await topology(10_000);
        const chunk = (n: number) => `${n.toString(16)}\r\n${"z".repeat(n)}\r\n`;
        const raw = await rawExchange(
            port,
            `POST http://tracked.test:${dest.port}/echo HTTP/1.1\r\nHost: tracked.test:${dest.port}\r\nTransfer-Encoding: chunked\r\n\r\n` +
                chunk(8000) +
                chunk(8000) +
                chunk(8000) +
                "0\r\n\r\n",
            5000,
            /\r\n\r\n/,
        );
        expect(raw).to.match(/^HTTP\/1\.1 413 /);
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_requests_total", { pool: "none", status: "413" })).to.equal(1);
    });

    it("a chunked response (no length) is relayed whole, and the crawler's connection is reused after it", async () => {
        const { port, metricsPort, dest, agent } = await topology();
        const a = await send(port, agent, "GET", `http://tracked.test:${dest.port}/chunked/30001`);
        expect(a.status).to.equal(200);
        expect(a.body.length).to.equal(30_001);
        expect(a.body.subarray(29_990).toString()).to.equal("c".repeat(11));
        const b = await send(port, agent, "GET", `http://tracked.test:${dest.port}/chunked/5`);
        expect(b.body.length).to.equal(5);
        expect(b.socket, "same kept-alive crawler connection").to.equal(a.socket);
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { direction: "ingress", pool: "p1" })).to.equal(30_006);
    });

    it("HEAD, 204 and 304 answers carry no body, keep their length header, and the connection goes on", async () => {
        const { port, dest, agent } = await topology();
        const head = await send(port, agent, "HEAD", `http://tracked.test:${dest.port}/head`);
        expect(head.status).to.equal(200);
        expect(head.headers["content-length"]).to.equal("1234");
        expect(head.body.length).to.equal(0);
        const noContent = await send(port, agent, "GET", `http://tracked.test:${dest.port}/status/204`);
        expect(noContent.status).to.equal(204);
        expect(noContent.body.length).to.equal(0);
        const notModified = await send(port, agent, "GET", `http://tracked.test:${dest.port}/status/304`);
        expect(notModified.status).to.equal(304);
        expect(notModified.headers.etag).to.equal('"x"');
        const get = await send(port, agent, "GET", `http://tracked.test:${dest.port}/head`);
        expect(get.body.length).to.equal(1234);
        expect(get.socket).to.equal(head.socket);
    });

    it("a crawler that leaves before any answer aborts the request on the pool's connection", async () => {
        // A pool that reads requests and never answers; connections that carried a GET are tracked (the gateway's
        // probe CONNECTs are not).
        const open = new Set<net.Socket>();
        let requests = 0;
        const pool = net.createServer((c) => {
            c.on("data", (d: Buffer) => {
                if (!d.toString("latin1").startsWith("GET ")) return;
                requests++;
                open.add(c);
            });
            c.on("error", () => undefined);
            c.once("close", () => open.delete(c));
        });
        await new Promise<void>((r) => pool.listen(0, HOST, () => r()));
        track({ close: (cb: () => void) => (open.forEach((c) => c.destroy()), pool.close(cb)) });
        const g = await startGateway(gatewayConfig([{ name: "p1", port: (pool.address() as net.AddressInfo).port }]));
        track(g.gw);
        const s = net.connect(g.port, HOST);
        s.on("error", () => undefined);
        s.write("GET http://tracked.test/x HTTP/1.1\r\nHost: tracked.test\r\n\r\n");
        await waitFor(() => requests === 1, 3000, "the request on the pool's connection");
        expect(g.gw.open).to.equal(1);
        s.destroy();
        await waitFor(() => open.size === 0 && g.gw.open === 0, 3000, "the pool's connection closed");
        expect(requests).to.equal(1);
    });

    it("a large answer to a crawler that reads slowly arrives whole (backpressure, no buffering it all)", async () => {
        const { port, metricsPort, dest } = await topology();
        const size = 8 * 2 ** 20;
        const got = await new Promise<number>((resolve, reject) => {
            const req = http.request(
                { host: HOST, port, path: `http://tracked.test:${dest.port}/big/${size}`, agent: false },
                (res) => {
                    let n = 0;
                    res.pause();
                    // Reads nothing for 300 ms, while the gateway's socket to the crawler fills up.
                    setTimeout(() => res.resume(), 300);
                    res.on("data", (c: Buffer) => (n += c.length));
                    res.on("end", () => resolve(n));
                    res.on("error", reject);
                },
            );
            req.setTimeout(10_000, () => req.destroy(new Error("timeout")));
            req.on("error", reject);
            req.end();
        });
        expect(got).to.equal(size);
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { direction: "ingress", pool: "p1" })).to.equal(size);
    });
});

/**
 * A pool written byte by byte: `answer(request, connection)` gives the bytes to send for each request head that
 * arrives (undefined: send nothing), `trickle` sends them one byte per turn of the event loop. Requests and the
 * connections that carried them are recorded (the gateway's probe CONNECTs are not).
 */
async function rawPool(
    answer: (request: string, conn: number) => { bytes?: string; close?: boolean },
    trickle = false,
): Promise<{ server: net.Server; port: number; requests: { head: string; conn: number }[] }> {
    const requests: { head: string; conn: number }[] = [];
    let conns = 0;
    const sockets = new Set<net.Socket>();
    const server = net.createServer((c) => {
        const conn = ++conns;
        sockets.add(c);
        c.on("error", () => undefined);
        c.on("close", () => sockets.delete(c));
        let buf = "";
        c.on("data", (d: Buffer) => {
            buf += d.toString("latin1");
            // Bounded: each pass removes one whole head.
            for (let end = buf.indexOf("\r\n\r\n"); end >= 0; end = buf.indexOf("\r\n\r\n")) {
                const head = buf.slice(0, end);
                buf = "";
                if (head.startsWith("CONNECT ")) return void c.end("HTTP/1.1 200 OK\r\n\r\n");
                requests.push({ head, conn });
                const a = answer(head, conn);
                const out = Buffer.from(a.bytes ?? "", "latin1");
                const finish = () => {
                    if (a.close) c.destroy();
                };
                if (!trickle) {
                    c.write(out);
                    finish();
                    continue;
                }
                let i = 0;
                const next = () => {
                    if (c.destroyed) return;
                    if (i >= out.length) {
                        finish();
                        return;
                    }
                    c.write(out.subarray(i, ++i));
                    setImmediate(next);
                };
                next();
            }
        });
    });
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    const close = server.close.bind(server);
    server.close = (cb?: (err?: Error) => void) => {
        sockets.forEach((s) => s.destroy());
        return close(cb);
    };
    return { server, port: (server.address() as net.AddressInfo).port, requests };
}

describe("plain HTTP: the pool's connection as the gateway reads and reuses it (a raw pool on loopback)", function () {
    this.timeout(20_000);
    const { track } = cleanupAfterEach();

    async function through(pool: Awaited<ReturnType<typeof rawPool>>) {
        track(pool.server);
        const g = await startGateway(gatewayConfig([{ name: "p1", port: pool.port }]));
        track(g.gw);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        track({ close: (cb: () => void) => (agent.destroy(), cb()) });
        return { ...g, agent };
    }

    it("an answer sent a byte at a time, chunked with extensions and trailers, arrives whole; the connection goes on", async () => {
        const pool = await rawPool(
            (head) =>
                head.startsWith("GET ")
                    ? {
                          bytes:
                              "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-A: 1\r\nX-A: 2\r\n\r\n" +
                              "5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nX-Trailer: t\r\n\r\n",
                      }
                    : {},
            true,
        );
        const { port, agent } = await through(pool);
        for (const path of ["/a", "/b"]) {
            const r = await send(port, agent, "GET", `http://tracked.test${path}`);
            expect(r.status).to.equal(200);
            expect(r.body.toString()).to.equal("hello, world");
            expect(r.headers["x-a"]).to.equal("1, 2");
        }
        // One pool connection carried both, with our keep-alive and credentials.
        expect(pool.requests.map((q) => q.conn)).to.deep.equal([1, 1].map(() => pool.requests[0].conn));
        expect(pool.requests[1].head).to.match(/^GET http:\/\/tracked\.test\/b HTTP\/1\.1\r\n/);
        expect(pool.requests[1].head).to.match(/\r\nconnection: keep-alive(\r\n|$)/i);
        expect(pool.requests[1].head).to.match(/\r\nProxy-Authorization: Basic /);
    });

    it("a pool connection whose request body an early answer cut short carries no other request", async () => {
        const pool = await rawPool((head) =>
            head.startsWith("POST ")
                ? { bytes: "HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n" }
                : { bytes: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok" },
        );
        const { port } = await through(pool);
        // The body is still arriving (20 chunks, 20 ms apart) when the pool answers.
        const posted = await send(port, new http.Agent(), "POST", "http://tracked.test/upload", {
            length: true,
            chunks: Array.from({ length: 20 }, () => Buffer.alloc(1000, 120)),
            gapMs: 20,
        });
        expect(posted.status).to.equal(413);
        const got = await send(port, new http.Agent(), "GET", "http://tracked.test/next");
        expect(got.status).to.equal(200);
        expect(got.body.toString()).to.equal("ok");
        const [post, get] = pool.requests;
        expect(post.head).to.match(/^POST /);
        // The rest of the POST body would have been read as the GET's request: a new connection instead.
        expect(get.conn).to.not.equal(post.conn);
    });

    it("a fresh pool connection that sends part of a head and closes is the vendor's reset, not a dropped kept-alive one", async () => {
        const pool = await rawPool(() => ({ bytes: "HTTP/1.1 200 OK\r\nContent-Le", close: true }));
        const { port, metricsPort, agent } = await through(pool);
        const r = await send(port, agent, "GET", "http://tracked.test/x");
        expect(r.status).to.equal(502);
        const m = await scrape(metricsPort);
        expect(metricValue(m, "proxy_upstream_failures_total", { pool: "p1", reason: "reset" })).to.equal(1);
        expect(metricValue(m, "proxy_upstream_stale_retries_total", { pool: "p1" })).to.equal(0);
        // Sent once: a connection that never carried an answer is not retried as a stale one.
        expect(pool.requests).to.have.length(1);
    });
});
