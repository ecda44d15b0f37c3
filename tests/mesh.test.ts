import { expect } from "chai";
import { ISTIO_STANDARD_LABELS, KEPT_ISTIO_LABELS } from "../catalog";
import {
    ObjectSpec,
    ProxyMesh,
    buildAuthorizationPolicies,
    buildNetworkPolicies,
    buildPeerAuthentications,
    buildServiceEntries,
    buildSidecars,
    buildTelemetry,
    planNamespaces,
} from "../components/mesh";
import { find, rawStackConfig, stackConfig, underMocks, validateObject } from "./harness";

type Obj = Record<string, any>;
const spec = (o: ObjectSpec): Obj => o.spec as Obj;

describe("ProxyMesh", () => {
    const dev = stackConfig("dev");
    const prod = stackConfig("prod");

    it("puts crawler, gateway and simulator namespaces in the mesh and keeps monitoring out, all restricted with Istio CNI", () => {
        const plan = planNamespaces(dev);
        const byName = Object.fromEntries(plan.create.map((n) => [n.name, n.labels]));
        expect(Object.keys(byName).sort()).to.deep.equal([
            "crawler-sim",
            "proxy-gateways",
            "proxy-monitor",
            "proxy-sim",
        ]);
        expect(byName["proxy-monitor"]["istio-injection"]).to.equal("disabled");
        for (const n of ["crawler-sim", "proxy-gateways", "proxy-sim"])
            expect(byName[n]["istio-injection"]).to.equal("enabled");
        for (const labels of Object.values(byName))
            expect(labels["pod-security.kubernetes.io/enforce"]).to.equal("restricted");
    });

    it("without Istio CNI, in-mesh namespaces enforce privileged (istio-init needs NET_ADMIN) and warn on restricted", () => {
        const cfg = stackConfig("dev", { mesh: { istioCni: false } });
        const byName = Object.fromEntries(planNamespaces(cfg).create.map((n) => [n.name, n.labels]));
        expect(byName["proxy-gateways"]["pod-security.kubernetes.io/enforce"]).to.equal("privileged");
        expect(byName["proxy-gateways"]["pod-security.kubernetes.io/warn"]).to.equal("restricted");
        expect(byName["proxy-monitor"]["pod-security.kubernetes.io/enforce"]).to.equal("restricted");
    });

    it("labels existing crawler namespaces for injection instead of creating them", () => {
        const plan = planNamespaces(prod);
        expect(plan.label.map((n) => n.name)).to.deep.equal(["crawlers", "crawlers-mobile"]);
        expect(plan.label[0].labels).to.deep.equal({ "istio-injection": "enabled" });
        expect(plan.create.map((n) => n.name))
            .to.include("crawler-synthetic")
            .and.not.include("crawlers");
    });

    it("enforces STRICT mTLS in every mesh namespace, with only the metrics port of scrape-labelled pods permissive", () => {
        const pas = buildPeerAuthentications(prod);
        const strict = pas.filter((p) => !spec(p).selector);
        expect(strict.map((p) => p.metadata.namespace).sort()).to.deep.equal(["crawler-synthetic", "proxy-gateways"]);
        for (const p of strict) expect(spec(p).mtls).to.deep.equal({ mode: "STRICT" });
        // In the namespaces the program only labels, STRICT holds for the crawler pods alone.
        const crawlers = pas.filter((p) => p.metadata.name === "crawlers");
        expect(crawlers.map((p) => p.metadata.namespace)).to.deep.equal(["crawlers", "crawlers-mobile"]);
        for (const p of crawlers)
            expect(spec(p)).to.deep.equal({
                selector: { matchLabels: { "app.kubernetes.io/component": "crawler" } },
                mtls: { mode: "STRICT" },
            });
        for (const p of pas.filter((x) => spec(x).portLevelMtls)) {
            expect(spec(p).mtls.mode).to.equal("STRICT");
            expect(spec(p).portLevelMtls).to.deep.equal({ "9102": { mode: "PERMISSIVE" } });
        }
    });

    it("declares one MESH_EXTERNAL TCP ServiceEntry per external pool, exported to the gateway namespace only", () => {
        expect(buildServiceEntries(dev)).to.deep.equal([]); // dev pools are in-mesh simulators
        const ses = buildServiceEntries(prod);
        expect(ses).to.have.length(9);
        const a = ses.find((s) => s.metadata.name === "vendor-a-dc-us-east")!;
        expect(a.metadata.namespace).to.equal("proxy-gateways");
        expect(spec(a)).to.deep.equal({
            hosts: ["us-east.dc.vendor-a.example.net"],
            location: "MESH_EXTERNAL",
            resolution: "DNS",
            ports: [{ number: 8000, name: "tcp-8000", protocol: "TCP" }],
            exportTo: ["."],
        });
    });

    it("lets crawlers reach only the gateways of their vendors, and each gateway only its pools (REGISTRY_ONLY)", () => {
        const sidecars = buildSidecars(prod);
        const mobile = sidecars.find((s) => s.metadata.namespace === "crawlers-mobile")!;
        expect(spec(mobile).outboundTrafficPolicy).to.deep.equal({ mode: "REGISTRY_ONLY" });
        expect(spec(mobile).workloadSelector).to.deep.equal({ labels: { "app.kubernetes.io/component": "crawler" } });
        expect(spec(mobile).egress[0].hosts).to.deep.equal([
            "proxy-gateways/vendor-c-gateway.proxy-gateways.svc.cluster.local",
            "istio-system/*",
        ]);
        // A namespace the program created is its own: its Sidecar is the namespace default.
        const synthetic = sidecars.find((s) => s.metadata.namespace === "crawler-synthetic")!;
        expect(synthetic.metadata.name).to.equal("default");
        expect(spec(synthetic).workloadSelector).to.equal(undefined);
        // Configured extra egress lands after the gateways and the control plane.
        const withEgress = stackConfig("prod", {
            crawlers: {
                ...(rawStackConfig("prod").crawlers as object),
                namespaces: [{ name: "crawlers", manage: "label", egressHosts: ["queues/*", "*/api.example.com"] }],
            },
            loadGenerator: { ...(rawStackConfig("prod").loadGenerator as object), namespace: "crawlers" },
        });
        expect(spec(buildSidecars(withEgress)[0]).egress[0].hosts.slice(-2)).to.deep.equal([
            "queues/*",
            "*/api.example.com",
        ]);
        const gwB = sidecars.find((s) => s.metadata.name === "vendor-b-gateway")!;
        expect(spec(gwB).workloadSelector.labels["proxy-monitor.io/vendor"]).to.equal("vendor-b");
        expect(spec(gwB).egress[0].hosts).to.deep.equal([
            "./us.residential.vendor-b.example.com",
            "./eu.residential.vendor-b.example.com",
            "./asia.residential.vendor-b.example.com",
            "istio-system/*",
        ]);
        const devGw = buildSidecars(dev).find((s) => s.metadata.name === "vendor-c-gateway")!;
        expect(spec(devGw).egress[0].hosts[0]).to.equal("proxy-sim/vendor-c-mobile-us.proxy-sim.svc.cluster.local");
    });

    it("admits on each gateway's proxy port only the crawler service accounts allowed to use that vendor", () => {
        const aps = buildAuthorizationPolicies(prod);
        const rulesOf = (vendor: string) => spec(aps.find((a) => a.metadata.name === `${vendor}-gateway`)!).rules;
        expect(rulesOf("vendor-a")[0]).to.deep.equal({
            from: [
                {
                    source: {
                        principals: [
                            "cluster.local/ns/crawlers/sa/crawler",
                            "cluster.local/ns/crawler-synthetic/sa/loadgen",
                        ],
                    },
                },
            ],
            to: [{ operation: { ports: ["3128"] } }],
        });
        expect(rulesOf("vendor-c")[0].from[0].source.principals).to.deep.equal([
            "cluster.local/ns/crawlers/sa/crawler",
            "cluster.local/ns/crawlers-mobile/sa/crawler",
            "cluster.local/ns/crawler-synthetic/sa/loadgen",
        ]);
        expect(rulesOf("vendor-a")[1]).to.deep.equal({ to: [{ operation: { ports: ["9102"] } }] });
        const devSims = buildAuthorizationPolicies(dev).find((a) => a.metadata.name === "vendor-simulators")!;
        expect(spec(devSims).rules[0].from[0].source.principals).to.include(
            "cluster.local/ns/proxy-gateways/sa/vendor-a-gateway",
        );
    });

    it("trims Istio metrics: gateways keep TCP bytes and connections with four labels, crawler sidecars export nothing", () => {
        const [gw, ...crawlers] = buildTelemetry(prod);
        const overrides = spec(gw).metrics[0].overrides as Obj[];
        expect(overrides[0]).to.deep.equal({ match: { metric: "ALL_METRICS", mode: "CLIENT" }, disabled: true });
        const kept = overrides.filter((o) => o.tagOverrides);
        expect(kept.map((o) => o.match.metric)).to.deep.equal([
            "TCP_SENT_BYTES",
            "TCP_RECEIVED_BYTES",
            "TCP_OPENED_CONNECTIONS",
        ]);
        const removed = Object.keys(kept[0].tagOverrides);
        const tcpLabels = ISTIO_STANDARD_LABELS.filter((l) => l !== "response_code" && l !== "grpc_response_status");
        expect([...removed, ...KEPT_ISTIO_LABELS].sort()).to.deep.equal(tcpLabels.sort());
        for (const r of Object.values(kept[0].tagOverrides)) expect(r).to.deep.equal({ operation: "REMOVE" });
        expect(crawlers.map((c) => c.metadata.namespace)).to.deep.equal([
            "crawlers",
            "crawlers-mobile",
            "crawler-synthetic",
        ]);
    });

    it("denies ingress by default in every namespace it runs workloads in, then allows narrowly", () => {
        const nps = buildNetworkPolicies(dev);
        const denies = nps.filter((n) => n.metadata.name === "default-deny-ingress");
        expect(denies.map((n) => n.metadata.namespace).sort()).to.deep.equal([
            "crawler-sim",
            "proxy-gateways",
            "proxy-monitor",
            "proxy-sim",
        ]);
        for (const d of denies) expect(spec(d)).to.deep.equal({ podSelector: {}, policyTypes: ["Ingress"] });
        const gw = nps.find((n) => n.metadata.name === "gateways")!;
        expect(spec(gw).ingress[0]).to.deep.equal({
            from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "crawler-sim" } } }],
            ports: [{ protocol: "TCP", port: 3128 }],
        });
        // prod runs no simulators, so no policy in their namespace
        expect(buildNetworkPolicies(prod).some((n) => n.metadata.namespace === "proxy-sim")).to.equal(false);
    });

    it("creates every object under mocks with the schema-valid shape and gateway identities", async () => {
        const { objects } = await underMocks(() => new ProxyMesh("mesh-test", { config: prod }));
        for (const o of objects) validateObject(o);
        expect(
            find(objects, "ServiceAccount")
                .map((s) => s.metadata.name)
                .sort(),
        ).to.deep.equal(["vendor-a-gateway", "vendor-b-gateway", "vendor-c-gateway"]);
        expect(find(objects, "PeerAuthentication", "default")).to.have.length(2);
        expect(find(objects, "PeerAuthentication", "crawlers")).to.have.length(2);
        expect(
            find(objects, "Namespace")
                .map((n) => n.metadata.name)
                .sort(),
        ).to.deep.equal(["crawler-synthetic", "crawlers", "crawlers-mobile", "proxy-gateways", "proxy-monitor"]);
    });
});
