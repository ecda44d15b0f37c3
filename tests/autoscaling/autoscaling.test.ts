import { expect } from "chai";
import { LOADGEN_METRICS } from "../../catalog/loadgen";
import {
    Autoscaling,
    CUSTOM_METRICS,
    buildAdapterRules,
    workloadHpaSpec,
    workloadVpa,
} from "../../components/autoscaling";
import { find, rawStackConfig, renderedStack, stackConfig, underMocks, validateObject } from "../harness";
import { workloadViolations } from "../pod-security";
import { promqlErrors, selectedMetrics } from "../promql";

/** The adapter's Go-template markers replaced by what it would put there. */
function asPromQL(q: string): string {
    return q
        .replace(/<<\.Series>>/g, "some_series")
        .replace(/<<\.LabelMatchers>>/g, 'namespace="ns",pod=~"p1|p2"')
        .replace(/<<\.GroupBy>>/g, "pod");
}

describe("autoscaling", function () {
    this.timeout(120_000);
    const prod = stackConfig("prod");
    const crawler = prod.autoscaling.workloads[0];

    it("scales the crawler workloads on CPU and memory, plus queue depth with custom metrics, with behaviour", () => {
        const spec = workloadHpaSpec(prod, crawler) as any;
        expect(spec.scaleTargetRef).to.deep.equal({ apiVersion: "apps/v1", kind: "Deployment", name: "crawler" });
        expect(spec.minReplicas).to.equal(50);
        expect(spec.maxReplicas).to.equal(2500);
        expect(spec.metrics.map((m: any) => m.resource?.name ?? m.pods.metric.name)).to.deep.equal([
            "cpu",
            "memory",
            CUSTOM_METRICS.queueDepth,
        ]);
        expect(spec.metrics[2].pods.target).to.deep.equal({ type: "AverageValue", averageValue: "10" });
        expect(spec.behavior.scaleUp.stabilizationWindowSeconds).to.equal(0);
        expect(spec.behavior.scaleDown).to.deep.equal({
            stabilizationWindowSeconds: 300,
            selectPolicy: "Min",
            policies: [{ type: "Percent", value: 10, periodSeconds: 60 }],
        });
        const noCustom = workloadHpaSpec(stackConfig("prod", { customMetricsEnabled: false }), crawler) as any;
        expect(noCustom.metrics.map((m: any) => m.type)).to.deep.equal(["Resource", "Resource"]);
    });

    it("never lets VPA and HPA act on the same resource: VPA recommends only unless the HPA scales on queue depth alone", () => {
        const auto = stackConfig("prod", {
            vpaEnabled: true,
            autoscaling: { vpaMode: "Auto", workloads: (rawStackConfig("prod").autoscaling as any).workloads },
        });
        // HPA on queue depth only, VPA Auto on CPU and memory.
        expect((workloadHpaSpec(auto, crawler) as any).metrics.map((m: any) => m.type)).to.deep.equal(["Pods"]);
        expect((workloadVpa(auto, crawler) as any).spec.updatePolicy.updateMode).to.equal("Auto");
        // Without custom metrics the HPA keeps CPU and memory, so the VPA only recommends.
        const noCustom = stackConfig("prod", {
            vpaEnabled: true,
            customMetricsEnabled: false,
            autoscaling: { vpaMode: "Auto", workloads: (rawStackConfig("prod").autoscaling as any).workloads },
        });
        expect((workloadHpaSpec(noCustom, crawler) as any).metrics.map((m: any) => m.resource.name)).to.deep.equal([
            "cpu",
            "memory",
        ]);
        expect((workloadVpa(noCustom, crawler) as any).spec.updatePolicy.updateMode).to.equal("Off");
    });

    it("serves per-pod queue depth and request rate from the load generator's series; every query parses", () => {
        const rules = (buildAdapterRules() as any).rules;
        expect(rules.map((r: any) => r.name.as)).to.deep.equal([CUSTOM_METRICS.queueDepth, CUSTOM_METRICS.requestRate]);
        const known = new Set<string>(Object.values(LOADGEN_METRICS).map((m) => m.name));
        for (const r of rules) {
            expect(promqlErrors(r.seriesQuery), r.seriesQuery).to.deep.equal([]);
            for (const m of selectedMetrics(r.seriesQuery)) expect(known.has(m), m).to.equal(true);
            expect(promqlErrors(asPromQL(r.metricsQuery)), r.metricsQuery).to.deep.equal([]);
            expect(r.resources.overrides).to.deep.equal({
                namespace: { resource: "namespace" },
                pod: { resource: "pod" },
            });
        }
    });

    it("renders prometheus-adapter restricted, with least-privilege RBAC and, when asked for, the custom-metrics APIService", async () => {
        const takeover = stackConfig("prod", {
            autoscaling: { ...(rawStackConfig("prod").autoscaling as object), customMetricsApiService: true },
        });
        const { objects } = await underMocks(() => new Autoscaling("as-test", { config: takeover }));
        for (const o of objects) validateObject(o);
        expect(workloadViolations(objects).violations).to.deep.equal([]);
        const api = find(objects, "APIService", "v1beta1.custom.metrics.k8s.io")[0].spec as any;
        expect(api).to.deep.include({
            group: "custom.metrics.k8s.io",
            version: "v1beta1",
            service: { name: "prometheus-adapter", namespace: "proxy-monitor", port: 443 },
        });
        const roles = find(objects, "ClusterRole").map((r) => r.rules);
        expect(roles).to.deep.include([
            { apiGroups: [""], resources: ["namespaces", "pods"], verbs: ["get", "list", "watch"] },
        ]);
        expect(roles).to.deep.include([
            { apiGroups: ["custom.metrics.k8s.io"], resources: ["*"], verbs: ["get", "list"] },
        ]);
        const bindings = find(objects, "ClusterRoleBinding").map((b) => (b.roleRef as any).name);
        expect(bindings).to.include("system:auth-delegator");
        expect((find(objects, "RoleBinding")[0].roleRef as any).name).to.equal(
            "extension-apiserver-authentication-reader",
        );
        expect(find(objects, "HorizontalPodAutoscaler", "crawler", "crawlers")).to.have.length(1);
        expect(find(objects, "VerticalPodAutoscaler")).to.deep.equal([]);
    });

    it("registers no cluster-wide APIService unless customMetricsApiService is set (another adapter may own it)", async () => {
        const { objects } = await underMocks(() => new Autoscaling("as-no-api-test", { config: prod }));
        expect(prod.autoscaling.customMetrics).to.equal(true);
        expect(prod.autoscaling.customMetricsApiService).to.equal(false);
        expect(find(objects, "APIService")).to.deep.equal([]);
        expect(find(objects, "Deployment", "prometheus-adapter")).to.have.length(1);
    });

    it("creates VPA objects only when switched on", async () => {
        const on = stackConfig("prod", { vpaEnabled: true });
        const { objects } = await underMocks(() => new Autoscaling("as-vpa-test", { config: on }));
        const vpas = find(objects, "VerticalPodAutoscaler");
        expect(vpas).to.have.length(1);
        validateObject(vpas[0]);
        expect((vpas[0].spec as any).targetRef).to.deep.equal({
            apiVersion: "apps/v1",
            kind: "Deployment",
            name: "crawler",
        });
    });

    it("dev and prod render HPAs with behaviour; prod the adapter and a queue-depth HPA for the generator", async () => {
        const dev = (await renderedStack("dev")).objects;
        for (const h of find(dev, "HorizontalPodAutoscaler"))
            expect((h.spec as any).behavior.scaleDown.policies).to.have.length(1);
        expect(find(dev, "APIService")).to.deep.equal([]);
        const p = (await renderedStack("prod")).objects;
        // Custom metrics on, but the cluster-wide APIService only when asked for: prod does not ask.
        expect(find(p, "Deployment", "prometheus-adapter")).to.have.length(1);
        expect(find(p, "APIService")).to.deep.equal([]);
        const lg = find(p, "HorizontalPodAutoscaler").find((h) => h.metadata.namespace === "crawler-synthetic")!;
        expect((lg.spec as any).metrics.map((m: any) => m.pods?.metric.name ?? m.resource.name)).to.deep.equal([
            "cpu",
            CUSTOM_METRICS.queueDepth,
        ]);
    });
});
