/**
 * Test harness: stack configs from the real stack files, components under Pulumi mocks (auto-naming as the
 * provider does), whole-stack renders in a child process (Pulumi's runtime is one per process), and validation of
 * rendered objects against the upstream Kubernetes and Istio schemas.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { StackConfig, decodeConfigValues, parseStackConfig } from "../components/config";
import { formatProblem } from "../components/validate";
import {
    K8sObject,
    ROOT,
    RecordedResource,
    installRecordingMocks,
    kubernetesObjects,
    readStackFiles,
    settle,
} from "../scripts/offline";

export { K8sObject, ROOT };

/** Raw `proxy-monitor:*` config of a stack file (secrets as placeholders), keys without the namespace. */
export function rawStackConfig(stack: string): Record<string, unknown> {
    return decodeConfigValues(readStackFiles(stack).config);
}

/** The validated config of a stack file, optionally with some raw keys replaced. */
export function stackConfig(stack: string, overrides: Record<string, unknown> = {}): StackConfig {
    const raw = { ...rawStackConfig(stack), ...overrides };
    const { config, problems } = parseStackConfig(raw, stack);
    if (!config) throw new Error(`stack ${stack} config is invalid:\n${problems.map(formatProblem).join("\n")}`);
    return config;
}

let recorder: Promise<RecordedResource[]> | undefined;

/** Installs the recording mocks once per test process. */
export function mocks(): Promise<RecordedResource[]> {
    recorder ??= installRecordingMocks("test");
    return recorder;
}

/** Runs `create` under mocks and returns the resources it registered (Kubernetes objects and all). */
export async function underMocks(
    create: () => unknown,
): Promise<{ objects: K8sObject[]; resources: RecordedResource[] }> {
    const recorded = await mocks();
    const start = recorded.length;
    create();
    await settle(recorded);
    const resources = recorded.slice(start);
    return { objects: kubernetesObjects(resources), resources };
}

/** Resolves an Output (with nested Outputs) to its value. */
export function promiseOf<T>(o: pulumi.Input<T>): Promise<pulumi.Unwrap<T>> {
    return new Promise((resolve) => pulumi.output(o).apply((v) => resolve(v)));
}

export interface RenderRun {
    code: number | null;
    stdout: string;
    stderr: string;
    dir: string;
}

/** Runs `npm run render` for a stack in a child process, into a fresh temp dir (or `dir`). */
export function runRender(
    stack: string,
    extraArgs: string[] = [],
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `render-${stack}-`)),
): Promise<RenderRun> {
    return new Promise((resolve) => {
        execFile(
            process.execPath,
            [
                require.resolve("ts-node/dist/bin.js"),
                "--transpile-only",
                path.join(ROOT, "scripts", "render.ts"),
                "--stack",
                stack,
                "--out",
                dir,
                ...extraArgs,
            ],
            { cwd: ROOT, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
            (err, stdout, stderr) => {
                const code = err ? ((err as { code?: number }).code ?? 1) : 0;
                resolve({ code: typeof code === "number" ? code : 1, stdout, stderr, dir });
            },
        );
    });
}

/**
 * Renders a committed stack file changed by `change` (its parsed YAML `config`), saved as Pulumi.<name>.yaml beside
 * a copy of Pulumi.yaml in a temp dir.
 */
export function runRenderChanged(
    from: string,
    name: string,
    change: (config: Record<string, any>) => void,
): Promise<RenderRun> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), `config-${name}-`));
    fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
    const doc = YAML.parse(fs.readFileSync(path.join(ROOT, `Pulumi.${from}.yaml`), "utf8"));
    change(doc.config);
    fs.writeFileSync(path.join(dir, `Pulumi.${name}.yaml`), YAML.stringify(doc));
    return runRender(name, ["--config-dir", dir]);
}

/** Reads every object of a render directory. */
export function readRendered(dir: string): K8sObject[] {
    const out: K8sObject[] = [];
    for (const sub of fs.readdirSync(dir)) {
        const full = path.join(dir, sub);
        if (!fs.statSync(full).isDirectory()) continue;
        for (const f of fs.readdirSync(full).sort()) out.push(YAML.parse(fs.readFileSync(path.join(full, f), "utf8")));
    }
    return out;
}

const renders = new Map<string, Promise<{ run: RenderRun; objects: K8sObject[] }>>();

/** Renders a committed stack once per test process and returns its objects. */
export function renderedStack(stack: string): Promise<{ run: RenderRun; objects: K8sObject[] }> {
    let r = renders.get(stack);
    if (!r) {
        r = runRender(stack).then((run) => {
            if (run.code !== 0) throw new Error(`render --stack ${stack} failed (${run.code}):\n${run.stderr}`);
            return { run, objects: readRendered(run.dir) };
        });
        renders.set(stack, r);
    }
    return r;
}

/** Finds the objects of a kind (and optionally name and namespace). */
export function find(objects: K8sObject[], kind: string, name?: string, namespace?: string): K8sObject[] {
    return objects.filter(
        (o) =>
            o.kind === kind &&
            (name === undefined || o.metadata.name === name) &&
            (namespace === undefined || o.metadata.namespace === namespace),
    );
}

type Model = new (data: unknown) => { validate(): void };

/** The upstream schema model of an object's apiVersion and kind, or undefined when none is known. */
export function modelOf(apiVersion: string, kind: string): Model | undefined {
    const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["", apiVersion];
    const candidates = group.endsWith("istio.io")
        ? [`@kubernetes-models/istio/${group}/${version}`]
        : group === "autoscaling.k8s.io"
          ? [`@kubernetes-models/autoscaler/${group}/${version}`]
          : group === "monitoring.coreos.com"
            ? [`@kubernetes-models/prometheus-operator/${group}/${version}`]
            : [group === "" ? `kubernetes-models/${version}` : `kubernetes-models/${group}/${version}`];
    for (const mod of candidates) {
        try {
            // eslint-disable-next-line @typescript-eslint/no-require-imports
            const m = require(mod) as Record<string, Model>;
            if (m[kind]) return m[kind];
        } catch {
            // not a module we have: unknown
        }
    }
    return undefined;
}

/** Validates an object against its upstream schema; throws naming the object and the schema error. */
export function validateObject(o: K8sObject): void {
    const Model = modelOf(o.apiVersion, o.kind);
    const where = `${o.kind} ${o.metadata.namespace ?? ""}/${o.metadata.name} (${o.apiVersion})`;
    if (!Model) throw new Error(`${where}: no upstream schema known for this kind`);
    try {
        new Model(o).validate();
    } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
    }
}

/** Committed stacks whose renders the tests read: every `Pulumi.<stack>.yaml` in the repository. */
export const STACKS: readonly string[] = fs
    .readdirSync(ROOT)
    .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();

/**
 * One `describe("--stack <name>")` per committed stack, its render read once before the tests; `body` defines the
 * tests and reads the objects through `objects()`.
 */
export function describeRenderedStacks(body: (stack: string, objects: () => K8sObject[]) => void): void {
    for (const stack of STACKS) {
        describe(`--stack ${stack}`, () => {
            let objects: K8sObject[] = [];
            before(async () => {
                objects = (await renderedStack(stack)).objects;
            });
            body(stack, () => objects);
        });
    }
}
