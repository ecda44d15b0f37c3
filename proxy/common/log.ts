/** Structured JSON logs, one object per line on stdout. */

export type LogFields = Record<string, unknown>;

export interface Logger {
    info(msg: string, fields?: LogFields): void;
    warn(msg: string, fields?: LogFields): void;
    error(msg: string, fields?: LogFields): void;
}

export function jsonLogger(component: string, out: (line: string) => void = (l) => process.stdout.write(l)): Logger {
    const write = (level: string, msg: string, fields?: LogFields) =>
        out(JSON.stringify({ ts: new Date().toISOString(), level, component, msg, ...fields }) + "\n");
    return {
        info: (m, f) => write("info", m, f),
        warn: (m, f) => write("warn", m, f),
        error: (m, f) => write("error", m, f),
    };
}

/** A logger that drops everything (tests, benchmarks). */
export const silentLogger: Logger = { info() {}, warn() {}, error() {} };
