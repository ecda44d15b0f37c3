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
    });

    it("matches a reading by the grammar's regular expressions on every head of a generated corpus", () => {
        // The reader scans bytes; this reference reads the same grammar line by line, as the reader did before.
        const reference = (chunk: Buffer, max: number) => {
            if (!chunk.toString("latin1", 0, 8).startsWith("CONNECT ")) return undefined;
            const end = chunk.indexOf("\r\n\r\n");
            if (end < 0 || end + 4 > max) return undefined;
            const text = chunk.toString("latin1", 0, end);
            if (/[^\t\x20-\x7e\r\n]/.test(text)) return undefined;
            const lines = text.split("\r\n");
            const line = /^CONNECT ([^\s]+) HTTP\/1\.1$/.exec(lines[0]);
            if (!line) return undefined;
            const headers = new Map<string, string>();
            for (const l of lines.slice(1)) {
                const h = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/.exec(l);
                if (!h) return undefined;
                const name = h[1].toLowerCase();
                if (["content-length", "transfer-encoding", "constructor", "__proto__"].includes(name))
                    return undefined;
                if (headers.has(name)) return undefined;
                headers.set(name, h[2]);
            }
            return { url: line[1], headers: Object.fromEntries(headers), bytes: end + 4 };
        };
        // Valid heads, then each mutated by inserting, deleting or replacing bytes the grammar cares about.
        const bases = [
            "CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\nProxy-Authorization: Basic eA==\r\n\r\n",
            "CONNECT [::1]:8443 HTTP/1.1\r\nX-Proxy-Monitor-Session: s1\r\nUser-Agent: \t curl/8 \t\r\n\r\npayload",
            "CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n",
        ];
        const alphabet = [
            "\r",
            "\n",
            " ",
            "\t",
            ":",
            "\r\n",
            "\x01",
            "\xe9",
            "a",
            "A",
            "-",
            "@",
            "\x7f",
            "constructor: x\r\n",
        ];
        let seed = 42;
        const rand = (n: number) => {
            seed = (seed * 1103515245 + 12345) % 2 ** 31;
            return seed % n;
        };
        let accepted = 0;
        for (let k = 0; k < 6000; k++) {
            let text = bases[k % bases.length];
            for (let m = rand(3); m > 0; m--) {
                const at = rand(text.length);
                const op = rand(3);
                const piece = alphabet[rand(alphabet.length)];
                text =
                    op === 0
                        ? text.slice(0, at) + piece + text.slice(at)
                        : op === 1
                          ? text.slice(0, at) + text.slice(at + 1)
                          : text.slice(0, at) + piece + text.slice(at + 1);
            }
            const max = rand(4) === 0 ? rand(120) : 8192;
            const got = parseConnectHead(b(text), max);
            expect(got && { ...got, headers: { ...got.headers } }, JSON.stringify(text)).to.deep.equal(
                reference(b(text), max),
            );
            if (got) accepted++;
        }
        // The corpus exercises both outcomes, not only refusals.
        expect(accepted).to.be.within(1000, 5000);
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
            // Names an object already has: the reader keeps headers in a plain object, so Node's parser reads these.
            ["__proto__", "CONNECT a.test:443 HTTP/1.1\r\n__proto__: x\r\n\r\n", 8192],
            ["constructor", "CONNECT a.test:443 HTTP/1.1\r\nConstructor: x\r\n\r\n", 8192],
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
