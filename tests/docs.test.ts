import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { DATA_MODEL, allRecordedSeries } from "../catalog";
import { GATEWAY_METRICS, POOL_QUALITY_METRICS } from "../catalog/gateway";
import { KNOWN_KEYS, SECTIONS, SIMPLE_KEYS } from "../components/config";
import YAML from "yaml";
import { SCHEMA_FILE, pulumiYamlWithConfig, readmeWithReference, schemaText } from "../scripts/config-schema";
import { ROOT, renderedStack } from "./harness";

const read = (f: string) => fs.readFileSync(path.join(ROOT, f), "utf8");

describe("docs match the code", () => {
    it("docs/data-model.md names every data-model series, gateway series and recorded series", () => {
        const doc = read("docs/data-model.md");
        for (const m of [
            ...Object.values(DATA_MODEL),
            ...Object.values(GATEWAY_METRICS),
            ...Object.values(POOL_QUALITY_METRICS),
        ])
            expect(doc, m.name).to.contain(`\`${m.name}`);
        for (const r of allRecordedSeries()) {
            const windowed = /^vendor:proxy_request_errors:ratio_rate/.test(r)
                ? "vendor:proxy_request_errors:ratio_rate<w>"
                : r;
            expect(doc, r).to.contain(windowed);
        }
    });

    it("Pulumi.yaml's config block is the one generated from the config schema (cluster and the simple keys)", async () => {
        const text = read("Pulumi.yaml");
        expect(text === (await pulumiYamlWithConfig(text)), "Pulumi.yaml is stale: npm run config-schema").to.equal(
            true,
        );
        const block = YAML.parse(text).config as Record<string, { type: string; description: string }>;
        expect(block.cluster.description).to.equal(SECTIONS.cluster.unwrap().description);
        expect(block.prometheusReplicas).to.deep.include({ type: "integer", default: 2 });
    });

    it("README's configuration reference is the one generated from the config schema, and names every key", async () => {
        const readme = read("README.md");
        expect(readme === (await readmeWithReference(readme)), "README.md is stale: npm run config-schema").to.equal(
            true,
        );
        for (const k of [...KNOWN_KEYS, ...SIMPLE_KEYS.map((s) => s.key)]) expect(readme, k).to.contain(`\`${k}\``);
        expect(readme).to.match(
            /\| `vendors\[\]\.pools\[\]\.weight` +\| number 0\.\.1000 +\| `1` +\| Relative share of traffic/,
        );
    });

    const docFiles = () => ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).map((f) => `docs/${f}`)];

    it("every link of the README and docs resolves to a file inside the repository", () => {
        const broken: string[] = [];
        for (const f of docFiles()) {
            for (const m of read(f).matchAll(/\]\(([^)\s]+)\)/g)) {
                const target = m[1].split("#")[0];
                if (/^[a-z]+:/.test(m[1]) || target === "") continue;
                const resolved = path.resolve(ROOT, path.dirname(f), target);
                if (!resolved.startsWith(ROOT + path.sep) || !fs.existsSync(resolved)) broken.push(`${f}: ${m[1]}`);
            }
            // Paths named in backticks outside the repository (a sibling checkout) do not exist in a clone either.
            for (const m of read(f).matchAll(/`(\.\.\/[^`]+)`/g)) broken.push(`${f}: ${m[1]}`);
        }
        expect(broken).to.deep.equal([]);
    });

    it("every stack output, Service and stack file the deployment guide and README name exists", async () => {
        const text = read("docs/deployment-guide.md") + read("README.md");
        const outputs = YAML.parse(
            fs.readFileSync(path.join((await renderedStack("prod")).run.dir, "_stack-outputs.yaml"), "utf8"),
        );
        for (const m of text.matchAll(/pulumi stack output ([a-zA-Z]+)/g))
            expect(Object.keys(outputs), `pulumi stack output ${m[1]}`).to.include(m[1]);
        const services = new Set(
            [...(await renderedStack("prod")).objects, ...(await renderedStack("dev")).objects]
                .filter((o) => o.kind === "Service")
                .map((o) => `${o.metadata.namespace}/${o.metadata.name}`),
        );
        for (const m of text.matchAll(/kubectl -n ([a-z0-9-]+) port-forward svc\/([a-z0-9-]+)/g))
            expect([...services], m[0]).to.include(`${m[1]}/${m[2]}`);
        for (const m of text.matchAll(/(Pulumi\.[a-z0-9-]+\.yaml)/g))
            if (!/prod-us|<|stack/.test(m[1])) expect(fs.existsSync(path.join(ROOT, m[1])), m[1]).to.equal(true);
        for (const m of text.matchAll(
            /`((?:components|scripts|tests|docs|catalog|dashboards|proxy|\.github|\.ci)\/[A-Za-z0-9_./-]+)`/g,
        ))
            expect(fs.existsSync(path.join(ROOT, m[1])), m[1]).to.equal(true);
    });

    it("the deployment guide sets every secret render lists for the example prod stack, with its command", async () => {
        const { run } = await renderedStack("prod");
        const commands = run.stdout
            .split("\n")
            .map((l) => l.trim())
            .filter((l) => l.startsWith("pulumi config set"));
        expect(commands.length).to.be.greaterThan(10);
        const guide = read("docs/deployment-guide.md");
        for (const c of commands) expect(guide, c).to.contain(c);
    });

    it("the JSON Schema of the stack files is generated from the config schema, and the stack files name it", () => {
        expect(read(SCHEMA_FILE), "npm run config-schema").to.equal(schemaText());
        const schema = JSON.parse(read(SCHEMA_FILE));
        const props = schema.properties.config.properties as Record<string, { default?: unknown }>;
        expect(props["proxy-monitor:gateway"]).to.have.nested.property("properties.maxTunnels.default", 4096);
        expect(props["proxy-monitor:scrapeInterval"]).to.include({ default: "15s" });
        for (const f of fs.readdirSync(ROOT).filter((x) => /^Pulumi\.[^.]+\.yaml$/.test(x)))
            expect(read(f).split("\n")[0], f).to.equal(`# yaml-language-server: $schema=./${SCHEMA_FILE}`);
    });

    it("every npm script the README and docs name exists", () => {
        const scripts = JSON.parse(read("package.json")).scripts as Record<string, string>;
        const docs = ["README.md", ...fs.readdirSync(path.join(ROOT, "docs")).map((f) => `docs/${f}`)];
        for (const f of docs) {
            for (const m of read(f).matchAll(/npm run ([a-z][a-z0-9:-]*)/g))
                expect(scripts[m[1]], `${f}: npm run ${m[1]}`).to.be.a("string");
        }
    });
});
