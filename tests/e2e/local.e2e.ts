import { execFile } from "child_process";
import { expect } from "chai";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import { allDashboards } from "../../dashboards";
import { COLUMNS, screen } from "../../scripts/local-view";
import { HOST, Pipeline, startPipeline } from "../../scripts/pipeline";
import { ROOT } from "../harness";

/** Runs a script of scripts/ as `npm run` does, in a child process. */
function runScript(
    file: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        execFile(
            process.execPath,
            [require.resolve("ts-node/dist/bin.js"), "--transpile-only", path.join(ROOT, "scripts", file), ...args],
            { cwd: ROOT, env, timeout: 200_000 },
            (err, stdout, stderr) => {
                const code = err ? ((err as { code?: number }).code ?? 1) : 0;
                resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
            },
        );
    });
}

/**
 * A stand-in for Grafana's HTTP API on loopback (no Grafana runs on the development machines): /api/health,
 * /api/datasources and /api/search answer as Grafana documents them, with basic auth required on the last two.
 */
async function grafanaStandIn(dashboards: { uid: string; title: string }[]): Promise<{ url: string; close(): void }> {
    const server = http.createServer((req, res) => {
        const json = (status: number, body: unknown) => {
            res.writeHead(status, { "content-type": "application/json" });
            res.end(JSON.stringify(body));
        };
        if (req.url === "/api/health") return json(200, { database: "ok", version: "11.3.1" });
        if (req.headers.authorization !== "Basic " + Buffer.from("admin:pw").toString("base64"))
            return json(401, { message: "Unauthorized" });
        if (req.url === "/api/datasources") return json(200, [{ name: "Prometheus", type: "prometheus" }]);
        if (req.url?.startsWith("/api/search?type=dash-db"))
            return json(
                200,
                dashboards.map((d) => ({ ...d, type: "dash-db" })),
            );
        json(404, { message: "not found" });
    });
    await new Promise<void>((r) => server.listen(0, HOST, () => r()));
    return {
        url: `http://${HOST}:${(server.address() as net.AddressInfo).port}`,
        close: () => server.close(),
    };
}

describe("npm run local and npm run verify, against the local pipeline", function () {
    this.timeout(300_000);
    let p: Pipeline;
    let urls: string[];
    let started: number;

    before(async () => {
        started = Date.now();
        p = await startPipeline({ stack: "dev", fast: true, requestsPerSecond: 30 });
        urls = [
            "--prometheus",
            `http://${HOST}:${p.prometheusPort}`,
            "--alertmanager",
            `http://${HOST}:${p.alertmanagerPort}`,
        ];
    });
    after(async () => {
        await p?.stop();
    });

    it("the table shows, per vendor, the generator's rate, requests and tunnels apart, success and p95 against the SLA, bandwidth and cost", async () => {
        const deadline = Date.now() + 150_000;
        let text = "";
        for (;;) {
            text = await screen(p.cfg, true, p.query, p.notifications, 0);
            const rows = text.split("\n").filter((l) => p.cfg.vendors.some((v) => l.startsWith(v.name)));
            // Settled: the 1-minute window is full and every vendor has every figure.
            const full = Date.now() - started > 75_000;
            if (full && rows.length === p.cfg.vendors.length && rows.every((r) => !/…/.test(r))) break;
            if (Date.now() > deadline) throw new Error(`the table never filled:\n${text}`);
            await new Promise((r) => setTimeout(r, 2000));
        }
        const lines = text.split("\n");
        expect(lines[1]).to.equal("rates over 1m (--fast)");
        expect(lines[2].split(/\s{2,}/)).to.deep.equal([...COLUMNS]);
        let generator = 0;
        for (const v of p.cfg.vendors) {
            const cells = lines.find((l) => l.startsWith(v.name))!.split(/\s{2,}/);
            expect(cells, v.name).to.have.length(COLUMNS.length);
            const cell = (c: (typeof COLUMNS)[number]) => cells[COLUMNS.indexOf(c)];
            generator += Number(cell("generator req/s"));
            expect(Number(cell("generator req/s")), `${v.name} generator`).to.be.greaterThan(0);
            expect(
                Number(cell("requests/s")) + Number(cell("tunnels/s")),
                `${v.name} gateway:\n${text}`,
            ).to.be.greaterThan(0);
            expect(cell("success"), v.name).to.match(/^[0-9]+\.[0-9]{2}%/);
            expect(cell("objective")).to.equal(`${(v.sla.successObjective * 100).toFixed(2)}%`);
            expect(cell("p95 ms"), v.name).to.match(/^[0-9]+( [!?])?$/);
            expect(cell("SLA p95 ms")).to.equal(String(v.sla.p95LatencyMs));
            expect(Number(cell("KiB/s")), `${v.name} bandwidth`).to.be.greaterThan(0);
            expect(Number(cell("cost $/h")), `${v.name} cost`).to.be.greaterThan(0);
        }
        // The generator's own rate is the one it was asked for (30/s), not the gateway's count of requests and tunnels.
        expect(generator).to.be.within(20, 36);
        expect(text).to.match(/alerts firing now: .*Watchdog/);
        expect(text).to.match(/notifications received: [0-9]+/);
    });

    it("verify passes against the running stack, and checks Grafana through its HTTP API", async () => {
        const cfg = p.cfg;
        const dashboards = Object.values(allDashboards(cfg)).map((d) => ({
            uid: String(d.uid),
            title: String(d.title),
        }));
        const grafana = await grafanaStandIn(dashboards);
        try {
            const run = await runScript("verify.ts", [
                "--stack",
                "dev",
                ...urls,
                "--grafana",
                grafana.url,
                "--grafana-password",
                "pw",
                "--wait",
                "120s",
            ]);
            expect(run.code, run.stdout + run.stderr).to.equal(0);
            for (const name of [
                "every scrape target up",
                "series for every vendor and pool",
                "rules evaluate without errors",
                "recorded series exist for every vendor",
                "Watchdog reaches Alertmanager",
                "every dashboard provisioned",
            ])
                expect(run.stdout).to.match(new RegExp(`ok +[^\\n]*${name}`));
            expect(run.stdout).to.contain("every check passed");
        } finally {
            grafana.close();
        }
    });

    it("verify --context finds the Services through kubectl port-forward and Grafana's password in its Secret", async () => {
        // A stand-in kubectl (no cluster here): port-forward relays a local port to the pipeline's server for the
        // Service, printing what kubectl prints; get secret prints the base64 password. It logs its arguments and pid.
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-kubectl-"));
        const dashboards = Object.values(allDashboards(p.cfg)).map((d) => ({
            uid: String(d.uid),
            title: String(d.title),
        }));
        const grafana = await grafanaStandIn(dashboards);
        const ports: Record<string, string> = {
            prometheus: String(p.prometheusPort),
            alertmanager: String(p.alertmanagerPort),
            grafana: grafana.url.split(":").pop()!,
        };
        fs.writeFileSync(
            path.join(dir, "kubectl"),
            `#!${process.execPath}
const fs = require("fs"), net = require("net");
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(path.join(dir, "calls"))}, process.pid + " " + args.join(" ") + "\\n");
const ports = ${JSON.stringify(ports)};
if (args.includes("get")) { process.stdout.write(Buffer.from("pw").toString("base64")); process.exit(0); }
const svc = args[args.indexOf("port-forward") + 1].replace("svc/", "");
const remote = args[args.indexOf("port-forward") + 2].slice(1);
const server = net.createServer((c) => { const u = net.connect(Number(ports[svc]), "127.0.0.1"); c.pipe(u); u.pipe(c); c.on("error", () => u.destroy()); u.on("error", () => c.destroy()); });
server.listen(0, "127.0.0.1", () => console.log("Forwarding from 127.0.0.1:" + server.address().port + " -> " + remote));
process.on("SIGTERM", () => process.exit(0));
`,
            { mode: 0o755 },
        );
        try {
            const run = await runScript("verify.ts", ["--stack", "dev", "--context", "test-cluster", "--wait", "60s"], {
                ...process.env,
                PATH: `${dir}${path.delimiter}${process.env.PATH}`,
                GRAFANA_PASSWORD: "",
            });
            expect(run.code, run.stdout + run.stderr).to.equal(0);
            expect(run.stdout).to.match(/ok +Grafana: every dashboard provisioned/);
            const calls = fs.readFileSync(path.join(dir, "calls"), "utf8").trim().split("\n");
            const forwards = calls.filter((c) => c.includes("port-forward"));
            expect(forwards.map((c) => c.split(" ").slice(1).join(" ")).sort()).to.deep.equal([
                "--context test-cluster -n proxy-monitor port-forward svc/alertmanager :9093",
                "--context test-cluster -n proxy-monitor port-forward svc/grafana :3000",
                "--context test-cluster -n proxy-monitor port-forward svc/prometheus :9090",
            ]);
            expect(calls.some((c) => c.includes("get secret -l app.kubernetes.io/name=grafana"))).to.equal(true);
            // Every port-forward it started is stopped when it exits.
            const alive = (pid: number) => {
                try {
                    process.kill(pid, 0);
                    return true;
                } catch {
                    return false;
                }
            };
            for (const c of forwards) expect(alive(Number(c.split(" ")[0])), c).to.equal(false);
        } finally {
            grafana.close();
        }
    });

    it("verify fails, naming what is missing: a vendor the stack has but no gateway serves, a dashboard Grafana lacks", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "verify-extra-vendor-"));
        const dev = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
        const vendors = dev.config["proxy-monitor:vendors"];
        vendors.push({
            ...vendors[0],
            name: "vendor-z",
            pools: [{ ...vendors[0].pools[0], host: "vendor-z-dc-us-east.proxy-sim.svc.cluster.local" }],
        });
        fs.writeFileSync(path.join(dir, "Pulumi.dev.yaml"), YAML.stringify(dev));
        fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
        const dashboards = Object.values(allDashboards(p.cfg)).map((d) => ({
            uid: String(d.uid),
            title: String(d.title),
        }));
        const grafana = await grafanaStandIn(dashboards.slice(1));
        try {
            const run = await runScript("verify.ts", [
                "--stack",
                "dev",
                "--config-dir",
                dir,
                ...urls,
                "--grafana",
                grafana.url,
                "--grafana-password",
                "pw",
            ]);
            expect(run.code, run.stdout + run.stderr).to.equal(1);
            expect(run.stdout).to.match(/FAIL +Gateways: .*vendor-z\/dc-us-east/);
            expect(run.stdout).to.match(
                new RegExp(`FAIL +Grafana: every dashboard provisioned: missing: ${dashboards[0].title}`),
            );
            expect(run.stdout).to.match(/ok +Prometheus: every scrape target up/);
        } finally {
            grafana.close();
        }
    });
});
