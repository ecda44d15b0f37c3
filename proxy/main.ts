/**
 * The proxy program: one entry point, one mode per workload.
 *   node proxy.js <mode> --config <file.json|yaml>
 * Modes register in MODES; each validates its config file (and PROXY_MONITOR_* environment overrides) and runs
 * until SIGTERM or SIGINT, then shuts down gracefully.
 */
import { ProgramConfigError, applyEnv, readConfigFile } from "./common/config-file";
import { jsonLogger } from "./common/log";
import { Gateway } from "./gateway/server";
import { validateGatewayConfig } from "./gateway/config";
import { Generator } from "./generate";
import { validatePattern } from "./generate/pattern";
import { Target, validateTargetConfig } from "./target";
import { VendorSim, validateVendorSimConfig } from "./vendor-sim";

/** A running mode: stop() shuts it down gracefully; done() resolves when it ends by itself. */
export interface Running {
    stop(): Promise<unknown>;
    done?(): Promise<void>;
}

export type Mode = (config: unknown, file: string) => Promise<Running>;

const ENV_PREFIX = "PROXY_MONITOR_";

export const MODES: Record<string, Mode> = {
    gateway: async (raw, file) => {
        const g = new Gateway(validateGatewayConfig(raw, file), { logger: jsonLogger("gateway") });
        await g.start();
        return g;
    },
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

function usage(): string {
    return `usage: proxy <${Object.keys(MODES).join("|")}> --config <file.json|file.yaml>\n`;
}

export async function main(argv: string[]): Promise<number> {
    const [mode, ...rest] = argv;
    if (mode === "--help" || mode === "-h" || rest.includes("--help") || rest.includes("-h")) {
        process.stdout.write(
            usage() +
                "\nRuns one mode of the program the pods run: gateway, vendor-sim, generate or target.\n\nflags:\n" +
                "  --config <file>  the mode's config file, JSON or YAML (PROXY_MONITOR_* environment variables override it)\n" +
                "  -h, --help       print this help and exit\n",
        );
        return 0;
    }
    const run = MODES[mode];
    const i = rest.indexOf("--config");
    const file = i >= 0 ? rest[i + 1] : undefined;
    if (!run || !file) {
        process.stderr.write(usage());
        return 2;
    }
    let running: Running;
    try {
        running = await run(applyEnv(readConfigFile(file), ENV_PREFIX), file);
    } catch (e) {
        if (e instanceof ProgramConfigError) {
            process.stderr.write(e.message + "\n");
            return 2;
        }
        throw e;
    }
    await new Promise<void>((resolve) => {
        const onSignal = () => resolve();
        process.once("SIGTERM", onSignal);
        process.once("SIGINT", onSignal);
        running.done?.().then(onSignal);
    });
    await running.stop();
    return 0;
}
