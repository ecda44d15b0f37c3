/**
 * Loading a mode's config file (JSON or YAML) and reading its fields with errors that name the key path. The
 * checks mirror the stack config's (components/validate.ts) but the program stays free of Pulumi.
 */
import * as fs from "fs";
import YAML from "yaml";

export class ProgramConfigError extends Error {
    constructor(
        public readonly file: string,
        public readonly problems: string[],
    ) {
        super(`${file}: ${problems.length} problem(s):\n${problems.map((p) => `  ${p}`).join("\n")}`);
        this.name = "ProgramConfigError";
    }
}

/** Parses a JSON or YAML file (by extension; YAML is a superset of JSON, so anything else is read as YAML). */
export function readConfigFile(file: string): unknown {
    const text = fs.readFileSync(file, "utf8");
    try {
        return file.endsWith(".json") ? JSON.parse(text) : YAML.parse(text);
    } catch (e) {
        throw new ProgramConfigError(file, [
            `not valid ${file.endsWith(".json") ? "JSON" : "YAML"}: ${(e as Error).message}`,
        ]);
    }
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const shown = (v: unknown) => (v === undefined ? "nothing" : JSON.stringify(v));

/** Reads fields of one object, collecting problems (`<path>: expected …, found …`). */
export class Fields {
    constructor(
        readonly problems: string[],
        readonly path: string,
        readonly obj: Obj,
    ) {}

    static of(problems: string[], path: string, v: unknown): Fields {
        if (!isObj(v)) {
            problems.push(`${path || "(top)"}: expected an object, found ${shown(v)}`);
            return new Fields(problems, path, {});
        }
        return new Fields(problems, path, v);
    }

    at(k: string): string {
        return this.path ? `${this.path}.${k}` : k;
    }

    fail(k: string, expected: string): void {
        this.problems.push(`${this.at(k)}: expected ${expected}, found ${shown(this.obj[k])}`);
    }

    sub(k: string, optional = false): Fields {
        if (optional && this.obj[k] === undefined) return new Fields(this.problems, this.at(k), {});
        return Fields.of(this.problems, this.at(k), this.obj[k]);
    }

    str(k: string, def?: string, re?: RegExp): string {
        const v = this.obj[k];
        if (v === undefined && def !== undefined) return def;
        if (typeof v !== "string" || (re && !re.test(v))) {
            this.fail(k, re ? `a string matching ${re}` : "a string");
            return def ?? "";
        }
        return v;
    }

    num(k: string, def: number | undefined, min: number, max: number, int = false): number {
        const v = this.obj[k];
        if (v === undefined && def !== undefined) return def;
        if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v))) {
            this.fail(k, `${int ? "an integer" : "a number"} from ${min} to ${max}`);
            return def ?? min;
        }
        return v;
    }

    bool(k: string, def: boolean): boolean {
        const v = this.obj[k];
        if (v === undefined) return def;
        if (typeof v !== "boolean") {
            this.fail(k, "true or false");
            return def;
        }
        return v;
    }

    strList(k: string, def: string[]): string[] {
        const v = this.obj[k];
        if (v === undefined) return def;
        if (!Array.isArray(v) || v.some((x) => typeof x !== "string")) {
            this.fail(k, "a list of strings");
            return def;
        }
        return v as string[];
    }

    list(k: string, minItems = 0): unknown[] {
        const v = this.obj[k];
        if (!Array.isArray(v) || v.length < minItems) {
            this.fail(k, `a list of at least ${minItems} item(s)`);
            return [];
        }
        return v;
    }
}

/** Environment overrides: `PREFIX_A_B=value` sets key path a.b (camelCase parts joined, numbers parsed). */
export function applyEnv(obj: unknown, prefix: string, env: NodeJS.ProcessEnv = process.env): unknown {
    if (!isObj(obj)) return obj;
    const out: Obj = JSON.parse(JSON.stringify(obj));
    for (const [name, value] of Object.entries(env)) {
        if (!name.startsWith(prefix) || value === undefined) continue;
        const parts = name
            .slice(prefix.length)
            .toLowerCase()
            .split("__")
            .map((p) => p.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()));
        let node = out;
        for (const p of parts.slice(0, -1)) node = (node[p] = isObj(node[p]) ? node[p] : {}) as Obj;
        const n = Number(value);
        node[parts[parts.length - 1]] =
            value === "true" ? true : value === "false" ? false : value !== "" && !Number.isNaN(n) ? n : value;
    }
    return out;
}
