/** `namespaces`: where the program puts its own workloads. */
import { z } from "zod";
import { LABEL, section, str } from "./kit";

export const namespacesSchema = section({
    monitoring: str(LABEL).default("proxy-monitor"),
    gateways: str(LABEL).default("proxy-gateways"),
    simulators: str(LABEL).default("proxy-sim"),
    istio: str(LABEL).default("istio-system"),
});
export type NamespacesConfig = z.output<typeof namespacesSchema>;
