import { expect } from "chai";
import * as http from "http";
import YAML from "yaml";
import { DURATION_BUCKETS_MS, LOADGEN_METRICS } from "../../catalog";
import { buildAdapterRules } from "../../components/autoscaling";
import { gatewayFileConfig } from "../../components/gateway/file-config";
import { validateGatewayConfig } from "../../proxy/gateway/config";
import { K8sObject, find, renderedStack, stackConfig } from "../harness";
import { HOST, closeServer, connectAndGet, gatewayConfig, startSim, startTarget } from "../proxy/helpers";

/**
 * What Prometheus can see, checked on the rendered prod stack: gateways that are not ready, each member of the HA
 * pair by name, the crawler pods whose queue depth the HPA reads; and the gateway's histogram with a bucket at its
 * vendor's latency SLA.
 */
describe("discovery and buckets, as rendered", function () {
    this.timeout(120_000);
    let objects: K8sObject[] = [];
    const cfg = stackConfig("prod");
    const promConfig = (name: string) => {
        const cm = find(objects, "ConfigMap").find(
            (c) => (c.data as any)?.["prometheus.yml"] && c.metadata.name?.startsWith(name),
        )!;
        return YAML.parse((cm.data as any)["prometheus.yml"]);
    };

    before(async () => {
        ({ objects } = await renderedStack("prod"));
    });

    it("keeps every vendor's gateways discoverable while they are not ready (all pools down)", () => {
        for (const v of cfg.vendors) {
            const svc = find(objects, "Service", `${v.name}-gateway-pods`)[0].spec as any;
            expect(svc.clusterIP).to.equal("None");
            expect(svc.publishNotReadyAddresses, v.name).to.equal(true);
        }
    });

    it("governs the Prometheus pair with a headless Service, federates one named replica and drops `replica`", () => {
        const sts = find(objects, "StatefulSet", "prometheus")[0];
        const governing = find(objects, "Service", (sts.spec as any).serviceName, sts.metadata.namespace)[0];
        expect((governing.spec as any).clusterIP).to.equal("None");
        const cluster = promConfig("prometheus-config");
        expect(cluster.global.external_labels.replica).to.equal("${POD_NAME}");
        expect(cluster.alerting.alert_relabel_configs).to.deep.equal([{ regex: "replica", action: "labeldrop" }]);
        const global = find(objects, "ConfigMap")
            .map((c) => (c.data as any)?.["prometheus.yml"])
            .filter((t) => t && t.includes("/federate"))
            .map((t) => YAML.parse(t))[0];
        const local = global.scrape_configs.find((j: any) => j.job_name === `federate-${cfg.cluster}`);
        expect(local.static_configs[0].targets).to.deep.equal([
            `prometheus-0.${governing.metadata.name}.${sts.metadata.namespace}.svc:9090`,
        ]);
        for (const j of global.scrape_configs)
            expect(j.metric_relabel_configs).to.deep.include({ regex: "replica", action: "labeldrop" });
    });

    it("scrapes what the crawler HPA's custom metric reads, per namespace and pod, with pods RBAC there only", () => {
        const cluster = promConfig("prometheus-config");
        const rule = (buildAdapterRules() as any).rules[0];
        const metric = /^([a-z_]+)\{/.exec(rule.seriesQuery)![1];
        expect(metric).to.equal(LOADGEN_METRICS.queueDepth.name);
        const job = cluster.scrape_configs.find((j: any) =>
            (j.metric_relabel_configs ?? []).some(
                (r: any) => r.action === "keep" && new RegExp(`^(${r.regex})$`).test(metric),
            ),
        );
        expect(job, `no job keeps ${metric}`).to.not.equal(undefined);
        const hpaNamespaces = [...new Set(cfg.autoscaling.workloads.map((w) => w.namespace))].sort();
        expect(job.kubernetes_sd_configs[0].namespaces.names).to.deep.equal(hpaNamespaces);
        const targets = job.relabel_configs.map((r: any) => r.target_label);
        expect(targets).to.include.members(["namespace", "pod"]);
        for (const ns of hpaNamespaces) {
            const role = find(objects, "Role", undefined, ns)[0];
            expect((role as any).rules).to.deep.equal([
                { apiGroups: [""], resources: ["pods"], verbs: ["get", "list", "watch"] },
            ]);
        }
    });

    it("gives every gateway a histogram bucket at its vendor's latency SLA, and the program exports it", async () => {
        for (const stack of ["dev", "prod"]) {
            const c = stackConfig(stack);
            for (const v of c.vendors) {
                const file = validateGatewayConfig(JSON.parse(JSON.stringify(gatewayFileConfig(c, v, "/s"))));
                expect(file.durationBucketsMs, `${stack}/${v.name}`).to.include(v.sla.p95LatencyMs);
                expect(file.durationBucketsMs).to.include.members(DURATION_BUCKETS_MS);
            }
        }
        // The program itself, with vendor-a's dev buckets: one tunnel, and its metrics show le="800".
        const dev = stackConfig("dev");
        const buckets = gatewayFileConfig(dev, dev.vendors[0], "/s").durationBucketsMs;
        const target = await startTarget();
        const sim = await startSim("p1", { forward: `${HOST}:${target.port}` });
        const gw = new (await import("../../proxy/gateway/server")).Gateway(
            gatewayConfig([{ name: "p1", port: sim.port }], { durationBucketsMs: buckets }),
            {
                credentials: () => "Basic " + Buffer.from("crawl:s3cret-pa55").toString("base64"),
                processMetrics: false,
            },
        );
        try {
            const { proxyPort, metricsPort } = await gw.start();
            expect((await connectAndGet(proxyPort, `127.0.0.1:${target.port}`, "/bytes/10")).status).to.equal(200);
            const text = await new Promise<string>((resolve, reject) =>
                http
                    .get({ host: HOST, port: metricsPort, path: "/metrics" }, (res) => {
                        let t = "";
                        res.on("data", (d) => (t += d));
                        res.on("end", () => resolve(t));
                    })
                    .on("error", reject),
            );
            expect(text).to.match(/proxy_request_duration_milliseconds_bucket\{[^}]*le="800"[^}]*\} 1/);
        } finally {
            await gw.stop(0);
            await sim.sim.stop();
            await closeServer(target.server);
        }
    });
});
