/**
 * `npm run local -- --stack dev [--duration 5m] [--fast]`: renders the stack's configuration and runs it for real on
 * 127.0.0.1 (see scripts/pipeline.ts), printing a live per-vendor table read from Prometheus by the dashboards' own
 * recorded series. Stops everything it started at the end of the duration or on Ctrl-C.
 */
import { R } from "../catalog";
import { durationMs } from "../components/validate";
import { Pipeline, startPipeline } from "./pipeline";

function args(argv: string[]): { stack: string; durationMs: number; fast: boolean } {
    let stack = "dev";
    let duration = "5m";
    let fast = false;
    for (let i = 0; i < argv.length; i++) {
        if (argv[i] === "--stack") stack = argv[++i];
        else if (argv[i] === "--duration") duration = argv[++i];
        else if (argv[i] === "--fast") fast = true;
        else
            throw new Error(
                `unknown argument ${argv[i]} (usage: npm run local -- --stack dev [--duration 5m] [--fast])`,
            );
    }
    if (!/^([0-9]+(ms|s|m|h))+$/.test(duration))
        throw new Error(`--duration: expected a duration such as 90s or 2m, found ${duration}`);
    return { stack, durationMs: durationMs(duration), fast };
}

async function table(p: Pipeline): Promise<string> {
    const byVendor = async (q: string) =>
        Object.fromEntries((await p.query(q)).map((s) => [s.metric.vendor, Number(s.value[1])]));
    const [rate, success, p95, bw, cost] = await Promise.all([
        byVendor(R.vendorRequests),
        byVendor(R.vendorSuccessRatio),
        byVendor(`${R.vendorLatencyQuantile}{quantile="0.95"}`),
        byVendor(R.vendorBandwidth),
        byVendor(R.vendorCostPerHour),
    ]);
    const f = (n: number | undefined, d = 1) => (n === undefined || Number.isNaN(n) ? "-" : n.toFixed(d));
    const rows = p.cfg.vendors.map((v) =>
        [
            v.name.padEnd(12),
            f(rate[v.name]).padStart(8),
            `${f((success[v.name] ?? NaN) * 100, 2)}%`.padStart(9),
            f(p95[v.name], 0).padStart(8),
            f((bw[v.name] ?? NaN) / 1024).padStart(10),
            f(cost[v.name], 4).padStart(10),
        ].join(" "),
    );
    return [
        [
            "vendor".padEnd(12),
            "req/s".padStart(8),
            "success".padStart(9),
            "p95 ms".padStart(8),
            "KiB/s".padStart(10),
            "cost/h".padStart(10),
        ].join(" "),
        ...rows,
    ].join("\n");
}

async function main(): Promise<void> {
    const a = args(process.argv.slice(2));
    const p = await startPipeline({ stack: a.stack, fast: a.fast, log: (l) => process.stdout.write(l + "\n") });
    let stopping = false;
    const stop = async () => {
        if (stopping) return;
        stopping = true;
        process.stdout.write("stopping...\n");
        await p.stop();
        process.stdout.write(`notifications received: ${p.notifications.length}\n`);
        process.exit(0);
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    const end = Date.now() + a.durationMs;
    while (Date.now() < end && !stopping) {
        await new Promise((r) => setTimeout(r, Math.min(10_000, Math.max(0, end - Date.now()))));
        if (stopping) return;
        process.stdout.write(`\n${new Date().toISOString()}\n${await table(p).catch((e: Error) => e.message)}\n`);
    }
    await stop();
}

main().catch((e: Error) => {
    process.stderr.write(`local: ${e.message}\n`);
    process.exit(1);
});
