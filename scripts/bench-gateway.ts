/**
 * `npm run bench:gateway`: client -> X -> vendor-sim -> target, all on 127.0.0.1, for X = our gateway (metrics on
 * and off), proxy-chain and Debian's tinyproxy, plus a bare TCP relay as the tunnel-throughput baseline.
 * Measures plain-HTTP requests per second (wrk, 50 and 500 connections), new CONNECT tunnels per second, MB/s
 * through established tunnels, and X's CPU and peak memory. Prints a Markdown table; `--write` also puts it in
 * docs/performance-tuning.md between the gateway-bench markers.
 *
 * Every phase is bounded in time; every process it starts is killed at the end.
 */
import { ChildProcess, execFileSync, spawn, spawnSync } from "child_process";
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { bundleProxy } from "../proxy/bundle";
import { Goals, requireTools } from "./bench-checks";
import { BenchResult, runBench } from "./bench-doc";
import { command, parseCommand } from "./cli";
import { HOST, freePort, waitListening } from "./loopback";

export const BENCH_GATEWAY = command({
    usage: "npm run bench:gateway --",
    description: `
Requests/s, tunnels/s, tunnel MB/s, CPU and memory of our gateway (metrics on and off), proxy-chain and tinyproxy
between a client and a vendor simulator on 127.0.0.1, and whether the goals are met. Needs wrk and tinyproxy
(sudo apt-get install -y wrk tinyproxy). Each phase lasts BENCH_SECONDS (environment, default 8) seconds.
Exit code 1 when a figure could not be measured, 3 when a tool is missing.`,
    flags: {
        write: { type: "boolean", help: "also write the table into docs/performance-tuning.md" },
    },
});

const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const USER = "bench";
const PASS = "bench-pass";
const ROOT = path.resolve(__dirname, "..");
let tmp = "";
const children: ChildProcess[] = [];

function start(cmd: string, args: string[]): ChildProcess {
    const p = spawn(cmd, args, { stdio: ["ignore", "ignore", "inherit"] });
    children.push(p);
    return p;
}

function writeJson(name: string, obj: unknown): string {
    const f = path.join(tmp, name);
    fs.writeFileSync(f, JSON.stringify(obj));
    return f;
}

/** utime+stime in seconds and peak RSS in MB of a process. */
function usage(pid: number): { cpu: number; rssMb: number } {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim());
    const cpu = (Number(fields[11]) + Number(fields[12])) / ticks;
    const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
    const hwm = Number(/VmHWM:\s+([0-9]+) kB/.exec(status)?.[1] ?? 0);
    return { cpu, rssMb: hwm / 1024 };
}

/** wrk against X with absolute-form requests to the target through X. */
function wrk(xPort: number, targetUrl: string, connections: number): number {
    const script = path.join(tmp, "abs.lua");
    fs.writeFileSync(script, `wrk.path = "${targetUrl}"\nwrk.headers["Proxy-Authorization"] = nil\n`);
    const out = spawnSync(
        "wrk",
        ["-t2", `-c${connections}`, `-d${SECONDS}s`, "--timeout", "5s", "-s", script, `http://${HOST}:${xPort}/`],
        {
            encoding: "utf8",
            timeout: (SECONDS + 20) * 1000,
        },
    );
    const rps = /Requests\/sec:\s+([0-9.]+)/.exec(out.stdout ?? "");
    if (!rps)
        process.stderr.write(`  wrk gave no figure (exit ${out.status}): ${(out.stderr || out.stdout || "").trim()}\n`);
    const non2xx = /Non-2xx or 3xx responses: ([0-9]+)/.exec(out.stdout ?? "");
    if (non2xx) process.stderr.write(`  warning: ${non2xx[1]} non-2xx answers through port ${xPort}\n`);
    return rps ? Number(rps[1]) : 0;
}

/** New tunnels per second: `concurrency` loops of connect, CONNECT, read 200, close, for SECONDS. */
async function connectRate(xPort: number, target: string, concurrency: number, auth?: string): Promise<number> {
    const deadline = Date.now() + SECONDS * 1000;
    let ok = 0;
    const request = `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ""}\r\n`;
    const one = () =>
        new Promise<boolean>((resolve) => {
            const s = net.connect(xPort, HOST);
            let buf = "";
            const timer = setTimeout(() => (s.destroy(), resolve(false)), 5000);
            s.on("error", () => (clearTimeout(timer), resolve(false)));
            s.on("data", (c) => {
                buf += c.toString("latin1");
                if (buf.includes("\r\n\r\n")) {
                    clearTimeout(timer);
                    s.destroy();
                    resolve(/^HTTP\/1\.[01] 200/.test(buf));
                }
            });
            s.write(request);
        });
    const loop = async () => {
        while (Date.now() < deadline) if (await one()) ok++;
    };
    await Promise.all(Array.from({ length: concurrency }, loop));
    return ok / SECONDS;
}

/** MB/s echoed back through `tunnels` established tunnels to an echoing upstream. */
async function tunnelThroughput(xPort: number, target: string, tunnels: number, auth?: string): Promise<number> {
    const chunk = Buffer.alloc(64 * 1024, 7);
    let received = 0;
    const run = () =>
        new Promise<void>((resolve) => {
            const s = net.connect(xPort, HOST);
            let established = false;
            let head = "";
            const stopAt = Date.now() + SECONDS * 1000;
            const finish = () => (s.destroy(), resolve());
            const timer = setTimeout(finish, SECONDS * 1000 + 5000);
            s.on("error", () => (clearTimeout(timer), resolve()));
            const pump = () => {
                while (Date.now() < stopAt) if (!s.write(chunk)) return;
                clearTimeout(timer);
                finish();
            };
            s.on("drain", pump);
            s.on("data", (c: Buffer) => {
                if (!established) {
                    head += c.toString("latin1");
                    if (!head.includes("\r\n\r\n")) return;
                    established = /^HTTP\/1\.[01] 200/.test(head);
                    if (!established) return finish();
                    pump();
                    return;
                }
                received += c.length;
            });
            s.write(
                `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n${auth ? `Proxy-Authorization: ${auth}\r\n` : ""}\r\n`,
            );
        });
    const t0 = Date.now();
    await Promise.all(Array.from({ length: tunnels }, run));
    return received / 1e6 / ((Date.now() - t0) / 1000);
}

interface Row {
    name: string;
    http50: number;
    http500: number;
    connects: number;
    mbps: number;
    cpuPct: number;
    rssMb: number;
}

async function main(): Promise<BenchResult> {
    const flags = parseCommand(BENCH_GATEWAY, process.argv.slice(2));
    requireTools("bench:gateway");
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bench-gateway-"));
    const script = path.join(tmp, "proxy.js");
    fs.writeFileSync(script, bundleProxy());

    // Target: plain-HTTP destination.
    const targetPort = await freePort();
    const targetJs = path.join(tmp, "target.js");
    fs.writeFileSync(
        targetJs,
        `const http=require("http");const body=Buffer.alloc(100,97);http.createServer((q,s)=>{s.writeHead(200,{"content-length":body.length});s.end(body)}).listen(${targetPort},"${HOST}")`,
    );
    start("node", [targetJs]);
    // Vendor simulators: one forwarding to the target (HTTP and CONNECT rate), one echoing (tunnel throughput).
    const simPort = await freePort();
    const echoPort = await freePort();
    const simBase = { vendor: "bench", username: USER, password: PASS, latencyP50Ms: 0, latencyP95Ms: 0, errorRate: 0 };
    start("node", [
        script,
        "vendor-sim",
        "--config",
        writeJson("sim.json", {
            ...simBase,
            pool: "fwd",
            listen: { host: HOST, proxyPort: simPort, metricsPort: await freePort() },
            forward: `${HOST}:${targetPort}`,
        }),
    ]);
    start("node", [
        script,
        "vendor-sim",
        "--config",
        writeJson("echo.json", {
            ...simBase,
            pool: "echo",
            listen: { host: HOST, proxyPort: echoPort, metricsPort: await freePort() },
        }),
    ]);
    await Promise.all([waitListening(targetPort), waitListening(simPort), waitListening(echoPort)]);

    const targetUrl = `http://${HOST}:${targetPort}/bytes/100`;
    const tunnelTarget = `${HOST}:${targetPort}`;
    const rows: Row[] = [];

    /** Runs the phases against X listening on xPorts (fwd: upstream = forwarding sim; echo: upstream = echo sim). */
    const measure = async (
        name: string,
        launch: (upstream: number) => Promise<{ proc: ChildProcess; port: number }>,
        authForClient?: string,
    ) => {
        process.stderr.write(`${name}...\n`);
        const fwd = await launch(simPort);
        const before = usage(fwd.proc.pid!);
        const t0 = Date.now();
        const http50 = wrk(fwd.port, targetUrl, 50);
        const http500 = wrk(fwd.port, targetUrl, 500);
        const connects = await connectRate(fwd.port, tunnelTarget, 50, authForClient);
        const after = usage(fwd.proc.pid!);
        const cpuPct = ((after.cpu - before.cpu) / ((Date.now() - t0) / 1000)) * 100;
        fwd.proc.kill("SIGKILL");
        const echo = await launch(echoPort);
        const mbps = await tunnelThroughput(echo.port, tunnelTarget, 4, authForClient);
        const rssMb = Math.max(after.rssMb, usage(echo.proc.pid!).rssMb);
        echo.proc.kill("SIGKILL");
        rows.push({ name, http50, http500, connects, mbps, cpuPct, rssMb });
    };

    const gatewayLaunch = (metrics: boolean) => async (upstream: number) => {
        const port = await freePort();
        const dir = fs.mkdtempSync(path.join(tmp, "gw-"));
        fs.writeFileSync(path.join(dir, "u"), USER);
        fs.writeFileSync(path.join(dir, "p"), PASS);
        const cfg = writeJson(`gw-${port}.json`, {
            vendor: "bench",
            listen: { host: HOST, proxyPort: port, metricsPort: await freePort() },
            pools: [
                {
                    name: "p",
                    host: HOST,
                    port: upstream,
                    weight: 1,
                    region: "x",
                    usernameFile: path.join(dir, "u"),
                    passwordFile: path.join(dir, "p"),
                },
            ],
            // The bench's destinations are loopback ports, which the default policy refuses.
            destinations: { tracked: [HOST], allowed: ["*"], connectPorts: ["1-65535"], allowInternal: true },
            limits: { maxTunnels: 100_000, maxHeaderBytes: 16384, maxBodyBytes: 1e7 },
            probe: {
                intervalMs: 60_000,
                timeoutMs: 1000,
                destination: `${HOST}:${targetPort}`,
                failuresToDown: 3,
                successesToUp: 1,
            },
            logSampleRate: 0,
            metrics,
        });
        const proc = start("node", [script, "gateway", "--config", cfg]);
        await waitListening(port);
        return { proc, port };
    };
    await measure("proxy-monitor gateway", gatewayLaunch(true));
    await measure("proxy-monitor gateway, metrics off", gatewayLaunch(false));

    await measure("proxy-chain 2.7", async (upstream) => {
        const port = await freePort();
        const js = path.join(tmp, `pc-${port}.js`);
        fs.writeFileSync(
            js,
            `const P=require(${JSON.stringify(path.join(ROOT, "node_modules", "proxy-chain"))});new P.Server({port:${port},host:"${HOST}",verbose:false,prepareRequestFunction:()=>({upstreamProxyUrl:"http://${USER}:${PASS}@${HOST}:${upstream}"})}).listen()`,
        );
        const proc = start("node", [js]);
        await waitListening(port);
        return { proc, port };
    });

    await measure(
        "tinyproxy " + (spawnSync("tinyproxy", ["-v"], { encoding: "utf8" }).stdout.trim().split(" ")[1] ?? ""),
        async (upstream) => {
            const port = await freePort();
            const conf = path.join(tmp, `tp-${port}.conf`);
            fs.writeFileSync(
                conf,
                [
                    `Port ${port}`,
                    `Listen ${HOST}`,
                    "Timeout 30",
                    "MaxClients 2000",
                    `Allow ${HOST}`,
                    "LogLevel Critical",
                    `Upstream http ${USER}:${PASS}@${HOST}:${upstream}`,
                    "",
                ].join("\n"),
            );
            const proc = start("tinyproxy", ["-d", "-c", conf]);
            await waitListening(port);
            return { proc, port };
        },
    );

    // Bare TCP relay: the tunnel-throughput baseline (no parsing; the client's CONNECT goes to the sim as is).
    process.stderr.write("bare relay...\n");
    const relayPort = await freePort();
    const relayJs = path.join(tmp, "relay.js");
    fs.writeFileSync(
        relayJs,
        `const net=require("net");net.createServer(c=>{const u=net.connect(${echoPort},"${HOST}");c.pipe(u);u.pipe(c);c.on("error",()=>u.destroy());u.on("error",()=>c.destroy())}).listen(${relayPort},"${HOST}")`,
    );
    const relay = start("node", [relayJs]);
    await waitListening(relayPort);
    const auth = "Basic " + Buffer.from(`${USER}:${PASS}`).toString("base64");
    const relayMbps = await tunnelThroughput(relayPort, tunnelTarget, 4, auth);
    relay.kill("SIGKILL");

    const cpu = os.cpus()[0]?.model ?? "unknown";
    const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
    const lines = [
        `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench:gateway\` on ${os.cpus().length} cores (${cpu}), ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}; ${SECONDS} s per phase; wrk, X, vendor-sim and target share the machine.`,
        "",
        "| X | HTTP req/s, 50 conns | HTTP req/s, 500 conns | new CONNECT tunnels/s | tunnel MB/s (4 tunnels) | X CPU % (HTTP + CONNECT phases) | X peak RSS MB |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ...rows.map(
            (r) =>
                `| ${r.name} | ${fmt(r.http50)} | ${fmt(r.http500)} | ${fmt(r.connects)} | ${fmt(r.mbps)} | ${fmt(r.cpuPct)} | ${fmt(r.rssMb)} |`,
        ),
        `| bare TCP relay (baseline) | | | | ${fmt(relayMbps)} | | |`,
    ];
    const gw = rows[0];
    const off = rows[1];
    const pc = rows.find((r) => r.name.startsWith("proxy-chain"))!;
    const tp = rows.find((r) => r.name.startsWith("tinyproxy"))!;
    const goals = new Goals();
    goals.add(
        `plain HTTP at least 2x tinyproxy and 2x proxy-chain (50 conns): ${fmt(gw.http50 / tp.http50)}x tinyproxy, ${fmt(gw.http50 / pc.http50)}x proxy-chain`,
        { "gateway req/s": gw.http50, "tinyproxy req/s": tp.http50, "proxy-chain req/s": pc.http50 },
        () => gw.http50 >= 2 * tp.http50 && gw.http50 >= 2 * pc.http50,
    );
    goals.add(
        `tunnel setup rate at least tinyproxy's: ${fmt(gw.connects)} vs ${fmt(tp.connects)}/s`,
        { "gateway tunnels/s": gw.connects, "tinyproxy tunnels/s": tp.connects },
        () => gw.connects >= tp.connects,
    );
    goals.add(
        `tunnel throughput at least 0.8x a bare TCP relay: ${fmt(gw.mbps / relayMbps)}x`,
        { "gateway MB/s": gw.mbps, "relay MB/s": relayMbps },
        () => gw.mbps >= 0.8 * relayMbps,
    );
    goals.add(
        `metrics cost under 10% (HTTP req/s, 50 conns, metrics on vs off): ${fmt(Math.max(0, (1 - gw.http50 / off.http50) * 100))}%`,
        { "req/s with metrics": gw.http50, "req/s without metrics": off.http50 },
        () => gw.http50 >= 0.9 * off.http50,
    );
    lines.push("", "Goals:", ...goals.lines);
    return { table: lines.join("\n"), exitCode: goals.exitCode, write: flags.write };
}

runBench("bench:gateway", "gateway-bench", main, children, () => tmp);
