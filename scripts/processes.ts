/**
 * Child processes of the scripts (the local pipeline, verify's port-forwards, the benchmarks): started with their
 * output in a log file, waited for while noticing when they exit, and stopped (SIGTERM, then SIGKILL after a grace
 * period) with every exit awaited. `Teardown` undoes the steps of a script in reverse order.
 */
import { ChildProcess, spawn } from "child_process";
import * as fs from "fs";

/** Why a child is no longer running (`undefined` while it runs). */
export function exitReason(c: ChildProcess): string | undefined {
    const error = spawnErrors.get(c);
    if (error) return `could not be started: ${error.message}`;
    if (c.exitCode !== null) return `exited with code ${c.exitCode}`;
    if (c.signalCode !== null) return `was killed by ${c.signalCode}`;
    return undefined;
}

const spawnErrors = new WeakMap<ChildProcess, Error>();
const logFiles = new WeakMap<ChildProcess, string>();

/**
 * Spawns `argv` with stdout and stderr appended to `logFile`. A spawn error (command not found) is kept for
 * `exitReason` instead of crashing the script, which would leave the other children running.
 */
export function spawnLogged(argv: readonly string[], logFile: string): ChildProcess {
    const out = fs.openSync(logFile, "a");
    try {
        const c = spawn(argv[0], argv.slice(1), { stdio: ["ignore", out, out] });
        c.on("error", (e) => spawnErrors.set(c, e));
        logFiles.set(c, logFile);
        return c;
    } finally {
        fs.closeSync(out);
    }
}

/** The last lines of a child's log (from `spawnLogged`), for an error message. */
export function logTail(c: ChildProcess, lines = 10): string {
    const file = logFiles.get(c);
    if (!file || !fs.existsSync(file)) return "";
    return fs.readFileSync(file, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `check` every 200 ms for up to `ms`, and fails at once, with the child's log, when one of `children` (named
 * by the record's keys) is no longer running: a process that exited will never become ready.
 */
export async function waitUntil(
    what: string,
    check: () => Promise<boolean>,
    ms: number,
    children: Readonly<Record<string, ChildProcess>> = {},
): Promise<void> {
    const deadline = Date.now() + ms;
    for (;;) {
        for (const [name, c] of Object.entries(children)) {
            const reason = exitReason(c);
            if (reason) {
                const tail = logTail(c);
                throw new Error(`${name} ${reason} while waiting for ${what}${tail ? `; its log ends:\n${tail}` : ""}`);
            }
        }
        if (await check().catch(() => false)) return;
        if (Date.now() >= deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
        await sleep(200);
    }
}

/**
 * Stops the children still running: SIGTERM, up to `graceMs` for them to exit, then SIGKILL; resolves once every one
 * has exited (a child that does not even die of SIGKILL within 5 s is left, so this is bounded).
 */
export async function stopProcesses(children: readonly ChildProcess[], graceMs: number): Promise<void> {
    const running = children.filter((c) => c.pid !== undefined && exitReason(c) === undefined);
    const exited = (c: ChildProcess) =>
        new Promise<void>((r) => (exitReason(c) === undefined ? c.once("exit", () => r()) : r()));
    const within = (ms: number, cs: ChildProcess[]) => Promise.race([Promise.all(cs.map(exited)), sleep(ms)]);
    for (const c of running) c.kill("SIGTERM");
    await within(graceMs, running);
    const stubborn = running.filter((c) => exitReason(c) === undefined);
    for (const c of stubborn) c.kill("SIGKILL");
    await within(5_000, stubborn);
}

/**
 * What a script has started, undone in reverse order: each step adds how to stop what it started as soon as it has
 * started it, so a later step failing stops exactly what exists. Every action runs once, even when one fails.
 */
export class Teardown {
    private readonly actions: { name: string; stop: (graceMs: number) => Promise<void> | void }[] = [];
    private done?: Promise<void>;

    add(name: string, stop: (graceMs: number) => Promise<void> | void): void {
        if (this.done) throw new Error(`${name}: added after the teardown ran`);
        this.actions.push({ name, stop });
    }

    /** Runs every action, last added first, each with what remains of `graceMs`; rejects with the failures. */
    run(graceMs = 10_000): Promise<void> {
        this.done ??= (async () => {
            const deadline = Date.now() + graceMs;
            const failures: string[] = [];
            for (const a of [...this.actions].reverse()) {
                try {
                    await a.stop(Math.max(0, deadline - Date.now()));
                } catch (e) {
                    failures.push(`${a.name}: ${(e as Error).message}`);
                }
            }
            if (failures.length > 0) throw new Error(`stopping: ${failures.join("; ")}`);
        })();
        return this.done;
    }

    /** Runs `f`; when it throws, runs the teardown, then rethrows the error of `f`. */
    async undoOnError<T>(f: () => Promise<T>): Promise<T> {
        try {
            return await f();
        } catch (e) {
            await this.run().catch(() => undefined);
            throw e;
        }
    }
}
