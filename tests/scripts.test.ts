import { execFile } from "child_process";
import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { Goals, measured, missingTools } from "../scripts/bench-checks";
import { TEST_TOOLS } from "../scripts/test-tools";
import { COLUMNS, formatAlerts, formatNotifications, formatTable, tableQueries, windowed } from "../scripts/local-view";
import { buildRecordingRules } from "../components/prometheus";
import { R } from "../catalog";
import { ROOT, stackConfig } from "./harness";
import { promqlErrors, selectedMetrics } from "./promql";

const scripts = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8")).scripts as Record<string, string>;

/** npm scripts that run a TypeScript file with ts-node, and that file. */
const tsScripts = Object.entries(scripts)
    .map(([name, cmd]) => [name, /^ts-node --transpile-only (\S+\.ts)$/.exec(cmd)?.[1]] as const)
    .filter((x): x is readonly [string, string] => x[1] !== undefined);

function run(
    file: string,
    args: string[],
    env: NodeJS.ProcessEnv = process.env,
    timeout = 60_000,
): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
        execFile(
            process.execPath,
            [require.resolve("ts-node/dist/bin.js"), "--transpile-only", path.join(ROOT, file), ...args],
            { cwd: ROOT, env, timeout },
            (err, stdout, stderr) => {
                const code = err ? ((err as { code?: number }).code ?? 1) : 0;
                resolve({ code: typeof code === "number" ? code : 1, stdout, stderr });
            },
        );
    });
}

/** A PATH of one folder holding only the given executables (shell scripts, or links to real ones). */
function fakePath(files: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-path-"));
    for (const [name, body] of Object.entries(files)) {
        const f = path.join(dir, name);
        if (body.startsWith("/")) fs.symlinkSync(body, f);
        else fs.writeFileSync(f, body, { mode: 0o755 });
    }
    return dir;
}

function which(bin: string): string {
    for (const d of (process.env.PATH ?? "").split(path.delimiter)) {
        const f = path.join(d, bin);
        if (fs.existsSync(f)) return f;
    }
    throw new Error(`${bin} is not installed`);
}

describe("scripts: help, tool checks, honest results", function () {
    this.timeout(120_000);

    it("every npm script that runs a script has --help listing its flags, and rejects an unknown flag", async () => {
        expect(tsScripts.map(([n]) => n)).to.include.members([
            "render",
            "local",
            "verify",
            "dashboards",
            "loadgen",
            "bench:gateway",
            "bench:loadgen",
            "bench:fleet",
        ]);
        // Flags the README and the docs pass to each script.
        const docs = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).map((f) => `docs/${f}`)]
            .map((f) => fs.readFileSync(path.join(ROOT, f), "utf8"))
            .join("\n");
        // An unknown flag is checked on two scripts (they share the parser); --help on every one.
        const results = await Promise.all(
            tsScripts.map(async ([name, file]) => ({
                name,
                help: await run(file, ["--help"]),
                bad: ["render", "local"].includes(name) ? await run(file, ["--no-such-flag"]) : undefined,
            })),
        );
        for (const { name, help, bad } of results) {
            expect(help.code, `${name} --help: ${help.stderr}`).to.equal(0);
            expect(help.stdout, name).to.match(/^usage: /);
            const listed = new Set([...help.stdout.matchAll(/(?<![a-z-])(--[a-z][a-z-]*)/g)].map((m) => m[1]));
            for (const m of docs.matchAll(new RegExp(`npm run ${name.replace(":", "\\:")} -- ([^\`\\n]*)`, "g")))
                for (const flag of m[1].matchAll(/(--[a-z][a-z-]*)/g))
                    expect([...listed], `${name}: the docs use ${flag[1]}`).to.include(flag[1]);
            if (bad) expect(bad.code, `${name} --no-such-flag`).to.equal(2);
        }
    });

    it("bench:gateway and bench:fleet stop before measuring, with the install command, when a tool is missing", async () => {
        const empty = fakePath({});
        const gw = await run("scripts/bench-gateway.ts", [], { ...process.env, PATH: empty });
        expect(gw.code, gw.stderr).to.equal(3);
        expect(gw.stderr)
            .to.contain("wrk, tinyproxy, taskset not found")
            .and.to.contain("sudo apt-get install -y wrk tinyproxy util-linux");
        expect(gw.stdout).to.not.contain("Goals");
        const fleet = await run("scripts/bench-fleet.ts", ["--pods", "100"], { ...process.env, PATH: empty });
        expect(fleet.code, fleet.stderr).to.equal(3);
        expect(fleet.stderr).to.contain("sudo apt-get install -y prometheus");
        expect(missingTools([{ bin: "node", pkg: "nodejs" }], path.dirname(process.execPath))).to.equal(undefined);
    });

    it("npm test stops at once, with the one install command, on a machine that has only Node", async () => {
        const onlyNode = fakePath({ node: process.execPath });
        const r = await run("scripts/test-tools.ts", [], { ...process.env, PATH: onlyNode });
        expect(r.code, r.stderr).to.equal(1);
        const installs = r.stderr.split("\n").filter((l) => l.includes("apt-get install"));
        expect(installs, r.stderr).to.have.length(1);
        for (const pkg of new Set(TEST_TOOLS.map((t) => t.pkg)))
            expect(installs[0]).to.match(new RegExp(`[ ]${pkg}( |$)`));
        // npm test runs the check before anything else.
        expect(scripts.test.split(" && ")[0]).to.equal("npm run test:tools");
        // Where everything is installed (this machine, as CI), the check passes.
        const here = await run("scripts/test-tools.ts", []);
        expect(here.code, here.stderr).to.equal(0);
    });

    it(".ci/run installs every package the tests need", () => {
        const ci = fs.readFileSync(path.join(ROOT, ".ci/run"), "utf8");
        const listed = /apt_packages=\(([^)]*)\)/.exec(ci)?.[1].split(/\s+/) ?? [];
        for (const t of TEST_TOOLS) expect(listed, `${t.bin} (${t.pkg})`).to.include(t.pkg);
    });

    it("bench:gateway never calls a goal met on figures it did not measure (a wrk that measures nothing)", async () => {
        // wrk is present but prints no figure (as a broken or foreign wrk would): every req/s reads 0.
        const bin = fakePath({
            wrk: "#!/bin/sh\nexit 0\n",
            tinyproxy: which("tinyproxy"),
            getconf: which("getconf"),
            taskset: which("taskset"),
        });
        const r = await run(
            "scripts/bench-gateway.ts",
            [],
            { ...process.env, PATH: `${bin}${path.delimiter}${path.dirname(process.execPath)}`, BENCH_SECONDS: "1" },
            90_000,
        );
        expect(r.code, r.stderr).to.equal(1);
        const goals = r.stdout.split("\n").filter((l) => l.startsWith("- "));
        expect(goals).to.have.length(7);
        expect(goals[0]).to.match(
            /plain-HTTP request.*: NOT MEASURED \(gateway CPU per request = NaN, proxy-chain CPU per request = NaN\)\.$/,
        );
        expect(goals[2]).to.match(/pinned.*plain HTTP.*: NOT MEASURED/);
        expect(goals[6]).to.match(/metrics cost.*: NOT MEASURED/);
        // The tunnel goals do not use wrk: they are judged.
        expect(goals[1]).to.match(/CONNECT tunnel.*: (met|missed)\.$/);
        expect(goals[3]).to.match(/pinned.*tunnels.*: (met|missed)\.$/);
        expect(r.stdout).to.not.match(/NaN.*: met/);
        expect(r.stderr).to.contain("wrk gave no figure");
    });

    it("a goal is judged only on measured figures: NaN, infinity, zero and missing are failures", () => {
        for (const bad of [NaN, Infinity, 0, -1, undefined]) expect(measured(bad), String(bad)).to.equal(false);
        expect(measured(0.5)).to.equal(true);
        const g = new Goals();
        expect(g.add("x", { a: 0, b: 0 }, () => true)).to.equal("- x: NOT MEASURED (a = 0, b = 0).");
        expect(g.add("y", { a: NaN }, () => true)).to.contain("NOT MEASURED (a = NaN)");
        expect(g.add("z", { a: 2, b: 1 }, () => true)).to.equal("- z: met.");
        expect(g.add("w", { a: 1, b: 2 }, () => false)).to.equal("- w: missed.");
        expect(g.exitCode).to.equal(1);
        const ok = new Goals();
        ok.add("w", { a: 1 }, () => false);
        expect(ok.exitCode, "a missed goal is a result, not a failed run").to.equal(0);
    });

    it("npm run local refuses a stack whose pools are not simulated, before starting anything or writing a folder", async () => {
        const before = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("local-prod-"));
        const r = await run("scripts/local.ts", ["--stack", "prod"]);
        expect(r.code).to.equal(1);
        expect(r.stderr).to.contain("stack prod has pools that are not simulated (vendor-a/dc-us-east");
        expect(r.stderr).to.contain("nothing was started");
        expect(r.stderr).to.not.match(/\n\s+at /);
        const after = fs.readdirSync(os.tmpdir()).filter((f) => f.startsWith("local-prod-"));
        expect(after).to.deep.equal(before);
    });
});

describe("npm run local's table", () => {
    const cfg = stackConfig("dev");

    it('says "waiting for the first evaluation" until Prometheus has data', () => {
        const text = formatTable(cfg, true, {});
        expect(text).to.contain("rates over 1m (--fast)").and.to.contain("waiting for the first evaluation");
        expect(text).to.not.contain("vendor-a");
    });

    it("has its columns in order, marks an SLA breach, and does not judge a p95 of a few answers", () => {
        const f = {
            generator: { "vendor-a": 12, "vendor-b": 6, "vendor-c": 2 },
            requests: { "vendor-a": 1.5, "vendor-b": 0.5, "vendor-c": 0.25 },
            tunnels: { "vendor-a": 0.1 },
            success: { "vendor-a": 0.999, "vendor-b": 0.9, "vendor-c": 1 },
            p95: { "vendor-a": 900, "vendor-b": 1000, "vendor-c": 9000 },
            samples: { "vendor-a": 120, "vendor-b": 60, "vendor-c": 4 },
            bandwidth: { "vendor-a": 2048, "vendor-b": 1024, "vendor-c": 512 },
            cost: { "vendor-a": 1, "vendor-b": 2, "vendor-c": 3 },
        };
        const lines = formatTable(cfg, false, f).split("\n");
        expect(lines[0]).to.equal("rates over 5m (the dashboards' recorded series)");
        expect(lines[1].split(/\s{2,}/)).to.deep.equal([...COLUMNS]);
        const row = (v: string) => lines.find((l) => l.startsWith(v))!.split(/\s{2,}/);
        expect(row("vendor-a")).to.deep.equal([
            "vendor-a",
            "12.00",
            "1.50",
            "0.10",
            "99.90%",
            "99.50%",
            "900 !",
            "800",
            "120",
            "2.0",
            "1.0000",
        ]);
        expect(row("vendor-b")[4]).to.equal("90.00% !");
        expect(row("vendor-c")[6], "4 answers: shown, not judged").to.equal("9000 ?");
        expect(row("vendor-c")[3], "no tunnel series while requests exist: 0").to.equal("0.00");
    });

    it("names each notification and firing alert by alert name and vendor (and pool)", () => {
        const n: { status: string; labels: Record<string, string> }[] = [
            { status: "firing", labels: { alertname: "VendorPoolDown", vendor: "vendor-b", pool: "res-us" } },
            { status: "firing", labels: { alertname: "VendorPoolDown", vendor: "vendor-b", pool: "res-us" } },
            { status: "firing", labels: { alertname: "VendorRefusalsHigh", vendor: "vendor-c" } },
            { status: "resolved", labels: { alertname: "VendorRefusalsHigh", vendor: "vendor-c" } },
        ];
        expect(formatNotifications(n)).to.equal(
            "4: firing VendorPoolDown (vendor-b/res-us) x2; firing VendorRefusalsHigh (vendor-c); resolved VendorRefusalsHigh (vendor-c)",
        );
        expect(formatNotifications([])).to.equal("0");
        const alerts: { metric: Record<string, string>; value: [number, string] }[] = [
            { metric: { alertname: "Watchdog" }, value: [0, "1"] as [number, string] },
            {
                metric: { alertname: "VendorPoolDown", vendor: "vendor-b", pool: "res-us" },
                value: [0, "1"] as [number, string],
            },
        ];
        expect(formatAlerts(alerts)).to.equal("VendorPoolDown (vendor-b/res-us), Watchdog");
        expect(formatAlerts([])).to.equal("none");
    });

    it("under --fast, evaluates the recording rules' own expressions over 1 minute, reading only raw series and :config", () => {
        const rules = buildRecordingRules(cfg).groups.flatMap((g) => g.rules);
        for (const [name, q] of Object.entries(tableQueries(cfg, true))) {
            expect(promqlErrors(q), `${name}: ${q}`).to.deep.equal([]);
            expect(q, name).to.not.contain("[5m]");
            for (const m of selectedMetrics(q))
                expect(!m.includes(":") || m.endsWith(":config"), `${name} reads ${m}`).to.equal(true);
        }
        expect(windowed(rules, R.vendorRequests, "1m")).to.contain("[1m]");
        expect(() => windowed(rules, R.vendorLatencyQuantile, "1m")).to.throw(/rules record it/);
        // Without --fast it reads the recorded series the dashboards read.
        expect(tableQueries(cfg, false).success).to.equal(R.vendorSuccessRatio);
    });
});
