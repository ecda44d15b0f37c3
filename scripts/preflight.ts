/**
 * `npm run preflight -- --stack <name> [--context <kube-context>]`: asks the cluster, through kubectl, for what the
 * program assumes before the first `pulumi up`, and prints one line per check: `ok`, `MISSING` (the program would
 * fail or misbehave: exit code 1) or `note`.
 *
 * Checks: Kubernetes version; Istio (istiod and its version, the Istio CRDs at the API versions the program uses,
 * DNS capture and address allocation for the gateways' pool routing, mesh-wide DNS capture); Istio CNI when an
 * in-mesh namespace enforces a Pod Security level that forbids istio-init's capabilities; the existing crawler
 * namespaces and service accounts the AuthorizationPolicies name; the crawler workloads the HPAs target;
 * metrics-server for the HPAs; the VPA CRDs when
 * VPAs are on; the custom-metrics APIService when the adapter is on. (The program has no prometheus-operator mode,
 * so it needs no operator CRDs.)
 *
 * kubectl is injected (`Kubectl`), so the checks are tested against canned answers.
 */
import { execFile } from "child_process";
import YAML from "yaml";
import { StackConfig } from "../components/config";
import { APP, ISTIO_API } from "../components/names";
import { formatProblem } from "../components/validate";
import { ROOT, stackFileConfig } from "./offline";

export interface KubectlResult {
    code: number;
    stdout: string;
    stderr: string;
}
/** Runs kubectl with these arguments. */
export type Kubectl = (args: string[]) => Promise<KubectlResult>;

export interface Check {
    status: "ok" | "MISSING" | "note";
    /** One line a user can act on. */
    line: string;
}

// kubectl JSON is read field by field, each access guarded.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Obj = Record<string, any>;

/** The Istio CRDs the program creates objects of, with the API version it uses. */
export const ISTIO_CRDS: { name: string; version: string }[] = [
    { name: "serviceentries.networking.istio.io", version: ISTIO_API.networking },
    { name: "sidecars.networking.istio.io", version: ISTIO_API.networking },
    { name: "peerauthentications.security.istio.io", version: ISTIO_API.security },
    { name: "authorizationpolicies.security.istio.io", version: ISTIO_API.security },
    { name: "telemetries.telemetry.istio.io", version: ISTIO_API.telemetry },
];
export const VPA_CRD = "verticalpodautoscalers.autoscaling.k8s.io";
export const METRICS_API = "v1beta1.metrics.k8s.io";
export const CUSTOM_METRICS_API = "v1beta1.custom.metrics.k8s.io";
/** Oldest Istio the program supports, and the first with istiod's address allocation (default on from 1.25). */
export const ISTIO_MIN: [number, number] = [1, 18];
export const ISTIOD_ALLOCATION_MIN: [number, number] = [1, 23];
export const ISTIOD_ALLOCATION_DEFAULT: [number, number] = [1, 25];
export const KUBERNETES_MIN: [number, number] = [1, 25];

const atLeast = (v: [number, number], min: [number, number]) => v[0] > min[0] || (v[0] === min[0] && v[1] >= min[1]);
const show = (v: [number, number]) => `${v[0]}.${v[1]}`;

/** Major and minor of a version string such as `v1.29.3-eks-1`, `1.24.2-distroless` or `1.25-dev`. */
export function parseVersion(s: string | undefined): [number, number] | undefined {
    const m = /(\d+)\.(\d+)/.exec(s ?? "");
    return m ? [Number(m[1]), Number(m[2])] : undefined;
}

async function getJson(kubectl: Kubectl, args: string[]): Promise<Obj | undefined> {
    const r = await kubectl([...args, "-o", "json"]);
    if (r.code !== 0) return undefined;
    try {
        return JSON.parse(r.stdout) as Obj;
    } catch {
        return undefined;
    }
}

/** Whether the custom-metrics APIService is one the program creates (only with autoscaling.customMetricsApiService). */
export function createsCustomMetricsApiService(cfg: StackConfig): boolean {
    return cfg.autoscaling.customMetrics && cfg.autoscaling.customMetricsApiService;
}

const available = (apiService: Obj | undefined) =>
    (apiService?.status?.conditions ?? []).some((c: Obj) => c.type === "Available" && c.status === "True");

/** Every check, in order. Stops after the first one when the cluster cannot be reached. */
export async function preflight(cfg: StackConfig, kubectl: Kubectl): Promise<Check[]> {
    const out: Check[] = [];
    const ok = (line: string) => out.push({ status: "ok", line });
    const missing = (line: string) => out.push({ status: "MISSING", line });
    const note = (line: string) => out.push({ status: "note", line });

    const version = await kubectl(["version", "-o", "json"]);
    let server: [number, number] | undefined;
    try {
        server = parseVersion((JSON.parse(version.stdout) as Obj).serverVersion?.gitVersion);
    } catch {
        server = undefined;
    }
    if (version.code !== 0 || !server) {
        missing(
            `cluster: kubectl cannot reach the API server (${(version.stderr || version.stdout).trim().split("\n")[0]})`,
        );
        return out;
    }
    if (atLeast(server, KUBERNETES_MIN)) ok(`Kubernetes ${show(server)}`);
    else missing(`Kubernetes ${show(server)}: the program needs ${show(KUBERNETES_MIN)} or later`);

    // Istio: istiod, its version and its address allocation.
    const istioNs = cfg.namespaces.istio;
    const istiods = (await getJson(kubectl, ["-n", istioNs, "get", "deployment", "-l", "app=istiod"]))?.items ?? [];
    let istio: [number, number] | undefined;
    let revision = "default";
    if (istiods.length === 0) {
        missing(
            `Istio: no istiod Deployment (label app=istiod) in namespace ${istioNs} (install Istio ${show(ISTIO_MIN)}+, or set namespaces.istio)`,
        );
    } else {
        const d = istiods[0];
        revision = d.metadata?.labels?.["istio.io/rev"] ?? "default";
        const container = (d.spec?.template?.spec?.containers ?? [])[0] ?? {};
        const tag = String(container.image ?? "")
            .split(":")
            .pop();
        istio = parseVersion(tag) ?? parseVersion(d.metadata?.labels?.["operator.istio.io/version"]);
        if (!istio) missing(`Istio: cannot tell istiod's version from its image ${container.image}`);
        else if (!atLeast(istio, ISTIO_MIN))
            missing(`Istio ${show(istio)}: the program needs ${show(ISTIO_MIN)} or later`);
        else ok(`Istio ${show(istio)} (istiod revision ${revision})`);
        const env = Object.fromEntries(((container.env ?? []) as Obj[]).map((e) => [e.name, e.value]));
        const supported = istio !== undefined && atLeast(istio, ISTIO_MIN);
        if (cfg.mesh.addressAllocation === "istiod" && istio && supported) {
            const flag = env.PILOT_ENABLE_IP_AUTOALLOCATE;
            const on = flag === "true" || (flag === undefined && atLeast(istio, ISTIOD_ALLOCATION_DEFAULT));
            if (!atLeast(istio, ISTIOD_ALLOCATION_MIN))
                missing(
                    `Istio ${show(istio)} cannot allocate ServiceEntry addresses in istiod (${show(ISTIOD_ALLOCATION_MIN)}+): set mesh.addressAllocation to sidecar, or give the pools addresses`,
                );
            else if (!on)
                missing(
                    `istiod does not allocate ServiceEntry addresses (PILOT_ENABLE_IP_AUTOALLOCATE is ${flag ?? `unset, default off before ${show(ISTIOD_ALLOCATION_DEFAULT)}`}): set it to true, or set mesh.addressAllocation to sidecar`,
                );
            else
                ok(
                    "istiod allocates ServiceEntry addresses (PILOT_ENABLE_IP_AUTOALLOCATE); the gateway pods capture DNS",
                );
        }
        if (cfg.mesh.addressAllocation === "sidecar" && istio && atLeast(istio, ISTIOD_ALLOCATION_DEFAULT))
            note(
                `Istio ${show(istio)} deprecates ISTIO_META_DNS_AUTO_ALLOCATE (mesh.addressAllocation sidecar); istiod allocation (mesh.addressAllocation istiod) replaces it`,
            );
    }

    // Mesh-wide DNS capture (informational: the gateway pods set their own).
    const meshCm = await getJson(kubectl, [
        "-n",
        istioNs,
        "get",
        "configmap",
        revision === "default" ? "istio" : `istio-${revision}`,
    ]);
    if (meshCm) {
        const mesh = (YAML.parse(meshCm.data?.mesh ?? "") ?? {}) as Obj;
        const md = (mesh.defaultConfig?.proxyMetadata ?? {}) as Record<string, string>;
        const capture = md.ISTIO_META_DNS_CAPTURE === "true";
        note(
            `mesh-wide DNS capture is ${capture ? "on" : "off"}` +
                (cfg.mesh.addressAllocation === "off"
                    ? " (mesh.addressAllocation off: pools sharing a port carry fixed addresses)"
                    : "; the gateway pods turn it on for themselves (proxy.istio.io/config)"),
        );
    }

    // CRDs, in one call.
    const crds = new Map<string, Obj>(
        ((await getJson(kubectl, ["get", "crd"]))?.items ?? []).map((c: Obj) => [c.metadata?.name, c]),
    );
    const served = (crd: Obj, version: string) =>
        (crd.spec?.versions ?? []).some((v: Obj) => v.name === version && v.served !== false);
    const lacking: string[] = [];
    for (const c of ISTIO_CRDS) {
        const crd = crds.get(c.name);
        if (!crd) lacking.push(`${c.name} is not installed`);
        else if (!served(crd, c.version.split("/")[1])) lacking.push(`${c.name} does not serve ${c.version}`);
    }
    if (lacking.length === 0) ok(`Istio CRDs: ${ISTIO_CRDS.length} installed, serving the versions the program uses`);
    for (const l of lacking) missing(`Istio CRD ${l}`);

    // Istio CNI where injected pods must meet a Pod Security level that forbids istio-init's NET_ADMIN/NET_RAW.
    const enforcing: string[] = [];
    if (cfg.mesh.istioCni) enforcing.push("the namespaces the program creates (mesh.istioCni true: restricted)");
    const existing = cfg.crawlers.namespaces.filter((c) => c.manage === "label");
    for (const c of existing) {
        const ns = await getJson(kubectl, ["get", "namespace", c.name]);
        if (!ns) {
            missing(`crawler namespace ${c.name} (manage: label) does not exist: create it or set manage: create`);
            continue;
        }
        const level = ns.metadata?.labels?.["pod-security.kubernetes.io/enforce"];
        if (level === "restricted" || level === "baseline") enforcing.push(`${c.name} (enforces ${level})`);
        for (const sa of c.serviceAccounts) {
            if (await getJson(kubectl, ["-n", c.name, "get", "serviceaccount", sa])) continue;
            missing(
                `service account ${c.name}/${sa} (crawlers.namespaces) does not exist: the gateways admit it by name`,
            );
        }
    }
    for (const n of cfg.mesh.ingressNamespaces) {
        if (!(await getJson(kubectl, ["get", "namespace", n])))
            missing(`namespace ${n} (mesh.ingressNamespaces) does not exist`);
    }
    if (enforcing.length > 0) {
        const cni = (await getJson(kubectl, ["get", "daemonset", "-A", "-l", "k8s-app=istio-cni-node"]))?.items ?? [];
        if (cni.length > 0) ok(`Istio CNI (DaemonSet ${cni[0].metadata?.namespace}/${cni[0].metadata?.name})`);
        else
            missing(
                `Istio CNI: no istio-cni-node DaemonSet, but injected pods must pass Pod Security in ${enforcing.join(", ")} (install CNI, or set mesh.istioCni false)`,
            );
    }

    // Autoscaling: the crawler workloads the HPAs target are the user's.
    for (const [i, w] of cfg.autoscaling.workloads.entries()) {
        if (await getJson(kubectl, ["-n", w.namespace, "get", w.kind.toLowerCase(), w.name])) continue;
        missing(
            `${w.kind} ${w.namespace}/${w.name} (autoscaling.workloads[${i}]) does not exist: its HPA would scale nothing`,
        );
    }
    // Autoscaling.
    const metrics = await getJson(kubectl, ["get", "apiservice", METRICS_API]);
    if (available(metrics)) ok(`metrics-server (APIService ${METRICS_API} available) for the HPAs`);
    else
        missing(
            `metrics-server: APIService ${METRICS_API} is ${metrics ? "not available" : "not registered"}; the HPAs cannot read CPU or memory`,
        );
    if (cfg.autoscaling.vpa) {
        if (crds.has(VPA_CRD)) ok(`VPA CRD ${VPA_CRD}`);
        else missing(`VPA CRD ${VPA_CRD} is not installed, but autoscaling.vpa (vpaEnabled) is true`);
    }
    if (cfg.autoscaling.customMetrics) {
        const api = await getJson(kubectl, ["get", "apiservice", CUSTOM_METRICS_API]);
        const backend = api?.spec?.service ? `${api.spec.service.namespace}/${api.spec.service.name}` : undefined;
        if (createsCustomMetricsApiService(cfg)) {
            if (api && backend !== `${cfg.namespaces.monitoring}/${APP.prometheusAdapter}`)
                missing(
                    `APIService ${CUSTOM_METRICS_API} already exists (served by ${backend ?? "no service"}): the program's prometheus-adapter would take it over; remove it, or leave autoscaling.customMetricsApiService off and add the program's adapter rules to that adapter`,
                );
            else ok(`APIService ${CUSTOM_METRICS_API}: the program registers it for its prometheus-adapter`);
        } else if (!api)
            missing(
                `APIService ${CUSTOM_METRICS_API} is not registered: nothing serves the HPAs' custom metrics (set autoscaling.customMetricsApiService to register the program's prometheus-adapter)`,
            );
        else if (!available(api)) missing(`APIService ${CUSTOM_METRICS_API} (served by ${backend}) is not available`);
        else ok(`APIService ${CUSTOM_METRICS_API} available (served by ${backend})`);
    }
    return out;
}

/** kubectl on PATH, optionally with a context. */
export function systemKubectl(context?: string): Kubectl {
    return (args) =>
        new Promise((resolve) => {
            execFile(
                "kubectl",
                context ? ["--context", context, ...args] : args,
                { timeout: 30_000, maxBuffer: 64 * 1024 * 1024 },
                (err, stdout, stderr) => {
                    const code = err
                        ? typeof (err as { code?: unknown }).code === "number"
                            ? (err as { code: number }).code
                            : 127
                        : 0;
                    resolve({ code, stdout, stderr: stderr || (err && code === 127 ? String(err.message) : "") });
                },
            );
        });
}

const USAGE = "usage: npm run preflight -- --stack <name> [--context <kube-context>] [--config-dir <dir>]";

async function main(argv: string[]): Promise<number> {
    let stack: string | undefined;
    let context: string | undefined;
    let dir = ROOT;
    for (let i = 0; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--stack" || a === "-s") stack = argv[++i];
        else if (a === "--context") context = argv[++i];
        else if (a === "--config-dir") dir = argv[++i];
        else if (a === "--help" || a === "-h") {
            process.stdout.write(`${USAGE}\n`);
            return 0;
        } else throw new Error(`unknown argument ${a} (${USAGE})`);
    }
    if (!stack) throw new Error(`missing --stack <name> (${USAGE})`);
    const { config, problems } = stackFileConfig(stack, dir);
    if (!config) {
        process.stderr.write(`Pulumi.${stack}.yaml has ${problems.length} configuration problem(s):\n`);
        for (const p of problems) process.stderr.write(`  ${formatProblem(p)}\n`);
        return 1;
    }
    const checks = await preflight(config, systemKubectl(context));
    for (const c of checks) process.stdout.write(`${c.status.padEnd(7)} ${c.line}\n`);
    const missing = checks.filter((c) => c.status === "MISSING").length;
    process.stdout.write(
        missing === 0
            ? `preflight: the cluster has what stack ${stack} needs\n`
            : `preflight: ${missing} missing prerequisite(s) for stack ${stack}\n`,
    );
    return missing === 0 ? 0 : 1;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => process.exit(code),
        (e: Error) => {
            process.stderr.write(`preflight failed: ${e.message}\n`);
            process.exit(2);
        },
    );
}
