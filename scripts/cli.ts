/**
 * One way for every script to read its flags: a declared list of flags (Node's own `util.parseArgs` does the
 * parsing), `--help` printed from that same list, and an unknown flag or a missing value answered with the usage
 * and exit code 2. A script's help can therefore not forget a flag it accepts.
 */
import { parseArgs } from "util";

export interface Flag {
    /** `string` takes a value (`--stack dev` or `--stack=dev`); `boolean` is a switch. */
    readonly type: "string" | "boolean";
    /** One line: what the flag does, with its default. */
    readonly help: string;
    /** Placeholder of the value in the usage line, e.g. `<name>`. */
    readonly value?: string;
    readonly short?: string;
    /** The value when the flag is not given. */
    readonly default?: string;
    /** How the help shows the default when it is not a literal value (e.g. `rendered/<name>`). */
    readonly defaultText?: string;
}

export interface Command<F extends Record<string, Flag>> {
    /** How the script is started, e.g. `npm run render --`. */
    readonly usage: string;
    /** What it does, a few lines. */
    readonly description: string;
    readonly flags: F;
}

export type Parsed<F extends Record<string, Flag>> = {
    [K in keyof F]: F[K]["type"] extends "boolean" ? boolean : string | undefined;
};

/** Declares a command; the flags keep their literal types, so parsed values are typed. */
export function command<F extends Record<string, Flag>>(c: Command<F>): Command<F> {
    return c;
}

/** The `--help` text: usage, description, one line per flag. */
export function helpText<F extends Record<string, Flag>>(c: Command<F>): string {
    const rows = Object.entries(c.flags).map(([name, f]) => {
        const left = `${f.short ? `-${f.short}, ` : ""}--${name}${f.type === "string" ? ` ${f.value ?? "<value>"}` : ""}`;
        const dflt = f.defaultText ?? f.default;
        return [left, f.help + (dflt !== undefined ? ` (default: ${dflt})` : "")];
    });
    rows.push(["-h, --help", "print this help and exit"]);
    const width = Math.max(...rows.map(([l]) => l.length)) + 2;
    return (
        `usage: ${c.usage} [flags]\n\n${c.description.trim()}\n\nflags:\n` +
        rows.map(([l, r]) => `  ${l.padEnd(width)}${r}`).join("\n") +
        "\n"
    );
}

/**
 * Parses `argv` against the command's flags. `--help` prints the help and exits 0; a flag that is not declared, a
 * missing value or a positional argument prints the problem and the help on stderr and exits 2.
 */
export function parseCommand<F extends Record<string, Flag>>(c: Command<F>, argv: string[]): Parsed<F> {
    if (argv.includes("--help") || argv.includes("-h")) {
        process.stdout.write(helpText(c));
        process.exit(0);
    }
    try {
        const { values } = parseArgs({
            args: argv,
            strict: true,
            allowPositionals: false,
            options: Object.fromEntries(
                Object.entries(c.flags).map(([name, f]) => [
                    name,
                    {
                        type: f.type,
                        ...(f.short ? { short: f.short } : {}),
                        ...(f.default ? { default: f.default } : {}),
                    },
                ]),
            ),
        });
        for (const [name, f] of Object.entries(c.flags))
            if (f.type === "boolean" && values[name] === undefined) (values as Record<string, unknown>)[name] = false;
        return values as Parsed<F>;
    } catch (e) {
        process.stderr.write(`${(e as Error).message}\n\n${helpText(c)}`);
        process.exit(2);
    }
}
