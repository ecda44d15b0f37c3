/**
 * What ships is what runs: every rendered pod that runs our program, and Debian's Prometheus and Alertmanager with
 * the rendered arguments, started from the rendered objects alone by the pod emulator (tests/pod-emulator.ts).
 */
import { expect } from "chai";
import YAML from "yaml";
import { SCRIPT_DIR } from "../components/node-app";
import { APP } from "../components/names";
import { describeRenderedStacks, renderedStack } from "./harness";
import {
    IMAGE_ENTRYPOINTS,
    PodResult,
    Workload,
    cleanup,
    emulatorAvailable,
    runPod,
    runPods,
    workloadsOf,
} from "./pod-emulator";

/** Workloads whose container runs the bundled program (from the script ConfigMap, or a built image). */
export function runsOurProgram(w: Workload): boolean {
    return (w.podSpec.containers as { command?: string[]; args?: string[] }[]).some((c) =>
        [...(c.command ?? []), ...(c.args ?? [])].some((a) => a.startsWith(SCRIPT_DIR)),
    );
}

function runsUpstream(w: Workload): boolean {
    return (w.podSpec.containers as { image: string }[]).some(
        (c) => c.image.replace(/:[^/]*$/, "") in IMAGE_ENTRYPOINTS,
    );
}

/** A gateway is ready only with a healthy pool: its readiness depends on the vendors, outside the pod. */
const outsideDependent = (kind: string, w: Workload) =>
    kind === "readinessProbe" && w.labels["app.kubernetes.io/name"] === APP.gateway;

/**
 * The one change to what is rendered: Debian builds Prometheus without Kubernetes service discovery, so a job that
 * discovers by `kubernetes_sd_configs` (kubelet-cadvisor) gets an empty static target list instead. Its TLS and
 * authorization settings, and every flag, are kept. The rendered flags are the same in Debian's Prometheus 2.42 and
 * Alertmanager 0.25 as in the pinned v2.53.3 and v0.27.0 images.
 */
function withoutKubernetesSd(file: string, text: string): string {
    if (!file.endsWith("/prometheus.yml")) return text;
    const doc = YAML.parse(text) as { scrape_configs?: Record<string, unknown>[] };
    for (const job of doc.scrape_configs ?? []) {
        if (!job.kubernetes_sd_configs) continue;
        delete job.kubernetes_sd_configs;
        job.static_configs = [];
    }
    return YAML.stringify(doc);
}

function report(results: PodResult[]): string {
    return results.flatMap((r) => r.problems).join("\n");
}

describe("the rendered pods, started as a kubelet would (pod emulator)", function () {
    this.timeout(180_000);
    before(function () {
        const missing = emulatorAvailable();
        if (missing) throw new Error(missing);
    });

    const expected: Record<string, { ours: number; upstream: number }> = {
        dev: { ours: 10, upstream: 2 },
        prod: { ours: 4, upstream: 3 },
        // Operator mode: the same program pods as dev; the cluster's own operator scrapes, evaluates and alerts.
        operator: { ours: 10, upstream: 0 },
    };
    describeRenderedStacks((stack, rendered) => {
        it("every pod of our program starts, listens on every containerPort, answers its probes and exits within its grace period after SIGTERM", async () => {
            const objects = rendered();
            const ours = workloadsOf(objects).filter(runsOurProgram);
            expect(ours.map((w) => w.name)).to.have.length(expected[stack].ours);
            const results = await runPods(objects, ours, { outsideDependent, limit: 5 });
            try {
                expect(report(results), report(results)).to.equal("");
                for (const r of results) expect(r.termMs, r.workload).to.be.below(r.graceSeconds * 1000);
            } finally {
                cleanup(results);
            }
        });

        it("Prometheus and Alertmanager (Debian's binaries) start with the rendered args, config and volumes", async () => {
            const objects = rendered();
            const upstream = workloadsOf(objects).filter(runsUpstream);
            expect(upstream.map((w) => w.name)).to.have.length(expected[stack].upstream);
            const results = await runPods(objects, upstream, { limit: 3, adaptFile: withoutKubernetesSd });
            try {
                expect(report(results), report(results)).to.equal("");
            } finally {
                cleanup(results);
            }
        });
    });

    it("the emulator itself fails a pod whose entry file is missing, or that ignores a declared port", async () => {
        const { objects } = await renderedStack("dev");
        const target = workloadsOf(objects).find((w) => w.labels["app.kubernetes.io/name"] === APP.target)!;
        const c = target.podSpec.containers[0];
        const wrongEntry = {
            ...target,
            podSpec: {
                ...target.podSpec,
                containers: [{ ...c, args: [`${SCRIPT_DIR}/missing.js`, ...c.args.slice(1)] }],
            },
        };
        const extraPort = {
            ...target,
            podSpec: {
                ...target.podSpec,
                containers: [{ ...c, ports: [...c.ports, { name: "unused", containerPort: 7777 }] }],
            },
        };
        const [a, b] = await Promise.all([
            runPod(objects, wrongEntry, { startupMs: 10_000 }),
            runPod(objects, extraPort, { startupMs: 5_000 }),
        ]);
        cleanup([a, b]);
        expect(a.problems.join("\n")).to.match(/exited before SIGTERM[\s\S]*Cannot find module/);
        expect(b.problems.join("\n")).to.contain("nothing listens on containerPort 7777/TCP");
    });
});
