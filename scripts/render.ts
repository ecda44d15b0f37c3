/**
 * `npm run render -- --stack <name> [--out <dir>]`: runs the real program offline against Pulumi.<name>.yaml and
 * writes every Kubernetes object it would create as YAML, one file per object, under <dir>/<namespace>/ (cluster-
 * scoped objects under <dir>/_cluster/). Secret values are marked placeholders. Invalid config: every problem on
 * stderr and exit code 1. It never deletes a file it did not write (see `prepareOut`).
 */
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { ConfigError, ConfigProblem, formatProblem } from "../components/validate";
import { command, helpText, parseCommand } from "./cli";
import {
    K8sObject,
    ROOT,
    checkStackFiles,
    installRecordingMocks,
    kubernetesObjects,
    readStackFiles,
    settle,
    stripUndefined,
} from "./offline";

/** The file render leaves in every folder it writes, listing what it wrote there (paths relative to the folder). */
export const MARKER = ".proxy-monitor-render.json";

export const RENDER = command({
    usage: "npm run render -- --stack <name>",
    description: `
Runs the program offline against Pulumi.<name>.yaml and writes every Kubernetes object it would create as YAML,
one file per object, under <dir>/<namespace>/ (cluster-scoped objects under <dir>/_cluster/), plus
_stack-outputs.yaml. Secrets are placeholders; the secrets the stack file does not set yet are listed.

Folder safety: render leaves a marker file, ${MARKER}, listing the files it wrote. It writes only
into a folder that is missing, empty, or holds that marker; there it replaces only the files the marker lists and
keeps every other file. A non-empty folder without the marker is refused (exit 1) and left untouched.`,
    flags: {
        stack: { type: "string", short: "s", value: "<name>", help: "the stack to render (required)" },
        out: { type: "string", short: "o", value: "<dir>", help: "where to write", defaultText: "rendered/<name>" },
        "config-dir": {
            type: "string",
            value: "<dir>",
            help: "folder holding Pulumi.yaml and Pulumi.<name>.yaml",
            defaultText: "the project's",
        },
    },
});

interface Args {
    stack: string;
    out: string;
    /** Directory holding Pulumi.yaml and Pulumi.<stack>.yaml; defaults to the project's. */
    configDir: string;
}

function parseCli(argv: string[]): Args {
    const v = parseCommand(RENDER, argv);
    if (!v.stack) throw new UsageError(`missing --stack <name>\n\n${helpText(RENDER)}`);
    return {
        stack: v.stack,
        out: path.resolve(v.out ?? path.join(ROOT, "rendered", v.stack)),
        configDir: v["config-dir"] ? path.resolve(v["config-dir"]) : ROOT,
    };
}

class UsageError extends Error {}

/** `<kind>-<name>.yaml`, lower-case kind, so a directory listing reads like `kubectl get`. */
export function fileNameOf(o: K8sObject): string {
    return `${o.kind.toLowerCase()}-${o.metadata.name}.yaml`;
}

/** A folder render may not write into: non-empty, not written by render before. */
export class UnsafeOutError extends Error {}

/**
 * Makes `out` ready for a new render without destroying anything render did not create: a missing or empty folder is
 * used as is; a folder with render's marker loses only the files the marker lists (and folders they leave empty);
 * anything else is refused. Returns the files kept because render did not write them.
 */
export function prepareOut(out: string): string[] {
    const listed = renderedFilesIn(out);
    for (const rel of listed) {
        const file = path.resolve(out, rel);
        // Only files inside the folder, whatever the marker says.
        if (!file.startsWith(out + path.sep)) continue;
        fs.rmSync(file, { force: true });
        const dir = path.dirname(file);
        if (dir !== out && fs.existsSync(dir) && fs.readdirSync(dir).length === 0) fs.rmdirSync(dir);
    }
    fs.rmSync(path.join(out, MARKER), { force: true });
    return fs.existsSync(out) ? listFiles(out) : [];
}

/** The files render wrote in `out` before, by its marker; [] for a missing or empty folder; throws for any other. */
export function renderedFilesIn(out: string): string[] {
    if (!fs.existsSync(out)) return [];
    if (!fs.statSync(out).isDirectory()) throw new UnsafeOutError(`--out ${out} is a file, not a folder`);
    const entries = fs.readdirSync(out);
    if (entries.length === 0) return [];
    const markerFile = path.join(out, MARKER);
    if (!fs.existsSync(markerFile))
        throw new UnsafeOutError(
            `--out ${out} is not empty and has no ${MARKER}, so render did not write it: nothing was changed. ` +
                "Choose a new or empty folder, or one render wrote before.",
        );
    return (JSON.parse(fs.readFileSync(markerFile, "utf8")) as { files?: string[] }).files ?? [];
}

function listFiles(dir: string, base = dir): string[] {
    return fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) =>
            e.isDirectory() ? listFiles(path.join(dir, e.name), base) : [path.relative(base, path.join(dir, e.name))],
        );
}

/** Writes the objects under `out` (which `prepareOut` made ready) and the marker listing them; returns the files. */
export function writeObjects(objects: K8sObject[], out: string, extra: Record<string, string> = {}): string[] {
    fs.mkdirSync(out, { recursive: true });
    const written: string[] = [];
    for (const o of objects) {
        const dir = path.join(out, o.metadata.namespace ?? "_cluster");
        fs.mkdirSync(dir, { recursive: true });
        const file = path.join(dir, fileNameOf(o));
        if (fs.existsSync(file)) throw new Error(`two objects render to ${file}`);
        fs.writeFileSync(file, YAML.stringify(ordered(o), { lineWidth: 0 }));
        written.push(file);
    }
    for (const [name, text] of Object.entries(extra)) {
        fs.writeFileSync(path.join(out, name), text);
        written.push(path.join(out, name));
    }
    fs.writeFileSync(
        path.join(out, MARKER),
        JSON.stringify({ writtenBy: "npm run render", files: written.map((f) => path.relative(out, f)) }, null, 1) +
            "\n",
    );
    return written;
}

/** apiVersion, kind, metadata first, as kubectl prints them. */
function ordered(o: K8sObject): K8sObject {
    const { apiVersion, kind, metadata, ...rest } = o;
    return { apiVersion, kind, metadata, ...rest };
}

async function main(): Promise<number> {
    const args = parseCli(process.argv.slice(2));
    // Refuse an unsafe folder before the (slow) program run; touch nothing until the program has run.
    try {
        renderedFilesIn(args.out);
    } catch (e) {
        // The default folder may hold the output of a render from before the marker existed.
        if (e instanceof UnsafeOutError && args.out === path.join(ROOT, "rendered", args.stack))
            throw new UnsafeOutError(
                `${e.message} If an older render wrote it (before ${MARKER} existed), delete it once: ` +
                    `rm -r ${path.relative(process.cwd(), args.out) || "."}`,
            );
        throw e;
    }
    const stackFiles = readStackFiles(args.stack, args.configDir);
    const reportProblems = (problems: readonly ConfigProblem[]): number => {
        process.stderr.write(`Pulumi.${args.stack}.yaml has ${problems.length} configuration problem(s):\n`);
        for (const p of problems) process.stderr.write(`  ${formatProblem(p)}\n`);
        return 1;
    };
    // What the program cannot see (a secret key set in plain text), checked on the stack file first.
    const checked = checkStackFiles(stackFiles, args.stack);
    if (!checked.config) return reportProblems(checked.problems);
    const recorded = await installRecordingMocks(args.stack);
    pulumi.runtime.setAllConfig(stackFiles.config, stackFiles.secretKeys);
    let outputs: Record<string, unknown>;
    try {
        outputs = await import("../index");
    } catch (e) {
        if (e instanceof ConfigError) return reportProblems(e.problems);
        throw e;
    }
    await settle(recorded);
    const objects = kubernetesObjects(recorded);
    const resolved: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(outputs)) {
        if (k === "default" || typeof v === "function") continue;
        resolved[k] = await valueOf(v);
    }
    const kept = prepareOut(args.out);
    writeObjects(objects, args.out, { "_stack-outputs.yaml": YAML.stringify(stripUndefined(resolved)) });
    const rel = path.relative(process.cwd(), args.out) || ".";
    process.stdout.write(`rendered ${objects.length} objects of stack ${args.stack} to ${rel}/\n`);
    if (kept.length > 0)
        process.stdout.write(`kept ${kept.length} file(s) in ${rel}/ that render did not write: ${kept.join(", ")}\n`);
    const encrypted = stackFiles.placeholders.filter((p) => !stackFiles.missingSecrets.includes(p));
    if (encrypted.length > 0) {
        process.stdout.write(`secrets rendered as placeholders: ${encrypted.join(", ")}\n`);
    }
    if (stackFiles.missingSecrets.length > 0) {
        process.stdout.write(
            `not set in Pulumi.${args.stack}.yaml (pulumi up fails until they are set; run in the stack's folder):\n` +
                secretCommands(stackFiles.missingSecrets, args.stack)
                    .map((c) => `  ${c}\n`)
                    .join(""),
        );
    }
    return 0;
}

/**
 * The `pulumi config set --secret --path` command of each missing secret (`proxy-monitor:credentials.<vendor>.<pool>`
 * needs a username and a password; every other secret one value).
 */
export function secretCommands(missing: string[], stack: string): string[] {
    return missing.flatMap((full) => {
        const key = full.replace(/^[^:]+:/, "");
        const set = (k: string, value: string) => `pulumi config set --stack ${stack} --secret --path '${k}' ${value}`;
        return key.startsWith("credentials.")
            ? [set(`${key}.username`, "<username>"), set(`${key}.password`, "<password>")]
            : [set(key, "<value>")];
    });
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
            if (e instanceof UsageError) {
                process.stderr.write(`${e.message}`);
                process.exit(2);
            }
            if (e instanceof UnsafeOutError) {
                process.stderr.write(`render: ${e.message}\n`);
                process.exit(1);
            }
            process.stderr.write(`render failed: ${e.message}\n`);
            process.exit(2);
        },
    );
}
