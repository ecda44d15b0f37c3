import { ChildProcess, spawn, spawnSync } from "child_process";
import { expect } from "chai";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import {
    CREDS,
    HOST,
    closeServer,
    freePort,
    connectAndGet,
    gatewayConfig,
    httpViaProxy,
    metricValue,
    scrape,
    startGateway,
    startTarget,
    waitFor,
} from "./helpers";

/** Starts Debian's tinyproxy in the foreground on a free port, requiring CREDS; fails clearly when it is missing. */
export async function startTinyproxy(): Promise<{ proc: ChildProcess; port: number }> {
    if (spawnSync("tinyproxy", ["-v"]).error) {
        throw new Error("tinyproxy is not installed: apt-get install -y tinyproxy (.ci/run installs it)");
    }
    const port = await freePort();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tinyproxy-"));
    const conf = path.join(dir, "tinyproxy.conf");
    fs.writeFileSync(
        conf,
        [
            `Port ${port}`,
            `Listen ${HOST}`,
            "Timeout 30",
            "MaxClients 512",
            `BasicAuth ${CREDS.username} ${CREDS.password}`,
            `Allow ${HOST}`,
            "LogLevel Critical",
            "",
        ].join("\n"),
    );
    const proc = spawn("tinyproxy", ["-d", "-c", conf], { stdio: "ignore" });
    await waitFor(
        () =>
            new Promise<boolean>((resolve) => {
                const s = net.connect(port, HOST, () => {
                    s.destroy();
                    resolve(true);
                });
                s.on("error", () => resolve(false));
            }),
        5000,
        "tinyproxy to listen",
    );
    return { proc, port };
}

describe("gateway with Debian's tinyproxy as a real third-party upstream", function () {
    this.timeout(20_000);
    let tiny: { proc: ChildProcess; port: number };
    let target: Awaited<ReturnType<typeof startTarget>>;
    let gw: Awaited<ReturnType<typeof startGateway>>;

    before(async () => {
        tiny = await startTinyproxy();
        target = await startTarget();
        gw = await startGateway(gatewayConfig([{ name: "tiny", port: tiny.port }]));
    });
    after(async () => {
        await gw?.gw.stop(0);
        if (target) await closeServer(target.server);
        tiny?.proc.kill("SIGTERM");
    });

    it("tunnels CONNECT through tinyproxy with the pool's credentials and counts the bytes", async () => {
        const r = await connectAndGet(gw.port, `127.0.0.1:${target.port}`, "/bytes/4096");
        expect(r.status).to.equal(200);
        expect(r.body.length).to.equal(4096);
        const m = await scrape(gw.metricsPort);
        expect(metricValue(m, "proxy_requests_total", { pool: "tiny", status: "200", protocol: "CONNECT" })).to.equal(
            1,
        );
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { pool: "tiny", direction: "ingress" })).to.equal(
            r.received,
        );
        expect(metricValue(m, "proxy_bandwidth_bytes_total", { pool: "tiny", direction: "egress" })).to.equal(r.sent);
    });

    it("forwards absolute-form HTTP through tinyproxy", async () => {
        const r = await httpViaProxy(gw.port, `http://127.0.0.1:${target.port}/bytes/1234`);
        expect(r).to.deep.equal({ status: 200, bytes: 1234 });
        expect(
            metricValue(await scrape(gw.metricsPort), "proxy_requests_total", {
                pool: "tiny",
                protocol: "HTTP/1.1",
                status: "200",
            }),
        ).to.equal(1);
    });

    it("relays tinyproxy's refusal when the pool's credentials are wrong (tinyproxy answers CONNECT with 401)", async () => {
        const bad = await startGateway(
            gatewayConfig([{ name: "tiny", port: tiny.port }]),
            () => "Basic " + Buffer.from("crawl:wrong").toString("base64"),
        );
        try {
            expect((await connectAndGet(bad.port, `127.0.0.1:${target.port}`)).status).to.equal(401);
            expect(
                metricValue(await scrape(bad.metricsPort), "proxy_requests_total", { pool: "tiny", status: "401" }),
            ).to.equal(1);
        } finally {
            await bad.gw.stop(0);
        }
    });
});
