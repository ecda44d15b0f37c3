import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { startPipeline } from "../scripts/pipeline";
import { Teardown, exitReason, logTail, spawnLogged, stopProcesses, waitUntil } from "../scripts/processes";

/**
 * scripts/pipeline.ts starting and stopping (the e2e tests in tests/e2e/ check what it runs): a step that fails
 * midway stops what the earlier steps started, and says why at once; `stop()` leaves no process and no folder.
 */

/** Live (not zombie) processes whose command line mentions `text`: the pipeline's children name its folder. */
function processesMentioning(text: string): string[] {
    const found: string[] = [];
    for (const pid of fs.readdirSync("/proc").filter((d) => /^[0-9]+$/.test(d))) {
        try {
            const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").replace(/\0/g, " ");
            const state = fs.readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.[0];
            if (cmd.includes(text) && state !== "Z") found.push(`${pid} ${cmd.trim()}`);
        } catch {
            // exited while being read
        }
    }
    return found;
}

/** Runs `f` with a folder holding the given executables first on PATH, as the pipeline's children find them. */
async function withFakeBinaries<T>(files: Record<string, string>, f: () => Promise<T>): Promise<T> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "fake-bin-"));
    for (const [name, body] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), body, { mode: 0o755 });
    const saved = process.env.PATH;
    process.env.PATH = `${dir}${path.delimiter}${saved}`;
    try {
        return await f();
    } finally {
        process.env.PATH = saved;
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

/** The working folder the pipeline names in its first log line. */
function folderLog(): { log: (line: string) => void; folder: () => string } {
    let folder = "";
    return {
        log: (line) => (folder ||= /working folder (\S+?);/.exec(line)?.[1] ?? ""),
        folder: () => folder,
    };
}

describe("the local pipeline's start and stop", function () {
    this.timeout(90_000);

    it("when Prometheus exits at start, fails at once with its log, after stopping what the earlier steps started", async () => {
        // Answers --version (the tools check) and exits 1 otherwise, as Prometheus does with a config it refuses.
        const prometheus = `#!/bin/sh
if [ "$1" = "--version" ]; then echo "prometheus, version 0.0.0-fake"; exit 0; fi
echo "fake prometheus: refusing to start with $*" >&2
exit 1
`;
        const { log, folder } = folderLog();
        const started = Date.now();
        const error = await withFakeBinaries({ prometheus }, () =>
            startPipeline({ stack: "dev", fast: true, log }).then(
                (p) => (p.stop(), undefined),
                (e: Error) => e,
            ),
        );
        const seconds = (Date.now() - started) / 1000;
        expect(error, "startPipeline resolved").to.be.instanceOf(Error);
        expect(error!.message).to.match(/prometheus exited with code 1/i);
        expect(error!.message).to.include("fake prometheus: refusing to start");
        // Simulators, gateways, the generator and Alertmanager had started: all gone when the promise settles.
        expect(folder()).to.match(/local-dev-/);
        expect(processesMentioning(folder())).to.deep.equal([]);
        expect(fs.existsSync(folder()), "working folder left behind").to.equal(false);
        // The pipeline waits up to 30 s for a process that is running; one that has exited fails the step at once.
        expect(seconds).to.be.below(25);
    });

    it("stop() leaves no process it started and no working folder", async () => {
        const { log, folder } = folderLog();
        const p = await startPipeline({ stack: "dev", fast: true, log });
        let running: string[] = [];
        try {
            running = processesMentioning(folder());
        } finally {
            await p.stop();
        }
        // target, a simulator per pool, a gateway per vendor, the generator, Alertmanager and Prometheus
        const pools = p.cfg.vendors.reduce((n, v) => n + v.pools.length, 0);
        expect(running).to.have.length(1 + pools + p.cfg.vendors.length + 3);
        expect(processesMentioning(folder())).to.deep.equal([]);
        expect(fs.existsSync(folder())).to.equal(false);
    });
});

describe("scripts/processes.ts: stopping what a script started", function () {
    this.timeout(30_000);
    const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "processes-"));

    it("a teardown undoes its steps last first, runs every one once even when one fails, and reports the failure", async () => {
        const t = new Teardown();
        const ran: string[] = [];
        t.add("folder", () => void ran.push("folder"));
        t.add("gateways", async () => {
            ran.push("gateways");
            throw new Error("gone already");
        });
        t.add("prometheus", () => void ran.push("prometheus"));
        const error = await t.run().then(
            () => undefined,
            (e: Error) => e,
        );
        await t.run().catch(() => undefined);
        expect(ran).to.deep.equal(["prometheus", "gateways", "folder"]);
        expect(error?.message).to.equal("stopping: gateways: gone already");
    });

    it("stops a child that ignores SIGTERM with SIGKILL after the grace period, and resolves once it has exited", async () => {
        const dir = tmp();
        try {
            const stubborn = spawnLogged(
                ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.1; done"],
                path.join(dir, "stubborn.log"),
            );
            const polite = spawnLogged(["sleep", "60"], path.join(dir, "polite.log"));
            await waitUntil("the stubborn child", async () => logTail(stubborn) === "ready", 5_000);
            const started = Date.now();
            await stopProcesses([stubborn, polite], 1_000);
            const ms = Date.now() - started;
            expect(exitReason(polite)).to.equal("was killed by SIGTERM");
            expect(exitReason(stubborn)).to.equal("was killed by SIGKILL");
            expect(ms).to.be.within(900, 4_000);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("a command that cannot be started fails the wait for it with the reason, instead of crashing the script", async () => {
        const dir = tmp();
        try {
            const c = spawnLogged(["no-such-command-proxy-monitor"], path.join(dir, "x.log"));
            const error = await waitUntil("x", async () => false, 5_000, { "the x server": c }).catch((e: Error) => e);
            expect((error as Error).message).to.match(
                /^the x server could not be started: .*ENOENT.* while waiting for x$/,
            );
            await stopProcesses([c], 1_000);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
