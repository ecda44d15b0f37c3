/** `images`: every container image, pinned. */
import { z } from "zod";
import { section } from "./kit";

const PINNED = /^[a-z0-9.-]+(:[0-9]+)?(\/[a-z0-9._-]+)+(:[A-Za-z0-9._-]+|@sha256:[a-f0-9]{64})$/;
const EXPECTED = "an image pinned to a tag or digest, such as quay.io/prometheus/prometheus:v2.53.3 (not :latest)";

const pinned = (def: string, allowEmpty = false) =>
    z
        .string({ error: EXPECTED })
        .refine((v) => (allowEmpty && v === "") || (PINNED.test(v) && !v.endsWith(":latest")), { error: EXPECTED })
        .default(def);

export const imagesSchema = section({
    node: pinned("docker.io/library/node:20.18.1-bookworm-slim").describe(
        "runs the bundled gateway, load generator, simulators and target",
    ),
    prometheus: pinned("quay.io/prometheus/prometheus:v2.53.3").describe("cluster and global Prometheus"),
    alertmanager: pinned("quay.io/prometheus/alertmanager:v0.27.0").describe("Alertmanager"),
    grafana: pinned("docker.io/grafana/grafana:11.3.1").describe("Grafana"),
    kubeStateMetrics: pinned("registry.k8s.io/kube-state-metrics/kube-state-metrics:v2.13.0").describe(
        "kube-state-metrics",
    ),
    prometheusAdapter: pinned("registry.k8s.io/prometheus-adapter/prometheus-adapter:v0.12.0").describe(
        "prometheus-adapter (custom metrics)",
    ),
    gateway: pinned("", true).describe(
        "A prebuilt gateway image (see proxy/Dockerfile); when empty, the bundled script runs on `node`.",
    ),
});
export type ImagesConfig = z.output<typeof imagesSchema>;
