import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import YAML from "yaml";
import { DEFAULTS, SIMPLE_KEYS, parseStackConfig, simpleKeyDefault } from "../components/config";
import { ConfigError, ConfigProblem, durationMs, formatProblem } from "../components/validate";
import { simulatorFileConfig } from "../components/simulators";
import { readStackFiles, stackFileConfig } from "../scripts/offline";
import { ROOT, promiseOf, rawStackConfig, stackConfig } from "./harness";

/** Raw dev config with a change applied to a deep copy. */
function devWith(change: (raw: Record<string, any>) => void): Record<string, unknown> {
    const raw = JSON.parse(JSON.stringify(rawStackConfig("dev")));
    change(raw);
    return raw;
}

function problemsOf(raw: Record<string, unknown>, stack = "dev"): ConfigProblem[] {
    const { config, problems } = parseStackConfig(raw, stack);
    if (problems.length > 0) expect(config, "no config when there are problems").to.equal(undefined);
    return problems;
}

function expectProblem(raw: Record<string, unknown>, pathWanted: string, expectedPart: RegExp): void {
    const problems = problemsOf(raw);
    const hit = problems.find((p) => p.path === pathWanted);
    expect(hit, `a problem at ${pathWanted}; got:\n${problems.map(formatProblem).join("\n")}`).to.not.equal(undefined);
    expect(hit!.expected).to.match(expectedPart);
}

describe("stack config", () => {
    it("accepts the committed dev and prod stacks with their settings", async () => {
        const dev = stackConfig("dev");
        expect(dev.vendors.map((v) => [v.name, v.tier])).to.deep.equal([
            ["vendor-a", "datacenter"],
            ["vendor-b", "residential"],
            ["vendor-c", "mobile"],
        ]);
        expect(dev.prometheus.replicas).to.equal(1);
        expect(dev.prometheus.retention).to.equal("2d");
        expect(dev.vendors.every((v) => v.pools.every((p) => p.simulator !== undefined))).to.equal(true);
        expect(dev.loadGenerator.enabled && dev.loadGenerator.simulators).to.equal(true);
        const prod = stackConfig("prod");
        expect(prod.prometheus).to.include({ replicas: 2, scrapeInterval: "15s", retention: "30d" });
        expect(prod.alerting.replicas).to.equal(3);
        expect(prod.federation.enabled).to.equal(true);
        expect(prod.vendors.flatMap((v) => v.pools).some((p) => p.simulator)).to.equal(false);
        expect(prod.loadGenerator.simulators).to.equal(false);
        // Secrets from the stack file become placeholders offline; every external pool has credentials. The config
        // names which are set; their values exist only inside one secret Output.
        const values = await promiseOf(prod.secrets.values);
        expect(await pulumi.isSecret(prod.secrets.values)).to.equal(true);
        for (const v of prod.vendors)
            for (const p of v.pools) {
                expect(prod.secrets.names.credentials[v.name]).to.include(p.name);
                expect(values.credentials[v.name][p.name].password).to.match(/^<secret /);
            }
        const plain = JSON.stringify({ ...prod, secrets: prod.secrets.names });
        expect(plain).to.not.contain("<secret");
    });

    it("fills defaults from one place", () => {
        const cfg = parseStackConfig(
            {
                vendors: rawStackConfig("dev").vendors,
                crawlers: { namespaces: [{ name: "c" }] },
                simulatorsEnabled: true,
            },
            "x",
        ).config!;
        expect(cfg.cluster).to.equal("x");
        expect(cfg.prometheus.scrapeInterval).to.equal(DEFAULTS.prometheus.scrapeInterval);
        expect(cfg.gateway).to.deep.equal(DEFAULTS.gateway);
        expect(cfg.crawlers.namespaces[0]).to.deep.equal({
            name: "c",
            manage: "create",
            serviceAccounts: ["default"],
            vendors: ["vendor-a", "vendor-b", "vendor-c"],
            egressHosts: [],
        });
    });

    it("validates crawler egress hosts as Istio Sidecar hosts, naming the key", () => {
        const parse = (egressHosts: unknown) =>
            parseStackConfig(
                {
                    vendors: rawStackConfig("dev").vendors,
                    simulatorsEnabled: true,
                    crawlers: { namespaces: [{ name: "c", egressHosts }] },
                },
                "x",
            );
        const ok = parse(["queues/*", "./redis", "*/api.example.com", "data/*.data.svc.cluster.local"]);
        expect(ok.problems).to.deep.equal([]);
        expect(ok.config!.crawlers.namespaces[0].egressHosts).to.have.length(4);
        const bad = parse(["api.example.com", "queues/*"]);
        expect(bad.problems.map(formatProblem)).to.deep.equal([
            'proxy-monitor:crawlers.namespaces[c].egressHosts[0]: expected an Istio Sidecar egress host <namespace>/<host>, such as queues/*, ./redis or */api.example.com, found "api.example.com"',
        ]);
    });

    it("declares every simple key in Pulumi.yaml with the type and default of DEFAULTS", () => {
        const project = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.yaml"), "utf8"));
        expect(project.name).to.equal("proxy-monitor");
        const declared = project.config as Record<string, { type: string; default?: unknown; description: string }>;
        for (const s of SIMPLE_KEYS) {
            const d = simpleKeyDefault(s.path);
            const type = typeof d === "number" ? "integer" : typeof d;
            expect(declared[s.key], s.key).to.deep.equal({ type, description: s.description, default: d });
        }
        expect(Object.keys(declared).sort()).to.deep.equal(["cluster", ...SIMPLE_KEYS.map((s) => s.key)].sort());
    });

    describe("rejects bad input, naming the key, what was expected and what was found", () => {
        it("a missing vendor list", () =>
            expectProblem(
                devWith((r) => delete r.vendors),
                "proxy-monitor:vendors",
                /at least 1 vendor/,
            ));
        it("an empty vendor list", () =>
            expectProblem(
                devWith((r) => (r.vendors = [])),
                "proxy-monitor:vendors",
                /at least 1/,
            ));
        it("an empty pool list", () =>
            expectProblem(
                devWith((r) => (r.vendors[1].pools = [])),
                "proxy-monitor:vendors[vendor-b].pools",
                /at least 1 item/,
            ));
        it("a duplicate vendor name", () =>
            expectProblem(
                devWith((r) => (r.vendors[2].name = "vendor-a")),
                "proxy-monitor:vendors[2].name",
                /used once \(already used at proxy-monitor:vendors\[0\]\.name\)/,
            ));
        it("a vendor profile that is not one of the profiles", () =>
            expectProblem(
                devWith((r) => (r.vendors[1].profile = "luminati")),
                "proxy-monitor:vendors[vendor-b].profile",
                /one of rfc9209, brightdata, oxylabs, zyte, soax, generic/,
            ));
        it("the dev stack exercises at least two vendor profiles, and its simulators speak them", () => {
            const cfg = stackConfig("dev");
            expect(new Set(cfg.vendors.map((v) => v.profile)).size).to.be.at.least(2);
            for (const v of cfg.vendors)
                for (const p of v.pools.filter((x) => x.simulator))
                    expect(simulatorFileConfig(cfg, v, p, "/s").profile, `${v.name}/${p.name}`).to.equal(v.profile);
        });
        it("a duplicate pool name", () =>
            expectProblem(
                devWith((r) => (r.vendors[0].pools[1].name = "dc-us-east")),
                "proxy-monitor:vendors[vendor-a].pools[1].name",
                /pool name used once/,
            ));
        for (const bad of ["Vendor-A", "vendor_a", "-vendor", "vendor.a", 'a"b', "a|b", "a{1}", "x".repeat(64)]) {
            it(`a name that is not a DNS label or would break PromQL or a regex: ${JSON.stringify(bad).slice(0, 20)}`, () => {
                expectProblem(
                    devWith((r) => (r.vendors[0].name = bad)),
                    "proxy-monitor:vendors[0].name",
                    /DNS label/,
                );
                expectProblem(
                    devWith((r) => (r.vendors[0].pools[0].name = bad)),
                    "proxy-monitor:vendors[vendor-a].pools[0].name",
                    /DNS label/,
                );
            });
        }
        for (const port of [0, 65536, -1, 80.5, "80"]) {
            it(`a port out of range: ${JSON.stringify(port)}`, () =>
                expectProblem(
                    devWith((r) => (r.vendors[0].pools[0].port = port)),
                    "proxy-monitor:vendors[vendor-a].pools[dc-us-east].port",
                    /integer from 1 to 65535/,
                ));
        }
        for (const d of ["15", "15 s", "1.5m", "15sec", ""]) {
            it(`a malformed duration: ${JSON.stringify(d)}`, () =>
                expectProblem(
                    devWith((r) => (r.scrapeInterval = d)),
                    "proxy-monitor:scrapeInterval",
                    /duration such as/,
                ));
        }
        it("a malformed duration in a structured key", () =>
            expectProblem(
                devWith((r) => (r.gateway = { idleTimeout: "forever" })),
                "proxy-monitor:gateway.idleTimeout",
                /duration/,
            ));
        for (const s of ["10G", "10 GB", "ten", "10gb"]) {
            it(`a malformed retention size: ${s}`, () =>
                expectProblem(
                    devWith((r) => (r.retentionSize = s)),
                    "proxy-monitor:retentionSize",
                    /size such as/,
                ));
        }
        it("a malformed Kubernetes size", () =>
            expectProblem(
                devWith((r) => (r.prometheusStorageSize = "10 gigs")),
                "proxy-monitor:prometheusStorageSize",
                /Kubernetes quantity/,
            ));
        for (const o of [0, 1, 1.5, -0.1, "0.99"]) {
            it(`a success objective outside (0,1): ${JSON.stringify(o)}`, () =>
                expectProblem(
                    devWith((r) => (r.vendors[0].sla.successObjective = o)),
                    "proxy-monitor:vendors[vendor-a].sla.successObjective",
                    /strictly between 0 and 1/,
                ));
        }
        it("a negative price", () =>
            expectProblem(
                devWith((r) => (r.vendors[0].pricePerGb = -0.5)),
                "proxy-monitor:vendors[vendor-a].pricePerGb",
                /of at least 0/,
            ));
        it("an unknown top-level key and an unknown nested key (typos)", () => {
            expectProblem(
                devWith((r) => (r.vendorz = [])),
                "proxy-monitor:vendorz",
                /known key/,
            );
            expectProblem(
                devWith((r) => (r.vendors[0].pools[0].wieght = 2)),
                "proxy-monitor:vendors[vendor-a].pools[dc-us-east].wieght",
                /known key/,
            );
        });
        it("a tier that is not known", () =>
            expectProblem(
                devWith((r) => (r.vendors[0].tier = "satellite")),
                "proxy-monitor:vendors[vendor-a].tier",
                /datacenter, residential, mobile/,
            ));
        it("a simple key also set in its structured form", () =>
            expectProblem(
                devWith((r) => (r.prometheus = { retention: "1d" })),
                "proxy-monitor:prometheus.retention",
                /simple key proxy-monitor:retention/,
            ));
        it("credentials set in plain text", () =>
            expect(
                parseStackConfig(
                    devWith((r) => (r.credentials = {})),
                    "dev",
                    new Set(),
                ).problems.map(formatProblem),
            ).to.deep.equal([
                "proxy-monitor:credentials: expected a secret (set it with `pulumi config set --secret --path 'credentials...'`), found a plain-text value",
            ]));
        it("an external pool without credentials", () => {
            const raw = devWith((r) => delete r.vendors[0].pools[0].simulator);
            const problems = parseStackConfig(raw, "dev", new Set(["credentials"])).problems;
            const p = problems.find((x) => x.path === "proxy-monitor:credentials.vendor-a.dc-us-east");
            expect(p?.missingSecret).to.equal("credentials");
            expect(p?.expected).to.contain(
                "pulumi config set --secret --path 'credentials.vendor-a.dc-us-east.password'",
            );
        });
        it("a simulated pool whose host is not in the simulator namespace", () =>
            expectProblem(
                devWith((r) => (r.vendors[0].pools[0].host = "sim.other-ns.svc.cluster.local")),
                "proxy-monitor:vendors[vendor-a].pools[dc-us-east].host",
                /proxy-sim\.svc\.cluster\.local/,
            ));
        it("a crawler namespace allowed a vendor that does not exist", () =>
            expectProblem(
                devWith((r) => (r.crawlers.namespaces[0].vendors = ["vendor-z"])),
                "proxy-monitor:crawlers.namespaces[crawler-sim].vendors[0]",
                /configured vendor/,
            ));
        it("a load generator outside every crawler namespace", () =>
            expectProblem(
                devWith((r) => (r.loadGenerator.namespace = "elsewhere")),
                "proxy-monitor:loadGenerator.namespace",
                /crawlers.namespaces/,
            ));
        it("a receiver route to a receiver that does not exist", () =>
            expectProblem(
                devWith((r) => (r.alerting = { criticalReceiver: "pager" })),
                "proxy-monitor:alerting.criticalReceiver",
                /receiver named/,
            ));
        it("an image that is not pinned", () => {
            expectProblem(
                devWith((r) => (r.images = { grafana: "grafana/grafana" })),
                "proxy-monitor:images.grafana",
                /pinned/,
            );
            expectProblem(
                devWith((r) => (r.images = { grafana: "docker.io/grafana/grafana:latest" })),
                "proxy-monitor:images.grafana",
                /pinned/,
            );
        });
    });

    it("reports every problem at once, one per problem", () => {
        const raw = devWith((r) => {
            r.vendors[0].pools[0].port = 70000;
            r.vendors[1].pricePerGb = -1;
            r.vendors[2].sla.successObjective = 2;
            r.scrapeInterval = "soon";
        });
        const problems = problemsOf(raw);
        expect(problems.map((p) => p.path).sort()).to.deep.equal(
            [
                "proxy-monitor:scrapeInterval",
                "proxy-monitor:vendors[vendor-a].pools[dc-us-east].port",
                "proxy-monitor:vendors[vendor-b].pricePerGb",
                "proxy-monitor:vendors[vendor-c].sla.successObjective",
            ].sort(),
        );
        const err = new ConfigError(problems);
        expect(err.message.split("\n")).to.have.length(4);
        expect(err.message).to.contain(
            'proxy-monitor:scrapeInterval: expected a duration such as 30s, 5m, 1h30m or 30d, found "soon"',
        );
    });

    describe("reports one line per root cause, naming list items", () => {
        const lines = (raw: Record<string, unknown>) => problemsOf(raw).map(formatProblem);
        it("a duplicate vendor: one line, no follow-on credential or reference errors", () =>
            expect(lines(devWith((r) => (r.vendors[2].name = "vendor-a")))).to.deep.equal([
                'proxy-monitor:vendors[2].name: expected a vendor name used once (already used at proxy-monitor:vendors[0].name), found "vendor-a"',
            ]));
        it("a missing tier: one line, and the vendor is not reported missing elsewhere", () =>
            expect(lines(devWith((r) => delete r.vendors[1].tier))).to.deep.equal([
                "proxy-monitor:vendors[vendor-b].tier: expected one of datacenter, residential, mobile, isp, found nothing (the key is not set)",
            ]));
        it("an unknown key, with the key it likely meant", () => {
            expect(lines(devWith((r) => (r.vendorz = [])))).to.deep.equal([
                "proxy-monitor:vendorz: expected a known key (did you mean vendors?), found an unknown key",
            ]);
            expect(lines(devWith((r) => (r.vendors[1].pools[0].wieght = 2)))).to.deep.equal([
                "proxy-monitor:vendors[vendor-b].pools[res-us].wieght: expected a known key (did you mean weight?), found an unknown key",
            ]);
        });
        it("a bad value deep in a list: the path names the vendor and the pool", () =>
            expect(lines(devWith((r) => (r.vendors[1].pools[0].weight = -1)))).to.deep.equal([
                "proxy-monitor:vendors[vendor-b].pools[res-us].weight: expected a number from 0 to 1000, found -1",
            ]));
        it("a YAML syntax error in a stack file: the file, line and column", () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "config-yaml-"));
            fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
            const file = path.join(dir, "Pulumi.broken.yaml");
            fs.writeFileSync(file, "config:\n    proxy-monitor:cluster: a\n    proxy-monitor:vendors: [\n");
            expect(() => readStackFiles("broken", dir)).to.throw(/Pulumi\.broken\.yaml:4:1: YAML syntax error: /);
        });
        it("a secret key set in plain text in the stack file: rejected where the file is read (preflight, render, scripts)", () => {
            const dir = fs.mkdtempSync(path.join(os.tmpdir(), "config-plain-"));
            fs.copyFileSync(path.join(ROOT, "Pulumi.yaml"), path.join(dir, "Pulumi.yaml"));
            const doc = YAML.parse(fs.readFileSync(path.join(ROOT, "Pulumi.dev.yaml"), "utf8"));
            doc.config["proxy-monitor:alertingSecrets"] = { "dev-null": "https://hooks.example.com/plain" };
            fs.writeFileSync(path.join(dir, "Pulumi.plain.yaml"), YAML.stringify(doc));
            expect(stackFileConfig("plain", dir).problems.map(formatProblem)).to.deep.equal([
                "proxy-monitor:alertingSecrets: expected a secret (set it with `pulumi config set --secret --path 'alertingSecrets...'`), found a plain-text value",
            ]);
            doc.config["proxy-monitor:alertingSecrets"] = { "dev-null": { secure: "AAABAC0ffee" } };
            fs.writeFileSync(path.join(dir, "Pulumi.plain.yaml"), YAML.stringify(doc));
            expect(stackFileConfig("plain", dir).problems.map(formatProblem)).to.deep.equal([]);
        });
    });

    it("computes Prometheus durations", () => {
        expect(durationMs("15s")).to.equal(15_000);
        expect(durationMs("1h30m")).to.equal(5_400_000);
        expect(durationMs("30d")).to.equal(30 * 86_400_000);
    });
    it("validates the gateway destination policy and crawler-auth keys, naming the key", () => {
        expectProblem(
            devWith((r) => (r.destinations.connectPorts = [443, "8000-7000", 70000])),
            "proxy-monitor:destinations.connectPorts[1]",
            /a port \(1-65535\) or a range/,
        );
        expectProblem(
            devWith((r) => (r.destinations.connectPorts = [443, 70000])),
            "proxy-monitor:destinations.connectPorts[1]",
            /a port/,
        );
        expectProblem(
            devWith((r) => (r.destinations.allowInternal = "yes")),
            "proxy-monitor:destinations.allowInternal",
            /true or false/,
        );
        expectProblem(
            devWith((r) => (r.gateway = { ...(r.gateway ?? {}), crawlerAuth: true })),
            "proxy-monitor:crawlerSecrets.crawler-sim",
            /shared secret of crawler namespace crawler-sim/,
        );
        const ok = parseStackConfig(
            devWith((r) => {
                r.destinations.connectPorts = [443, "8000-8999"];
                r.gateway = { ...(r.gateway ?? {}), crawlerAuth: true };
                r.crawlerSecrets = { "crawler-sim": "s" };
            }),
            "dev",
            new Set(["credentials", "alertingSecrets", "federationSecrets", "crawlerSecrets"]),
        );
        expect(ok.problems.map(formatProblem)).to.deep.equal([]);
        expect(ok.config!.destinations.connectPorts).to.deep.equal(["443", "8000-8999"]);
    });
});

describe("stack config: pool quality (vendors[].exitIp, pools[].simulator.exitIps)", () => {
    it("passes the vendor's exit-IP header and sessions to its gateway and the simulated pool to its simulator", async () => {
        const { gatewayFileConfig } = await import("../components/gateway/file-config");
        const { simulatorFileConfig } = await import("../components/simulators");
        const { validateGatewayConfig } = await import("../proxy/gateway/config");
        const { validateVendorSimConfig } = await import("../proxy/vendor-sim");
        const cfg = stackConfig("dev");
        const b = cfg.vendors.find((v) => v.name === "vendor-b")!;
        const file = validateGatewayConfig(JSON.parse(JSON.stringify(gatewayFileConfig(cfg, b, "/s"))));
        expect(file.exitIp.header).to.equal("x-exit-ip");
        expect(file.exitIp.stripHeader).to.equal(true);
        expect(new RegExp(file.exitIp.sessionPattern).exec("crawler-session-42")?.groups?.session).to.equal("42");
        const sim = validateVendorSimConfig(JSON.parse(JSON.stringify(simulatorFileConfig(cfg, b, b.pools[0], "/s"))));
        expect(sim.exitIps).to.deep.equal({ size: 5000, rotation: "random", degradedTo: 0, header: "x-exit-ip" });
        const c = cfg.vendors.find((v) => v.name === "vendor-c")!;
        const echo = validateGatewayConfig(JSON.parse(JSON.stringify(gatewayFileConfig(cfg, c, "/s")))).exitIp;
        expect(echo.header).to.equal("");
        expect(echo.echo).to.deep.equal({
            url: "https://ip-echo.example/ip",
            intervalMs: 15_000,
            insecureSkipVerify: true,
        });
        const a = cfg.vendors.find((v) => v.name === "vendor-a")!;
        expect(
            validateGatewayConfig(JSON.parse(JSON.stringify(gatewayFileConfig(cfg, a, "/s")))).exitIp.header,
        ).to.equal("");
    });

    it("names the key of a bad exit-IP setting", () => {
        const raw = devWith((r) => {
            r.vendors[1].exitIp.sessionPattern = "^(?<user>.+)$";
            r.vendors[1].exitIp.minDistinctPerHour = -1;
            r.vendors[1].pools[0].simulator.exitIps.rotation = "round-robin";
            r.vendors[2].exitIp = { echoUrl: "http://ip-echo.example/ip" };
        });
        expectProblem(raw, "proxy-monitor:vendors[vendor-b].exitIp.sessionPattern", /\(\?<session>/);
        expectProblem(raw, "proxy-monitor:vendors[vendor-b].exitIp.minDistinctPerHour", /0/);
        expectProblem(
            raw,
            "proxy-monitor:vendors[vendor-b].pools[res-us].simulator.exitIps.rotation",
            /random or sticky/,
        );
        expectProblem(raw, "proxy-monitor:vendors[vendor-c].exitIp.echoUrl", /https URL/);
    });
});
