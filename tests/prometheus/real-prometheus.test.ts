import { ChildProcess, spawn } from "child_process";
import { expect } from "chai";
import * as fs from "fs";
import * as http from "http";
import * as net from "net";
import * as path from "path";
import YAML from "yaml";
import { buildRecordingRules, buildScrapeConfig } from "../../components/prometheus";
import { toStaticTargets } from "../../components/prometheus/scrape";
import { stackConfig } from "../harness";
import { tempDir, tool } from "../promtool";
import {
    HOST,
    closeServer,
    connectAndGet,
    freePort,
    gatewayConfig,
    httpViaProxy,
    startSim,
    startTarget,
    waitFor,
} from "../proxy/helpers";

/** An Istio sidecar's merged exposition as the gateways' sidecars serve it (trimmed labels plus noise to drop). */
function istioExposition(): string {
    const common = (ns: string, workload: string, dest: string, reporter = "destination") =>
        `reporter="${reporter}",source_workload="${workload}",source_workload_namespace="${ns}",source_principal="spiffe://cluster.local/ns/${ns}/sa/crawler",` +
        `source_app="crawler",source_version="v7",destination_workload="${dest}",destination_workload_namespace="proxy-gateways",` +
        `destination_service="${dest}.proxy-gateways.svc.cluster.local",connection_security_policy="mutual_tls",request_protocol="tcp",response_flags="-"`;
    return [
        "# TYPE istio_tcp_sent_bytes_total counter",
        `istio_tcp_sent_bytes_total{${common("team-a", "crawler-7d9f", "vendor-a-gateway")}} 1000`,
        `istio_tcp_sent_bytes_total{${common("team-a", "crawler-other", "vendor-a-gateway")}} 500`,
        `istio_tcp_sent_bytes_total{${common("team-b", "crawler-1", "vendor-b-gateway")}} 2000`,
        `istio_tcp_sent_bytes_total{${common("team-a", "crawler-7d9f", "billing-api")}} 9999`,
        `istio_tcp_sent_bytes_total{${common("team-a", "crawler-7d9f", "vendor-a-gateway", "source")}} 7777`,
        "# TYPE istio_tcp_received_bytes_total counter",
        `istio_tcp_received_bytes_total{${common("team-a", "crawler-7d9f", "vendor-a-gateway")}} 300`,
        "# TYPE istio_tcp_connections_opened_total counter",
        `istio_tcp_connections_opened_total{${common("team-b", "crawler-1", "vendor-b-gateway")}} 12`,
        "# TYPE istio_tcp_connections_closed_total counter",
        `istio_tcp_connections_closed_total{${common("team-b", "crawler-1", "vendor-b-gateway")}} 11`,
        "# TYPE istio_requests_total counter",
        `istio_requests_total{${common("team-a", "crawler-7d9f", "vendor-a-gateway")},response_code="200"} 42`,
        "# TYPE envoy_cluster_upstream_cx_total counter",
        'envoy_cluster_upstream_cx_total{cluster_name="outbound|3128||vendor-a-gateway"} 5',
        "",
    ].join("\n");
}

async function query(port: number, q: string, api = "query"): Promise<any[]> {
    const param = api === "series" ? "match[]" : "query";
    return new Promise((resolve, reject) => {
        http.get({ host: HOST, port, path: `/api/v1/${api}?${param}=${encodeURIComponent(q)}` }, (res) => {
            let t = "";
            res.on("data", (c) => (t += c));
            res.on("end", () => {
                try {
                    const body = JSON.parse(t);
                    if (body.status !== "success") reject(new Error(t));
                    else resolve(api === "series" ? body.data : body.data.result);
                } catch {
                    reject(new Error(`not JSON (Prometheus starting?): ${t.slice(0, 80)}`));
                }
            });
        }).on("error", reject);
    });
}

describe("a real Prometheus running the generated scrape and relabel config", function () {
    this.timeout(60_000);
    let prom: ChildProcess | undefined;
    const stops: (() => Promise<unknown>)[] = [];
    let promPort = 0;
    let sent = { connects: 0, http: 0 };

    before(async () => {
        tool("prometheus", "prometheus");
        const target = await startTarget();
        stops.push(() => closeServer(target.server));
        const sim = await startSim("dc-us-east", { forward: `${HOST}:${target.port}` });
        stops.push(() => sim.sim.stop());
        const cfgFile = gatewayConfig([{ name: "dc-us-east", port: sim.port }], { vendor: "vendor-a" });
        const gw = new (await import("../../proxy/gateway/server")).Gateway(cfgFile, {
            credentials: () => "Basic " + Buffer.from("crawl:s3cret-pa55").toString("base64"),
            processMetrics: true,
        });
        const { proxyPort, metricsPort } = await gw.start();
        stops.push(() => gw.stop(0));
        for (let i = 0; i < 3; i++)
            expect((await connectAndGet(proxyPort, `127.0.0.1:${target.port}`, "/bytes/100")).status).to.equal(200);
        for (let i = 0; i < 2; i++)
            expect((await httpViaProxy(proxyPort, `http://127.0.0.1:${target.port}/bytes/10`)).status).to.equal(200);
        sent = { connects: 3, http: 2 };

        const istio = http.createServer((req, res) => {
            if (req.url !== "/stats/prometheus") {
                res.writeHead(404).end();
                return;
            }
            res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
            res.end(istioExposition());
        });
        await new Promise<void>((r) => istio.listen(0, HOST, () => r()));
        stops.push(() => closeServer(istio));

        const cfg = stackConfig("prod", { scrapeInterval: "1s", evaluationInterval: "1s" });
        const dir = tempDir("real-prom-");
        fs.mkdirSync(path.join(dir, "rules"));
        fs.writeFileSync(path.join(dir, "rules", "recording.yaml"), YAML.stringify(buildRecordingRules(cfg)));
        const generated = toStaticTargets(buildScrapeConfig(cfg, { replicaLabel: false }), {
            "proxy-gateways": [{ targets: [`${HOST}:${metricsPort}`] }],
            "istio-gateways": [{ targets: [`${HOST}:${(istio.address() as net.AddressInfo).port}`] }],
        }) as any;
        generated.rule_files = [path.join(dir, "rules", "*.yaml")];
        fs.writeFileSync(path.join(dir, "prometheus.yml"), YAML.stringify(generated));
        promPort = await freePort();
        prom = spawn(
            "prometheus",
            [
                `--config.file=${path.join(dir, "prometheus.yml")}`,
                `--storage.tsdb.path=${path.join(dir, "data")}`,
                `--web.listen-address=${HOST}:${promPort}`,
            ],
            { stdio: "ignore" },
        );
        // Ready, and both jobs scraped at least twice (rates need two samples).
        await waitFor(
            async () => {
                try {
                    const up = await query(promPort, 'count_over_time(up{job=~"proxy-gateways|istio-gateways"}[1m])');
                    return up.length === 2 && up.every((s) => Number(s.value[1]) >= 3);
                } catch {
                    return false;
                }
            },
            30_000,
            "Prometheus to scrape both jobs",
        );
    });

    after(async () => {
        prom?.kill("SIGTERM");
        for (const s of stops.reverse()) await s();
    });

    it("stores the gateway's data-model series with their labels and the counts the client made", async () => {
        const reqs = await query(promPort, 'proxy_requests_total{job="proxy-gateways",pool="dc-us-east"}');
        const byProtocol = Object.fromEntries(reqs.map((s) => [s.metric.protocol, Number(s.value[1])]));
        expect(byProtocol).to.deep.equal({ CONNECT: sent.connects, "HTTP/1.1": sent.http });
        for (const s of reqs) {
            expect(Object.keys(s.metric).sort()).to.deep.equal([
                "__name__",
                "cluster",
                "destination",
                "instance",
                "job",
                "pool",
                "protocol",
                "status",
                "vendor",
            ]);
            expect(s.metric).to.include({
                cluster: "prod-us",
                vendor: "vendor-a",
                destination: "127.0.0.1",
                status: "200",
            });
        }
        const health = await query(promPort, 'proxy_pool_health{vendor="vendor-a"}');
        expect(health.map((s) => [s.metric.pool, s.value[1]])).to.deep.equal([["dc-us-east", "1"]]);
    });

    it("drops every gateway series nothing reads (process metrics beyond the kept three)", async () => {
        const names = new Set((await query(promPort, '{job="proxy-gateways"}', "series")).map((s: any) => s.__name__));
        expect(names.has("process_resident_memory_bytes")).to.equal(true);
        expect(names.has("nodejs_heap_size_total_bytes")).to.equal(false);
        expect(names.has("process_start_time_seconds")).to.equal(false);
    });

    it("keeps from Istio's exposition only bytes and connections per crawler namespace per vendor, nothing else", async () => {
        const series = await query(promPort, '{job="istio-gateways"}', "series");
        const stored = series
            .map((s: any) => s)
            // Prometheus' own per-target series and recorded per-job aggregates carry the job too.
            .filter((s: any) => s.__name__ !== "up" && !s.__name__.startsWith("scrape_") && !s.__name__.includes(":"));
        for (const s of stored) {
            expect(Object.keys(s).sort()).to.deep.equal([
                "__name__",
                "cluster",
                "crawler_namespace",
                "crawler_workload",
                "instance",
                "job",
                "vendor",
            ]);
        }
        const summary = stored
            .map((s: any) => `${s.__name__} ${s.crawler_namespace}/${s.crawler_workload} ${s.vendor}`)
            .sort();
        expect(summary).to.deep.equal([
            "istio_tcp_connections_opened_total team-b/crawler-1 vendor-b",
            "istio_tcp_received_bytes_total team-a/crawler-7d9f vendor-a",
            "istio_tcp_sent_bytes_total team-a/crawler-7d9f vendor-a",
            "istio_tcp_sent_bytes_total team-a/crawler-other vendor-a",
            "istio_tcp_sent_bytes_total team-b/crawler-1 vendor-b",
        ]);
        // Both workloads of team-a are kept, so no bytes are lost to duplicate series: 1000 + 500.
        const teamA = await query(promPort, 'sum(istio_tcp_sent_bytes_total{crawler_namespace="team-a"})');
        expect(Number(teamA[0].value[1])).to.equal(1500);
    });

    it("evaluates the recording rules on what it scraped", async () => {
        await waitFor(
            async () => (await query(promPort, 'vendor:proxy_pools_healthy:count{vendor="vendor-a"}')).length === 1,
            10_000,
            "recorded pool health",
        );
        const price = await query(promPort, "vendor:proxy_price_per_gb:config");
        expect(price.map((s) => s.metric.vendor).sort()).to.deep.equal(["vendor-a", "vendor-b", "vendor-c"]);
    });
});
