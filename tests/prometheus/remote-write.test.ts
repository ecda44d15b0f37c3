/**
 * remote_write for real: a Debian Prometheus with `--web.enable-remote-write-receiver` on loopback stands for the
 * long-term store. The cluster Prometheus runs the rendered configuration (stack dev with prometheus.remoteWrite set)
 * and sends the recorded series, cluster label intact, and nothing else; the receiver is stopped for a short outage and
 * started again, and every sample the sender evaluated in that window arrives (queue retries from the WAL). An
 * agent-mode Prometheus started with the rendered arguments (prometheus.agent) sends its scraped series the same way.
 * The one change to what is rendered: targets are loopback addresses and the intervals 2s (test speed).
 */
import { ChildProcess, spawn } from "child_process";
import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";
import { allRecordedSeries } from "../../catalog";
import { toStaticTargets } from "../../components/prometheus/scrape";
import { K8sObject, readRendered, runRenderChanged } from "../harness";
import { tempDir, tool } from "../promtool";
import { promQuery } from "../../scripts/pipeline";
import { HOST, freePort, waitFor } from "../proxy/helpers";

const tryQuery = (port: number, q: string) => promQuery(port, q).catch(() => []);

interface Proc {
    child: ChildProcess;
    stop(): Promise<void>;
}

/** Starts Debian's prometheus; stop() sends SIGTERM and waits (at most 20 s) for it to exit. */
function startPrometheus(args: string[]): Proc {
    const child = spawn("prometheus", args, { stdio: "ignore" });
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    return {
        child,
        stop: async () => {
            if (child.exitCode === null) child.kill("SIGTERM");
            await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
            if (child.exitCode === null) child.kill("SIGKILL");
        },
    };
}

function rendered(objects: K8sObject[], kind: string, name: RegExp): any {
    const o = objects.find((x) => x.kind === kind && name.test(x.metadata.name));
    if (!o) throw new Error(`no ${kind} ${name}`);
    return o;
}

/** The rendered cluster config with loopback targets, 2 s intervals and the rules written beside it. */
function localConfig(objects: K8sObject[], dir: string, selfPort: number): string {
    const config = YAML.parse(rendered(objects, "ConfigMap", /^prometheus-config/).data["prometheus.yml"]);
    const local = toStaticTargets(config, { prometheus: [{ targets: [`${HOST}:${selfPort}`] }] }) as any;
    local.global.scrape_interval = "2s";
    local.global.scrape_timeout = "2s";
    if (local.global.evaluation_interval) local.global.evaluation_interval = "2s";
    if (local.rule_files) {
        fs.mkdirSync(path.join(dir, "rules"));
        const rules = rendered(objects, "ConfigMap", /^prometheus-rules/).data as Record<string, string>;
        for (const [f, text] of Object.entries(rules)) fs.writeFileSync(path.join(dir, "rules", f), text);
        local.rule_files = [path.join(dir, "rules", "*.yaml")];
    }
    const file = path.join(dir, "prometheus.yml");
    fs.writeFileSync(file, YAML.stringify(local));
    return file;
}

describe("remote_write to a long-term store (real Prometheus on loopback)", function () {
    this.timeout(240_000);
    const procs: Proc[] = [];
    let receiverPort = 0;
    let receiverDir = "";
    const startReceiver = () => {
        const p = startPrometheus([
            `--config.file=${path.join(receiverDir, "empty.yml")}`,
            `--storage.tsdb.path=${path.join(receiverDir, "data")}`,
            `--web.listen-address=${HOST}:${receiverPort}`,
            "--web.enable-remote-write-receiver",
        ]);
        procs.push(p);
        return p;
    };

    before(async () => {
        tool("prometheus", "prometheus");
        receiverPort = await freePort();
        receiverDir = tempDir("rw-receiver-");
        fs.writeFileSync(path.join(receiverDir, "empty.yml"), "global: {}\n");
    });
    after(async () => {
        for (const p of procs) await p.stop();
    });

    it("receives the recorded series of the rendered cluster config, cluster label intact, across a receiver restart", async () => {
        const url = `http://${HOST}:${receiverPort}/api/v1/write`;
        const run = await runRenderChanged("dev", "dev-remote-write", (c) => {
            c["proxy-monitor:prometheus"] = { remoteWrite: { url, queue: { maxBackoff: "1s" } } };
        });
        expect(run.code, run.stderr).to.equal(0);
        const objects = readRendered(run.dir);
        const dir = tempDir("rw-sender-");
        const senderPort = await freePort();
        const configFile = localConfig(objects, dir, senderPort);
        expect(YAML.parse(fs.readFileSync(configFile, "utf8")).remote_write[0].url).to.equal(url);

        let receiver = startReceiver();
        const sender = startPrometheus([
            `--config.file=${configFile}`,
            `--storage.tsdb.path=${path.join(dir, "data")}`,
            `--web.listen-address=${HOST}:${senderPort}`,
            "--enable-feature=expand-external-labels",
        ]);
        procs.push(sender);

        const recorded = new Set(allRecordedSeries());
        const names = async (port: number) =>
            new Set((await tryQuery(port, 'count by (__name__) ({__name__=~".+"})')).map((s) => s.metric.__name__));
        await waitFor(async () => (await names(receiverPort)).size >= 5, 60_000, "recorded series at the receiver");
        const received = await tryQuery(receiverPort, '{__name__=~".+"}');
        expect(received.length).to.be.greaterThan(5);
        for (const s of received) {
            expect(recorded.has(s.metric.__name__), `${s.metric.__name__} is a recorded series`).to.equal(true);
            expect(s.metric.cluster, JSON.stringify(s.metric)).to.equal("dev");
        }
        // The sender stores raw series too (its own scrapes); only the recorded ones were sent.
        await waitFor(
            async () => [...(await names(senderPort))].some((n) => !recorded.has(n)),
            30_000,
            "raw series at the sender",
        );
        for (const s of await tryQuery(receiverPort, '{__name__=~".+"}'))
            expect(recorded.has(s.metric.__name__), `${s.metric.__name__} is a recorded series`).to.equal(true);

        // A short outage: the receiver stops for 10 s and comes back on the same port and data.
        const before = Date.now() / 1000;
        await receiver.stop();
        await new Promise((r) => setTimeout(r, 10_000));
        receiver = startReceiver();
        const restarted = Date.now() / 1000;
        await new Promise((r) => setTimeout(r, 4_000));

        // Every sample the sender evaluated from 6 s before the outage to 2 s after the restart reaches the receiver.
        const end = restarted + 2;
        const window = Math.ceil(end - (before - 6));
        const series = "job:up:sum";
        // Samples per series over the whole window, and over the outage alone (receiver down: all of them resent).
        const outage = Math.floor(restarted - before);
        const counts = async (port: number) =>
            Object.fromEntries(
                (
                    await Promise.all([
                        tryQuery(port, `count_over_time(${series}[${window}s] @ ${end.toFixed(3)})`),
                        tryQuery(port, `count_over_time(${series}[${outage}s] @ ${restarted.toFixed(3)})`),
                    ])
                ).flatMap((r, i) =>
                    r.map((s) => [`${i ? "outage" : "window"} ${JSON.stringify(s.metric)}`, Number(s.value[1])]),
                ),
            );
        const sent = await counts(senderPort);
        expect(Object.keys(sent).length).to.equal(2);
        // A 10 s outage at a 2 s evaluation interval: several evaluations while the receiver was down (at least 3, on a
        // loaded machine).
        expect(Math.min(...Object.values(sent))).to.be.at.least(3);
        let got: Record<string, number> = {};
        await waitFor(
            async () => {
                got = await counts(receiverPort);
                return JSON.stringify(got) === JSON.stringify(sent);
            },
            60_000,
            `the receiver to hold every sample of ${series}`,
        ).catch(() => undefined);
        expect(got, `samples of ${series} around and during the outage`).to.deep.equal(sent);
        await sender.stop();
    });

    it("an agent-mode Prometheus with the rendered arguments remote-writes what it scrapes", async () => {
        const url = `http://${HOST}:${receiverPort}/api/v1/write`;
        const run = await runRenderChanged("dev", "dev-agent", (c) => {
            c["proxy-monitor:prometheus"] = { agent: true, remoteWrite: { url, series: "all" } };
        });
        expect(run.code, run.stderr).to.equal(0);
        const objects = readRendered(run.dir);
        const sts = rendered(objects, "StatefulSet", /^prometheus$/);
        const args: string[] = sts.spec.template.spec.containers[0].args;
        expect(args).to.include("--enable-feature=agent");
        expect(args.some((a) => a.startsWith("--storage.tsdb"))).to.equal(false);
        const dir = tempDir("rw-agent-");
        const agentPort = await freePort();
        const configFile = localConfig(objects, dir, agentPort);
        const config = YAML.parse(fs.readFileSync(configFile, "utf8"));
        expect(config).to.not.have.property("rule_files");
        expect(config).to.not.have.property("alerting");
        const local = args.map((a) =>
            a.startsWith("--config.file=")
                ? `--config.file=${configFile}`
                : a.startsWith("--storage.agent.path=")
                  ? `--storage.agent.path=${path.join(dir, "wal")}`
                  : a.startsWith("--web.listen-address=")
                    ? `--web.listen-address=${HOST}:${agentPort}`
                    : a,
        );
        if (procs.every((p) => p.child.exitCode !== null)) startReceiver();
        const agent = startPrometheus(local);
        procs.push(agent);
        const fromAgent = `{cluster="dev", instance="${HOST}:${agentPort}"}`;
        await waitFor(
            async () => (await tryQuery(receiverPort, `count(${fromAgent})`)).length > 0,
            60_000,
            "the agent's series at the receiver",
        );
        const got = await tryQuery(receiverPort, fromAgent);
        const gotNames = new Set(got.map((s) => s.metric.__name__));
        expect(gotNames.has("up")).to.equal(true);
        expect(gotNames.has("process_resident_memory_bytes")).to.equal(true);
        for (const s of got) expect(s.metric.job).to.equal("prometheus");
        await agent.stop();
    });
});
