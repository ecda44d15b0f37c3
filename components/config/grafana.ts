/** `grafana`. */
import { z } from "zod";
import { BYTES, bool, num, section, str } from "./kit";

export const grafanaSchema = section({
    replicas: num({ min: 1, max: 10, int: true }).describe("Grafana replicas (1 with persistence)").default(1),
    persistence: bool()
        .describe("Keep Grafana's sqlite on a PVC (true) or run stateless with everything provisioned (false).")
        .default(false),
    storageSize: str(BYTES).describe("volume, with persistence").default("5Gi"),
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
