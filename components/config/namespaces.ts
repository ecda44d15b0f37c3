/** `namespaces`: where the program puts its own workloads. */
import { z } from "zod";
import { LABEL, section, str } from "./kit";

export const namespacesSchema = section({
    monitoring: str(LABEL).describe("Prometheus, Alertmanager, Grafana and the adapter").default("proxy-monitor"),
    gateways: str(LABEL).describe("the vendor gateways").default("proxy-gateways"),
    simulators: str(LABEL).describe("the vendor simulators and the target (dev)").default("proxy-sim"),
    istio: str(LABEL).describe("Istio's control plane").default("istio-system"),
});
export type NamespacesConfig = z.output<typeof namespacesSchema>;
