/**
 * Every workload's pod spec comes from one helper (components/k8s.ts `workloadPodSpec`, through kx's PodBuilder),
 * and what kx renders is checked on every rendered workload: kx turns env and port maps into lists, mount objects
 * into volumes, and names containers from their image when they have no name, so each of those is checked here.
 */
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import { ENTRY_FILE } from "../components/node-app";
import { nodeFlags } from "../proxy/loader";
import { ROOT, describeRenderedStacks } from "./harness";
import { podSpecOf } from "./pod-security";

type Obj = Record<string, unknown>;

function tsFiles(dir: string, depth = 0): string[] {
    if (depth > 4) return [];
    return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
        const full = path.join(dir, e.name);
        return e.isDirectory() ? tsFiles(full, depth + 1) : e.name.endsWith(".ts") ? [full] : [];
    });
}

describe("pod specs: one helper, through kx", () => {
    it("no component but components/k8s.ts sets pod or container security contexts, or uses kx's PodBuilder itself", () => {
        const files = tsFiles(path.join(ROOT, "components"));
        expect(files.length).to.be.greaterThan(10);
        const offenders: string[] = [];
        for (const f of files) {
            const rel = path.relative(ROOT, f);
            if (rel === path.join("components", "k8s.ts")) continue;
            const text = fs.readFileSync(f, "utf8");
            for (const needle of [
                "restrictedPodSecurity(",
                "restrictedContainerSecurity(",
                "PodBuilder",
                "kubernetesx",
            ])
                if (text.includes(needle)) offenders.push(`${rel}: ${needle}`);
        }
        expect(offenders).to.deep.equal([]);
    });

    it("the helper uses kx without casts", () => {
        const text = fs.readFileSync(path.join(ROOT, "components", "k8s.ts"), "utf8");
        expect(text).to.contain("new kx.PodBuilder(");
        expect(text).to.not.match(/\bas (unknown|kx\.|k8s\.|pulumi\.)/);
    });

    describeRenderedStacks((stack, objects) => {
        it("every container of our program runs node with its mode's flags (proxy/loader.ts) before the entry file", () => {
            let gateways = 0;
            for (const o of objects()) {
                const pod = podSpecOf(o);
                if (!pod) continue;
                for (const c of pod.spec.containers as Obj[]) {
                    const args = (c.args ?? []) as string[];
                    const entry = args.indexOf(ENTRY_FILE);
                    if (entry < 0) continue;
                    expect(c.command, `${pod.where}: ${c.name}`).to.deep.equal(["node"]);
                    const mode = args[entry + 1];
                    expect(args.slice(0, entry), `${pod.where}: ${c.name} (${mode})`).to.deep.equal([
                        ...nodeFlags(mode),
                    ]);
                    if (mode === "gateway") gateways++;
                }
            }
            expect(gateways, "gateway containers").to.be.greaterThan(0);
            // The gateway's heap is sized by flags (the memory goal of docs/performance-tuning.md rests on them).
            expect(nodeFlags("gateway").join(" ")).to.match(/--max-semi-space-size=\d+/);
        });

        it("every workload's pod spec is as kx renders it: named, unique containers, env, ports and volumes", () => {
            let workloads = 0;
            for (const o of objects()) {
                const pod = podSpecOf(o);
                if (!pod) continue;
                workloads++;
                const at = pod.where;
                const spec = pod.spec;
                // kx always writes initContainers (a list): the fingerprint of a spec built by the PodBuilder.
                expect(spec.initContainers, `${at}: built by kx`).to.be.an("array");
                const volumes = ((spec.volumes ?? []) as Obj[]).map((v) => String(v.name));
                expect(new Set(volumes).size, `${at}: volume names unique (${volumes})`).to.equal(volumes.length);
                const claims = (((o.spec as Obj).volumeClaimTemplates ?? []) as { metadata: { name: string } }[]).map(
                    (c) => c.metadata.name,
                );
                const containers = [...(spec.initContainers as Obj[]), ...(spec.containers as Obj[])];
                const names = containers.map((c) => String(c.name));
                expect(
                    names.every((n) => /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n)),
                    `${at}: ${names}`,
                ).to.equal(true);
                expect(new Set(names).size, `${at}: container names unique`).to.equal(names.length);
                for (const c of containers) {
                    const where = `${at} container ${String(c.name)}`;
                    const env = (c.env ?? []) as Obj[];
                    expect(new Set(env.map((e) => e.name)).size, `${where}: env names unique`).to.equal(env.length);
                    for (const e of env)
                        expect(
                            (e.value !== undefined) !== (e.valueFrom !== undefined),
                            `${where}: env ${String(e.name)} has a value or a valueFrom`,
                        ).to.equal(true);
                    const ports = (c.ports ?? []) as Obj[];
                    for (const p of ports) {
                        expect(String(p.name), `${where}: port name`).to.match(/^[a-z0-9-]{1,15}$/);
                        expect(p.containerPort, `${where}: port ${String(p.name)}`).to.be.a("number");
                    }
                    expect(new Set(ports.map((p) => p.name)).size, `${where}: port names unique`).to.equal(
                        ports.length,
                    );
                    for (const m of (c.volumeMounts ?? []) as Obj[])
                        expect(
                            volumes.includes(String(m.name)) || claims.includes(String(m.name)),
                            `${where}: mount ${String(m.name)} names a volume`,
                        ).to.equal(true);
                }
            }
            expect(workloads, stack).to.be.at.least(5);
        });
    });
});
