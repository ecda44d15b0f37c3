/**
 * A pod emulator: starts a rendered workload's pod as a kubelet would, from the rendered objects alone.
 *
 * - Each pod gets its own network namespace (`unshare --net`): a loopback interface and a pod IP (POD_IP, added to
 *   `lo`), so the fixed container ports of several pods do not collide and nothing listens outside the namespace.
 *   Probes are sent to the pod IP, as the kubelet sends them, so a server bound to 127.0.0.1 only fails them.
 * - Volumes are materialised under a temporary root at their mount paths: ConfigMap (`data` and `binaryData`),
 *   Secret (`stringData` and `data`, with test values for the placeholders of an offline render), emptyDir and
 *   volumeClaimTemplates (empty directories), and the service-account token the kubelet mounts unless
 *   `automountServiceAccountToken` is false. Absolute paths under a mount path are mapped into the root, in the
 *   arguments, the environment and the mounted text files (a config that names /etc/proxy-monitor/secrets/x reads
 *   <root>/etc/proxy-monitor/secrets/x); nothing else of the rendered objects is changed.
 * - The environment is the container's `env` (values, fieldRefs, secretKeyRefs, configMapKeyRefs), plus what the
 *   kubelet adds (KUBERNETES_SERVICE_HOST and _PORT) and PATH and HOME as an image would have them.
 * - The command is the container's exact `command` and `args`; `node` is the local Node binary, and an image without
 *   a command runs its entrypoint, mapped to the Debian package of the same program (IMAGE_ENTRYPOINTS).
 * - Run as root, the process runs as the pod's runAsUser/runAsGroup with fsGroup as a supplementary group, and
 *   Secret and ConfigMap files get their defaultMode with group fsGroup, so a file the pod's user cannot read fails
 *   as it would. Not emulated: the read-only root filesystem, resource limits, Service environment variables, init
 *   containers (none of ours has one) and sidecars.
 */
import { ChildProcess, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { K8sObject } from "../scripts/offline";

type Obj = Record<string, any>;

/** The pod IP every emulated pod gets (each in its own network namespace). */
export const POD_IP = "10.244.0.10";

/** Images without a `command` run their entrypoint: the Debian binary of the same program. */
export const IMAGE_ENTRYPOINTS: Record<string, string> = {
    "quay.io/prometheus/prometheus": "prometheus",
    "quay.io/prometheus/alertmanager": "prometheus-alertmanager",
};

/** Executables a `command` names, mapped to local ones. */
const EXECUTABLES: Record<string, string> = { node: process.execPath };

const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** A workload that runs pods, with the pod spec of its template. */
export interface Workload {
    readonly kind: string;
    readonly name: string;
    readonly namespace: string;
    readonly podSpec: Obj;
    readonly annotations: Record<string, string>;
    readonly labels: Record<string, string>;
    /** Names of the StatefulSet's volumeClaimTemplates (each is an empty directory here). */
    readonly claims: string[];
}

export function workloadsOf(objects: K8sObject[]): Workload[] {
    return objects
        .filter((o) => ["Deployment", "StatefulSet", "DaemonSet"].includes(o.kind))
        .map((o) => {
            const spec = o.spec as Obj;
            return {
                kind: o.kind,
                name: o.metadata.name,
                namespace: o.metadata.namespace ?? "default",
                podSpec: spec.template.spec,
                annotations: spec.template.metadata?.annotations ?? {},
                labels: spec.template.metadata?.labels ?? {},
                claims: (spec.volumeClaimTemplates ?? []).map((c: Obj) => c.metadata.name),
            };
        });
}

/** The test value standing in for a secret placeholder of an offline render (a URL is valid where one is needed). */
export function testSecretValue(key: string): string {
    return /username/i.test(key) ? "test-user" : "http://127.0.0.1:9/test-secret";
}

const PLACEHOLDER = /<secret [^>]+>|<generated at deploy time by @pulumi\/random: [^>]+>/g;

function fillPlaceholders(text: string): string {
    return text.replace(PLACEHOLDER, (m) => testSecretValue(m));
}

function escapeRe(s: string): string {
    return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** What a probe run in the pod's network namespace found. */
export interface ProbeReport {
    /** Declared container ports (`<port>/<protocol>`) nothing listened on by the deadline. */
    notListening: string[];
    /** HTTP probes (`<kind> <path> :<port>`) and the last status they got (0: no answer). */
    probes: { name: string; status: number; ok: boolean }[];
    elapsedMs: number;
}

export interface PodResult {
    readonly workload: string;
    readonly root: string;
    readonly report?: ProbeReport;
    /** Exit code or signal when the process ended before it was asked to. */
    readonly exitedEarly?: string;
    /** Time from SIGTERM to exit, or undefined when it did not exit within the grace period (then killed). */
    readonly termMs?: number;
    readonly graceSeconds: number;
    readonly log: string;
    /** Every problem found, in words; empty when the pod behaved as it must. */
    readonly problems: string[];
}

export interface EmulatorOptions {
    /** How long the pod may take to listen and pass its probes. Defaults to 30 s. */
    readonly startupMs?: number;
    /** Probe paths whose answer depends on the outside: any HTTP answer passes (e.g. readiness on upstream health). */
    readonly outsideDependent?: (probeKind: string, workload: Workload) => boolean;
    /** A documented change to a mounted text file (given its path in the pod) before paths are mapped. */
    readonly adaptFile?: (file: string, text: string) => string;
}

/** Can this machine give each pod its own network namespace? */
export function emulatorAvailable(): string | undefined {
    try {
        execFileSync("unshare", [...userFlags(), "--net", "--", "ip", "link", "set", "lo", "up"], { stdio: "pipe" });
        return undefined;
    } catch (e) {
        return `unshare --net with iproute2 is needed to emulate pods: ${(e as Error).message}`;
    }
}

const isRoot = () => process.getuid?.() === 0;
const userFlags = () => (isRoot() ? [] : ["--user", "--map-root-user"]);

/** The probe script run inside the pod's network namespace (plain Node, no dependencies). */
const PROBE_SCRIPT = `
"use strict";
const fs = require("fs"), http = require("http");
const spec = JSON.parse(process.argv[1]);
const start = Date.now();
function listening(proto, port) {
    const files = proto === "UDP" ? ["/proc/net/udp", "/proc/net/udp6"] : ["/proc/net/tcp", "/proc/net/tcp6"];
    for (const f of files) {
        let text = "";
        try { text = fs.readFileSync(f, "utf8"); } catch { continue; }
        for (const line of text.split("\\n").slice(1)) {
            const cols = line.trim().split(/\\s+/);
            if (cols.length < 4) continue;
            const p = parseInt(cols[1].split(":")[1], 16);
            if (p === port && (proto === "UDP" || cols[3] === "0A")) return true;
        }
    }
    return false;
}
function get(port, path) {
    return new Promise((resolve) => {
        const req = http.get({ host: spec.host, port, path, timeout: 2000 }, (res) => { res.resume(); resolve(res.statusCode); });
        req.on("timeout", () => req.destroy());
        req.on("error", () => resolve(0));
    });
}
(async () => {
    let notListening = [], probes = [];
    for (;;) {
        notListening = spec.ports.filter((p) => !listening(p.protocol, p.port)).map((p) => p.port + "/" + p.protocol);
        probes = [];
        for (const p of spec.probes) {
            const status = await get(p.port, p.path);
            probes.push({ name: p.name, status, ok: p.anyAnswer ? status > 0 : status >= 200 && status < 400 });
        }
        if ((notListening.length === 0 && probes.every((p) => p.ok)) || Date.now() - start > spec.deadlineMs) break;
        await new Promise((r) => setTimeout(r, 250));
    }
    process.stdout.write(JSON.stringify({ notListening, probes, elapsedMs: Date.now() - start }));
})();
`;

/**
 * Starts one pod of a workload, probes it, sends SIGTERM and waits for it to exit within its grace period. Never
 * throws for what the pod does: every problem is in `problems`.
 */
export async function runPod(objects: K8sObject[], w: Workload, o: EmulatorOptions = {}): Promise<PodResult> {
    const where = `${w.kind} ${w.namespace}/${w.name}`;
    const spec = w.podSpec;
    const containers: Obj[] = spec.containers;
    if (containers.length !== 1 || (spec.initContainers ?? []).length > 0) {
        return {
            workload: where,
            root: "",
            graceSeconds: 0,
            log: "",
            problems: [`${where}: the emulator runs pods of one container and no init container`],
        };
    }
    const c = containers[0];
    const root = fs.mkdtempSync(path.join(os.tmpdir(), `pod-${w.name}-`));
    fs.chmodSync(root, 0o755);
    const problems: string[] = [];
    const graceSeconds = spec.terminationGracePeriodSeconds ?? 30;
    const sec = spec.securityContext ?? {};
    const uid: number | undefined = c.securityContext?.runAsUser ?? sec.runAsUser;
    const gid: number | undefined = c.securityContext?.runAsGroup ?? sec.runAsGroup ?? uid;
    const fsGroup: number | undefined = sec.fsGroup;
    const podName = w.kind === "StatefulSet" ? `${w.name}-0` : `${w.name}-7d9f8b6c5d-x2x4q`;
    const find = (kind: string, name: string) =>
        objects.find((x) => x.kind === kind && x.metadata.name === name && x.metadata.namespace === w.namespace);

    // Mount paths and the host directories they map to.
    const mounts: { mountPath: string; volume: string; subPath?: string }[] = [...(c.volumeMounts ?? [])].map(
        (m: Obj) => ({ mountPath: m.mountPath, volume: m.name, subPath: m.subPath }),
    );
    const automount =
        spec.automountServiceAccountToken ??
        find("ServiceAccount", spec.serviceAccountName ?? "default")?.automountServiceAccountToken ??
        true;
    if (automount !== false && !mounts.some((m) => m.mountPath === SERVICE_ACCOUNT_DIR)) {
        mounts.push({ mountPath: SERVICE_ACCOUNT_DIR, volume: "<service-account-token>" });
    }
    const mountRe =
        mounts.length === 0
            ? undefined
            : new RegExp(
                  `(?<![\\w./-])(${mounts
                      .map((m) => m.mountPath.replace(/\/+$/, ""))
                      .sort((a, b) => b.length - a.length)
                      .map(escapeRe)
                      .join("|")})(?![\\w.-])`,
                  "g",
              );
    const mapPaths = (s: string) => (mountRe ? s.replace(mountRe, (p) => path.join(root, p)) : s);

    // Volumes, materialised at each mount path.
    const volumes = new Map<string, Obj>((spec.volumes ?? []).map((v: Obj) => [v.name, v]));
    const owner = (file: string, mode: number) => {
        fs.chmodSync(file, mode);
        if (isRoot() && fsGroup !== undefined) fs.chownSync(file, 0, fsGroup);
    };
    const writeFiles = (
        m: { mountPath: string },
        dir: string,
        files: Record<string, Buffer | string>,
        mode: number,
        items?: Obj[],
    ) => {
        const selected = items
            ? items.map((i) => [i.path as string, files[i.key]] as const)
            : Object.entries(files).map(([k, v]) => [k, v] as const);
        for (const [rel, content] of selected) {
            if (content === undefined) continue;
            const file = path.join(dir, rel);
            fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o755 });
            const inPod = path.join(m.mountPath, rel);
            const adapt = o.adaptFile ?? ((_: string, t: string) => t);
            fs.writeFileSync(
                file,
                typeof content === "string" ? mapPaths(adapt(inPod, fillPlaceholders(content))) : content,
            );
            owner(file, mode);
        }
    };
    for (const m of mounts) {
        const target = path.join(root, m.mountPath);
        fs.mkdirSync(target, { recursive: true, mode: 0o755 });
        if (m.volume === "<service-account-token>") {
            writeFiles(m, target, { token: "test-token", namespace: w.namespace, "ca.crt": testCaCert() }, 0o644);
            continue;
        }
        if (w.claims.includes(m.volume)) {
            fs.chmodSync(target, 0o777);
            continue;
        }
        const v = volumes.get(m.volume);
        if (!v) {
            problems.push(`${where}: volumeMount ${m.mountPath} names no volume ${m.volume}`);
            continue;
        }
        if (m.subPath) problems.push(`${where}: subPath mounts are not emulated (${m.mountPath})`);
        if (v.emptyDir) {
            fs.chmodSync(target, 0o777);
        } else if (v.configMap) {
            const cm = find("ConfigMap", v.configMap.name);
            if (!cm) {
                if (!v.configMap.optional) problems.push(`${where}: ConfigMap ${v.configMap.name} is not rendered`);
                continue;
            }
            const files: Record<string, Buffer | string> = { ...((cm.data as Record<string, string>) ?? {}) };
            for (const [k, b64] of Object.entries((cm.binaryData as Record<string, string>) ?? {}))
                files[k] = Buffer.from(b64, "base64");
            writeFiles(m, target, files, v.configMap.defaultMode ?? 0o644, v.configMap.items);
        } else if (v.secret) {
            const s = find("Secret", v.secret.secretName);
            if (!s) {
                if (!v.secret.optional) problems.push(`${where}: Secret ${v.secret.secretName} is not rendered`);
                continue;
            }
            writeFiles(m, target, secretData(s), v.secret.defaultMode ?? 0o644, v.secret.items);
        } else {
            problems.push(`${where}: volume ${m.volume} is of a kind the emulator does not materialise`);
        }
    }

    // Environment.
    const env: Record<string, string> = {
        PATH: process.env.PATH ?? "/usr/local/bin:/usr/bin:/bin",
        HOME: root,
        HOSTNAME: podName,
        KUBERNETES_SERVICE_HOST: "127.0.0.1",
        KUBERNETES_SERVICE_PORT: "443",
    };
    const fieldValue = (fieldPath: string): string | undefined =>
        ({
            "metadata.name": podName,
            "metadata.namespace": w.namespace,
            "status.podIP": POD_IP,
            "status.hostIP": POD_IP,
            "spec.nodeName": "emulated-node",
            "spec.serviceAccountName": spec.serviceAccountName ?? "default",
        })[fieldPath];
    for (const e of (c.env ?? []) as Obj[]) {
        if (e.value !== undefined) env[e.name] = mapPaths(expandEnv(String(e.value), env));
        else if (e.valueFrom?.fieldRef) {
            const v = fieldValue(e.valueFrom.fieldRef.fieldPath);
            if (v === undefined) problems.push(`${where}: env ${e.name}: fieldRef ${e.valueFrom.fieldRef.fieldPath}`);
            else env[e.name] = v;
        } else if (e.valueFrom?.secretKeyRef) {
            const ref = e.valueFrom.secretKeyRef;
            const s = find("Secret", ref.name);
            const v = s ? secretData(s)[ref.key] : undefined;
            if (v === undefined && !ref.optional)
                problems.push(`${where}: env ${e.name}: no key ${ref.key} in Secret ${ref.name}`);
            else if (v !== undefined) env[e.name] = fillPlaceholders(v);
        } else if (e.valueFrom?.configMapKeyRef) {
            const ref = e.valueFrom.configMapKeyRef;
            const v = (find("ConfigMap", ref.name)?.data as Record<string, string> | undefined)?.[ref.key];
            if (v === undefined && !ref.optional)
                problems.push(`${where}: env ${e.name}: no key ${ref.key} in ConfigMap ${ref.name}`);
            else if (v !== undefined) env[e.name] = mapPaths(v);
        } else problems.push(`${where}: env ${e.name} is of a kind the emulator does not resolve`);
    }

    // Command.
    const image = String(c.image).replace(/[@:][^/]*$/, "");
    const command: string[] = c.command ?? (IMAGE_ENTRYPOINTS[image] ? [IMAGE_ENTRYPOINTS[image]] : []);
    if (command.length === 0) problems.push(`${where}: no command and no known entrypoint for ${c.image}`);
    const argv = [...command, ...(c.args ?? [])].map((a, i) =>
        i === 0 ? (EXECUTABLES[a] ?? a) : mapPaths(expandEnv(a, env)),
    );
    if (problems.length > 0) return { workload: where, root, graceSeconds, log: "", problems };

    const logFile = path.join(root, "container.log");
    const out = fs.openSync(logFile, "a");
    const netSetup = `ip link set lo up && ip addr add ${POD_IP}/32 dev lo && exec "$@"`;
    const asUser =
        isRoot() && uid !== undefined
            ? [
                  "setpriv",
                  `--reuid=${uid}`,
                  `--regid=${gid}`,
                  fsGroup !== undefined ? `--groups=${fsGroup}` : "--clear-groups",
                  "--",
              ]
            : [];
    const child: ChildProcess = spawn(
        "unshare",
        [...userFlags(), "--net", "--", "sh", "-c", netSetup, "pod", ...asUser, ...argv],
        {
            cwd: c.workingDir ? mapPaths(c.workingDir) : root,
            env,
            stdio: ["ignore", out, out],
        },
    );
    fs.closeSync(out);
    let exit: string | undefined;
    const exited = new Promise<void>((resolve) =>
        child.once("exit", (code, signal) => {
            exit = signal ?? `code ${code}`;
            resolve();
        }),
    );
    const log = () => fs.readFileSync(logFile, "utf8");
    try {
        const ports: { port: number; protocol: string }[] = (c.ports ?? []).map((p: Obj) => ({
            port: p.containerPort,
            protocol: p.protocol ?? "TCP",
        }));
        const portOf = (p: number | string) =>
            typeof p === "number" ? p : ((c.ports ?? []) as Obj[]).find((x) => x.name === p)?.containerPort;
        const probes: { name: string; port: number; path: string; anyAnswer: boolean }[] = [];
        for (const kind of ["startupProbe", "livenessProbe", "readinessProbe"]) {
            const p = c[kind];
            if (!p) continue;
            if (!p.httpGet) {
                problems.push(`${where}: ${kind} is not an httpGet probe (not emulated)`);
                continue;
            }
            const port = portOf(p.httpGet.port);
            if (port === undefined) {
                problems.push(`${where}: ${kind} names port ${p.httpGet.port}, which the container does not declare`);
                continue;
            }
            probes.push({
                name: `${kind} ${p.httpGet.path} :${port}`,
                port,
                path: p.httpGet.path ?? "/",
                anyAnswer: o.outsideDependent?.(kind, w) ?? false,
            });
        }
        const probeSpec = { host: POD_IP, ports, probes, deadlineMs: o.startupMs ?? 30_000 };
        // Probe only once the process is in its own network namespace: before, nsenter would enter the host's.
        await inOwnNetns(child.pid!, exited);
        // The probe process is the emulator's, not the pod's: if it dies (a loaded machine), it runs once more.
        const probing = runProbe(child.pid!, probeSpec)
            .catch(() => (exit === undefined ? runProbe(child.pid!, probeSpec) : undefined))
            .catch((e: Error) => {
                if (exit === undefined) problems.push(`${where}: ${e.message}`);
                return undefined;
            });
        const report = await Promise.race([probing, exited.then(() => undefined)]);
        if (exit !== undefined) {
            problems.push(`${where}: exited before SIGTERM (${exit}):\n${tail(log())}`);
            return { workload: where, root, graceSeconds, log: log(), exitedEarly: exit, problems };
        }
        if (report) {
            for (const p of report.notListening) problems.push(`${where}: nothing listens on containerPort ${p}`);
            for (const p of report.probes)
                if (!p.ok) problems.push(`${where}: ${p.name} answered ${p.status || "nothing"}`);
        }
        const t0 = Date.now();
        child.kill("SIGTERM");
        let timer: NodeJS.Timeout | undefined;
        const inTime = await Promise.race([
            exited.then(() => true),
            new Promise<boolean>((r) => (timer = setTimeout(() => r(false), graceSeconds * 1000))),
        ]);
        clearTimeout(timer);
        const termMs = inTime ? Date.now() - t0 : undefined;
        if (!inTime)
            problems.push(`${where}: still running ${graceSeconds} s (terminationGracePeriodSeconds) after SIGTERM`);
        if (problems.length > 0) problems.push(`${where} log:\n${tail(log())}`);
        return { workload: where, root, report, termMs, graceSeconds, log: log(), problems };
    } finally {
        if (exit === undefined) {
            child.kill("SIGKILL");
            await exited;
        }
    }
}

/** Resolves when `pid` is in a network namespace other than this process's (or has exited). */
async function inOwnNetns(pid: number, exited: Promise<void>): Promise<void> {
    const own = fs.readlinkSync("/proc/self/ns/net");
    let done = false;
    void exited.then(() => (done = true));
    for (let i = 0; i < 500 && !done; i++) {
        try {
            if (fs.readlinkSync(`/proc/${pid}/ns/net`) !== own) return;
        } catch {
            return; // gone
        }
        await new Promise((r) => setTimeout(r, 10));
    }
    if (!done) throw new Error(`pid ${pid} did not enter its own network namespace in 5 s`);
}

/** Runs the probe script in the network namespace of `pid`. */
function runProbe(pid: number, spec: unknown): Promise<ProbeReport> {
    return new Promise((resolve, reject) => {
        const args = [
            `--target=${pid}`,
            ...(isRoot() ? [] : ["--user", "--preserve-credentials"]),
            "--net",
            "--",
            process.execPath,
            "-e",
            PROBE_SCRIPT,
            JSON.stringify(spec),
        ];
        const p = spawn("nsenter", args, { stdio: ["ignore", "pipe", "pipe"] });
        let out = "";
        let err = "";
        p.stdout.on("data", (d) => (out += d));
        p.stderr.on("data", (d) => (err += d));
        p.on("exit", (code, signal) => {
            try {
                resolve(JSON.parse(out) as ProbeReport);
            } catch {
                reject(
                    new Error(
                        `the probe in the pod's network namespace failed (${signal ?? `exit ${code}`}): ${err || out}`,
                    ),
                );
            }
        });
    });
}

/** Runs pods with at most `limit` at a time. */
export async function runPods(
    objects: K8sObject[],
    ws: Workload[],
    o: EmulatorOptions & { limit?: number } = {},
): Promise<PodResult[]> {
    const results: PodResult[] = new Array(ws.length);
    let next = 0;
    const worker = async () => {
        while (next < ws.length) {
            const i = next++;
            results[i] = await runPod(objects, ws[i], o);
        }
    };
    await Promise.all(Array.from({ length: Math.min(o.limit ?? 4, ws.length) }, worker));
    return results;
}

export function cleanup(results: PodResult[]): void {
    for (const r of results) if (r.root) fs.rmSync(r.root, { recursive: true, force: true });
}

function secretData(s: K8sObject): Record<string, string> {
    const out: Record<string, string> = {};
    for (const [k, b64] of Object.entries((s.data as Record<string, string>) ?? {}))
        out[k] = Buffer.from(b64, "base64").toString("utf8");
    for (const [k, v] of Object.entries((s.stringData as Record<string, string>) ?? {})) out[k] = v;
    return out;
}

/** Kubernetes' $(VAR) expansion in args and env values. */
function expandEnv(s: string, env: Record<string, string>): string {
    return s.replace(/\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name) => env[name] ?? m);
}

function tail(text: string, lines = 15): string {
    return text.trimEnd().split("\n").slice(-lines).join("\n");
}

let caCert: string | undefined;

/** A self-signed certificate standing in for the cluster CA (Prometheus loads ca_file when it builds a client). */
function testCaCert(): string {
    if (caCert === undefined) {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "test-ca-"));
        try {
            execFileSync(
                "openssl",
                ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=test-cluster-ca"].concat([
                    "-keyout",
                    path.join(dir, "key.pem"),
                    "-out",
                    path.join(dir, "ca.pem"),
                ]),
                { stdio: "pipe" },
            );
            caCert = fs.readFileSync(path.join(dir, "ca.pem"), "utf8");
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    }
    return caCert;
}
