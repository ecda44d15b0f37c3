/**
 * The lean CONNECT reader (connect-head.ts) and the gateway with it: a whole CONNECT head in the first packet is
 * admitted without Node's parser; anything else goes to Node's parser and behaves as before.
 */
import { expect } from "chai";
import * as net from "net";
import { parseConnectHead } from "../../proxy/gateway/connect-head";
import { admissionHeaders } from "../../proxy/gateway/forward";
import {
    HOST,
    cleanupAfterEach,
    gatewayConfig,
    metricValue,
    rawExchange,
    scrape,
    startGateway,
    startSim,
    startTarget,
} from "./helpers";

const b = (s: string) => Buffer.from(s, "latin1");

describe("lean CONNECT reader", function () {
    this.timeout(20_000);

    it("reads a whole CONNECT head, its headers by lower-case name, and where the payload starts", () => {
        const h = parseConnectHead(
            b(
                "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nProxy-Authorization:  Basic eA== \r\n\r\n\x16\x03\x01",
            ),
            8192,
        );
        expect(h?.url).to.equal("a.test:443");
        expect({ ...h?.headers }).to.deep.equal({ host: "a.test:443", "proxy-authorization": "Basic eA==" });
        expect(h?.bytes).to.equal(
            b("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nProxy-Authorization:  Basic eA== \r\n\r\n").length,
        );
        expect(parseConnectHead(b("CONNECT [::1]:443 HTTP/1.1\r\n\r\n"), 8192)?.url).to.equal("[::1]:443");
        // A header named like an Object property is a header, not a prototype.
        const proto = parseConnectHead(b("CONNECT a.test:443 HTTP/1.1\r\n__proto__: x\r\n\r\n"), 8192);
        expect(proto?.headers["__proto__"]).to.equal("x");
    });

    it("leaves to Node's parser what it does not take: partial, too large, other methods and versions, odd bytes, duplicates, bodies", () => {
        for (const [why, text, max] of [
            ["no blank line yet", "CONNECT a.test:443 HTTP/1.1\r\nHost: a\r\n", 8192],
            ["over the limit", `CONNECT a.test:443 HTTP/1.1\r\nX: ${"a".repeat(100)}\r\n\r\n`, 64],
            ["GET", "GET http://a.test/ HTTP/1.1\r\n\r\n", 8192],
            ["lower case", "connect a.test:443 HTTP/1.1\r\n\r\n", 8192],
            ["HTTP/1.0", "CONNECT a.test:443 HTTP/1.0\r\n\r\n", 8192],
            ["space in target", "CONNECT a.test :443 HTTP/1.1\r\n\r\n", 8192],
            ["control byte", "CONNECT a.test:443 HTTP/1.1\r\nX: a\x01b\r\n\r\n", 8192],
            ["obs-text", "CONNECT a.test:443 HTTP/1.1\r\nX: caf\xe9\r\n\r\n", 8192],
            ["bare LF", "CONNECT a.test:443 HTTP/1.1\nX: a\r\n\r\n", 8192],
            ["no colon", "CONNECT a.test:443 HTTP/1.1\r\nX a\r\n\r\n", 8192],
            ["space before colon", "CONNECT a.test:443 HTTP/1.1\r\nX : a\r\n\r\n", 8192],
            [
                "duplicate",
                "CONNECT a.test:443 HTTP/1.1\r\nProxy-Authorization: a\r\nproxy-authorization: b\r\n\r\n",
                8192,
            ],
            ["body", "CONNECT a.test:443 HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc", 8192],
            ["chunked", "CONNECT a.test:443 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 8192],
        ] as const)
            expect(parseConnectHead(b(text), max), why).to.equal(undefined);
    });

    describe("in the gateway", () => {
        const { track } = cleanupAfterEach();

        async function topology(over = {}) {
            const target = await startTarget();
            track(target.server);
            const sim = await startSim("p1"); // echoes through its tunnels
            track(sim.sim);
            const g = await startGateway(gatewayConfig([{ name: "p1", port: sim.port }], over));
            track(g.gw);
            return { ...g, target: `127.0.0.1:${target.port}` };
        }

        /** Sends `packets` with a pause between them; resolves with what came back once `until` matches. */
        function exchange(port: number, packets: Buffer[], until: RegExp): Promise<string> {
            return new Promise((resolve, reject) => {
                const s = net.connect(port, HOST);
                let out = "";
                const timer = setTimeout(() => (s.destroy(), reject(new Error(`got ${JSON.stringify(out)}`))), 4000);
                s.on("error", reject);
                s.on("data", (c) => {
                    out += c.toString("latin1");
                    if (until.test(out)) {
                        clearTimeout(timer);
                        s.destroy();
                        resolve(out);
                    }
                });
                let i = 0;
                const next = () => {
                    if (i < packets.length) s.write(packets[i++], () => setTimeout(next, 30));
                };
                next();
            });
        }

        it("tunnels a CONNECT whose payload came in the same packet, and one whose head came in pieces, alike", async () => {
            const { port, metricsPort, target } = await topology();
            const whole = await exchange(
                port,
                [b(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\nhello-1`)],
                /hello-1$/,
            );
            expect(whole).to.match(/^HTTP\/1\.1 200 Connection Established\r\n\r\nhello-1$/);
            const pieces = await exchange(
                port,
                [b(`CONNECT ${target} HTTP/1.1\r\n`), b(`Host: ${target}\r\n`), b("\r\nhello-2")],
                /hello-2$/,
            );
            expect(pieces).to.match(/^HTTP\/1\.1 200 Connection Established\r\n\r\nhello-2$/);
            const m = await scrape(metricsPort);
            expect(metricValue(m, "proxy_requests_total", { pool: "p1", status: "200", protocol: "CONNECT" })).to.equal(
                2,
            );
        });

        it("refuses on the lean path as on Node's: policy, limits and plain HTTP on the same port", async () => {
            const { port, target } = await topology({
                destinations: { tracked: [], allowed: ["a.test"], connectPorts: ["443"], allowInternal: false },
            });
            const refused = await rawExchange(port, `CONNECT ${target} HTTP/1.1\r\n\r\n`);
            expect(refused).to.match(/^HTTP\/1\.1 403 .*\r\n[^]*X-Proxy-Monitor-Refusal: port-not-allowed/i);
            const bad = await rawExchange(port, "CONNECT nonsense HTTP/1.1\r\n\r\n");
            expect(bad).to.match(/^HTTP\/1\.1 400 /);
            const get = await rawExchange(port, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            expect(get).to.match(/^HTTP\/1\.1 400 /);
        });

        it("closes a connection that sends nothing at the header timeout", async () => {
            const { port, gw } = await topology({ timeouts: { connectMs: 400, idleMs: 5000, totalMs: 20_000 } });
            const s = net.connect(port, HOST);
            s.on("error", () => undefined);
            const t0 = Date.now();
            await new Promise((r) => s.once("close", r));
            expect(Date.now() - t0).to.be.within(300, 3000);
            expect(gw.open).to.equal(0);
        });
    });
});

describe("admission headers (one pass over the raw list)", () => {
    it("reads what Node's req.headers would: the first Proxy-Authorization and Content-Length, the rest joined", () => {
        const h = admissionHeaders([
            "Proxy-Authorization",
            "Basic first",
            "proxy-authorization",
            "Basic second",
            "Content-Length",
            "3",
            "Transfer-Encoding",
            "gzip",
            "transfer-encoding",
            "chunked",
            "X-Proxy-Monitor-Session",
            "a",
            "x-proxy-monitor-session",
            "b",
            "X-Other",
            "ignored",
        ]);
        expect({ ...h }).to.deep.equal({
            "proxy-authorization": "Basic first",
            "content-length": "3",
            "transfer-encoding": "gzip, chunked",
            "x-proxy-monitor-session": "a, b",
        });
        expect({ ...admissionHeaders([]) }).to.deep.equal({});
    });
});
