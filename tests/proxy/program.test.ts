import { spawn } from "child_process";
import { expect } from "chai";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import * as zlib from "zlib";
import { GATEWAY_GZ, LOADER, LOADER_FILE, MAX_BUNDLE_BYTES, SCRIPT_GZ } from "../../components/node-app";
import { ENTRIES, bundle, writeProgram } from "../../proxy/bundle";
import { find, renderedStack } from "../harness";
import { CREDS, HOST, freePort, waitFor } from "./helpers";

/** The bundled program as the pods run it: `node loader.js <mode> --config <file>`, the bundles gzipped beside it. */
describe("the bundled proxy program", function () {
    this.timeout(60_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "proxy-program-"));
    let script: string;
    before(() => (script = writeProgram(dir)));

    it("is byte for byte what the rendered script ConfigMaps hold (what npm run local and the e2e test run)", async () => {
        const { objects } = await renderedStack("dev");
        const maps = find(objects, "ConfigMap").filter((c) => (c.binaryData as any)?.[SCRIPT_GZ]);
        expect(maps.length).to.be.greaterThan(0);
        for (const c of maps) {
            expect((c.data as any)[LOADER_FILE], c.metadata.name).to.equal(fs.readFileSync(script, "utf8"));
            for (const gz of [SCRIPT_GZ, GATEWAY_GZ])
                expect((c.binaryData as any)[gz], `${c.metadata.name} ${gz}`).to.equal(
                    fs.readFileSync(path.join(dir, gz)).toString("base64"),
                );
        }
    });

    function run(args: string[], env: NodeJS.ProcessEnv = {}) {
        const p = spawn(process.execPath, [script, ...args], {
            env: { ...process.env, ...env },
            stdio: ["ignore", "pipe", "pipe"],
        });
        let stdout = "";
        let stderr = "";
        p.stdout.on("data", (c) => (stdout += c));
        p.stderr.on("data", (c) => (stderr += c));
        const exited = new Promise<number | null>((resolve) => p.on("exit", (code) => resolve(code)));
        return { p, exited, out: () => stdout, err: () => stderr };
    }

    it("is two self-contained scripts; gzipped, with their loader, they fit a ConfigMap, and the loader runs them", async () => {
        const gz = [SCRIPT_GZ, GATEWAY_GZ].map((f) => fs.readFileSync(path.join(dir, f)));
        for (const g of gz)
            expect(zlib.gunzipSync(g).toString("utf8")).to.not.match(
                /require\("(prom-client|yaml|undici|selfsigned)"\)/,
            );
        expect(gz[0].toString("base64").length + gz[1].toString("base64").length + LOADER.length).to.be.below(
            MAX_BUNDLE_BYTES,
        );
        // The pod's layout: the ConfigMap's loader.js, proxy.js.gz and gateway.js.gz in one directory.
        const pod = fs.mkdtempSync(path.join(os.tmpdir(), "proxy-pod-"));
        fs.writeFileSync(path.join(pod, LOADER_FILE), LOADER);
        fs.writeFileSync(path.join(pod, SCRIPT_GZ), gz[0]);
        fs.writeFileSync(path.join(pod, GATEWAY_GZ), gz[1]);
        const p = spawn(process.execPath, [path.join(pod, LOADER_FILE), "nonsense"], {
            stdio: ["ignore", "pipe", "pipe"],
        });
        let err = "";
        p.stderr.on("data", (c) => (err += c));
        const code = await new Promise((r) => p.on("exit", r));
        expect(code).to.equal(2);
        expect(err).to.match(/usage: proxy <gateway\|vendor-sim\|generate\|target>/);
    });

    it("runs the gateway from its own bundle, which holds none of the other modes", async () => {
        const held = Object.keys(bundle(ENTRIES.gateway).inputs);
        expect(held.some((f) => f.startsWith("proxy/gateway/"))).to.equal(true);
        expect(
            held.filter((f) => /^proxy\/(generate|vendor-sim|target)\/|^node_modules\/(undici|selfsigned)\//.test(f)),
        ).to.deep.equal([]);
        // A pod directory with the loader and the gateway's bundle only: the gateway runs, any other mode needs proxy.js.gz.
        const pod = fs.mkdtempSync(path.join(os.tmpdir(), "proxy-gw-pod-"));
        fs.writeFileSync(path.join(pod, LOADER_FILE), LOADER);
        fs.copyFileSync(path.join(dir, GATEWAY_GZ), path.join(pod, GATEWAY_GZ));
        const bad = path.join(pod, "bad.json");
        fs.writeFileSync(bad, JSON.stringify({ vendor: "v", pools: [] }));
        const exit = (mode: string) => {
            const p = spawn(process.execPath, [path.join(pod, LOADER_FILE), mode, "--config", bad], {
                stdio: ["ignore", "ignore", "pipe"],
            });
            let err = "";
            p.stderr.on("data", (c) => (err += c));
            return new Promise<[number | null, string]>((r) => p.on("exit", (code) => r([code, err])));
        };
        const [gwCode, gwErr] = await exit("gateway");
        expect(gwCode).to.equal(2);
        expect(gwErr).to.contain("pools: expected a list of at least 1 item(s)");
        const [simCode, simErr] = await exit("vendor-sim");
        expect(simCode).to.not.equal(0);
        expect(simErr).to.contain(`ENOENT`);
        expect(simErr).to.contain(SCRIPT_GZ);
    });

    it("exits 2 with every config problem named for a bad config file", async () => {
        const file = path.join(dir, "bad.yaml");
        fs.writeFileSync(file, "vendor: Not_A_Label\npools: []\n");
        const r = run(["gateway", "--config", file]);
        expect(await r.exited).to.equal(2);
        expect(r.err()).to.contain("bad.yaml: 2 problem(s)");
        expect(r.err()).to.contain("pools: expected a list of at least 1 item(s)");
        expect(r.err()).to.contain("vendor: expected a string matching");
    });

    it("prints usage for an unknown mode", async () => {
        const r = run(["nonsense"]);
        expect(await r.exited).to.equal(2);
        expect(r.err()).to.match(/usage: proxy <gateway\|vendor-sim\|generate\|target>/);
    });

    it("runs a simulator and a gateway from config files (with an environment override), ready, then stops on SIGTERM", async () => {
        const simPort = await freePort();
        const simMetrics = await freePort();
        const simFile = path.join(dir, "sim.json");
        fs.writeFileSync(
            simFile,
            JSON.stringify({
                vendor: "v",
                pool: "p",
                listen: { host: HOST, proxyPort: simPort, metricsPort: simMetrics },
                ...CREDS,
            }),
        );
        const sim = run(["vendor-sim", "--config", simFile]);
        fs.writeFileSync(path.join(dir, "user"), CREDS.username + "\n");
        fs.writeFileSync(path.join(dir, "pass"), CREDS.password + "\n");
        const gwPort = await freePort();
        const gwMetrics = await freePort();
        const gwFile = path.join(dir, "gw.json");
        fs.writeFileSync(
            gwFile,
            JSON.stringify({
                vendor: "v",
                listen: { host: HOST, proxyPort: gwPort, metricsPort: 1 },
                pools: [
                    {
                        name: "p",
                        host: HOST,
                        port: simPort,
                        usernameFile: path.join(dir, "user"),
                        passwordFile: path.join(dir, "pass"),
                    },
                ],
                probe: {
                    intervalMs: 200,
                    timeoutMs: 500,
                    destination: "probe.test:443",
                    failuresToDown: 2,
                    successesToUp: 1,
                },
            }),
        );
        // PROXY_MONITOR_LISTEN__METRICS_PORT overrides listen.metricsPort (1 in the file).
        const gw = run(["gateway", "--config", gwFile], { PROXY_MONITOR_LISTEN__METRICS_PORT: String(gwMetrics) });
        const get = (port: number, p: string) =>
            new Promise<number>((resolve) => {
                http.get({ host: HOST, port, path: p }, (res) => (res.resume(), resolve(res.statusCode ?? 0))).on(
                    "error",
                    () => resolve(0),
                );
            });
        try {
            await waitFor(async () => (await get(gwMetrics, "/readyz")) === 200, 10_000, "gateway ready");
            expect(await get(gwMetrics, "/metrics")).to.equal(200);
            gw.p.kill("SIGTERM");
            expect(await gw.exited).to.equal(0);
            expect(gw.out()).to.contain('"msg":"gateway listening"');
        } finally {
            gw.p.kill("SIGKILL");
            sim.p.kill("SIGTERM");
            await sim.exited;
        }
    });
});
