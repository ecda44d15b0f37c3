/**
 * The JSON Schema of `Pulumi.<stack>.yaml`, generated from the config schema (components/config), for editors: the
 * stack files name it in their `yaml-language-server` comment. `npm run config-schema` writes it; `-- --check`
 * fails when the committed file is stale (a test does the same).
 */
import * as fs from "fs";
import * as path from "path";
import { z } from "zod";
import { KNOWN_KEYS, PROJECT, SECRET_KEYS, SIMPLE_KEYS, structuredSchema } from "../components/config";
import { ROOT } from "./offline";

export const SCHEMA_FILE = "docs/stack-config.schema.json";

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

export function schemaText(): string {
    return JSON.stringify(stackFileJsonSchema(), null, 4) + "\n";
}

if (require.main === module) {
    const file = path.join(ROOT, SCHEMA_FILE);
    if (process.argv.includes("--check")) {
        if (!fs.existsSync(file) || fs.readFileSync(file, "utf8") !== schemaText()) {
            process.stderr.write(`${SCHEMA_FILE} is stale: run npm run config-schema\n`);
            process.exit(1);
        }
    } else fs.writeFileSync(file, schemaText());
}
