/**
 * `npm run preflight`: each prerequisite the program assumes, missing from a canned cluster, gets exactly one
 * MISSING line naming it. kubectl's answers come from tests/fixtures/fake-kubectl.js, in process and as the
 * `kubectl` on PATH of the real script.
 */
import { expect } from "chai";
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { StackConfig } from "../components/config";
import { Check, Kubectl, preflight } from "../scripts/preflight";
import { ROOT, rawStackConfig, stackConfig } from "./harness";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { answer } = require("./fixtures/fake-kubectl.js") as { answer: (w: World, a: string[]) => ReturnType<Kubectl> };
const FAKE = path.join(__dirname, "fixtures", "fake-kubectl.js");

interface World {
    /** When set, kubectl answers only with --context <context>. */
    context?: string;
    unreachable?: string;
    server: string;
    istiod?: { namespace: string; version: string; rev?: string; env?: Record<string, string>; mesh?: string };
    crds: Record<string, string[]>;
    cni?: string;
    namespaces: Record<string, Record<string, string>>;
    serviceAccounts: string[];
    /** `namespace/kind/name` of existing workloads. */
    workloads?: string[];
    apiServices: Record<string, { available: boolean; service?: { namespace: string; name: string } }>;
}

const ISTIO_CRDS = {
    "serviceentries.networking.istio.io": ["v1alpha3", "v1beta1", "v1"],
    "sidecars.networking.istio.io": ["v1alpha3", "v1beta1", "v1"],
    "peerauthentications.security.istio.io": ["v1beta1", "v1"],
    "authorizationpolicies.security.istio.io": ["v1beta1", "v1"],
    "telemetries.telemetry.istio.io": ["v1alpha1", "v1"],
};

/** A cluster with everything prod needs: Istio 1.26 with CNI, metrics-server, the labelled crawler namespaces. */
function complete(): World {
    return {
        server: "v1.30.4-eks-a737599",
        istiod: {
            namespace: "istio-system",
            version: "1.26.3-distroless",
            mesh: "defaultConfig:\n  proxyMetadata: {}\n",
        },
        crds: { ...ISTIO_CRDS },
        cni: "istio-system",
        namespaces: {
            crawlers: { "pod-security.kubernetes.io/enforce": "restricted" },
            "crawlers-mobile": {},
            "ingress-nginx": {},
        },
        serviceAccounts: ["crawlers/crawler", "crawlers-mobile/crawler"],
        workloads: ["crawlers/deployment/crawler"],
        apiServices: {
            "v1beta1.metrics.k8s.io": {
                available: true,
                service: { namespace: "kube-system", name: "metrics-server" },
            },
            // prod leaves autoscaling.customMetricsApiService off: the cluster's own adapter serves custom metrics.
            "v1beta1.custom.metrics.k8s.io": {
                available: true,
                service: { namespace: "monitoring", name: "prometheus-adapter" },
            },
        },
    };
}

const run = (cfg: StackConfig, world: World): Promise<Check[]> => preflight(cfg, (args) => answer(world, args));
const missingLines = (checks: Check[]) => checks.filter((c) => c.status === "MISSING").map((c) => c.line);
const prodWith = (change: (raw: Record<string, any>) => void): StackConfig => {
    const raw = JSON.parse(JSON.stringify(rawStackConfig("prod")));
    change(raw);
    return stackConfig("prod", raw);
};

describe("npm run preflight", function () {
    this.timeout(120_000);
    const prod = stackConfig("prod");
    const dev = stackConfig("dev");

    it("passes a cluster that has everything, with one line per check", async () => {
        const checks = await run(prod, complete());
        expect(missingLines(checks)).to.deep.equal([]);
        const lines = checks.map((c) => `${c.status} ${c.line}`);
        expect(lines).to.include("ok Kubernetes 1.30");
        expect(lines).to.include("ok Istio 1.26 (istiod revision default)");
        expect(lines).to.include(
            "ok istiod allocates ServiceEntry addresses (PILOT_ENABLE_IP_AUTOALLOCATE); the gateway pods capture DNS",
        );
        expect(lines).to.include(
            "note mesh-wide DNS capture is off; the gateway pods turn it on for themselves (proxy.istio.io/config)",
        );
        expect(lines).to.include("ok Istio CNI (DaemonSet istio-system/istio-cni-node)");
        expect(lines).to.include(
            "ok APIService v1beta1.custom.metrics.k8s.io available (served by monitoring/prometheus-adapter)",
        );
    });

    it("with autoscaling.customMetricsApiService, needs the APIService free, and says the program registers it", async () => {
        const takeover = prodWith((r) => (r.autoscaling = { ...r.autoscaling, customMetricsApiService: true }));
        const world = complete();
        delete world.apiServices["v1beta1.custom.metrics.k8s.io"];
        const checks = await run(takeover, world);
        expect(missingLines(checks)).to.deep.equal([]);
        expect(checks.map((c) => `${c.status} ${c.line}`)).to.include(
            "ok APIService v1beta1.custom.metrics.k8s.io: the program registers it for its prometheus-adapter",
        );
    });

    const cases: { what: string; cfg?: () => StackConfig; world: (w: World) => void; line: RegExp }[] = [
        {
            what: "an old Kubernetes",
            world: (w) => (w.server = "v1.24.9"),
            line: /^Kubernetes 1\.24: the program needs 1\.25 or later$/,
        },
        {
            what: "no istiod",
            world: (w) => delete w.istiod,
            line: /^Istio: no istiod Deployment \(label app=istiod\) in namespace istio-system/,
        },
        {
            what: "an Istio older than 1.18",
            world: (w) => (w.istiod!.version = "1.17.8"),
            line: /^Istio 1\.17: the program needs 1\.18 or later$/,
        },
        {
            what: "Istio 1.24 without istiod's address allocation",
            world: (w) => (w.istiod!.version = "1.24.2"),
            line: /^istiod does not allocate ServiceEntry addresses \(PILOT_ENABLE_IP_AUTOALLOCATE is unset, default off before 1\.25\)/,
        },
        {
            what: "Istio 1.26 with istiod's address allocation turned off",
            world: (w) => (w.istiod!.env = { PILOT_ENABLE_IP_AUTOALLOCATE: "false" }),
            line: /^istiod does not allocate ServiceEntry addresses \(PILOT_ENABLE_IP_AUTOALLOCATE is false\): set it to true, or set mesh.addressAllocation to sidecar$/,
        },
        {
            what: "Istio 1.22, too old for istiod's allocation",
            world: (w) => (w.istiod!.version = "1.22.1"),
            line: /^Istio 1\.22 cannot allocate ServiceEntry addresses in istiod \(1\.23\+\): set mesh.addressAllocation to sidecar/,
        },
        {
            what: "a missing Istio CRD",
            world: (w) => delete w.crds["telemetries.telemetry.istio.io"],
            line: /^Istio CRD telemetries\.telemetry\.istio\.io is not installed$/,
        },
        {
            what: "an Istio CRD not serving the program's version",
            world: (w) => (w.crds["sidecars.networking.istio.io"] = ["v1"]),
            line: /^Istio CRD sidecars\.networking\.istio\.io does not serve networking\.istio\.io\/v1beta1$/,
        },
        {
            what: "no Istio CNI while namespaces enforce restricted",
            world: (w) => delete w.cni,
            line: /^Istio CNI: no istio-cni-node DaemonSet, but injected pods must pass Pod Security in the namespaces the program creates \(mesh\.istioCni true: restricted\), crawlers \(enforces restricted\)/,
        },
        {
            what: "a labelled crawler namespace that does not exist",
            world: (w) => delete w.namespaces["crawlers-mobile"],
            line: /^crawler namespace crawlers-mobile \(manage: label\) does not exist/,
        },
        {
            what: "a crawler service account that does not exist",
            world: (w) => (w.serviceAccounts = ["crawlers/crawler"]),
            line: /^service account crawlers-mobile\/crawler \(crawlers\.namespaces\) does not exist/,
        },
        {
            what: "an ingress namespace that does not exist",
            world: (w) => delete w.namespaces["ingress-nginx"],
            line: /^namespace ingress-nginx \(mesh\.ingressNamespaces\) does not exist$/,
        },
        {
            what: "a crawler workload an HPA targets that does not exist",
            world: (w) => (w.workloads = []),
            line: /^Deployment crawlers\/crawler \(autoscaling\.workloads\[0\]\) does not exist: its HPA would scale nothing$/,
        },
        {
            what: "no metrics-server",
            world: (w) => delete w.apiServices["v1beta1.metrics.k8s.io"],
            line: /^metrics-server: APIService v1beta1\.metrics\.k8s\.io is not registered; the HPAs cannot read CPU or memory$/,
        },
        {
            what: "a metrics-server that is not available",
            world: (w) => (w.apiServices["v1beta1.metrics.k8s.io"].available = false),
            line: /^metrics-server: APIService v1beta1\.metrics\.k8s\.io is not available/,
        },
        {
            what: "another custom-metrics adapter already registered, with customMetricsApiService on",
            cfg: () => prodWith((r) => (r.autoscaling = { ...r.autoscaling, customMetricsApiService: true })),
            world: (w) =>
                (w.apiServices["v1beta1.custom.metrics.k8s.io"] = {
                    available: true,
                    service: { namespace: "keda", name: "keda-operator-metrics-apiserver" },
                }),
            line: /^APIService v1beta1\.custom\.metrics\.k8s\.io already exists \(served by keda\/keda-operator-metrics-apiserver\): the program's prometheus-adapter would take it over/,
        },
        {
            what: "no custom-metrics adapter, with customMetricsApiService off",
            world: (w) => delete w.apiServices["v1beta1.custom.metrics.k8s.io"],
            line: /^APIService v1beta1\.custom\.metrics\.k8s\.io is not registered: nothing serves the HPAs' custom metrics/,
        },
        {
            what: "no VPA CRD with VPAs on",
            cfg: () => prodWith((r) => (r.vpaEnabled = true)),
            world: () => undefined,
            line: /^VPA CRD verticalpodautoscalers\.autoscaling\.k8s\.io is not installed, but autoscaling\.vpa \(vpaEnabled\) is true$/,
        },
    ];
    for (const c of cases) {
        it(`names ${c.what} in exactly one MISSING line`, async () => {
            const world = complete();
            c.world(world);
            const missing = missingLines(await run(c.cfg ? c.cfg() : prod, world));
            expect(missing, missing.join("\n")).to.have.length(1);
            expect(missing[0]).to.match(c.line);
        });
    }

    it("with VPAs on and the CRD installed, and with sidecar allocation on a new Istio, passes (with a deprecation note)", async () => {
        const world = complete();
        world.crds["verticalpodautoscalers.autoscaling.k8s.io"] = ["v1"];
        const cfg = prodWith((r) => {
            r.vpaEnabled = true;
            r.mesh = { ...r.mesh, addressAllocation: "sidecar" };
        });
        const checks = await run(cfg, world);
        expect(missingLines(checks)).to.deep.equal([]);
        expect(checks.map((c) => c.line)).to.include("VPA CRD verticalpodautoscalers.autoscaling.k8s.io");
        expect(
            checks.find((c) => c.status === "note" && /deprecates ISTIO_META_DNS_AUTO_ALLOCATE/.test(c.line)),
        ).to.not.equal(undefined);
    });

    it("reads the revision's mesh config and reports mesh-wide DNS capture", async () => {
        const world = complete();
        world.istiod = {
            ...world.istiod!,
            rev: "1-26",
            mesh: 'defaultConfig:\n  proxyMetadata:\n    ISTIO_META_DNS_CAPTURE: "true"\n',
        };
        const checks = await run(prod, world);
        expect(checks.map((c) => c.line)).to.include(
            "mesh-wide DNS capture is on; the gateway pods turn it on for themselves (proxy.istio.io/config)",
        );
        expect(checks.map((c) => c.line)).to.include("Istio 1.26 (istiod revision 1-26)");
    });

    it("dev (no labelled namespaces, no custom metrics) needs neither their namespaces nor the adapter's APIService", async () => {
        const world = complete();
        world.namespaces = {};
        world.serviceAccounts = [];
        expect(missingLines(await run(dev, world))).to.deep.equal([]);
    });

    it("stops at one line when the cluster cannot be reached", async () => {
        const world = complete();
        world.unreachable =
            "The connection to the server localhost:8080 was refused - did you specify the right host or port?";
        const checks = await run(prod, world);
        expect(checks).to.deep.equal([
            {
                status: "MISSING",
                line: "cluster: kubectl cannot reach the API server (The connection to the server localhost:8080 was refused - did you specify the right host or port?)",
            },
        ]);
    });

    describe("the script, with the canned kubectl on PATH", () => {
        const runScript = (world: World, args: string[]) => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "preflight-"));
            fs.symlinkSync(FAKE, path.join(dir, "kubectl"));
            fs.writeFileSync(path.join(dir, "world.json"), JSON.stringify(world));
            return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
                execFile(
                    process.execPath,
                    [
                        require.resolve("ts-node/dist/bin.js"),
                        "--transpile-only",
                        path.join(ROOT, "scripts", "preflight.ts"),
                        ...args,
                    ],
                    {
                        cwd: ROOT,
                        timeout: 60_000,
                        env: {
                            ...process.env,
                            PATH: `${dir}${path.delimiter}${process.env.PATH}`,
                            FAKE_KUBECTL_WORLD: path.join(dir, "world.json"),
                        },
                    },
                    (err, stdout, stderr) =>
                        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
                ),
            );
        };

        it("exits 0 on a complete cluster and 1 with the missing line otherwise (--context passed through)", async () => {
            const good = await runScript({ ...complete(), context: "prod-us" }, [
                "--stack",
                "prod",
                "--context",
                "prod-us",
            ]);
            expect(good.stderr).to.equal("");
            expect(good.code).to.equal(0);
            expect(good.stdout).to.contain("ok      Istio 1.26 (istiod revision default)");
            expect(good.stdout).to.contain("preflight: the cluster has what stack prod needs");
            const world = complete();
            delete world.cni;
            const bad = await runScript(world, ["--stack", "prod"]);
            expect(bad.code).to.equal(1);
            expect(bad.stdout).to.match(/^MISSING Istio CNI: no istio-cni-node DaemonSet/m);
            expect(bad.stdout).to.contain("preflight: 1 missing prerequisite(s) for stack prod");
        });
    });
});
