/**
 * `npm run bench:soak` (not in CI): the bundled gateway under 10 minutes of mixed traffic on 127.0.0.1, with a fault
 * injected every 30 s, to show that file descriptors, memory and event-loop lag stay flat.
 *
 * Topology: crawler loops (this process) -> gateway (bundled program) -> two vendor simulators -> target (the
 * program's `target` mode). Traffic: CONNECT tunnels with a GET inside, plain-HTTP GETs of small and large bodies,
 * destination 503s, crawlers that abort mid-download, and CONNECTs the policy refuses. Faults, one every 30 s in turn:
 * an outage of pool a (15 s), pool b answering 503 to half its CONNECTs, pool a resetting a third of its
 * connections, pool b reporting destinations unreachable, pool a timing out a fifth of its answers. Figures are
 * the gateway's own (process_open_fds, process_resident_memory_bytes, nodejs_eventloop_lag_p99_seconds), read
 * after warm-up, at the end of traffic, and idle 10 s later. `SOAK_SECONDS` shortens the run; `--write` puts the
 * table in docs/performance-tuning.md between the gateway-soak markers. Every process it starts is killed.
 */
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { writeProgram } from "../proxy/bundle";
import { nodeFlags } from "../proxy/loader";
import { requireTools } from "./bench-checks";
import { BenchResult, BenchWorkspace, runBench } from "./bench-doc";
import { command, parseCommand } from "./cli";
import { HOST, freePort, waitListening } from "./loopback";

const SECONDS = Number(process.env.SOAK_SECONDS ?? 600);
const FAULT_EVERY_S = 30;
const LOOPS = 16;
const USER = "soak";
const PASS = "soak-pass";
export const BENCH_SOAK = command({
    usage: "npm run bench:soak --",
    description: `
The bundled gateway under mixed traffic on 127.0.0.1 for SOAK_SECONDS (environment, default 600) seconds, a fault
injected every 30 s; open fds, RSS and event-loop lag after warm-up, at the end of traffic and idle 10 s later. Runs
only node (the bundled program); not part of npm test.`,
    flags: {
        write: { type: "boolean", help: "also write the table into docs/performance-tuning.md" },
    },
});

const ws = new BenchWorkspace("bench-soak-");

function get(port: number, p: string, method = "GET"): Promise<{ status: number; body: string }> {
    return new Promise((resolve) => {
        const req = http.request({ host: HOST, port, path: p, method }, (res) => {
            let body = "";
            res.on("data", (c) => (body += c));
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
        });
        req.setTimeout(5000, () => req.destroy());
        req.on("error", () => resolve({ status: 0, body: "" }));
        req.end();
    });
}

function metric(text: string, name: string): number {
    const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, "m").exec(text);
    return m ? Number(m[1]) : NaN;
}

interface Sample {
    label: string;
    fds: number;
    rssMb: number;
    lagP99Ms: number;
    inflight: number;
}

async function sample(label: string, metricsPort: number): Promise<Sample> {
    const { body } = await get(metricsPort, "/metrics");
    return {
        label,
        fds: metric(body, "process_open_fds"),
        rssMb: metric(body, "process_resident_memory_bytes") / 2 ** 20,
        lagP99Ms: metric(body, "nodejs_eventloop_lag_p99_seconds") * 1000,
        inflight: metric(body, "proxy_inflight_requests"),
    };
}

/** One crawler exchange of a random kind; resolves with the status the crawler saw (0: cut or failed). */
function exchange(gw: number, targetPort: number): Promise<number> {
    const r = Math.random();
    if (r < 0.45) return tunnel(gw, `soak-${Math.floor(Math.random() * 4)}.test:443`);
    if (r < 0.5) return tunnel(gw, `${HOST}:22`); // refused by the gateway's policy (internal address)
    const pathOf = r < 0.8 ? "/bytes/2000" : r < 0.88 ? "/bytes/1000000" : r < 0.95 ? "/status/503" : "abort";
    return new Promise((resolve) => {
        const url = `http://soak-${Math.floor(Math.random() * 4)}.test:${targetPort}${pathOf === "abort" ? "/bytes/5000000" : pathOf}`;
        const req = http.request({ host: HOST, port: gw, path: url, headers: { connection: "keep-alive" } }, (res) => {
            res.on("data", () => {
                if (pathOf === "abort") req.destroy();
            });
            res.on("error", () => undefined);
            res.on("close", () => resolve(res.statusCode ?? 0));
        });
        req.setTimeout(10_000, () => req.destroy());
        req.on("error", () => resolve(0));
        req.end();
    });
}

function tunnel(gw: number, target: string): Promise<number> {
    return new Promise((resolve) => {
        const s = net.connect(gw, HOST);
        let head = "";
        let status = 0;
        const timer = setTimeout(() => s.destroy(), 10_000);
        s.on("error", () => undefined);
        s.on("close", () => (clearTimeout(timer), resolve(status)));
        s.on("data", (c: Buffer) => {
            if (status !== 0) return;
            head += c.toString("latin1");
            if (!head.includes("\r\n\r\n")) return;
            status = Number(/^HTTP\/1\.[01] ([0-9]{3})/.exec(head)?.[1] ?? -1);
            if (status !== 200) {
                s.destroy();
                return;
            }
            s.end(`GET /bytes/3000 HTTP/1.1\r\nHost: ${target}\r\nConnection: close\r\n\r\n`);
        });
        s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    });
}

async function main(): Promise<BenchResult> {
    const flags = parseCommand(BENCH_SOAK, process.argv.slice(2));
    requireTools("bench:soak");
    const tmp = ws.open();
    // The program as the pods get it: the loader runs the gateway's own bundle, the others the full one.
    const script = writeProgram(path.join(tmp, "program"));
    const [targetPort, targetTls, targetOps] = [await freePort(), await freePort(), await freePort()];
    ws.start("node", [
        script,
        "target",
        "--config",
        ws.writeJson("target.json", {
            listen: { host: HOST, httpPort: targetPort, httpsPort: targetTls, metricsPort: targetOps },
        }),
    ]);
    const sims: { name: string; port: number; ops: number }[] = [];
    for (const name of ["a", "b"]) {
        const port = await freePort();
        const ops = await freePort();
        sims.push({ name, port, ops });
        ws.start("node", [
            script,
            "vendor-sim",
            "--config",
            ws.writeJson(`sim-${name}.json`, {
                vendor: "soak",
                pool: name,
                listen: { host: HOST, proxyPort: port, metricsPort: ops },
                username: USER,
                password: PASS,
                latencyP50Ms: 5,
                latencyP95Ms: 40,
                timeoutHoldMs: 3000,
                forward: `${HOST}:${targetPort}`,
            }),
        ]);
    }
    fs.writeFileSync(path.join(tmp, "u"), USER);
    fs.writeFileSync(path.join(tmp, "p"), PASS);
    const gwPort = await freePort();
    const gwOps = await freePort();
    // With the node flags the gateway pods run with (proxy/loader.ts).
    const gw = ws.start("node", [
        ...nodeFlags("gateway"),
        script,
        "gateway",
        "--config",
        ws.writeJson("gateway.json", {
            vendor: "soak",
            listen: { host: HOST, proxyPort: gwPort, metricsPort: gwOps },
            pools: sims.map((s) => ({
                name: s.name,
                host: HOST,
                port: s.port,
                usernameFile: path.join(tmp, "u"),
                passwordFile: path.join(tmp, "p"),
            })),
            destinations: { tracked: ["soak-0.test"], allowed: ["*"], connectPorts: ["443", String(targetPort)] },
            timeouts: { connectMs: 2000, idleMs: 5000, totalMs: 60_000 },
            probe: { intervalMs: 2000, timeoutMs: 1000, destination: "probe.test:443" },
            health: { windowMs: 10_000, minRequests: 20, ejectionMs: 5000, maxEjectionMs: 20_000 },
            logSampleRate: 0,
        }),
    ]);
    await Promise.all([targetPort, ...sims.map((s) => s.port), gwPort, gwOps].map((p) => waitListening(p)));

    const faults: [string, () => Promise<unknown>][] = [
        ["outage of pool a for 15 s", () => get(sims[0].ops, "/admin/outage?seconds=15", "POST")],
        ["pool b: 503 on half its answers", () => get(sims[1].ops, "/admin/errors?rate=0.5&status=503", "POST")],
        [
            "pool a: resets a third of its connections",
            () => get(sims[0].ops, "/admin/errors?rate=0.33&status=reset", "POST"),
        ],
        [
            "pool b: destinations unreachable",
            () => get(sims[1].ops, "/admin/errors?rate=0.5&status=unreachable", "POST"),
        ],
        [
            "pool a: times out a fifth of its answers",
            () => get(sims[0].ops, "/admin/errors?rate=0.2&status=timeout", "POST"),
        ],
    ];
    const clearFaults = () =>
        Promise.all(
            sims.flatMap((s) => [
                get(s.ops, "/admin/errors?rate=0", "POST"),
                get(s.ops, "/admin/outage?seconds=0", "POST"),
            ]),
        );

    const statuses = new Map<number, number>();
    const deadline = Date.now() + SECONDS * 1000;
    let running = true;
    const loops = Array.from({ length: LOOPS }, async () => {
        while (running && Date.now() < deadline) {
            const s = await exchange(gwPort, targetPort);
            statuses.set(s, (statuses.get(s) ?? 0) + 1);
        }
    });
    const samples: Sample[] = [];
    const warmup = Math.min(20, SECONDS / 10);
    await new Promise((r) => setTimeout(r, warmup * 1000));
    samples.push(await sample(`after ${warmup} s warm-up`, gwOps));
    let n = 0;
    const faultTimer = setInterval(() => {
        const [what, inject] = faults[n++ % faults.length];
        process.stderr.write(`${new Date().toISOString()} fault: ${what}\n`);
        clearFaults().then(() => inject());
    }, FAULT_EVERY_S * 1000);
    await Promise.all(loops);
    running = false;
    clearInterval(faultTimer);
    samples.push(await sample(`end of traffic (${SECONDS} s)`, gwOps));
    await clearFaults();
    await new Promise((r) => setTimeout(r, 10_000));
    samples.push(await sample("idle 10 s later", gwOps));
    const { body } = await get(gwOps, "/metrics");
    gw.kill("SIGTERM");

    const total = [...statuses.values()].reduce((a, b) => a + b, 0);
    const outcome = (f: string) =>
        body
            .split("\n")
            .filter((l) => l.startsWith("proxy_pool_outcomes_total") && l.includes(`fault="${f}"`))
            .reduce((s, l) => s + Number(l.split(" ").pop()), 0);
    const fmt = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
    const lines = [
        `Measured ${new Date().toISOString().slice(0, 10)} by \`npm run bench:soak\` on ${os.cpus().length} cores, Node ${process.version}: ${SECONDS} s, ${LOOPS} crawler loops, ${faults.length} fault kinds in turn every ${FAULT_EVERY_S} s, gateway, simulators and target on one machine${process.env.SOAK_NOTE ? ` (${process.env.SOAK_NOTE})` : ""}.`,
        "",
        "| gateway | open fds | RSS MB | event-loop lag p99 ms | in flight |",
        "| --- | ---: | ---: | ---: | ---: |",
        ...samples.map((s) => `| ${s.label} | ${s.fds} | ${fmt(s.rssMb)} | ${fmt(s.lagP99Ms)} | ${s.inflight} |`),
        "",
        `${total.toLocaleString("en-US")} crawler exchanges; statuses seen: ${[...statuses.entries()]
            .sort((a, b) => b[1] - a[1])
            .map(([s, c]) => `${s === 0 ? "cut" : s} ${c.toLocaleString("en-US")}`)
            .join(
                ", ",
            )}. Outcomes charged: none ${outcome("none")}, vendor ${outcome("vendor")}, destination ${outcome("destination")}, gateway ${outcome("gateway")}.`,
    ];
    return { table: lines.join("\n"), write: flags.write };
}

runBench("bench:soak", "gateway-soak", main, ws.children, () => ws.dir);
