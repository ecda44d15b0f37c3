import { expect } from "chai";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { resolvePoolCredentials } from "../../components/credentials";
import { StackConfig, VendorConfig } from "../../components/config";
import { VendorGateway, VendorGatewayArgs, gatewayFileConfig } from "../../components/gateway";
import { NAMES } from "../../components/names";
import { CRAWLER_AUTH_KEY, crawlerAuthLines } from "../../components/gateway/file-config";
import { find, promiseOf, rawStackConfig, stackConfig, underMocks, validateObject } from "../harness";
import { workloadViolations } from "../pod-security";

const BUILT = { images: { gateway: "registry.example.com/proxy-monitor/gateway:1.0.0" } };

let accounts = 0;

/** The gateway's Args as index.ts builds them (the ServiceAccount ProxyMesh would create, unless given). */
function gatewayArgs(
    cfg: StackConfig,
    vendor: VendorConfig,
    serviceAccount?: k8s.core.v1.ServiceAccount,
): VendorGatewayArgs {
    const namespace = cfg.namespaces.gateways;
    return {
        config: cfg,
        vendor,
        namespace,
        credentials: resolvePoolCredentials(cfg)[vendor.name],
        crawlerAuth: crawlerAuthLines(cfg, vendor),
        serviceAccount:
            serviceAccount ??
            new k8s.core.v1.ServiceAccount(`gw-test-sa-${vendor.name}-${++accounts}`, {
                metadata: { name: NAMES.gateway(vendor.name), namespace },
            }),
    };
}

describe("VendorGateway", () => {
    it("renders a restricted, probed, spread Deployment with a fixed name, a TCP proxy Service, HPA and PDB", async () => {
        const cfg = stackConfig("prod", BUILT);
        const vendor = cfg.vendors[1];
        const { objects } = await underMocks(() => new VendorGateway("gw-test-b", gatewayArgs(cfg, vendor)));
        for (const o of objects) validateObject(o);
        expect(workloadViolations(objects).violations).to.deep.equal([]);
        const [dep] = find(objects, "Deployment");
        expect(dep.metadata.name).to.equal("vendor-b-gateway");
        const spec = dep.spec as any;
        expect(spec.replicas, "the HPA owns replicas").to.equal(undefined);
        expect(spec.selector.matchLabels).to.deep.equal({
            "app.kubernetes.io/name": "proxy-gateway",
            "app.kubernetes.io/instance": "vendor-b-gateway",
            "proxy-monitor.io/vendor": "vendor-b",
        });
        const pod = spec.template.spec;
        expect(pod.serviceAccountName).to.equal("vendor-b-gateway");
        expect(
            pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm
                .labelSelector.matchLabels,
        ).to.deep.equal(spec.selector.matchLabels);
        const c = pod.containers[0];
        expect(c.image).to.equal("registry.example.com/proxy-monitor/gateway:1.0.0");
        const entry = c.args.indexOf("/opt/proxy-monitor/loader.js");
        expect(entry, "the entry file in the args").to.be.greaterThan(-1);
        expect(c.args.slice(entry + 1, entry + 4)).to.deep.equal([
            "gateway",
            "--config",
            "/etc/proxy-monitor/config.json",
        ]);
        expect(c.readinessProbe.httpGet).to.deep.equal({ path: "/readyz", port: "metrics" });
        expect(c.livenessProbe.httpGet).to.deep.equal({ path: "/healthz", port: "metrics" });
        expect(spec.template.metadata.labels["proxy-monitor.io/scrape"]).to.equal("true");
        const [svc] = find(objects, "Service");
        expect(svc.metadata.name).to.equal("vendor-b-gateway");
        expect((svc.spec as any).ports[0]).to.include({ name: "tcp-proxy", port: 3128, appProtocol: "tcp" });
        const [hpa] = find(objects, "HorizontalPodAutoscaler");
        expect((hpa.spec as any).scaleTargetRef).to.deep.equal({
            apiVersion: "apps/v1",
            kind: "Deployment",
            name: "vendor-b-gateway",
        });
        expect((hpa.spec as any).minReplicas).to.equal(3);
        expect((hpa.spec as any).maxReplicas).to.equal(20);
        expect((hpa.spec as any).behavior.scaleDown.stabilizationWindowSeconds).to.equal(300);
        expect(find(objects, "PodDisruptionBudget")).to.have.length(1);
    });

    it("puts credentials only in the Secret, as secrets, and points the config file at its mounted files", async () => {
        const cfg = stackConfig("prod", BUILT);
        const { objects } = await underMocks(() => new VendorGateway("gw-test-a", gatewayArgs(cfg, cfg.vendors[0])));
        const [secret] = find(objects, "Secret");
        expect(Object.keys(secret.stringData as object).sort()).to.deep.equal([
            "dc-eu-west.password",
            "dc-eu-west.username",
            "dc-us-east.password",
            "dc-us-east.username",
            "dc-us-west.password",
            "dc-us-west.username",
        ]);
        const [cm] = find(objects, "ConfigMap");
        const text = (cm.data as any)["config.json"] as string;
        expect(text).to.not.contain("<secret");
        const file = JSON.parse(text);
        expect(file.pools[0]).to.deep.include({
            name: "dc-us-east",
            host: "us-east.dc.vendor-a.example.net",
            port: 8000,
            weight: 3,
            usernameFile: "/etc/proxy-monitor/secrets/dc-us-east.username",
        });
    });

    it("runs as the ServiceAccount resource it is given (its output name, not a name of its own), and depends on it", async () => {
        const cfg = stackConfig("prod", BUILT);
        const vendor = cfg.vendors[1];
        const { objects, resources } = await underMocks(() => {
            // Auto-named: only the resource's own output knows the suffix the provider gives it.
            const serviceAccount = new k8s.core.v1.ServiceAccount("gw-test-sa", {
                metadata: { namespace: cfg.namespaces.gateways },
            });
            return new VendorGateway("gw-test-sa", gatewayArgs(cfg, vendor, serviceAccount));
        });
        const [sa] = find(objects, "ServiceAccount");
        expect(sa.metadata.name).to.match(/^gw-test-sa-[0-9a-f]{8}$/);
        const [dep] = find(objects, "Deployment");
        expect((dep.spec as any).template.spec.serviceAccountName).to.equal(sa.metadata.name);
        const order = resources.map((r) => r.type);
        expect(order.indexOf("kubernetes:core/v1:ServiceAccount")).to.be.below(
            order.indexOf("kubernetes:apps/v1:Deployment"),
        );
    });

    it("has no PDB with a single replica (it would block node drains)", async () => {
        const cfg = stackConfig("dev", BUILT);
        const { objects } = await underMocks(() => new VendorGateway("gw-test-dev", gatewayArgs(cfg, cfg.vendors[2])));
        expect(find(objects, "PodDisruptionBudget")).to.deep.equal([]);
        expect(find(objects, "Deployment")[0].metadata.name).to.equal("vendor-c-gateway");
    });

    it("builds the program's config file from the stack config", () => {
        const cfg = stackConfig("dev");
        const f = gatewayFileConfig(cfg, cfg.vendors[0], "/s");
        expect(f.vendor).to.equal("vendor-a");
        expect(f.timeouts).to.deep.equal({ connectMs: 10_000, idleMs: 60_000, totalMs: 600_000 });
        expect(f.probe).to.include({ intervalMs: 15_000, destination: "www.example.com:443" });
        expect(f.destinations.tracked).to.deep.equal(["example.com", "example.org", "example.net"]);
        expect(f.pools.map((p) => [p.name, p.weight])).to.deep.equal([
            ["dc-us-east", 2],
            ["dc-eu-west", 1],
        ]);
        // Safe by default: ports 443 and 80 only, no internal destinations, no crawler auth unless asked.
        expect(f.destinations).to.include({ allowInternal: false });
        expect(f.destinations.connectPorts).to.deep.equal(["443", "80"]);
        expect(f.crawlerAuthFile).to.equal(undefined);
    });

    it("with gateway.crawlerAuth, writes one namespace:secret line per crawler namespace of the vendor into the Secret", async () => {
        const raw = rawStackConfig("dev") as { gateway?: object; crawlers: { namespaces: { name: string }[] } };
        const ns = raw.crawlers.namespaces[0].name;
        const cfg = stackConfig("dev", {
            gateway: { ...raw.gateway, crawlerAuth: true },
            crawlerSecrets: { [ns]: "s3cret" },
        });
        const f = gatewayFileConfig(cfg, cfg.vendors[0], "/s");
        expect(f.crawlerAuthFile).to.equal(`/s/${CRAWLER_AUTH_KEY}`);
        const lines = crawlerAuthLines(cfg, cfg.vendors[0])!;
        expect(await pulumi.isSecret(lines)).to.equal(true);
        expect(await promiseOf(lines)).to.equal(`${ns}:s3cret\n`);
    });
});
