/**
 * Runs the Pulumi program offline: Pulumi's mock runtime stands in for the engine and the Kubernetes provider, the
 * stack config comes from Pulumi.yaml and Pulumi.<stack>.yaml, and every resource the program registers is recorded
 * as the provider would create it (auto-names get a suffix, namespaces default to `default`).
 *
 * Used by `npm run render` and by the tests. Pulumi's runtime is global to a process: run one stack per process.
 */
import * as crypto from "crypto";
import * as fs from "fs";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { PROJECT, StackConfig, decodeConfigValues, parseStackConfig } from "../components/config";
import { ConfigError, ConfigProblem, isObject } from "../components/validate";

export const ROOT = path.resolve(__dirname, "..");

/** A Kubernetes object as the program would apply it. */
export interface K8sObject {
    apiVersion: string;
    kind: string;
    metadata: {
        name: string;
        namespace?: string;
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
    };
    [key: string]: unknown;
}

export interface RecordedResource {
    /** Pulumi type token, e.g. `kubernetes:apps/v1:Deployment`. */
    type: string;
    /** Logical name. */
    name: string;
    /** State the mock returns (inputs plus provider-computed fields). */
    state: Record<string, unknown>;
}

/** The marker a secret value is replaced with offline. */
export function secretPlaceholder(key: string): string {
    return `<secret ${key.replace(`${PROJECT}:`, "")}>`;
}

/** The marker of a value `@pulumi/random` generates at deploy time. */
export function generatedPlaceholder(name: string): string {
    return `<generated at deploy time by @pulumi/random: ${name}>`;
}

export interface StackFileConfig {
    /** Full keys (`proxy-monitor:vendors`) to values as the engine passes them (JSON text for non-strings). */
    config: Record<string, string>;
    /** Full keys that hold secrets. */
    secretKeys: string[];
    /** Key paths whose secret values were replaced or filled with placeholders. */
    placeholders: string[];
    /** Key paths of secrets the stack file does not set (pulumi up fails until they are set). */
    missingSecrets: string[];
}

/**
 * Reads Pulumi.yaml's declared defaults and Pulumi.<stack>.yaml's values, replaces every `secure:` value with a
 * placeholder, and fills placeholders for the secrets the config requires but the file does not set.
 */
export function readStackFiles(stack: string, dir = ROOT): StackFileConfig {
    const project = readYamlFile(path.join(dir, "Pulumi.yaml")) as {
        config?: Record<string, { default?: unknown }>;
    };
    const stackFile = path.join(dir, `Pulumi.${stack}.yaml`);
    if (!fs.existsSync(stackFile)) {
        throw new Error(
            `no stack file ${path.relative(process.cwd(), stackFile)} (known: ${listStacks(dir).join(", ")})`,
        );
    }
    const stackDoc = (readYamlFile(stackFile) ?? {}) as { config?: Record<string, unknown> };
    const values: Record<string, unknown> = {};
    for (const [key, decl] of Object.entries(project.config ?? {})) {
        if (isObject(decl) && decl.default !== undefined) values[`${PROJECT}:${key}`] = decl.default;
    }
    const secretKeys = new Set<string>();
    const placeholders: string[] = [];
    for (const [fullKey, value] of Object.entries(stackDoc.config ?? {})) {
        const key = fullKey.includes(":") ? fullKey : `${PROJECT}:${fullKey}`;
        values[key] = replaceSecure(value, key, () => secretKeys.add(key), placeholders);
    }

    // Fill the secrets the config requires but the stack file does not set, so the rest can be rendered.
    const missingSecrets: string[] = [];
    const raw = (): Record<string, unknown> =>
        Object.fromEntries(
            Object.entries(values)
                .filter(([key]) => key.startsWith(`${PROJECT}:`))
                .map(([key, v]) => [key.slice(PROJECT.length + 1), v]),
        );
    for (const p of parseStackConfig(raw(), stack, projectKeys(secretKeys)).problems) {
        if (!p.missingSecret) continue;
        fillSecret(values, p, secretKeys);
        missingSecrets.push(p.path);
        placeholders.push(p.path);
    }

    const config: Record<string, string> = {};
    for (const [key, v] of Object.entries(values)) config[key] = typeof v === "string" ? v : JSON.stringify(v);
    return { config, secretKeys: [...secretKeys].sort(), placeholders: placeholders.sort(), missingSecrets };
}

/** Full keys in the project's namespace, without it (`proxy-monitor:credentials` → `credentials`). */
function projectKeys(keys: Iterable<string>): Set<string> {
    return new Set([...keys].filter((k) => k.startsWith(`${PROJECT}:`)).map((k) => k.slice(PROJECT.length + 1)));
}

/** The validated config of stack files read by readStackFiles, a secret key set in plain text among its problems. */
export function checkStackFiles(
    files: StackFileConfig,
    stack: string,
): { config?: StackConfig; problems: ConfigProblem[] } {
    return parseStackConfig(decodeConfigValues(files.config), stack, projectKeys(files.secretKeys));
}

/** The validated config of a stack file (secrets as placeholders), or its problems; the scripts' and tests' path. */
export function stackFileConfig(stack: string, dir = ROOT): { config?: StackConfig; problems: ConfigProblem[] } {
    return checkStackFiles(readStackFiles(stack, dir), stack);
}

/** The validated config of a stack file; throws a ConfigError naming every problem. */
export function loadStackFile(stack: string, dir = ROOT): StackConfig {
    const { config, problems } = stackFileConfig(stack, dir);
    if (!config) throw new ConfigError(problems);
    return config;
}

/** A YAML file's content; a syntax error names the file, line and column. */
export function readYamlFile(file: string): unknown {
    const doc = YAML.parseDocument(fs.readFileSync(file, "utf8"), { prettyErrors: true });
    const err = doc.errors[0];
    if (err) {
        const [line, col] = err.linePos?.[0] ? [err.linePos[0].line, err.linePos[0].col] : [0, 0];
        const first = err.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
        throw new Error(`${path.relative(process.cwd(), file) || file}:${line}:${col}: YAML syntax error: ${first}`);
    }
    return doc.toJS();
}

export function listStacks(dir = ROOT): string[] {
    return fs
        .readdirSync(dir)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined)
        .sort();
}

function replaceSecure(value: unknown, keyPath: string, markSecret: () => void, placeholders: string[]): unknown {
    if (isObject(value) && Object.keys(value).length === 1 && typeof value.secure === "string") {
        markSecret();
        placeholders.push(keyPath);
        return secretPlaceholder(keyPath);
    }
    if (Array.isArray(value)) {
        return value.map((v, i) => replaceSecure(v, `${keyPath}[${i}]`, markSecret, placeholders));
    }
    if (isObject(value)) {
        return Object.fromEntries(
            Object.entries(value).map(([k, v]) => [k, replaceSecure(v, `${keyPath}.${k}`, markSecret, placeholders)]),
        );
    }
    return value;
}

function fillSecret(values: Record<string, unknown>, p: ConfigProblem, secretKeys: Set<string>): void {
    // p.path is `proxy-monitor:<key>.<a>.<b>...` where the segments are DNS labels.
    const [fullKey, ...segments] = p.path.split(".");
    secretKeys.add(fullKey);
    let node = (values[fullKey] = isObject(values[fullKey]) ? values[fullKey] : {}) as Record<string, unknown>;
    for (const seg of segments.slice(0, -1)) {
        node = (node[seg] = isObject(node[seg]) ? node[seg] : {}) as Record<string, unknown>;
    }
    const last = segments[segments.length - 1];
    node[last] =
        p.missingSecret === "credentials"
            ? { username: secretPlaceholder(`${p.path}.username`), password: secretPlaceholder(`${p.path}.password`) }
            : secretPlaceholder(p.path);
}

/** Deterministic stand-in for the provider's random auto-name suffix: 8 lower-case hex characters. */
export function autoNameSuffix(type: string, name: string): string {
    return crypto.createHash("sha256").update(`${type}::${name}`).digest("hex").slice(0, 8);
}

/** Kubernetes kinds that are not namespaced (the rest default to the `default` namespace). */
const CLUSTER_SCOPED = new Set([
    "Namespace",
    "ClusterRole",
    "ClusterRoleBinding",
    "APIService",
    "CustomResourceDefinition",
    "PriorityClass",
    "StorageClass",
]);

/** Installs mocks that record every resource; returns the list they record into. */
export async function installRecordingMocks(stack: string, preview = false): Promise<RecordedResource[]> {
    const recorded: RecordedResource[] = [];
    await pulumi.runtime.setMocks(
        {
            newResource(args: pulumi.runtime.MockResourceArgs) {
                const state: Record<string, unknown> = { ...args.inputs };
                if (args.type.startsWith("kubernetes:") && !args.type.startsWith("kubernetes:helm")) {
                    const meta = { ...((state.metadata as Record<string, unknown>) ?? {}) };
                    if (meta.name === undefined) meta.name = `${args.name}-${autoNameSuffix(args.type, args.name)}`;
                    if (meta.namespace === undefined && !CLUSTER_SCOPED.has(String(state.kind))) {
                        meta.namespace = "default";
                    }
                    state.metadata = meta;
                }
                if (args.type === "random:index/randomPassword:RandomPassword") {
                    state.result = generatedPlaceholder(args.name);
                }
                recorded.push({ type: args.type, name: args.name, state });
                return { id: `${args.name}-id`, state };
            },
            call(args: pulumi.runtime.MockCallArgs) {
                return args.inputs;
            },
        },
        PROJECT,
        stack,
        preview,
    );
    return recorded;
}

/**
 * Waits until the program has registered everything it will: resources created inside applies included. Under mocks
 * every step of a registration is a promise, so a turn of the event loop that records nothing new means the program
 * is done; three quiet turns in a row are asked for, at most 1,000 turns and 60 s.
 */
export async function settle(recorded: readonly RecordedResource[]): Promise<void> {
    const deadline = Date.now() + 60_000;
    let quiet = 0;
    for (let turn = 0; turn < 1000 && quiet < 3; turn++) {
        if (Date.now() > deadline) throw new Error("settle: the program kept registering resources for 60 s");
        const before = recorded.length;
        await new Promise((r) => setImmediate(r));
        quiet = recorded.length === before ? quiet + 1 : 0;
    }
    if (quiet < 3) throw new Error("settle: the program kept registering resources for 1,000 event-loop turns");
}

/** The Kubernetes objects among the recorded resources, in a stable order. */
export function kubernetesObjects(recorded: RecordedResource[]): K8sObject[] {
    return recorded
        .filter((r) => r.type.startsWith("kubernetes:") && typeof r.state.kind === "string")
        .map((r) => stripUndefined(r.state) as K8sObject)
        .sort(compareObjects);
}

export function compareObjects(a: K8sObject, b: K8sObject): number {
    const key = (o: K8sObject) => `${o.metadata.namespace ?? ""}\0${o.kind}\0${o.metadata.name}`;
    return key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0;
}

/** Pulumi's marker of a serialized secret: `{ [SECRET_SIG_KEY]: SECRET_SIG_VALUE, value }`. */
const SECRET_SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG_VALUE = "1b47061264138c4ac30d75fd1eb44270";

/** True when a recorded value was a Pulumi secret (the mock sees secrets wrapped in Pulumi's marker). */
export function isSecretValue(v: unknown): boolean {
    return isObject(v) && v[SECRET_SIG_KEY] === SECRET_SIG_VALUE;
}

/** Unwraps Pulumi's secret markers and drops undefined values, recursively. */
export function stripUndefined(v: unknown): unknown {
    if (isSecretValue(v)) return stripUndefined((v as Record<string, unknown>).value);
    if (Array.isArray(v)) return v.map(stripUndefined);
    if (isObject(v)) {
        return Object.fromEntries(
            Object.entries(v)
                .filter(([, x]) => x !== undefined)
                .map(([k, x]) => [k, stripUndefined(x)]),
        );
    }
    return v;
}
