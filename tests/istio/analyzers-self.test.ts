/** Each analyzer catches the defect it is named for, planted in a copy of prod's rendered objects. */
import { expect } from "chai";
import { K8sObject, renderedStack, stackConfig } from "../harness";
import * as A from "./analyzers";
import { meshContext } from "./analyzers";

type Obj = Record<string, any>;

describe("Istio analyzers catch what they are named for", function () {
    this.timeout(180_000);
    let base: K8sObject[];
    let ctx: A.MeshContext;
    before(async () => {
        base = (await renderedStack("prod")).objects;
        ctx = meshContext(stackConfig("prod"));
    });
    const copy = (): K8sObject[] => JSON.parse(JSON.stringify(base));
    const get = (objs: K8sObject[], kind: string, name: string) =>
        objs.find((o) => o.kind === kind && o.metadata.name === name)! as K8sObject & Obj;
    const codes = (findings: A.Finding[]) => findings.map((f) => `${f.code} ${f.object}: ${f.message}`);
    const gatewayTemplate = (objs: K8sObject[], vendor = "vendor-a") =>
        (get(objs, "Deployment", `${vendor}-gateway`).spec as Obj).template;

    it("IST0134: gateway pods without DNS capture, or the mesh default, leave address-less TCP entries colliding", () => {
        const objs = copy();
        gatewayTemplate(objs).metadata.annotations["proxy.istio.io/config"] = "{}";
        const f = A.IST0134(objs, ctx);
        expect(f.map((x) => x.object)).to.deep.equal([
            "ServiceEntry proxy-gateways/vendor-a-dc-eu-west",
            "ServiceEntry proxy-gateways/vendor-a-dc-us-east",
            "ServiceEntry proxy-gateways/vendor-a-dc-us-west",
        ]);
        expect(f[0].message).to.contain("seen by Deployment proxy-gateways/vendor-a-gateway");
        // DNS capture alone allocates nothing unless istiod does
        expect(A.IST0134(base, { ...ctx, controlPlaneAutoAllocate: false })).to.have.length(9);
        // the sidecar's own allocation is enough without istiod's
        const sidecar = copy();
        for (const v of ["vendor-a", "vendor-b", "vendor-c"])
            gatewayTemplate(sidecar, v).metadata.annotations["proxy.istio.io/config"] = JSON.stringify({
                proxyMetadata: { ISTIO_META_DNS_CAPTURE: "true", ISTIO_META_DNS_AUTO_ALLOCATE: "true" },
            });
        expect(A.IST0134(sidecar, { ...ctx, controlPlaneAutoAllocate: false })).to.deep.equal([]);
        // an entry no pod is given falls back to the mesh default
        const orphan = copy();
        get(orphan, "ServiceEntry", "vendor-a-dc-eu-west").spec!.exportTo = ["nowhere"];
        expect(codes(A.IST0134(orphan, ctx))).to.deep.equal([
            "IST0134 ServiceEntry proxy-gateways/vendor-a-dc-eu-west: port(s) 8000 serve TCP without addresses (no pod is given it, so the mesh default (no DNS capture) applies): the entry matches all traffic on the port, regardless of host",
        ]);
    });

    it("IST0177: one host and port declared TCP and HTTP", () => {
        const objs = copy();
        const dup = JSON.parse(JSON.stringify(get(objs, "ServiceEntry", "vendor-a-dc-eu-west")));
        dup.metadata.name = "dup";
        dup.spec.ports = [{ number: 8000, name: "http", protocol: "HTTP" }];
        objs.push(dup);
        expect(A.IST0177(objs, ctx).map((f) => f.object)).to.deep.equal([
            "ServiceEntry proxy-gateways/vendor-a-dc-eu-west",
            "ServiceEntry proxy-gateways/dup",
        ]);
    });

    it("IST0118: a Service port named without a protocol prefix or appProtocol (the proxy port sniffed as HTTP)", () => {
        const objs = copy();
        const port = (get(objs, "Service", "vendor-a-gateway").spec as Obj).ports[0];
        delete port.appProtocol;
        port.name = "proxy";
        expect(codes(A.IST0118(objs, ctx))).to.deep.equal([
            'IST0118 Service proxy-gateways/vendor-a-gateway: port 3128 (name "proxy", appProtocol unset) follows no Istio protocol naming convention',
        ]);
        expect(A.servicePortProtocol({ name: "x", appProtocol: "tcp", port: 1 })).to.equal("TCP");
        expect(A.servicePortProtocol({ name: "mysql-main", port: 1 })).to.equal("MYSQL");
        expect(A.servicePortProtocol({ name: "", port: 3306 })).to.equal("TCP");
    });

    it("IST0116 and IST0137: a second Service on the gateway with another protocol, or another port to its target", () => {
        const objs = copy();
        const svc = JSON.parse(JSON.stringify(get(objs, "Service", "vendor-a-gateway")));
        svc.metadata.name = "extra";
        svc.spec.ports = [
            { name: "udp-proxy", port: 3128, targetPort: "proxy", protocol: "UDP" },
            { name: "tcp-alt", port: 8080, targetPort: "proxy", protocol: "TCP" },
        ];
        objs.push(svc);
        expect(A.IST0116(objs, ctx).map((f) => f.object)).to.deep.equal(["Deployment proxy-gateways/vendor-a-gateway"]);
        expect(codes(A.IST0137(objs, ctx))).to.deep.equal([
            "IST0137 Deployment proxy-gateways/vendor-a-gateway: targetPort proxy is reached through ports 3128, 8080 (extra, extra)",
        ]);
    });

    it("IST0102 and IST0123: a namespace without an injection label, and one with two", () => {
        const objs = copy();
        delete get(objs, "Namespace", "proxy-monitor").metadata.labels!["istio-injection"];
        get(objs, "Namespace", "proxy-gateways").metadata.labels!["istio.io/rev"] = "canary";
        expect(A.IST0102(objs, ctx).map((f) => f.object)).to.deep.equal(["Namespace proxy-monitor"]);
        expect(A.IST0123(objs, ctx).map((f) => f.object)).to.deep.equal(["Namespace proxy-gateways"]);
    });

    it("IST0101: Sidecar egress to nothing, selectors selecting nothing, AuthorizationPolicy sources that do not exist", () => {
        const objs = copy();
        (get(objs, "Sidecar", "vendor-a-gateway").spec as Obj).egress[0].hosts.push("./gone.example.net", "nowhere/*");
        (get(objs, "Telemetry", "proxy-gateways").spec as Obj).selector.matchLabels["app.kubernetes.io/name"] = "x";
        const rules = (get(objs, "AuthorizationPolicy", "vendor-a-gateway").spec as Obj).rules;
        rules[0].from[0].source.principals.push(
            "cluster.local/ns/crawler-synthetic/sa/ghost",
            "other.domain/ns/crawlers/sa/crawler",
            "cluster.local/ns/nowhere/sa/x",
        );
        rules[0].from.push({ source: { namespaces: ["nowhere", "crawl*"] } });
        expect(codes(A.IST0101(objs, ctx))).to.deep.equal([
            "IST0101 Sidecar proxy-gateways/vendor-a-gateway: egress host ./gone.example.net matches no Service or ServiceEntry visible to proxy-gateways",
            "IST0101 Sidecar proxy-gateways/vendor-a-gateway: egress host nowhere/*: namespace nowhere does not exist",
            'IST0101 Telemetry proxy-gateways/proxy-gateways: selector {"app.kubernetes.io/name":"x"} selects no pod',
            "IST0101 AuthorizationPolicy proxy-gateways/vendor-a-gateway: principal cluster.local/ns/crawler-synthetic/sa/ghost: no service account ghost in crawler-synthetic",
            "IST0101 AuthorizationPolicy proxy-gateways/vendor-a-gateway: principal other.domain/ns/crawlers/sa/crawler: trust domain is cluster.local",
            "IST0101 AuthorizationPolicy proxy-gateways/vendor-a-gateway: principal cluster.local/ns/nowhere/sa/x: namespace nowhere does not exist",
            "IST0101 AuthorizationPolicy proxy-gateways/vendor-a-gateway: source namespace nowhere does not exist",
        ]);
    });

    it("IST0127: an AuthorizationPolicy selecting no workload", () => {
        const objs = copy();
        (get(objs, "AuthorizationPolicy", "vendor-b-gateway").spec as Obj).selector.matchLabels[
            "proxy-monitor.io/vendor"
        ] = "vendor-z";
        expect(A.IST0127(objs, ctx).map((f) => f.object)).to.deep.equal([
            "AuthorizationPolicy proxy-gateways/vendor-b-gateway",
        ]);
    });

    it("IST0110/IST0111 and IST0159/IST0160: overlapping Sidecars and Telemetries", () => {
        const objs = copy();
        const sc = JSON.parse(JSON.stringify(get(objs, "Sidecar", "vendor-a-gateway")));
        sc.metadata.name = "second";
        const nsWide = JSON.parse(
            JSON.stringify(objs.find((o) => o.kind === "Sidecar" && !(o.spec as Obj).workloadSelector)),
        );
        nsWide.metadata.name = "another";
        const tel = JSON.parse(JSON.stringify(get(objs, "Telemetry", "proxy-gateways")));
        tel.metadata.name = "second";
        const telNs = JSON.parse(JSON.stringify(objs.find((o) => o.kind === "Telemetry" && !(o.spec as Obj).selector)));
        telNs.metadata.name = "another";
        objs.push(sc, nsWide, tel, telNs);
        expect([...new Set(A.IST0110_IST0111(objs, ctx).map((f) => f.code))]).to.deep.equal(["IST0110", "IST0111"]);
        expect([...new Set(A.IST0159_IST0160(objs, ctx).map((f) => f.code))]).to.deep.equal(["IST0159", "IST0160"]);
    });

    it("IST0157: a Telemetry naming a provider the mesh does not define, or access logging naming none", () => {
        const objs = copy();
        const t = get(objs, "Telemetry", "proxy-gateways").spec as Obj;
        t.metrics[0].providers = [{ name: "datadog" }];
        t.accessLogging = [{ providers: [] }];
        expect(codes(A.IST0157(objs, ctx))).to.deep.equal([
            "IST0157 Telemetry proxy-gateways/proxy-gateways: accessLogging entry names no provider",
            "IST0157 Telemetry proxy-gateways/proxy-gateways: metrics provider datadog is not defined in the mesh config",
        ]);
    });

    it("IST0144: an application container running as UID 1337", () => {
        const objs = copy();
        gatewayTemplate(objs).spec.containers[0].securityContext.runAsUser = 1337;
        expect(A.IST0144(objs, ctx).map((f) => f.object)).to.deep.equal(["Deployment proxy-gateways/vendor-a-gateway"]);
    });

    it("IST0167: PeerAuthentication port-level mTLS on a port the workload does not expose, or without a selector", () => {
        const objs = copy();
        const pas = objs.filter((o) => o.kind === "PeerAuthentication" && o.metadata.namespace === "proxy-gateways");
        (pas.find((p) => p.metadata.name === "metrics-scrape")!.spec as Obj).portLevelMtls["9999"] = {
            mode: "DISABLE",
        };
        (pas.find((p) => p.metadata.name === "default")!.spec as Obj).portLevelMtls = {
            "9102": { mode: "PERMISSIVE" },
        };
        const f = codes(A.IST0167(objs, ctx));
        expect(f).to.include(
            "IST0167 PeerAuthentication proxy-gateways/default: portLevelMtls without a selector has no effect",
        );
        expect(f).to.include(
            "IST0167 PeerAuthentication proxy-gateways/metrics-scrape: port 9999 is not a container port of Deployment proxy-gateways/vendor-a-gateway",
        );
        expect(f).to.have.length(4);
    });

    it("IST0106/IST0133: what Istio's webhook rejects or warns about in ServiceEntries and Telemetry", () => {
        const objs = copy();
        const se = get(objs, "ServiceEntry", "vendor-a-dc-eu-west").spec as Obj;
        se.hosts.push("other.example.net");
        se.addresses = ["10.0.0.0/24"];
        se.ports.push({ number: 8000, name: "tcp-8000", protocol: "SCTP" });
        const tags = (get(objs, "Telemetry", "proxy-gateways").spec as Obj).metrics[0].overrides.find(
            (o: Obj) => o.tagOverrides,
        ).tagOverrides;
        tags.source_app = { operation: "REMOVE", value: "x" };
        tags.extra = { operation: "UPSERT" };
        expect(codes(A.IST0106_IST0133(objs, ctx))).to.deep.equal([
            "IST0106 ServiceEntry proxy-gateways/vendor-a-dc-eu-west: CIDR addresses are allowed only for NONE/STATIC resolution types",
            "IST0106 ServiceEntry proxy-gateways/vendor-a-dc-eu-west: port name tcp-8000 already defined",
            "IST0106 ServiceEntry proxy-gateways/vendor-a-dc-eu-west: port 8000 already defined",
            "IST0106 ServiceEntry proxy-gateways/vendor-a-dc-eu-west: unsupported protocol SCTP",
            "IST0106 ServiceEntry proxy-gateways/vendor-a-dc-eu-west: multiple hosts provided with non-HTTP, non-TLS ports",
            "IST0106 Telemetry proxy-gateways/proxy-gateways: tagOverrides.source_app: value may only be set when operation is UPSERT",
            "IST0106 Telemetry proxy-gateways/proxy-gateways: tagOverrides.extra: value must be set when operation is UPSERT",
        ]);
        // without istiod's allocation, Istio's webhook warns on every address-less TCP entry
        expect(A.IST0106_IST0133(base, { ...ctx, controlPlaneAutoAllocate: false }).map((f) => f.code)).to.deep.equal(
            Array(9).fill("IST0133"),
        );
    });

    it("IST0107, IST0108, IST0125, IST0135: misplaced, unknown, invalid and deprecated Istio annotations", () => {
        const objs = copy();
        const ann = gatewayTemplate(objs).metadata.annotations;
        ann["sidecar.istio.io/inject"] = "true";
        ann["sidecar.istio.io/madeUp"] = "x";
        ann["networking.istio.io/exportTo"] = ".";
        ann["proxy.istio.io/config"] = JSON.stringify({ proxyMetadata: { ISTIO_META_DNS_CAPTURE: true }, bogus: 1 });
        expect(
            A.ANNOTATIONS(objs, ctx)
                .map((f) => f.code)
                .sort(),
        ).to.deep.equal(["IST0107", "IST0108", "IST0125", "IST0135"]);
        // the label beside the annotation is the documented migration: not reported
        gatewayTemplate(objs).metadata.labels["sidecar.istio.io/inject"] = "true";
        expect(A.ANNOTATIONS(objs, ctx).map((f) => f.code)).to.not.include("IST0135");
    });
});
