import { expect } from "chai";
import { LoadGenerator, generatorPattern } from "../../components/load-generator";
import { targetFileConfig } from "../../components/simulators";
import { validatePattern } from "../../proxy/generate/pattern";
import { validateTargetConfig } from "../../proxy/target";
import { find, renderedStack, stackConfig, underMocks, validateObject } from "../harness";
import { workloadViolations } from "../pod-security";

describe("LoadGenerator component", function () {
    this.timeout(120_000);

    it("builds the traffic pattern from stack config, and the program accepts it unchanged", () => {
        const cfg = stackConfig("dev");
        const p = JSON.parse(JSON.stringify(generatorPattern(cfg)));
        expect(JSON.parse(JSON.stringify(validatePattern(p)))).to.deep.equal(p);
        expect(p.vendors).to.deep.equal([
            { name: "vendor-a", proxyUrl: "http://vendor-a-gateway.proxy-gateways.svc.cluster.local:3128", weight: 6 },
            { name: "vendor-b", proxyUrl: "http://vendor-b-gateway.proxy-gateways.svc.cluster.local:3128", weight: 3 },
            { name: "vendor-c", proxyUrl: "http://vendor-c-gateway.proxy-gateways.svc.cluster.local:3128", weight: 1 },
        ]);
        expect(p.rate).to.include({ schedule: "diurnal", requestsPerSecond: 20 });
        expect(validateTargetConfig(JSON.parse(JSON.stringify(targetFileConfig())))).to.deep.equal(targetFileConfig());
    });

    it("renders a crawler-like, restricted generator with its patterns, headless metrics Service and HPA", async () => {
        const cfg = stackConfig("dev", { images: { gateway: "registry.example.com/proxy-monitor/proxy:1.0.0" } });
        const { objects } = await underMocks(() => new LoadGenerator("lg-test", { config: cfg }));
        for (const o of objects) validateObject(o);
        expect(workloadViolations(objects).violations).to.deep.equal([]);
        const dep = find(objects, "Deployment", "loadgen", "crawler-sim")[0].spec as any;
        expect(dep.template.metadata.labels).to.include({
            "app.kubernetes.io/component": "crawler",
            "proxy-monitor.io/scrape": "true",
        });
        expect(dep.template.spec.serviceAccountName).to.equal("loadgen");
        expect(dep.template.spec.containers[0].args.slice(1, 2)).to.deep.equal(["generate"]);
        expect((find(objects, "Service", "loadgen-pods")[0].spec as any).clusterIP).to.equal("None");
        expect((find(objects, "HorizontalPodAutoscaler")[0].spec as any).scaleTargetRef.name).to.equal("loadgen");
    });

    it("dev renders the generator, its HPA, the target and a simulator per pool; prod the generator only", async () => {
        const dev = (await renderedStack("dev")).objects;
        expect(find(dev, "Deployment", "loadgen", "crawler-sim")).to.have.length(1);
        expect(
            find(dev, "HorizontalPodAutoscaler").filter((h) => h.metadata.namespace === "crawler-sim"),
        ).to.have.length(1);
        expect(find(dev, "Deployment", "target", "proxy-sim")).to.have.length(1);
        expect(
            find(dev, "Deployment").filter(
                (d) => (d.metadata.labels as any)["app.kubernetes.io/name"] === "vendor-sim",
            ),
        ).to.have.length(5);
        const prod = (await renderedStack("prod")).objects;
        expect(find(prod, "Deployment", "loadgen", "crawler-synthetic")).to.have.length(1);
        expect(
            find(prod, "Deployment").filter((d) =>
                ["vendor-sim", "target"].includes((d.metadata.labels as any)["app.kubernetes.io/name"]),
            ),
        ).to.deep.equal([]);
    });
});
