import { expect } from "chai";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";
import {
    K8sObject,
    STACKS,
    find,
    modelOf,
    readRendered,
    renderedStack,
    runRender,
    runRenderChanged,
    validateObject,
} from "./harness";
import { MARKER } from "../scripts/render";
import { podSpecOf, restrictedViolations, workloadViolations } from "./pod-security";

describe("npm run render", function () {
    this.timeout(180_000);

    for (const stack of STACKS) {
        describe(`--stack ${stack}`, () => {
            let objects: K8sObject[];
            before(async () => {
                objects = (await renderedStack(stack)).objects;
            });

            it("writes every object valid against the upstream Kubernetes and Istio schemas (unknown kinds fail)", () => {
                expect(objects.length).to.be.greaterThan(20);
                const errors: string[] = [];
                for (const o of objects) {
                    try {
                        validateObject(o);
                    } catch (e) {
                        errors.push((e as Error).message);
                    }
                }
                expect(errors, errors.join("\n")).to.deep.equal([]);
            });

            it("renders the mesh policy: STRICT mTLS, Telemetry, REGISTRY_ONLY Sidecars, AuthorizationPolicies, default-deny", () => {
                const strict = find(objects, "PeerAuthentication", "default");
                expect(strict.length).to.be.greaterThan(1);
                for (const p of strict) expect((p.spec as any).mtls.mode).to.equal("STRICT");
                expect(find(objects, "Telemetry").length).to.be.greaterThan(0);
                const sidecars = find(objects, "Sidecar");
                expect(sidecars.length).to.be.greaterThan(3);
                for (const s of sidecars) expect((s.spec as any).outboundTrafficPolicy.mode).to.equal("REGISTRY_ONLY");
                expect(find(objects, "AuthorizationPolicy").length).to.be.greaterThan(2);
                expect(find(objects, "NetworkPolicy", "default-deny-ingress").length).to.be.greaterThan(2);
                if (stack === "prod") expect(find(objects, "ServiceEntry")).to.have.length(9);
            });

            it("renders every pod spec to the restricted Pod Security Standard, with requests and limits", () => {
                const { workloads, violations } = workloadViolations(objects);
                expect(workloads).to.be.at.least(3);
                expect(violations, violations.join("\n")).to.deep.equal([]);
            });

            it("runs every workload as a ServiceAccount it renders in the workload's namespace, and binds only those", () => {
                const accounts = new Set(
                    find(objects, "ServiceAccount").map((a) => `${a.metadata.namespace}/${a.metadata.name}`),
                );
                let checked = 0;
                for (const o of objects) {
                    const pod = podSpecOf(o);
                    if (!pod) continue;
                    checked++;
                    const account = `${o.metadata.namespace}/${String(pod.spec.serviceAccountName ?? "default")}`;
                    expect(accounts.has(account), `${pod.where} runs as ${account}`).to.equal(true);
                }
                expect(checked).to.be.at.least(3);
                for (const b of [...find(objects, "RoleBinding"), ...find(objects, "ClusterRoleBinding")])
                    for (const s of (b.subjects ?? []) as { kind: string; name: string; namespace: string }[])
                        if (s.kind === "ServiceAccount" && s.namespace !== "kube-system")
                            expect(
                                accounts.has(`${s.namespace}/${s.name}`),
                                `${b.metadata.name} binds ${s.name}`,
                            ).to.equal(true);
            });

            it("names objects as the provider would and writes one file per object", () => {
                const names = objects.map((o) => `${o.metadata.namespace ?? "_cluster"}/${o.kind}/${o.metadata.name}`);
                expect(new Set(names).size).to.equal(names.length);
                for (const o of objects)
                    expect(o.metadata.name, `${o.kind} name`).to.match(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
            });

            it("leaves no secret in clear: credentials and receiver secrets are placeholders", async () => {
                const { run } = await renderedStack(stack);
                const text = readAll(run.dir);
                for (const s of find(objects, "Secret")) {
                    const data = { ...((s.stringData as Record<string, string>) ?? {}) };
                    for (const [k, v] of Object.entries(data)) {
                        if (!/password|token|url|key/i.test(k)) continue;
                        expect(v, `${s.metadata.name}.${k}`).to.match(/<secret |<generated at deploy time/);
                    }
                }
                expect(text).to.not.match(/admin:admin|password: admin\b/);
            });
        });
    }

    it("is stable: rendering twice writes the same files", async () => {
        const a = await runRender("dev");
        const b = await runRender("dev");
        expect(a.code).to.equal(0);
        expect(readAll(a.dir)).to.equal(readAll(b.dir));
    });

    it("rejects invalid config with every problem on stderr, naming the keys, and a non-zero exit", async () => {
        const run = await runRenderChanged("dev", "bad", (config) => {
            config["proxy-monitor:vendors"][0].pools[0].port = 70000;
            config["proxy-monitor:vendors"][1].pools = [];
            config["proxy-monitor:scrapeInterval"] = "often";
        });
        expect(run.code).to.equal(1);
        expect(run.stderr).to.contain("Pulumi.bad.yaml has 3 configuration problem(s)");
        expect(run.stderr).to.contain(
            "proxy-monitor:vendors[vendor-a].pools[dc-us-east].port: expected an integer from 1 to 65535, found 70000",
        );
        expect(run.stderr).to.contain(
            "proxy-monitor:vendors[vendor-b].pools: expected a list of at least 1 item(s), found a list []",
        );
        expect(run.stderr).to.contain(
            'proxy-monitor:scrapeInterval: expected a duration such as 30s, 5m, 1h30m or 30d, found "often"',
        );
        expect(run.stderr).to.not.match(/\n\s+at /); // no stack trace
        expect(fs.readdirSync(run.dir)).to.deep.equal([]);
    });

    describe("--out never destroys what render did not create", () => {
        const tmp = (prefix: string) => fs.mkdtempSync(path.join(os.tmpdir(), prefix));

        it("refuses a non-empty folder without its marker, exits 1 and changes nothing", async () => {
            const dir = tmp("render-foreign-");
            fs.writeFileSync(path.join(dir, "notes.txt"), "mine");
            fs.mkdirSync(path.join(dir, "src"));
            fs.writeFileSync(path.join(dir, "src", "main.go"), "package main");
            const run = await runRender("dev", [], dir);
            expect(run.code, run.stderr).to.equal(1);
            expect(run.stderr).to.contain("not empty").and.to.contain(MARKER);
            expect(fs.readdirSync(dir).sort()).to.deep.equal(["notes.txt", "src"]);
            expect(fs.readFileSync(path.join(dir, "src", "main.go"), "utf8")).to.equal("package main");
        });

        it("re-renders into its own folder: replaces the files it listed, keeps every other file", async () => {
            const dir = path.join(tmp("render-own-"), "out"); // missing: created
            const first = await runRender("dev", [], dir);
            expect(first.code, first.stderr).to.equal(0);
            const marker = JSON.parse(fs.readFileSync(path.join(dir, MARKER), "utf8")) as { files: string[] };
            expect(marker.files).to.include("_stack-outputs.yaml");
            expect(marker.files.length).to.equal(readRendered(dir).length + 1);
            // A file of a previous render that this one no longer produces, and a user's file beside them.
            fs.writeFileSync(path.join(dir, "proxy-monitor", "configmap-gone.yaml"), "stale");
            marker.files.push("proxy-monitor/configmap-gone.yaml");
            fs.writeFileSync(path.join(dir, MARKER), JSON.stringify(marker));
            fs.writeFileSync(path.join(dir, "kustomization.yaml"), "resources: []");
            const second = await runRender("dev", [], dir);
            expect(second.code, second.stderr).to.equal(0);
            expect(fs.existsSync(path.join(dir, "proxy-monitor", "configmap-gone.yaml"))).to.equal(false);
            expect(fs.readFileSync(path.join(dir, "kustomization.yaml"), "utf8")).to.equal("resources: []");
            expect(second.stdout).to.contain("kept 1 file(s)").and.to.contain("kustomization.yaml");
            expect(readAll(dir)).to.equal(readAll(first.dir));
        });

        it("says in --help which rule it follows", async () => {
            const run = await runRender("dev", ["--help"]);
            expect(run.code).to.equal(0);
            expect(run.stdout).to.contain(MARKER).and.to.contain("refused");
        });
    });

    it("the schema check itself fails on an unknown kind and on an invalid object", () => {
        expect(modelOf("example.com/v1", "Widget")).to.equal(undefined);
        expect(() =>
            validateObject({ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }),
        ).to.throw(/no upstream schema/);
        const bad = {
            apiVersion: "networking.istio.io/v1beta1",
            kind: "ServiceEntry",
            metadata: { name: "x" },
            spec: { hosts: "not-a-list" },
        };
        expect(() => validateObject(bad as unknown as K8sObject)).to.throw(/ServiceEntry/);
    });

    it("the pod-security check itself catches a root, privileged, unbounded container", () => {
        const v = restrictedViolations("Pod x", {
            hostNetwork: true,
            volumes: [{ name: "h", hostPath: { path: "/" } }],
            containers: [
                {
                    name: "c",
                    securityContext: { privileged: true, runAsUser: 0, capabilities: { add: ["NET_ADMIN"] } },
                },
            ],
        });
        for (const want of [
            "hostNetwork",
            "hostPath",
            "privileged",
            "allowPrivilegeEscalation",
            "drop ALL",
            "NET_ADMIN",
            "runAsNonRoot",
            "runAsUser is 0",
            "seccompProfile",
            "no cpu requests",
            "no memory limits",
            "writable",
        ]) {
            expect(v.join("\n")).to.contain(want);
        }
    });
});

function readAll(dir: string): string {
    return readRendered(dir)
        .map((o) => YAML.stringify(o))
        .join("---\n");
}
