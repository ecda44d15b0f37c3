/**
 * `npm run local -- --stack dev [--duration 5m] [--fast]`: renders the stack's configuration and runs it for real on
 * 127.0.0.1 (see scripts/pipeline.ts), printing a line per step while it starts, then a refreshing per-vendor table
 * (scripts/local-view.ts), the alerts firing and the notifications received. Stops everything it started at the end
 * of the duration or on Ctrl-C, and removes its working folder.
 */
import { durationMs } from "../components/validate";
import { command, helpText, parseCommand } from "./cli";
import { formatNotifications, screen } from "./local-view";
import { startPipeline, unsimulatedPools, loadStack } from "./pipeline";

export const LOCAL = command({
    usage: "npm run local --",
    description: `
Runs a stack's generated configuration for real on 127.0.0.1: a target, one vendor simulator per pool, one gateway
per vendor, the load generator, Debian's prometheus and prometheus-alertmanager with the generated configs and
rules, and a webhook that records notifications. Every pool of the stack must be simulated (dev's are). Prints a
per-vendor table (generator rate, requests/s, tunnels/s, success, p95 against the SLA, bandwidth, cost), the alerts
firing and the notifications received; stops everything on exit or Ctrl-C.`,
    flags: {
        stack: { type: "string", value: "<name>", help: "stack whose Pulumi.<name>.yaml to run", default: "dev" },
        duration: { type: "string", value: "<duration>", help: "how long to run, e.g. 90s, 2m", default: "5m" },
        fast: {
            type: "boolean",
            help: "2 s scrape and evaluation, 20 s rule windows, short alert waits; the table shows 1-minute rates",
        },
        rps: { type: "string", value: "<n>", help: "generator requests per second", defaultText: "the stack's" },
    },
});

function args(argv: string[]) {
    const v = parseCommand(LOCAL, argv);
    const fail = (m: string) => {
        process.stderr.write(`local: ${m}\n\n${helpText(LOCAL)}`);
        process.exit(2);
    };
    if (!/^([0-9]+(ms|s|m|h))+$/.test(v.duration!)) fail(`--duration: expected a duration such as 90s or 2m`);
    const rps = v.rps === undefined ? undefined : Number(v.rps);
    if (rps !== undefined && !(rps > 0)) fail(`--rps: expected a number above 0, found ${v.rps}`);
    return { stack: v.stack!, durationMs: durationMs(v.duration!), fast: v.fast, rps };
}

async function main(): Promise<void> {
    const a = args(process.argv.slice(2));
    const cfg = loadStack(a.stack);
    const unsimulated = unsimulatedPools(cfg);
    if (unsimulated.length > 0) {
        process.stderr.write(
            `local: stack ${a.stack} has pools that are not simulated (${unsimulated.join(", ")}); nothing was started.\n` +
                "npm run local runs only stacks whose every pool has a `simulator` (such as dev): it has no vendor " +
                "accounts to reach real pools.\nTo preview this stack's objects offline: npm run render -- --stack " +
                `${a.stack}\n`,
        );
        process.exit(1);
    }
    const log = (l: string) => process.stdout.write(`[${new Date().toISOString().slice(11, 19)}] ${l}\n`);
    let stopping = false;
    let interrupted = false;
    // Ctrl-C while starting: stop as soon as what was started can be stopped (startPipeline returns).
    let stopNow: () => Promise<void> = async () => {
        interrupted = true;
        log("interrupted: stopping once the processes starting now are up");
    };
    process.on("SIGINT", () => void stopNow());
    process.on("SIGTERM", () => void stopNow());
    const p = await startPipeline({ stack: a.stack, fast: a.fast, requestsPerSecond: a.rps, log });
    const started = Date.now();
    const stop = async () => {
        if (stopping) return;
        stopping = true;
        log("stopping: every process started, then the working folder");
        await p.stop();
        process.stdout.write(`notifications received: ${formatNotifications(p.notifications)}\n`);
        process.exit(0);
    };
    stopNow = stop;
    if (interrupted) return stop();
    const tty = process.stdout.isTTY;
    log(
        `running for ${a.durationMs / 1000} s; the table refreshes every ${a.fast ? 5 : 10} s` +
            (tty ? "" : " (one block per refresh)"),
    );
    const end = started + a.durationMs;
    while (Date.now() < end && !stopping) {
        await new Promise((r) => setTimeout(r, Math.min(a.fast ? 5_000 : 10_000, Math.max(0, end - Date.now()))));
        if (stopping) return;
        const text = await screen(p.cfg, a.fast, p.query, p.notifications, (Date.now() - started) / 1000).catch(
            (e: Error) => `Prometheus did not answer: ${e.message}`,
        );
        // On a terminal the screen is redrawn in place; in a log, blocks follow each other.
        process.stdout.write(tty ? `\x1b[2J\x1b[H${text}\n(Ctrl-C to stop)\n` : `\n${text}\n`);
    }
    await stop();
}

main().catch((e: Error) => {
    process.stderr.write(`local: ${e.message}\n`);
    process.exit(1);
});
