/**
 * What is generated from the config schema (components/config): the JSON Schema of `Pulumi.<stack>.yaml` for editors
 * (the stack files name it in their `yaml-language-server` comment), README.md's configuration reference, and
 * Pulumi.yaml's `config` block. `npm run config-schema` writes them; `-- --check` fails when a committed file is
 * stale (tests/docs.test.ts does the same).
 */
import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import * as prettier from "prettier";
import YAML from "yaml";
import {
    KNOWN_KEYS,
    PROJECT,
    SECRET_KEYS,
    SECTIONS,
    SIMPLE_KEYS,
    simpleKeyDefault,
    structuredSchema,
} from "../components/config";
import { BYTES, CPU, DURATION, HOST, HTTP_URL, LABEL, PROM_BYTES } from "../components/config/kit";
import { command, parseCommand } from "./cli";
import { ROOT } from "./offline";

export const SCHEMA_FILE = "schema/stack-config.schema.json";

type Json = Record<string, unknown>;

export function stackFileJsonSchema(): Json {
    const structured = z.toJSONSchema(structuredSchema, { io: "input", unrepresentable: "any" }) as Json & {
        properties: Record<string, Json>;
    };
    const secret: Json = { description: "A secret: set it with `pulumi config set --secret --path`." };
    const props: Record<string, Json> = {};
    for (const [key, s] of Object.entries(structured.properties))
        props[`${PROJECT}:${key}`] = (SECRET_KEYS as readonly string[]).includes(key) ? secret : s;
    for (const s of SIMPLE_KEYS) {
        const field = (structured.properties[s.path[0]].properties as Record<string, Json>)[s.path[1]];
        props[`${PROJECT}:${s.key}`] = { ...field, description: s.description };
    }
    return {
        $schema: "https://json-schema.org/draft/2020-12/schema",
        title: `${PROJECT} stack configuration (Pulumi.<stack>.yaml)`,
        type: "object",
        properties: {
            config: {
                type: "object",
                properties: props,
                propertyNames: {
                    anyOf: [{ enum: KNOWN_KEYS.map((k) => `${PROJECT}:${k}`) }, { not: { pattern: `^${PROJECT}:` } }],
                },
            },
        },
    };
}

const PATTERNS: Record<string, string> = {
    [LABEL.re.source]: "DNS label",
    [HOST.re.source]: "host name",
    [DURATION.re.source]: "duration",
    [BYTES.re.source]: "quantity",
    [CPU.re.source]: "CPU quantity",
    [PROM_BYTES.re.source]: "size",
    [HTTP_URL.re.source]: "http(s) URL",
};

/** A JSON Schema node's type as the reference shows it. */
function typeOf(s: Json): string {
    if (Array.isArray(s.enum)) return s.enum.map((v) => `\`${v}\``).join(", ");
    if (s.type === "integer" || s.type === "number") {
        const [lo, hi] = [s.minimum ?? s.exclusiveMinimum, s.maximum ?? s.exclusiveMaximum];
        const big = (n: unknown) => typeof n === "number" && Math.abs(n) > 1e12;
        const l = big(lo) ? undefined : lo;
        const h = big(hi) ? undefined : hi;
        const what = String(s.type);
        if (l !== undefined && h !== undefined)
            return s.exclusiveMinimum !== undefined ? `${what} in (${l},${h})` : `${what} ${l}..${h}`;
        if (l !== undefined) return `${what} ${s.exclusiveMinimum !== undefined ? ">" : ">="} ${l}`;
        return what;
    }
    if (s.type === "string") return (typeof s.pattern === "string" && PATTERNS[s.pattern]) || "string";
    if (s.type === "array") return `list of ${typeOf((s.items ?? {}) as Json)}`;
    if (s.type === "object" && s.additionalProperties && typeof s.additionalProperties === "object")
        return `map of name to ${typeOf(s.additionalProperties as Json)}`;
    return Array.isArray(s.type) ? s.type.join(" or ") : String(s.type ?? "any");
}

const cell = (v: unknown) => (v === undefined ? "" : `\`${JSON.stringify(v)}\``);

/** One row per key, depth first: `vendors[].pools[].weight`. */
function rows(key: string, s: Json, required: boolean, out: string[][]): void {
    const items = s.type === "array" ? (s.items as Json) : undefined;
    const obj =
        items?.type === "object" && items.properties ? items : s.type === "object" && s.properties ? s : undefined;
    if (/^resources\.[A-Za-z]+$/.test(key)) {
        // requests and limits of one component: one row, `cpu/memory` pairs.
        const d = (x: string) => {
            const q = ((s.properties as Record<string, Json>)[x].properties ?? {}) as Record<string, Json>;
            return `${x} ${q.cpu.default}/${q.memory.default}`;
        };
        out.push([`\`${key}\``, "requests and limits, `cpu`/`memory`", `${d("requests")}, ${d("limits")}`, ""]);
        return;
    }
    const dflt = s.default !== undefined && !(obj && obj === s) ? cell(s.default) : required ? "required" : "";
    out.push([`\`${key}\``, obj && obj === s ? "object" : typeOf(s), dflt, String(s.description ?? "")]);
    if (!obj) return;
    const req = new Set((obj.required as string[] | undefined) ?? []);
    for (const [k, sub] of Object.entries(obj.properties as Record<string, Json>))
        rows(`${key}${items ? "[]" : ""}.${k}`, sub, req.has(k), out);
}

/** The README's configuration reference: the simple keys, then every structured key. */
export async function referenceMarkdown(): Promise<string> {
    const structured = z.toJSONSchema(structuredSchema, { io: "input", unrepresentable: "any" }) as Json & {
        properties: Record<string, Json>;
    };
    const simple = SIMPLE_KEYS.map((k) => {
        const f = (structured.properties[k.path[0]].properties as Record<string, Json>)[k.path[1]];
        return [`\`${k.key}\``, typeOf(f), cell(f.default), `${k.description} (\`${k.path.join(".")}\`)`];
    });
    const structuredRows: string[][] = [];
    for (const [key, s] of Object.entries(structured.properties))
        rows(key, s, ((structured.required as string[]) ?? []).includes(key), structuredRows);
    const table = (head: string[], body: string[][]) =>
        [head, head.map(() => "---"), ...body]
            .map((r) => `| ${r.map((c) => c.replace(/\|/g, "\\|")).join(" | ")} |`)
            .join("\n");
    const text = [
        `### Simple keys (\`pulumi config set <key> <value>\`, declared in \`Pulumi.yaml\`)`,
        "",
        table(["key", "type", "default", "meaning (the structured key it sets)"], simple),
        "",
        "### Structured keys (set in `Pulumi.<stack>.yaml`, or with `pulumi config set --path`)",
        "",
        table(["key", "type", "default", "meaning"], structuredRows),
        "",
    ].join("\n");
    return prettier.format(text, { parser: "markdown", printWidth: 120, proseWrap: "preserve" });
}

const BEGIN = "<!-- config-reference:begin (generated by npm run config-schema from components/config) -->";
const END = "<!-- config-reference:end -->";

/** README.md with its reference replaced by the generated one. */
export async function readmeWithReference(readme: string): Promise<string> {
    const [a, b] = [readme.indexOf(BEGIN), readme.indexOf(END)];
    if (a < 0 || b < a) throw new Error(`README.md lacks the markers ${BEGIN} ... ${END}`);
    return `${readme.slice(0, a + BEGIN.length)}\n\n${await referenceMarkdown()}\n${readme.slice(b)}`;
}

/** A Pulumi project config declaration (Pulumi.yaml `config:`); Pulumi knows string, integer, boolean and array. */
interface ProjectConfigDecl {
    type: "string" | "integer" | "boolean";
    description: string;
    default?: string | number | boolean;
}

function declType(v: string | number | boolean, key: string): ProjectConfigDecl["type"] {
    if (typeof v === "string" || typeof v === "boolean") return typeof v === "string" ? "string" : "boolean";
    if (Number.isInteger(v)) return "integer";
    throw new Error(`simple key ${key}: Pulumi.yaml declares no non-integer numbers (default ${v})`);
}

/** Pulumi.yaml's config block: `cluster` and every simple key, with the schema's description, type and default. */
export function projectConfigBlock(): Record<string, ProjectConfigDecl> {
    const block: Record<string, ProjectConfigDecl> = {
        cluster: { type: "string", description: SECTIONS.cluster.unwrap().description ?? "" },
    };
    for (const s of SIMPLE_KEYS) {
        const d = simpleKeyDefault(s.path);
        block[s.key] = { type: declType(d, s.key), description: s.description, default: d };
    }
    return block;
}

/** Pulumi.yaml with its `config` block replaced by the generated one (the rest, comments included, kept). */
export async function pulumiYamlWithConfig(text: string): Promise<string> {
    const doc = YAML.parseDocument(text);
    doc.set("config", doc.createNode(projectConfigBlock()));
    const options = (await prettier.resolveConfig(path.join(ROOT, "Pulumi.yaml"))) ?? {};
    return prettier.format(doc.toString({ indent: 4, lineWidth: 0 }), { ...options, parser: "yaml" });
}

export function schemaText(): string {
    return JSON.stringify(stackFileJsonSchema(), null, 4) + "\n";
}

const CONFIG_SCHEMA = command({
    usage: "npm run config-schema --",
    description: `
Writes ${SCHEMA_FILE}, the JSON Schema of Pulumi.<stack>.yaml that editors with the YAML language server use,
README.md's configuration reference and Pulumi.yaml's config block, all generated from the config schema
(components/config).`,
    flags: {
        check: { type: "boolean", help: "write nothing; exit 1 when a file differs from what the code generates" },
    },
});

async function main(): Promise<number> {
    const { check } = parseCommand(CONFIG_SCHEMA, process.argv.slice(2));
    const files: [string, string][] = [
        [SCHEMA_FILE, schemaText()],
        ["README.md", await readmeWithReference(fs.readFileSync(path.join(ROOT, "README.md"), "utf8"))],
        ["Pulumi.yaml", await pulumiYamlWithConfig(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"))],
    ];
    let stale = 0;
    for (const [name, text] of files) {
        const file = path.join(ROOT, name);
        if (fs.existsSync(file) && fs.readFileSync(file, "utf8") === text) continue;
        if (check) {
            process.stderr.write(`${name} is out of date: run npm run config-schema\n`);
            stale++;
        } else {
            fs.writeFileSync(file, text);
            process.stdout.write(`wrote ${name}\n`);
        }
    }
    return stale > 0 ? 1 : 0;
}

if (require.main === module) main().then((code) => process.exit(code));
