/**
 * `npm run render -- --stack <name> [--out <dir>]`: runs the real program offline against Pulumi.<name>.yaml and
 * writes every Kubernetes object it would create as YAML, one file per object, under <dir>/<namespace>/ (cluster-
 * scoped objects under <dir>/_cluster/). Secret values are marked placeholders. Invalid config: every problem on
 * stderr and exit code 1.
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { ConfigError, formatProblem } from "../components/validate";
import {
    K8sObject,
    ROOT,
    installRecordingMocks,
    kubernetesObjects,
    readStackFiles,
    settle,
    stripUndefined,
} from "./offline";

interface Args {
    stack: string;
    out: string;
    /** Directory holding Pulumi.yaml and Pulumi.<stack>.yaml; defaults to the project's. */
    configDir: string;
}

function parseArgs(argv: string[]): Args {
    let stack: string | undefined;
    let out: string | undefined;
    let configDir = ROOT;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--stack" || a === "-s") stack = argv[++i];
        else if (a.startsWith("--stack=")) stack = a.slice(8);
        else if (a === "--out" || a === "-o") out = argv[++i];
        else if (a.startsWith("--out=")) out = a.slice(6);
        else if (a === "--config-dir") configDir = path.resolve(argv[++i]);
        else if (a === "--help" || a === "-h") {
            process.stdout.write("usage: npm run render -- --stack <name> [--out <dir>] [--config-dir <dir>]\n");
            process.exit(0);
        } else
            throw new Error(
                `unknown argument ${a} (usage: npm run render -- --stack <name> [--out <dir>] [--config-dir <dir>])`,
            );
    }
    if (!stack)
        throw new Error(
            "missing --stack <name> (usage: npm run render -- --stack <name> [--out <dir>] [--config-dir <dir>])",
        );
    return { stack, out: out ?? path.join(ROOT, "rendered", stack), configDir };
}

/** `<kind>-<name>.yaml`, lower-case kind, so a directory listing reads like `kubectl get`. */
export function fileNameOf(o: K8sObject): string {
    return `${o.kind.toLowerCase()}-${o.metadata.name}.yaml`;
}

export function writeObjects(objects: K8sObject[], out: string): string[] {
    fs.rmSync(out, { recursive: true, force: true });
    const written: string[] = [];
    for (const o of objects) {
        const dir = path.join(out, o.metadata.namespace ?? "_cluster");
        fs.mkdirSync(dir, { recursive: true });
        const file = path.join(dir, fileNameOf(o));
        if (fs.existsSync(file)) throw new Error(`two objects render to ${file}`);
        fs.writeFileSync(file, YAML.stringify(ordered(o), { lineWidth: 0 }));
        written.push(file);
    }
    return written;
}

/** apiVersion, kind, metadata first, as kubectl prints them. */
function ordered(o: K8sObject): K8sObject {
    const { apiVersion, kind, metadata, ...rest } = o;
    return { apiVersion, kind, metadata, ...rest };
}

async function main(): Promise<number> {
    const args = parseArgs(process.argv.slice(2));
    const stackFiles = readStackFiles(args.stack, args.configDir);
    process.env.PULUMI_CONFIG = JSON.stringify(stackFiles.config);
    process.env.PULUMI_CONFIG_SECRET_KEYS = JSON.stringify(stackFiles.secretKeys);
    const recorded = await installRecordingMocks(args.stack);
    pulumi.runtime.setAllConfig(stackFiles.config, stackFiles.secretKeys);
    let outputs: Record<string, unknown>;
    try {
        outputs = await import("../index");
    } catch (e) {
        if (e instanceof ConfigError) {
            process.stderr.write(`Pulumi.${args.stack}.yaml has ${e.problems.length} configuration problem(s):\n`);
            for (const p of e.problems) process.stderr.write(`  ${formatProblem(p)}\n`);
            return 1;
        }
        throw e;
    }
    await settle();
    const objects = kubernetesObjects(recorded);
    const files = writeObjects(objects, args.out);
    const resolved: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(outputs)) {
        if (k === "default" || typeof v === "function") continue;
        resolved[k] = await valueOf(v);
    }
    fs.writeFileSync(path.join(args.out, "_stack-outputs.yaml"), YAML.stringify(stripUndefined(resolved)));
    const rel = path.relative(process.cwd(), args.out) || ".";
    process.stdout.write(`rendered ${files.length} objects of stack ${args.stack} to ${rel}/\n`);
    const encrypted = stackFiles.placeholders.filter((p) => !stackFiles.missingSecrets.includes(p));
    if (encrypted.length > 0) {
        process.stdout.write(`secrets rendered as placeholders: ${encrypted.join(", ")}\n`);
    }
    if (stackFiles.missingSecrets.length > 0) {
        process.stdout.write(
            `not set in Pulumi.${args.stack}.yaml (pulumi up fails until they are set with pulumi config set --secret):\n` +
                stackFiles.missingSecrets.map((s) => `  ${s}\n`).join(""),
        );
    }
    return 0;
}

/** Resolves a stack output, with the Outputs nested in it, to a plain value. */
async function valueOf(v: unknown): Promise<unknown> {
    const out = pulumi.output(v as pulumi.Input<Record<string, unknown>>);
    return new Promise((resolve) => out.apply((x) => resolve(x)));
}

if (require.main === module) {
    main().then(
        (code) => process.exit(code),
        (e: Error) => {
            process.stderr.write(`render failed: ${e.message}\n`);
            process.exit(2);
        },
    );
}
