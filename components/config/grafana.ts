/** `grafana`. */
import { z } from "zod";
import { BYTES, bool, num, section, str } from "./kit";

export const grafanaSchema = section({
    replicas: num({ min: 1, max: 10, int: true }).default(1),
    /** Keep Grafana's sqlite on a PVC (true) or run stateless with everything provisioned (false). */
    persistence: bool().default(false),
    storageSize: str(BYTES).default("5Gi"),
}).superRefine((g, ctx) => {
    if (g.persistence && g.replicas > 1)
        ctx.addIssue({
            code: "custom",
            path: ["replicas"],
            message: "1 when grafana.persistence is true (sqlite on a volume cannot be shared)",
            input: g.replicas,
        });
});
export type GrafanaConfig = z.output<typeof grafanaSchema>;
