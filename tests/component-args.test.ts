/**
 * Each component's Args hold only what it reads: the sections of the stack config it is given are listed here, the
 * type of its `config` Arg must be exactly those (checked by tsc), and it renders from them alone (a section it
 * read but was not given would throw, or leave "undefined" in an object).
 */
import { expect } from "chai";
import * as k8s from "@pulumi/kubernetes";
import { Alerting, AlertingArgs } from "../components/alerting";
import { Autoscaling, AutoscalingArgs } from "../components/autoscaling";
import { StackConfig } from "../components/config";
import { resolvePoolCredentials } from "../components/credentials";
import { VendorGateway, VendorGatewayArgs, crawlerAuthLines } from "../components/gateway";
import { LoadGenerator, LoadGeneratorArgs } from "../components/load-generator";
import { ProxyMesh, ProxyMeshArgs } from "../components/mesh";
import { OperatorMonitoring, OperatorMonitoringArgs } from "../components/operator";
import { Prometheus, PrometheusArgs } from "../components/prometheus";
import { VendorSimulators, VendorSimulatorsArgs } from "../components/simulators";
import { K8sObject, stackConfig, underMocks } from "./harness";
import { workloadViolations } from "./pod-security";

/** true when A and B are the same union of keys. */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type ConfigKeys<A extends { config: object }> = keyof A["config"];

const GATEWAY = ["gateway", "destinations", "images", "resources", "autoscaling", "mesh"] as const;
const SIMULATORS = ["namespaces", "vendors", "images", "resources"] as const;
const LOAD_GENERATOR = [
    "namespaces",
    "loadGenerator",
    "destinations",
    "images",
    "crawlers",
    "resources",
    "autoscaling",
] as const;
const PROMETHEUS = [
    "cluster",
    "namespaces",
    "prometheus",
    "vendors",
    "crawlers",
    "loadGenerator",
    "autoscaling",
    "federation",
    "secrets",
    "destinations",
    "gateway",
    "images",
    "resources",
] as const;
const ALERTING = ["alerting", "namespaces", "images", "resources", "secrets"] as const;
const AUTOSCALING = ["namespaces", "autoscaling", "images", "resources"] as const;
const OPERATOR = [
    "cluster",
    "namespaces",
    "prometheus",
    "vendors",
    "crawlers",
    "loadGenerator",
    "autoscaling",
    "secrets",
    "alerting",
    "monitoring",
] as const;
const MESH = ["namespaces", "vendors", "crawlers", "loadGenerator", "mesh", "destinations", "monitoring"] as const;

// Compile-time: each component's config Arg is exactly its listed sections (npm run build fails otherwise).
const exact: [
    Same<ConfigKeys<VendorGatewayArgs>, (typeof GATEWAY)[number]>,
    Same<ConfigKeys<VendorSimulatorsArgs>, (typeof SIMULATORS)[number]>,
    Same<ConfigKeys<LoadGeneratorArgs>, (typeof LOAD_GENERATOR)[number]>,
    Same<ConfigKeys<PrometheusArgs>, (typeof PROMETHEUS)[number]>,
    Same<ConfigKeys<AlertingArgs>, (typeof ALERTING)[number]>,
    Same<ConfigKeys<AutoscalingArgs>, (typeof AUTOSCALING)[number]>,
    Same<ConfigKeys<ProxyMeshArgs>, (typeof MESH)[number]>,
    Same<ConfigKeys<OperatorMonitoringArgs>, (typeof OPERATOR)[number]>,
] = [true, true, true, true, true, true, true, true];

/** Only the listed sections of a stack config. */
function only<K extends keyof StackConfig>(cfg: StackConfig, keys: readonly K[]): Pick<StackConfig, K> {
    const out: Partial<Pick<StackConfig, K>> = {};
    for (const k of keys) out[k] = cfg[k];
    return out as Pick<StackConfig, K>;
}

function expectRendered(objects: K8sObject[], minimum: number): void {
    expect(objects.length).to.be.at.least(minimum);
    expect(JSON.stringify(objects)).to.not.contain("undefined");
    expect(workloadViolations(objects).violations).to.deep.equal([]);
}

describe("component Args: each component renders from only the config sections it declares", function () {
    this.timeout(60_000);
    const prod = stackConfig("prod", { images: { gateway: "registry.example.com/proxy-monitor/gateway:1.0.0" } });
    const dev = stackConfig("dev");

    it("the config Arg of every component is exactly its listed sections, none the whole StackConfig", () => {
        expect(exact.every((x) => x)).to.equal(true);
        const all = Object.keys(prod).length;
        for (const list of [GATEWAY, SIMULATORS, LOAD_GENERATOR, PROMETHEUS, ALERTING, AUTOSCALING, MESH, OPERATOR])
            expect(list.length, list.join(",")).to.be.below(all);
    });

    it("ProxyMesh", async () => {
        const { objects } = await underMocks(() => new ProxyMesh("args-mesh", { config: only(prod, MESH) }));
        expectRendered(objects, 10);
    });
    it("VendorGateway: its vendor, namespace, policy, its pools' credentials", async () => {
        const v = prod.vendors[0];
        const { objects } = await underMocks(
            () =>
                new VendorGateway("args-gw", {
                    config: only(prod, GATEWAY),
                    vendor: v,
                    namespace: prod.namespaces.gateways,
                    credentials: resolvePoolCredentials(prod)[v.name],
                    crawlerAuth: crawlerAuthLines(prod, v),
                    serviceAccount: new k8s.core.v1.ServiceAccount("args-gw-sa", {
                        metadata: { namespace: prod.namespaces.gateways },
                    }),
                }),
        );
        expectRendered(objects, 6);
    });
    it("VendorSimulators", async () => {
        const { objects } = await underMocks(
            () =>
                new VendorSimulators("args-sims", {
                    config: only(dev, SIMULATORS),
                    credentials: resolvePoolCredentials(dev),
                }),
        );
        expectRendered(objects, 5);
    });
    it("LoadGenerator", async () => {
        const { objects } = await underMocks(() => new LoadGenerator("args-lg", { config: only(dev, LOAD_GENERATOR) }));
        expectRendered(objects, 3);
    });
    it("Prometheus, cluster and global", async () => {
        const { objects } = await underMocks(() => {
            new Prometheus("args-prom", { config: only(prod, PROMETHEUS), role: "cluster" });
            new Prometheus("args-promg", { config: only(prod, PROMETHEUS), role: "global" });
        });
        expectRendered(objects, 10);
    });
    it("Alerting", async () => {
        const { objects } = await underMocks(() => new Alerting("args-am", { config: only(prod, ALERTING) }));
        expectRendered(objects, 4);
    });
    it("OperatorMonitoring", async () => {
        const op = stackConfig("operator");
        const { objects } = await underMocks(
            () => new OperatorMonitoring("args-op", { config: only(op, OPERATOR), dashboards: { d: { uid: "d" } } }),
        );
        expectRendered(objects, 8);
    });
    it("Autoscaling", async () => {
        const { objects } = await underMocks(() => new Autoscaling("args-as", { config: only(prod, AUTOSCALING) }));
        expectRendered(objects, 1);
    });
});
