/**
 * The rendered PodMonitors, turned into the scrape jobs the Prometheus Operator generates from them (pod discovery,
 * its own relabelling: phase, selector, port, namespace/container/pod, job and endpoint labels; then the PodMonitor's
 * relabelings, metricRelabelings and limits), scrape a loopback gateway and an Istio sidecar stand-in with a real
 * Prometheus; the standalone jobs scrape the same targets with another. Both store the same series with the same
 * labels. Discovery is the one thing emulated: each pod container the operator's `role: pod` discovery would yield is
 * a static target carrying its `__meta_kubernetes_*` labels.
 */
import { ChildProcess, spawn } from "child_process";
import { expect } from "chai";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as path from "path";
import YAML from "yaml";
import { buildScrapeConfig } from "../../components/prometheus";
import { toStaticTargets } from "../../components/prometheus/scrape";
import { PORTS } from "../../components/names";
import { K8sObject, find, renderedStack, stackConfig } from "../harness";
import { tempDir, tool } from "../promtool";
import {
    HOST,
    closeServer,
    connectAndGet,
    freePort,
    gatewayConfig,
    startSim,
    startTarget,
    waitFor,
} from "../proxy/helpers";

type Obj = Record<string, any>;

const SNAKE: Record<string, string> = {
    sourceLabels: "source_labels",
    targetLabel: "target_label",
    separator: "separator",
    regex: "regex",
    replacement: "replacement",
    modulus: "modulus",
    action: "action",
};
const snake = (r: Obj): Obj => Object.fromEntries(Object.entries(r).map(([k, v]) => [SNAKE[k], v]));
const sanitize = (l: string) => l.replace(/[^a-zA-Z0-9_]/g, "_");

/** A pod container as `role: pod` discovery yields it: its address and meta labels. */
interface DiscoveredContainer {
    address: string;
    meta: Record<string, string>;
}

/** The scrape job the operator generates for a PodMonitor's first endpoint, over the given discovered containers. */
export function operatorJob(pm: Obj, discovered: DiscoveredContainer[]): Obj {
    const ep = pm.spec.podMetricsEndpoints[0];
    const { namespace, name } = pm.metadata;
    const selector = Object.entries(pm.spec.selector.matchLabels as Record<string, string>).map(([k, v]) => ({
        source_labels: [
            `__meta_kubernetes_pod_label_${sanitize(k)}`,
            `__meta_kubernetes_pod_labelpresent_${sanitize(k)}`,
        ],
        regex: `(${v});true`,
        action: "keep",
    }));
    return {
        job_name: `podMonitor/${namespace}/${name}/0`,
        honor_labels: false,
        metrics_path: ep.path ?? "/metrics",
        ...(pm.spec.sampleLimit ? { sample_limit: pm.spec.sampleLimit } : {}),
        ...(pm.spec.labelLimit ? { label_limit: pm.spec.labelLimit } : {}),
        ...(pm.spec.labelValueLengthLimit ? { label_value_length_limit: pm.spec.labelValueLengthLimit } : {}),
        static_configs: discovered
            .filter((d) => pm.spec.namespaceSelector.matchNames.includes(d.meta.__meta_kubernetes_namespace))
            .map((d) => ({ targets: [d.address], labels: d.meta })),
        relabel_configs: [
            { source_labels: ["job"], target_label: "__tmp_prometheus_job_name" },
            { source_labels: ["__meta_kubernetes_pod_phase"], regex: "(Failed|Succeeded)", action: "drop" },
            ...selector,
            ...(ep.port
                ? [{ source_labels: ["__meta_kubernetes_pod_container_port_name"], regex: ep.port, action: "keep" }]
                : []),
            { source_labels: ["__meta_kubernetes_namespace"], target_label: "namespace" },
            { source_labels: ["__meta_kubernetes_pod_container_name"], target_label: "container" },
            { source_labels: ["__meta_kubernetes_pod_name"], target_label: "pod" },
            { target_label: "job", replacement: `${namespace}/${name}` },
            ...(ep.port ? [{ target_label: "endpoint", replacement: ep.port }] : []),
            ...(ep.relabelings ?? []).map(snake),
        ],
        ...(ep.metricRelabelings ? { metric_relabel_configs: ep.metricRelabelings.map(snake) } : {}),
    };
}

/** An Istio sidecar's merged exposition: the kept TCP series of two crawler workloads, and noise the keep lists drop. */
const ISTIO = [
    "# TYPE istio_tcp_sent_bytes_total counter",
    'istio_tcp_sent_bytes_total{reporter="destination",source_workload="crawler-1",source_workload_namespace="team-a",destination_workload="vendor-a-gateway",source_principal="spiffe://x"} 1000',
    'istio_tcp_sent_bytes_total{reporter="destination",source_workload="crawler-2",source_workload_namespace="team-b",destination_workload="vendor-a-gateway",source_principal="spiffe://y"} 2000',
    'istio_tcp_sent_bytes_total{reporter="source",source_workload="crawler-1",source_workload_namespace="team-a",destination_workload="vendor-a-gateway"} 5',
    "# TYPE istio_requests_total counter",
    'istio_requests_total{reporter="destination",destination_workload="vendor-a-gateway"} 7',
    "",
].join("\n");

function seriesOf(port: number, match: string): Promise<Obj[]> {
    return new Promise((resolve, reject) => {
        http.get({ host: HOST, port, path: `/api/v1/series?match[]=${encodeURIComponent(match)}` }, (res) => {
            let t = "";
            res.on("data", (c) => (t += c));
            res.on("end", () => {
                try {
                    resolve(JSON.parse(t).data);
                } catch {
                    reject(new Error(t.slice(0, 80)));
                }
            });
        }).on("error", reject);
    });
}

const canonical = (s: Obj) =>
    JSON.stringify(Object.fromEntries(Object.entries(s).sort(([a], [b]) => a.localeCompare(b))));

describe("operator mode scrapes what standalone scrapes (PodMonitors as the operator turns them into jobs)", function () {
    this.timeout(120_000);
    const children: ChildProcess[] = [];
    const stops: (() => Promise<unknown>)[] = [];
    let standalonePort = 0;
    let operatorPort = 0;
    let monitors: K8sObject[] = [];

    before(async () => {
        tool("prometheus", "prometheus");
        monitors = find((await renderedStack("operator")).objects, "PodMonitor");
        const target = await startTarget();
        stops.push(() => closeServer(target.server));
        const sim = await startSim("dc-us-east", { forward: `${HOST}:${target.port}` });
        stops.push(() => sim.sim.stop());
        const gw = new (await import("../../proxy/gateway/server")).Gateway(
            gatewayConfig([{ name: "dc-us-east", port: sim.port }], { vendor: "vendor-a" }),
            { credentials: () => "Basic " + Buffer.from("crawl:s3cret-pa55").toString("base64"), processMetrics: true },
        );
        const { proxyPort, metricsPort } = await gw.start();
        stops.push(() => gw.stop(0));
        for (let i = 0; i < 3; i++)
            expect((await connectAndGet(proxyPort, `127.0.0.1:${target.port}`, "/bytes/100")).status).to.equal(200);

        // The sidecar's merged metrics listen on the pod IP's port 15020: a loopback address of its own here.
        const istio = http.createServer((req, res) => {
            if (req.url !== "/stats/prometheus") return void res.writeHead(404).end();
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" }).end(ISTIO);
        });
        let podIp = "";
        for (let i = 0; i < 20 && !podIp; i++) {
            const ip = `127.0.${(process.pid % 200) + 20}.${10 + i}`;
            podIp = await new Promise<string>((r) => {
                istio.once("error", () => r(""));
                istio.listen(PORTS.istioMergedMetrics, ip, () => r(ip));
            });
        }
        expect(podIp, "a free loopback address for port 15020").to.not.equal("");
        stops.push(() => closeServer(istio));
        expect((istio.address() as net.AddressInfo).port).to.equal(PORTS.istioMergedMetrics);

        const gatewayAddress = `${HOST}:${metricsPort}`;
        const istioAddress = `${podIp}:${PORTS.istioMergedMetrics}`;
        // The gateway pod as discovery sees it: the gateway container's metrics port, the sidecar's declared port.
        const pod = {
            __meta_kubernetes_namespace: "proxy-gateways",
            __meta_kubernetes_pod_name: "vendor-a-gateway-7d9f-x2",
            __meta_kubernetes_pod_ip: podIp,
            __meta_kubernetes_pod_phase: "Running",
            __meta_kubernetes_pod_label_app_kubernetes_io_name: "proxy-gateway",
            __meta_kubernetes_pod_labelpresent_app_kubernetes_io_name: "true",
        };
        const discovered: DiscoveredContainer[] = [
            {
                address: gatewayAddress,
                meta: {
                    ...pod,
                    __meta_kubernetes_pod_container_name: "gateway",
                    __meta_kubernetes_pod_container_port_name: "metrics",
                },
            },
            {
                address: `${podIp}:15090`,
                meta: {
                    ...pod,
                    __meta_kubernetes_pod_container_name: "istio-proxy",
                    __meta_kubernetes_pod_container_port_name: "http-envoy-prom",
                },
            },
        ];

        const cfg = stackConfig("operator", { monitoring: { mode: "standalone" } });
        const standalone = toStaticTargets(buildScrapeConfig(cfg, { replicaLabel: false }), {
            "proxy-gateways": [{ targets: [gatewayAddress] }],
            "istio-gateways": [{ targets: [istioAddress] }],
        }) as Obj;
        const gatewayMonitors = monitors.filter((m) => /gateways$/.test(m.metadata.name));
        expect(gatewayMonitors.length).to.equal(2);
        const operator: Obj = {
            global: { ...standalone.global },
            scrape_configs: gatewayMonitors.map((m) => operatorJob(m, discovered)),
        };
        for (const c of [standalone, operator]) {
            c.global.scrape_interval = "1s";
            c.global.scrape_timeout = "1s";
            delete c.rule_files;
            delete c.alerting;
        }
        const start = async (config: Obj, name: string) => {
            const dir = tempDir(`operator-${name}-`);
            fs.writeFileSync(path.join(dir, "prometheus.yml"), YAML.stringify(config));
            const port = await freePort();
            children.push(
                spawn(
                    "prometheus",
                    [
                        `--config.file=${path.join(dir, "prometheus.yml")}`,
                        `--storage.tsdb.path=${path.join(dir, "data")}`,
                        `--web.listen-address=${HOST}:${port}`,
                    ],
                    { stdio: "ignore" },
                ),
            );
            return port;
        };
        standalonePort = await start(standalone, "standalone");
        operatorPort = await start(operator, "operator");
        for (const port of [standalonePort, operatorPort])
            await waitFor(
                async () => {
                    const up = await seriesOf(port, 'up{job=~"proxy-gateways|istio-gateways"}').catch(() => []);
                    return up.length === 2;
                },
                30_000,
                "both jobs scraped",
            );
        // Three more scrapes of each: every series the targets expose is stored by then.
        await new Promise((r) => setTimeout(r, 3_500));
    });

    after(async () => {
        for (const c of children) c.kill("SIGTERM");
        for (const s of stops.reverse()) await s();
    });

    for (const job of ["proxy-gateways", "istio-gateways"]) {
        it(`${job}: the same series with the same labels`, async () => {
            const match = `{job="${job}"}`;
            const a = (await seriesOf(standalonePort, match)).map(canonical).sort();
            const b = (await seriesOf(operatorPort, match)).map(canonical).sort();
            expect(a.length, "series scraped").to.be.greaterThan(job === "istio-gateways" ? 5 : 20);
            expect(b).to.deep.equal(a);
            for (const s of a.map((x) => JSON.parse(x))) expect(s.cluster).to.equal("operator");
        });
    }

    it("the operator job keeps the istio attribution: vendor and crawler labels, nothing else", async () => {
        const s = await seriesOf(operatorPort, "istio_tcp_sent_bytes_total");
        expect(s.map((x) => `${x.vendor}/${x.crawler_namespace}/${x.crawler_workload}`).sort()).to.deep.equal([
            "vendor-a/team-a/crawler-1",
            "vendor-a/team-b/crawler-2",
        ]);
        for (const x of s)
            expect(Object.keys(x).sort()).to.deep.equal(
                ["__name__", "cluster", "crawler_namespace", "crawler_workload", "instance", "job", "vendor"].sort(),
            );
    });
});
