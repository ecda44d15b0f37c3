/**
 * NetworkPolicies against the traffic the generated Prometheus configs cause: for every scrape job (and the
 * Alertmanagers each Prometheus notifies) of every rendered Prometheus, the pods and ports it reaches, derived from
 * the job's discovery and the rendered Services, must be admitted by the rendered policies of the target namespace,
 * read as the network plugin reads them.
 */
import { expect } from "chai";
import YAML from "yaml";
import { K8sObject, STACKS, find, renderedStack } from "./harness";
import { Workload, workloadsOf } from "./pod-emulator";

type Obj = Record<string, any>;
type Labels = Record<string, string>;

interface Selector {
    matchLabels?: Labels;
    matchExpressions?: { key: string; operator: string; values?: string[] }[];
}

/** Label-selector semantics: an empty selector matches everything. */
export function selects(sel: Selector | undefined, labels: Labels): boolean {
    if (!sel) return true;
    for (const [k, v] of Object.entries(sel.matchLabels ?? {})) if (labels[k] !== v) return false;
    for (const e of sel.matchExpressions ?? []) {
        const has = e.key in labels;
        const inValues = has && (e.values ?? []).includes(labels[e.key]);
        if (e.operator === "In" && !inValues) return false;
        if (e.operator === "NotIn" && inValues) return false;
        if (e.operator === "Exists" && !has) return false;
        if (e.operator === "DoesNotExist" && has) return false;
    }
    return true;
}

interface Pod {
    namespace: string;
    labels: Labels;
    /** containerPort by name, for named policy ports. */
    portNames: Record<string, number>;
}

function podOf(w: Workload): Pod {
    const portNames: Record<string, number> = {};
    for (const c of w.podSpec.containers as Obj[])
        for (const p of c.ports ?? []) if (p.name) portNames[p.name] = p.containerPort;
    return { namespace: w.namespace, labels: w.labels, portNames };
}

function namespaceLabels(objects: K8sObject[], ns: string): Labels {
    const o = find(objects, "Namespace", ns)[0];
    // The API server sets kubernetes.io/metadata.name on every namespace.
    return { ...((o?.metadata.labels as Labels) ?? {}), "kubernetes.io/metadata.name": ns };
}

/** Whether the rendered NetworkPolicies let `from` open a TCP connection to `to` on `port`. */
export function admits(objects: K8sObject[], from: Pod, to: Pod, port: number): boolean {
    const policies = find(objects, "NetworkPolicy")
        .filter((p) => p.metadata.namespace === to.namespace)
        .map((p) => p.spec as Obj)
        .filter((s) => (s.policyTypes ?? ["Ingress"]).includes("Ingress") && selects(s.podSelector, to.labels));
    if (policies.length === 0) return true; // not isolated
    const fromNs = namespaceLabels(objects, from.namespace);
    return policies.some((s) =>
        (s.ingress ?? []).some((rule: Obj) => {
            const peerOk =
                !rule.from ||
                rule.from.length === 0 ||
                rule.from.some((peer: Obj) => {
                    if (peer.ipBlock) return false; // pod IPs are not known offline
                    // Without a namespaceSelector a peer is in the policy's own namespace.
                    const nsOk = peer.namespaceSelector
                        ? selects(peer.namespaceSelector, fromNs)
                        : from.namespace === to.namespace;
                    return nsOk && selects(peer.podSelector, from.labels);
                });
            const portOk =
                !rule.ports ||
                rule.ports.some(
                    (p: Obj) =>
                        (p.protocol ?? "TCP") === "TCP" &&
                        (p.port === undefined ||
                            p.port === port ||
                            (typeof p.port === "string" && to.portNames[p.port] === port) ||
                            (p.endPort !== undefined && port >= p.port && port <= p.endPort)),
                );
            return peerOk && portOk;
        }),
    );
}

interface Reach {
    job: string;
    host: string;
    /** The workloads behind the host, and the pod port the connection lands on. */
    targets: { workload: Workload; port: number }[];
}

/** The in-cluster pods and ports a host:port of a Prometheus config reaches (none for hosts outside the cluster). */
function resolve(
    objects: K8sObject[],
    workloads: Workload[],
    host: string,
    port: number,
): Reach["targets"] | undefined {
    // `<service>.<namespace>.svc`, or `<pod>.<service>.<namespace>.svc`: one StatefulSet pod of a headless Service.
    const full = /^(?:([a-z0-9-]+)\.)?([a-z0-9-]+)\.([a-z0-9-]+)\.svc(\.cluster\.local)?$/.exec(host);
    if (!full) return undefined;
    const [pod, m] = [full[1], [full[0], full[2], full[3]]];
    const svc = find(objects, "Service", m[1], m[2])[0];
    if (!svc) throw new Error(`${host}: no rendered Service ${m[2]}/${m[1]}`);
    const spec = svc.spec as Obj;
    if (pod && spec.clusterIP !== "None") throw new Error(`${host}: Service ${m[1]} is not headless, no pod names`);
    const behind = workloads.filter(
        (w) =>
            w.namespace === m[2] &&
            selects({ matchLabels: spec.selector }, w.labels) &&
            (!pod || pod.startsWith(`${w.name}-`)),
    );
    return behind.map((w) => {
        if (spec.clusterIP === "None") return { workload: w, port }; // A records are pod IPs
        const sp = (spec.ports as Obj[]).find((p) => p.port === port);
        if (!sp) throw new Error(`${host}:${port}: Service ${m[1]} has no port ${port}`);
        const tp = sp.targetPort ?? sp.port;
        return { workload: w, port: typeof tp === "number" ? tp : (podOf(w).portNames[tp] ?? -1) };
    });
}

/** Every (job, host, pods, port) a Prometheus config makes its server connect to inside the cluster. */
export function reachesOf(objects: K8sObject[], workloads: Workload[], config: Obj): Reach[] {
    const out: Reach[] = [];
    const add = (job: string, host: string, port: number) => {
        const targets = resolve(objects, workloads, host, port);
        if (targets) out.push({ job, host: `${host}:${port}`, targets });
    };
    const discover = (job: string, c: Obj) => {
        for (const d of c.dns_sd_configs ?? []) for (const n of d.names) add(job, n, d.port);
        for (const s of c.static_configs ?? [])
            for (const t of s.targets) {
                const [host, port] = t.split(":");
                if (host !== "localhost") add(job, host, Number(port ?? (c.scheme === "https" ? 443 : 80)));
            }
        // kubernetes_sd_configs role node: the kubelets, on host addresses NetworkPolicies do not govern.
    };
    for (const j of config.scrape_configs ?? []) discover(j.job_name, j);
    for (const a of config.alerting?.alertmanagers ?? []) discover("alerting", a);
    return out;
}

describe("NetworkPolicies admit what the generated Prometheus configs scrape", function () {
    this.timeout(180_000);

    for (const stack of ["dev", "prod"]) {
        it(`--stack ${stack}: every scrape job's (and every Alertmanager's) pods admit the Prometheus that reaches them`, async () => {
            const { objects } = await renderedStack(stack);
            const workloads = workloadsOf(objects);
            const servers = workloads.filter((w) =>
                (w.podSpec.containers as Obj[]).some((c) =>
                    String(c.image).startsWith("quay.io/prometheus/prometheus:"),
                ),
            );
            expect(servers.length).to.be.greaterThan(0);
            const refused: string[] = [];
            let checked = 0;
            for (const server of servers) {
                const cmName = (server.podSpec.volumes as Obj[]).find((v) => v.name === "config")!.configMap.name;
                const cm = find(objects, "ConfigMap", cmName, server.namespace)[0];
                const config = YAML.parse((cm.data as Obj)["prometheus.yml"]);
                const reaches = reachesOf(objects, workloads, config);
                // Every job that names an in-cluster Service is checked.
                const jobs = new Set(reaches.map((r) => r.job));
                for (const j of config.scrape_configs as Obj[])
                    if (JSON.stringify([j.dns_sd_configs, j.static_configs]).includes(".svc"))
                        expect([...jobs], `${server.name}: job ${j.job_name}`).to.include(j.job_name);
                for (const r of reaches) {
                    expect(
                        r.targets.length,
                        `${server.name} job ${r.job}: ${r.host} selects no pods`,
                    ).to.be.greaterThan(0);
                    for (const t of r.targets) {
                        checked++;
                        if (!admits(objects, podOf(server), podOf(t.workload), t.port))
                            refused.push(
                                `${server.namespace}/${server.name} job ${r.job} -> ${t.workload.namespace}/${t.workload.name}:${t.port} (${r.host})`,
                            );
                    }
                }
            }
            expect(checked).to.be.greaterThan(5);
            expect(refused, `refused by the NetworkPolicies:\n${refused.join("\n")}`).to.deep.equal([]);
        });
    }

    it("the check itself refuses what a policy does not admit", async () => {
        const { objects } = await renderedStack("dev");
        const workloads = workloadsOf(objects);
        const prom = podOf(workloads.find((w) => w.name === "prometheus")!);
        const gw = podOf(workloads.find((w) => w.name === "vendor-a-gateway")!);
        expect(admits(objects, prom, gw, 9102)).to.equal(true);
        expect(admits(objects, prom, gw, 3128), "Prometheus to the proxy port").to.equal(false);
        expect(admits(objects, { ...prom, namespace: "elsewhere" }, gw, 9102), "from another namespace").to.equal(
            false,
        );
        expect(admits(objects, { ...prom, labels: { app: "x" } }, gw, 9102), "another pod").to.equal(false);
    });
});

describe("NetworkPolicies select only what the stack runs", function () {
    this.timeout(180_000);

    for (const stack of STACKS) {
        it(`--stack ${stack}: every policy with a pod selector selects a pod the stack renders in its namespace`, async () => {
            const { objects } = await renderedStack(stack);
            const workloads = workloadsOf(objects);
            const unused = find(objects, "NetworkPolicy")
                .filter((np) => {
                    const sel = ((np.spec as Obj).podSelector as { matchLabels?: Record<string, string> }).matchLabels;
                    if (!sel || Object.keys(sel).length === 0) return false;
                    return !workloads.some(
                        (w) =>
                            w.namespace === np.metadata.namespace &&
                            Object.entries(sel).every(([k, v]) => w.labels[k] === v),
                    );
                })
                .map((np) => `${np.metadata.namespace}/${np.metadata.name}`);
            expect(unused).to.deep.equal([]);
        });
    }
});
