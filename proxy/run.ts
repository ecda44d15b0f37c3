/**
 * Running the program: the mode named on the command line, its config file validated (with PROXY_MONITOR_*
 * environment overrides), until SIGTERM or SIGINT, then a graceful stop. Shared by the two bundles the program ships
 * as (proxy/loader.ts): every mode (proxy/cli.ts), and the gateway alone (proxy/gateway/cli.ts).
 */
import { ProgramConfigError, applyEnv, readConfigFile } from "./common/config-file";

/** A running mode: stop() shuts it down gracefully; done() resolves when it ends by itself. */
export interface Running {
    stop(): Promise<unknown>;
    done?(): Promise<void>;
}

export type Mode = (config: unknown, file: string) => Promise<Running>;

/** Every mode of the program, whichever bundle runs: the usage names them all. */
export const MODE_NAMES = ["gateway", "vendor-sim", "generate", "target"] as const;
export type ModeName = (typeof MODE_NAMES)[number];

const ENV_PREFIX = "PROXY_MONITOR_";

function usage(): string {
    return `usage: proxy <${MODE_NAMES.join("|")}> --config <file.json|file.yaml>\n`;
}

/** Runs the mode `argv` names, from `modes`; resolves to the exit code. */
export async function runProgram(argv: string[], modes: Partial<Record<ModeName, Mode>>): Promise<number> {
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
    const run = Object.hasOwn(modes, mode) ? modes[mode as ModeName] : undefined;
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

/** A bundle's entry: runs `modes` on the process's arguments and exits with the code (1 and the stack on a crash). */
export function runAsEntry(modes: Partial<Record<ModeName, Mode>>): void {
    runProgram(process.argv.slice(2), modes).then(
        (code) => process.exit(code),
        (e: Error) => {
            process.stderr.write(`${e.stack ?? e.message}\n`);
            process.exit(1);
        },
    );
}
