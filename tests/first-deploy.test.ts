/**
 * What the first `pulumi up` on a real cluster would hit, read from the rendered objects as a kubelet, the HPA
 * controller, the eviction API and Istio's agent would read them.
 */
import { expect } from "chai";
import YAML from "yaml";
import { planNamespaces } from "../components/mesh";
import { APP, SCRAPE_LABEL } from "../components/names";
import { durationMs } from "../components/validate";
import { describeRenderedStacks, find, stackConfig } from "./harness";

type Obj = Record<string, any>;

describe("the first pulumi up on a real cluster", function () {
    this.timeout(180_000);

    describeRenderedStacks((stack, rendered) => {
        it("sets no spec.replicas on a workload an HPA scales (server-side apply would fight the HPA)", () => {
            const objects = rendered();
            const hpas = find(objects, "HorizontalPodAutoscaler");
            expect(hpas.length).to.be.greaterThan(0);
            const fights: string[] = [];
            for (const h of hpas) {
                const ref = (h.spec as Obj).scaleTargetRef;
                const target = find(objects, ref.kind, ref.name, h.metadata.namespace)[0];
                if (target && (target.spec as Obj).replicas !== undefined)
                    fights.push(
                        `${ref.kind} ${h.metadata.namespace}/${ref.name}: replicas ${(target.spec as Obj).replicas}`,
                    );
            }
            expect(fights, fights.join("\n")).to.deep.equal([]);
        });

        it("lets unhealthy pods be evicted past every PodDisruptionBudget (a crash-looping fleet must not block drains)", () => {
            const objects = rendered();
            const pdbs = find(objects, "PodDisruptionBudget");
            if (stack === "prod") expect(pdbs.length).to.be.greaterThan(0);
            for (const p of pdbs)
                expect((p.spec as Obj).unhealthyPodEvictionPolicy, p.metadata.name).to.equal("AlwaysAllow");
        });

        it("scopes every mesh object and NetworkPolicy in a namespace it only labels to the crawler pods (crawlers.podSelector)", () => {
            const objects = rendered();
            const cfg = stackConfig(stack);
            const labelled = planNamespaces(cfg).label.map((n) => n.name);
            if (stack === "prod") expect(labelled).to.have.length.greaterThan(0);
            const crawlerPod = { ...cfg.crawlers.podSelector };
            const unscoped: string[] = [];
            for (const o of objects.filter((x) => labelled.includes(x.metadata.namespace ?? ""))) {
                if (!/istio\.io$/.test(o.apiVersion.split("/")[0]) && o.kind !== "NetworkPolicy") continue;
                const spec = (o.spec ?? {}) as Obj;
                const sel: Record<string, string> | undefined =
                    spec.workloadSelector?.labels ?? spec.selector?.matchLabels ?? spec.podSelector?.matchLabels;
                // Scoped to the crawlers, or to pods of ours (labelled for scraping).
                const ok =
                    sel !== undefined &&
                    (Object.entries(crawlerPod).every(([k, v]) => sel[k] === v) || sel[SCRAPE_LABEL] === "true");
                if (!ok) unscoped.push(`${o.kind} ${o.metadata.namespace}/${o.metadata.name}: ${JSON.stringify(sel)}`);
            }
            expect(unscoped, unscoped.join("\n")).to.deep.equal([]);
        });

        it("keeps each gateway's sidecar up while the gateway drains: drain <= sidecar drain < grace period", () => {
            const objects = rendered();
            const gateways = find(objects, "Deployment").filter(
                (d) => (d.spec as Obj).template.metadata.labels["app.kubernetes.io/name"] === APP.gateway,
            );
            expect(gateways.length).to.be.greaterThan(0);
            for (const d of gateways) {
                const tpl = (d.spec as Obj).template;
                const cmName = (tpl.spec.volumes as Obj[]).find((v) => v.name === "config")!.configMap.name;
                const cm = find(objects, "ConfigMap", cmName, d.metadata.namespace)[0];
                const drainMs = JSON.parse((cm.data as Obj)["config.json"]).shutdownGraceMs as number;
                // The agent reads the annotation as YAML (JSON is YAML); absent, Istio stops Envoy after 5 s.
                const proxyConfig = YAML.parse(tpl.metadata.annotations?.["proxy.istio.io/config"] ?? "{}") ?? {};
                const sidecarMs = durationMs(proxyConfig.terminationDrainDuration ?? "5s");
                const graceMs = (tpl.spec.terminationGracePeriodSeconds ?? 30) * 1000;
                const where = `${d.metadata.name}: gateway drain ${drainMs} ms, sidecar ${sidecarMs} ms, grace ${graceMs} ms`;
                expect(drainMs, where).to.be.greaterThan(0);
                expect(sidecarMs, where).to.be.at.least(drainMs);
                expect(sidecarMs, where).to.be.below(graceMs);
            }
        });
    });
});
