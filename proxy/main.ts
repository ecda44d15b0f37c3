/**
 * The proxy program: one entry point, one mode per workload.
 *   node proxy.js <mode> --config <file.json|yaml>
 * Modes register in MODES; each validates its config file (and PROXY_MONITOR_* environment overrides) and runs
 * until SIGTERM or SIGINT, then shuts down gracefully (run.ts). The gateway also ships alone (gateway/cli.ts).
 */
import { jsonLogger } from "./common/log";
import { gatewayMode } from "./gateway/mode";
import { Generator } from "./generate";
import { validatePattern } from "./generate/pattern";
import { Mode, ModeName, runProgram } from "./run";
import { Target, validateTargetConfig } from "./target";
import { VendorSim, validateVendorSimConfig } from "./vendor-sim";

export type { Mode, Running } from "./run";

export const MODES: Record<ModeName, Mode> = {
    gateway: gatewayMode,
    "vendor-sim": async (raw, file) => {
        const s = new VendorSim(validateVendorSimConfig(raw, file), { logger: jsonLogger("vendor-sim") });
        await s.start();
        return s;
    },
    generate: async (raw, file) => {
        const g = new Generator(validatePattern(raw, file), { logger: jsonLogger("generate") });
        const done = g.done();
        await g.start();
        return {
            done: () => done,
            stop: async () => {
                const summary = await g.stop();
                process.stdout.write(JSON.stringify({ msg: "summary", ...summary }) + "\n");
            },
        };
    },
    target: async (raw, file) => {
        const t = new Target(validateTargetConfig(raw, file), { logger: jsonLogger("target") });
        await t.start();
        return t;
    },
};

export function main(argv: string[]): Promise<number> {
    return runProgram(argv, MODES);
}
