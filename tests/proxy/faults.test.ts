/**
 * The gateway under faults and hostile input, on real loopback sockets: the vendor simulator's fault modes, and
 * Debian's tinyproxy and squid as real upstream pools. Each numbered defect of issue 12 has a test here that failed
 * on the code before the fix (named in the test titles as D1..D6). Every wait is bounded.
 */
import { expect } from "chai";
import * as http from "http";
import * as net from "net";
import { REFUSAL_HEADER } from "../../catalog/gateway";
import { GatewayFileConfig } from "../../proxy/gateway/config";
import {
    TEST_EJECTION,
    cleanupAfterEach,
    HOST,
    connectAndGet,
    gatewayConfig,
    httpViaProxy,
    metricSum,
    metricValue,
    rawExchange,
    scrape,
    startGateway,
    startSim,
    waitFor,
} from "./helpers";
import { Upstream, startSquid, startTinyproxy } from "./upstreams";

/**
 * A destination with fault routes: `/status/N` answers N; `/bytes/N` N bytes; `/stall` announces 100,000 bytes,
 * sends 1,000 and stalls; `/cut/N` announces 2N bytes, sends N and resets; `/headers` echoes the request headers
 * as JSON; `/conn-header` answers with a header named in its Connection header. Tracks open sockets.
 */
async function startDestination() {
    const sockets = new Set<net.Socket>();
    let hits = 0;
    const server = http.createServer((req, res) => {
        hits++;
        const url = req.url ?? "";
        const n = Number(/\/([0-9]+)$/.exec(url)?.[1] ?? 0);
        if (url.startsWith("/status/")) {
            res.writeHead(n, { "content-length": 2 });
            res.end("x\n");
            return;
        }
        if (url.startsWith("/bytes/")) {
            res.writeHead(200, { "content-length": n });
            res.end(Buffer.alloc(n, 97));
            return;
        }
        if (url === "/stall") {
            res.writeHead(200, { "content-length": 100_000 });
            res.write(Buffer.alloc(1000, 98));
            return;
        }
        if (url.startsWith("/cut/")) {
            res.writeHead(200, { "content-length": 2 * n });
            res.write(Buffer.alloc(n, 99), () => setTimeout(() => req.socket.destroy(), 50));
            return;
        }
        if (url === "/headers") {
            const body = JSON.stringify(req.headers);
            res.writeHead(200, { "content-length": Buffer.byteLength(body) });
            res.end(body);
            return;
        }
        if (url === "/conn-header") {
            res.writeHead(200, { "content-length": 2, connection: "X-Resp-Secret", "x-resp-secret": "1" });
            res.end("ok");
            return;
        }
        res.writeHead(404, { "content-length": 0 });
        res.end();
    });
    server.on("connection", (s: net.Socket) => {
        sockets.add(s);
        s.once("close", () => sockets.delete(s));
    });
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    return { server, port: (server.address() as net.AddressInfo).port, sockets, hits: () => hits };
}

/** A port nothing listens on (connection refused). */
async function closedPort(): Promise<number> {
    const s = net.createServer();
    await new Promise<void>((r) => s.listen(0, HOST, () => r()));
    const port = (s.address() as net.AddressInfo).port;
    await new Promise<void>((r) => s.close(() => r()));
    return port;
}

/** Absolute-form GET through the gateway, settled when the response closes (ended or cut): status and bytes. */
function fetchToClose(
    port: number,
    url: string,
    ms = 5000,
): Promise<{ status: number; bytes: number; complete: boolean }> {
    return new Promise((resolve) => {
        let status = 0;
        let bytes = 0;
        const req = http.request({ host: HOST, port, path: url, headers: { connection: "close" } }, (res) => {
            status = res.statusCode ?? 0;
            res.on("data", (c: Buffer) => (bytes += c.length));
            res.on("error", () => undefined);
            res.on("close", () => resolve({ status, bytes, complete: res.complete }));
        });
        req.setTimeout(ms, () => req.destroy());
        req.on("error", () => resolve({ status, bytes, complete: false }));
        req.end();
    });
}

function getStatus(port: number, path: string): Promise<number> {
    return new Promise((resolve, reject) =>
        http
            .get({ host: HOST, port, path }, (res) => {
                res.resume();
                resolve(res.statusCode ?? 0);
            })
            .on("error", reject),
    );
}

/** Raw request through the gateway; resolves with status, the headers block and the body. */
async function raw(port: number, request: string, ms = 3000) {
    const text = await rawExchange(port, request, ms, /\r\n\r\n[^]*$/);
    const status = Number(/^HTTP\/1\.[01] ([0-9]{3})/.exec(text)?.[1] ?? 0);
    return { status, text };
}

describe("gateway fault suite (real sockets: vendor simulator, tinyproxy, squid)", function () {
    this.timeout(30_000);
    const { track } = cleanupAfterEach();

    async function withSims(n: number, over: Partial<GatewayFileConfig> = {}, sim = {}) {
        const dest = await startDestination();
        track(dest.server);
        const sims = [];
        for (let i = 0; i < n; i++) {
            const s = await startSim(`p${i + 1}`, { forward: `${HOST}:${dest.port}`, ...sim });
            track(s.sim);
            sims.push(s);
        }
        const g = await startGateway(
            gatewayConfig(
                sims.map((s, i) => ({ name: `p${i + 1}`, port: s.port })),
                over,
            ),
        );
        track(g.gw);
        return { dest, sims, ...g };
    }

    async function withUpstream(up: Upstream, over: Partial<GatewayFileConfig> = {}) {
        track(up);
        const dest = await startDestination();
        track(dest.server);
        const g = await startGateway(gatewayConfig([{ name: "real", port: up.port }], over));
        track(g.gw);
        return { dest, ...g };
    }

    describe("D1: only the vendor's faults count against a pool", () => {
        it("D1: a destination's own 503 and 500 over plain HTTP never eject the only pool, and are charged to the destination", async () => {
            const { port, metricsPort, dest } = await withSims(1);
            for (let i = 0; i < 12; i++) {
                const s = i % 2 ? 503 : 500;
                expect((await httpViaProxy(port, `http://127.0.0.1:${dest.port}/status/${s}`)).status).to.equal(s);
            }
            expect((await httpViaProxy(port, `http://127.0.0.1:${dest.port}/bytes/3`)).status).to.equal(200);
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_pool_health", { pool: "p1" })).to.equal(1);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "destination" })).to.equal(12);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "vendor" })).to.equal(0);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "none" })).to.equal(1);
            expect(await getStatus(metricsPort, "/readyz")).to.equal(200);
        });

        it("D1: CONNECTs to a port the vendor cannot reach (tinyproxy's 500 'Unable to connect') never eject the pool", async () => {
            const { port, metricsPort, dest } = await withUpstream(await startTinyproxy());
            const shut = await closedPort();
            for (let i = 0; i < 8; i++) expect((await connectAndGet(port, `127.0.0.1:${shut}`)).status).to.equal(500);
            expect((await connectAndGet(port, `127.0.0.1:${dest.port}`, "/bytes/10")).status).to.equal(200);
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_pool_health", { pool: "real" })).to.equal(1);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "real", fault: "destination" })).to.equal(8);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "real", fault: "vendor" })).to.equal(0);
        });

        it("D1: CONNECTs squid cannot complete (503 ERR_CONNECT_FAIL) are the destination's; squid tunnels and forwards", async () => {
            const { port, metricsPort, dest } = await withUpstream(await startSquid());
            const shut = await closedPort();
            for (let i = 0; i < 6; i++) expect((await connectAndGet(port, `127.0.0.1:${shut}`)).status).to.equal(503);
            const t = await connectAndGet(port, `127.0.0.1:${dest.port}`, "/bytes/2048");
            expect(t.status).to.equal(200);
            expect(t.body.length).to.equal(2048);
            expect(await httpViaProxy(port, `http://127.0.0.1:${dest.port}/bytes/777`)).to.deep.equal({
                status: 200,
                bytes: 777,
            });
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_pool_health", { pool: "real" })).to.equal(1);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "real", fault: "destination" })).to.equal(6);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "real", fault: "vendor" })).to.equal(0);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "real", fault: "none" })).to.equal(2);
        });

        it("D1: the vendor simulator's 'destination unreachable' answers (Proxy-Status) never eject a pool", async () => {
            const { port, metricsPort } = await withSims(1, {}, { errorRate: 1, errorMix: { unreachable: 1 } });
            for (let i = 0; i < 10; i++) expect((await connectAndGet(port, "x.test:443")).status).to.equal(502);
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_pool_health", { pool: "p1" })).to.equal(1);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "destination" })).to.equal(10);
        });

        it("pre-creates the none/vendor/destination outcome series of every pool, and the gateway's, at 0", async () => {
            const { metricsPort } = await withSims(2);
            const m = await scrape(metricsPort);
            for (const pool of ["p1", "p2"])
                for (const fault of ["none", "vendor", "destination"])
                    expect(m).to.contain(
                        `proxy_pool_outcomes_total{vendor="vendor-t",pool="${pool}",fault="${fault}"} 0`,
                    );
            expect(m).to.contain('proxy_pool_outcomes_total{vendor="vendor-t",pool="none",fault="gateway"} 0');
        });

        it("D1: the vendor's own errors eject a pool only past the failure ratio, volume and destination count", async () => {
            const { port, metricsPort, sims } = await withSims(2, { health: TEST_EJECTION });
            sims[0].sim.setErrors(1, "503");
            // One destination, many requests: never enough to eject (it could be that destination).
            for (let i = 0; i < 20; i++) await connectAndGet(port, "one.test:443");
            let m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_pool_health", { pool: "p1" })).to.equal(1);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "vendor" })).to.be.at.least(1);
            // A second destination: the pool is ejected; crawlers still get 200 (retried on p2).
            for (let i = 0; i < 20; i++) await connectAndGet(port, "two.test:443");
            m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_pool_health", { pool: "p1" })).to.equal(0);
            expect(metricValue(m, "proxy_pool_health", { pool: "p2" })).to.equal(1);
            expect(metricSum(m, "proxy_requests_total", { status: "200" })).to.equal(40);
        });

        it("D1: a pool killed mid-traffic is ejected and restored with no client error beyond the in-flight ones", async () => {
            const probe = {
                intervalMs: 100,
                timeoutMs: 300,
                destination: "probe.test:443",
                failuresToDown: 2,
                successesToUp: 2,
            };
            const { port, metricsPort, sims, dest } = await withSims(2, { probe });
            const statuses: number[] = [];
            let stop = false;
            const loop = async () => {
                let i = 0;
                while (!stop) {
                    const r =
                        i++ % 2
                            ? (await connectAndGet(port, `d${i % 3}.test:443`, "/bytes/10")).status
                            : (await fetchToClose(port, `http://d${i % 3}.test:${dest.port}/bytes/10`)).status;
                    statuses.push(r);
                }
            };
            const loops = [loop(), loop(), loop()];
            await new Promise((r) => setTimeout(r, 300));
            sims[0].sim.setOutage(60);
            await waitFor(
                async () => metricValue(await scrape(metricsPort), "proxy_pool_health", { pool: "p1" }) === 0,
                5000,
                "p1 ejected",
            );
            await new Promise((r) => setTimeout(r, 300));
            sims[0].sim.setOutage(0);
            await waitFor(
                async () => metricValue(await scrape(metricsPort), "proxy_pool_health", { pool: "p1" }) === 1,
                5000,
                "p1 restored",
            );
            await new Promise((r) => setTimeout(r, 300));
            stop = true;
            await Promise.all(loops);
            const errors = statuses.filter((s) => s !== 200).length;
            expect(statuses.length).to.be.greaterThan(30);
            // In flight when the outage cut the pool's open connections: at most one per loop.
            expect(errors).to.be.at.most(3);
            expect(
                metricSum(await scrape(metricsPort), "proxy_requests_total", { pool: "p1", status: "200" }),
            ).to.be.greaterThan(0);
        });

        it("D1/D6: when every pool is down, /readyz stays ready, traffic still goes to the pools (panic mode, in a metric), and the vendor's 407 reaches the crawler", async () => {
            const probe = {
                intervalMs: 50,
                timeoutMs: 300,
                destination: "probe.test:443",
                failuresToDown: 1,
                successesToUp: 1,
            };
            const dest = await startDestination();
            track(dest.server);
            const sim = await startSim("p1", { forward: `${HOST}:${dest.port}` });
            track(sim.sim);
            const g = await startGateway(
                gatewayConfig([{ name: "p1", port: sim.port }], { probe }),
                () => "Basic " + Buffer.from("crawl:wrong").toString("base64"),
            );
            track(g.gw);
            await waitFor(
                async () => metricValue(await scrape(g.metricsPort), "proxy_pool_health", { pool: "p1" }) === 0,
                3000,
                "p1 down",
            );
            expect((await connectAndGet(g.port, "x.test:443")).status).to.equal(407);
            expect(await getStatus(g.metricsPort, "/readyz")).to.equal(200);
            const m = await scrape(g.metricsPort);
            expect(metricValue(m, "proxy_pool_panic", {})).to.equal(1);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "vendor" })).to.be.at.least(1);
            expect(metricSum(m, "proxy_requests_total", { pool: "none" })).to.equal(0);
        });
    });

    describe("D2: keep-alive reuse never invents a vendor error", () => {
        it("D2: a request on a reused socket the pool has dropped is retried once on a fresh connection, not counted", async () => {
            const { port, metricsPort, dest } = await withSims(1, {}, { oneRequestPerConnection: true });
            const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
            try {
                for (let i = 0; i < 6; i++)
                    expect(
                        await httpViaProxy(port, `http://127.0.0.1:${dest.port}/bytes/5`, 3000, agent),
                    ).to.deep.equal({
                        status: 200,
                        bytes: 5,
                    });
            } finally {
                agent.destroy();
            }
            const m = await scrape(metricsPort);
            expect(metricSum(m, "proxy_upstream_failures_total", { pool: "p1" })).to.equal(0);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "vendor" })).to.equal(0);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "none" })).to.equal(6);
            // Every second request meets the connection the previous one left behind (retried on a fresh one).
            expect(metricValue(m, "proxy_upstream_stale_retries_total", { pool: "p1" })).to.be.at.least(2);
        });

        it("D2: concurrent plain HTTP through tinyproxy (closes after each answer): no 502, no failure, no flap", async () => {
            const { port, metricsPort, dest } = await withUpstream(await startTinyproxy());
            const agent = new http.Agent({ keepAlive: true, maxSockets: 10 });
            const statuses: number[] = [];
            try {
                await Promise.all(
                    Array.from({ length: 10 }, async () => {
                        for (let i = 0; i < 30; i++)
                            statuses.push(
                                (await httpViaProxy(port, `http://127.0.0.1:${dest.port}/bytes/100`, 5000, agent))
                                    .status,
                            );
                    }),
                );
            } finally {
                agent.destroy();
            }
            expect(statuses.filter((s) => s !== 200)).to.deep.equal([]);
            const m = await scrape(metricsPort);
            expect(metricSum(m, "proxy_upstream_failures_total", { pool: "real" })).to.equal(0);
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "real", fault: "vendor" })).to.equal(0);
            expect(metricValue(m, "proxy_pool_health", { pool: "real" })).to.equal(1);
        });
    });

    describe("D3/D4: destination policy, safe by default", () => {
        it("D3: the forwarded request line is rebuilt from the parsed URL: '?@' cannot reach 127.0.0.1 through tinyproxy", async () => {
            const { port, dest, metricsPort } = await withUpstream(await startTinyproxy(), {
                destinations: {
                    tracked: [],
                    allowed: ["*.example.test"],
                    connectPorts: ["443", "80"],
                    allowInternal: false,
                },
            });
            const r = await raw(
                port,
                `GET http://a.example.test?@127.0.0.1:${dest.port}/bytes/5 HTTP/1.1\r\nHost: a.example.test\r\nConnection: close\r\n\r\n`,
            );
            expect(r.status).to.equal(403);
            expect(r.text.toLowerCase()).to.contain(`${REFUSAL_HEADER}: ambiguous-url`);
            expect(dest.hits()).to.equal(0);
            expect(
                metricValue(await scrape(metricsPort), "proxy_pool_outcomes_total", { pool: "none", fault: "gateway" }),
            ).to.equal(1);
        });

        it("D3: allowlist bypass attempts are refused with 403 and a reason, counted pool=none", async () => {
            const { port, dest, metricsPort } = await withSims(1, {
                destinations: {
                    tracked: [],
                    allowed: ["*.example.test", "example.test"],
                    connectPorts: ["443", "80"],
                    allowInternal: false,
                },
            });
            const p = dest.port;
            const http1 = (t: string) => `GET ${t} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;
            const connect = (a: string) => `CONNECT ${a} HTTP/1.1\r\nHost: ${a}\r\n\r\n`;
            const attempts: [string, string][] = [
                [http1(`http://a.example.test#@127.0.0.1:${p}/x`), "invalid-url"],
                [http1(`http://a.example.test\\@127.0.0.1:${p}/x`), "invalid-url"],
                [http1(`http://user@127.0.0.1:${p}/x`), "ambiguous-url"],
                [http1(`http://127.0.0.%31:${p}/x`), "non-canonical-host"],
                [http1(`http://a.example.test%2f@127.0.0.1/x`), "ambiguous-url"],
                [http1(`http://[::1]/x`), "internal-address"],
                [http1(`http://2130706433/x`), "non-canonical-host"],
                [http1(`http://0177.0.0.1/x`), "non-canonical-host"],
                [http1(`http://a.example.test./x`), "non-canonical-host"],
                [connect("a.example.test.:443"), "non-canonical-host"],
                [connect("2130706433:443"), "non-canonical-host"],
                [connect("0x7f.0.0.1:443"), "non-canonical-host"],
                [connect("[::ffff:127.0.0.1]:443"), "internal-address"],
                [connect("evil.test:443"), "not-allowed"],
                [connect("a.example.test:25"), "port-not-allowed"],
            ];
            for (const [req, reason] of attempts) {
                const r = await raw(port, req);
                expect(r.status, req).to.be.oneOf([400, 403]);
                expect(r.text.toLowerCase(), req).to.contain(`${REFUSAL_HEADER}: ${reason}`);
            }
            // Mixed case is compared case-insensitively: allowed names pass, it bypasses nothing.
            expect((await connectAndGet(port, "A.Example.TEST:443", "/bytes/4")).status).to.equal(200);
            expect(dest.hits()).to.equal(1);
            expect(
                metricValue(await scrape(metricsPort), "proxy_pool_outcomes_total", { pool: "none", fault: "gateway" }),
            ).to.equal(attempts.length);
        });

        it("D4: defaults deny CONNECT to other ports than 443 and 80, and internal addresses and names", async () => {
            const { port } = await withSims(1, {
                destinations: { tracked: [], allowed: ["*"], connectPorts: ["443", "80"], allowInternal: false },
            });
            const cases: [string, string][] = [
                ["127.0.0.1:25", "port-not-allowed"],
                ["public.test:8443", "port-not-allowed"],
                ["127.0.0.1:443", "internal-address"],
                ["10.1.2.3:443", "internal-address"],
                ["172.16.0.1:443", "internal-address"],
                ["192.168.1.1:80", "internal-address"],
                ["169.254.169.254:80", "internal-address"],
                ["100.64.0.1:443", "internal-address"],
                ["0.0.0.0:443", "internal-address"],
                ["[::1]:443", "internal-address"],
                ["[fe80::1]:443", "internal-address"],
                ["[fd00::1]:443", "internal-address"],
                ["[::ffff:10.0.0.1]:443", "internal-address"],
                ["kubernetes.default.svc:443", "internal-name"],
                ["api.monitoring.svc.cluster.local:443", "internal-name"],
                ["LOCALHOST:443", "internal-name"],
                ["metadata.google.internal:80", "internal-name"],
            ];
            for (const [a, reason] of cases) {
                const r = await raw(port, `CONNECT ${a} HTTP/1.1\r\nHost: ${a}\r\n\r\n`);
                expect(r.status, a).to.equal(403);
                expect(r.text.toLowerCase(), a).to.contain(`${REFUSAL_HEADER}: ${reason}`);
            }
            expect((await connectAndGet(port, "public.test:443", "/bytes/1")).status).to.equal(200);
        });
    });

    describe("D5: plain HTTP done properly", () => {
        it("D5: a crawler that aborts after the response headers releases the upstream sockets", async () => {
            const { port, dest, gw } = await withSims(1);
            await new Promise<void>((resolve, reject) => {
                const req = http.request(
                    { host: HOST, port, path: `http://127.0.0.1:${dest.port}/stall`, headers: { connection: "close" } },
                    (res) => {
                        res.once("data", () => {
                            req.destroy();
                            resolve();
                        });
                    },
                );
                req.on("error", () => undefined);
                req.setTimeout(3000, () => reject(new Error("no response")));
                req.end();
            });
            await waitFor(
                () => dest.sockets.size === 0 && gw.open === 0,
                2000,
                "upstream sockets closed after the crawler left",
            );
        });

        it("D5: a stalled response body is cut at idleMs and at totalMs", async () => {
            const { port, gw, dest } = await withSims(1, {
                timeouts: { connectMs: 2000, idleMs: 400, totalMs: 20_000 },
            });
            const t0 = Date.now();
            const r = await fetchToClose(port, `http://127.0.0.1:${dest.port}/stall`, 5000);
            expect(Date.now() - t0).to.be.below(2500);
            expect(r).to.deep.equal({ status: 200, bytes: 1000, complete: false });
            await waitFor(() => gw.open === 0 && dest.sockets.size === 0, 2000, "sockets released");
            const g2 = await startGateway(
                gatewayConfig([{ name: "p1", port: (gw.cfg.pools[0] as { port: number }).port }], {
                    timeouts: { connectMs: 2000, idleMs: 10_000, totalMs: 700 },
                }),
            );
            track(g2.gw);
            const t1 = Date.now();
            expect((await fetchToClose(g2.port, `http://127.0.0.1:${dest.port}/stall`, 5000)).complete).to.equal(false);
            expect(Date.now() - t1).to.be.below(2500);
            const m = await scrape(g2.metricsPort);
            expect(metricValue(m, "proxy_upstream_failures_total", { pool: "p1", reason: "body_timeout" })).to.equal(1);
        });

        it("D5: bytes of an interrupted download are counted, and while it runs", async () => {
            const { port, dest, metricsPort } = await withSims(1);
            let received = 0;
            let midway = -1;
            await new Promise<void>((resolve) => {
                const req = http.request(
                    { host: HOST, port, path: `http://127.0.0.1:${dest.port}/cut/3000000` },
                    (res) => {
                        res.on("data", (c: Buffer) => {
                            received += c.length;
                            if (midway < 0 && received > 1_000_000) {
                                midway = 0;
                                res.pause();
                                scrape(metricsPort).then((m) => {
                                    midway = metricValue(m, "proxy_bandwidth_bytes_total", {
                                        pool: "p1",
                                        direction: "ingress",
                                    });
                                    res.resume();
                                });
                            }
                        });
                        res.on("error", () => resolve());
                        res.on("close", () => resolve());
                    },
                );
                req.on("error", () => resolve());
                req.end();
            });
            expect(received).to.be.within(2_000_000, 3_000_000);
            expect(midway).to.be.greaterThan(500_000);
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_bandwidth_bytes_total", { pool: "p1", direction: "ingress" })).to.be.closeTo(
                received,
                65_536,
            );
            expect(
                metricValue(m, "proxy_upstream_failures_total", { pool: "p1", reason: "response_aborted" }),
            ).to.equal(1);
        });
    });

    describe("D6: smaller defects", () => {
        it("D6: headers named in Connection are removed both ways, duplicates are not combined", async () => {
            const { port, dest } = await withSims(1);
            const r = await raw(
                port,
                `GET http://127.0.0.1:${dest.port}/headers HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close, X-Secret\r\nX-Secret: 1\r\nKeep-Alive: 5\r\nX-Kept: a\r\n\r\n`,
            );
            expect(r.status).to.equal(200);
            const seen = JSON.parse(r.text.slice(r.text.indexOf("\r\n\r\n") + 4));
            expect(seen).to.not.have.property("x-secret");
            expect(seen).to.have.property("x-kept", "a");
            const back = await raw(
                port,
                `GET http://127.0.0.1:${dest.port}/conn-header HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
            );
            expect(back.status).to.equal(200);
            expect(back.text.toLowerCase()).to.not.contain("x-resp-secret");
        });

        it("D6: the header limit counts raw bytes (10,000 empty headers are 431, not forwarded)", async () => {
            const { port, dest } = await withSims(1, {
                limits: { maxTunnels: 100, maxHeaderBytes: 16_384, maxBodyBytes: 1000 },
            });
            const many = "A: \r\n".repeat(10_000);
            const r = await raw(
                port,
                `GET http://127.0.0.1:${dest.port}/headers HTTP/1.1\r\nHost: x\r\n${many}Connection: close\r\n\r\n`,
            );
            expect(r.status).to.equal(431);
            const c = await raw(port, `CONNECT 127.0.0.1:${dest.port} HTTP/1.1\r\n${many}\r\n`);
            expect(c.status).to.equal(431);
            expect(dest.hits()).to.equal(0);
        });

        it("D6: a reset after the request was sent on a fresh connection is 'reset', charged to the vendor", async () => {
            const { port, metricsPort, dest } = await withSims(1, {}, { errorRate: 1, errorMix: { reset: 1 } });
            expect((await httpViaProxy(port, `http://127.0.0.1:${dest.port}/bytes/5`)).status).to.equal(502);
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_upstream_failures_total", { pool: "p1", reason: "reset" })).to.equal(1);
            expect(metricValue(m, "proxy_upstream_failures_total", { pool: "p1", reason: "connect_error" })).to.equal(
                0,
            );
            expect(metricValue(m, "proxy_pool_outcomes_total", { pool: "p1", fault: "vendor" })).to.equal(1);
        });
    });
});
