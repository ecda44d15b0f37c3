/** `loadGenerator`: synthetic crawler traffic, and the vendor simulators it may talk to (dev). */
import { z } from "zod";
import { HOST, LABEL, Problem, bool, list, num, oneOf, section, str, notBelow } from "./kit";

export const loadGeneratorSchema = section({
    enabled: bool().describe("deploy the synthetic load generator").default(false),
    simulators: bool().describe("Deploy a vendor simulator per simulated pool and a target (dev).").default(false),
    namespace: str(LABEL).describe("where it runs: one of `crawlers.namespaces`").default("crawler-sim"),
    replicas: num({ min: 1, max: 100, int: true }).describe("replicas").default(1),
    maxReplicas: num({ min: 1, max: 1000, int: true }).describe("maximum replicas (HPA)").default(5),
    requestsPerSecond: num({ min: 0, exclusive: true, max: 1_000_000 })
        .describe("requests per second, in all")
        .default(50),
    concurrency: num({ min: 1, max: 10_000, int: true }).describe("concurrent requests per replica").default(32),
    schedule: oneOf(["constant", "ramp", "burst", "diurnal"])
        .describe("how the rate varies over time")
        .default("constant"),
    vendorMix: z
        .record(z.string(), num({ min: 0 }), { error: "an object" })
        .describe("Relative share of generated traffic per vendor. Defaults to equal shares.")
        .optional()
        .superRefine((mix, ctx) => {
            if (mix && Object.keys(mix).length > 0 && Object.values(mix).every((w) => w === 0))
                ctx.addIssue({
                    code: "custom",
                    message: "at least one vendor with a share above 0",
                    input: mix,
                });
        }),
    destinations: list(str(HOST))
        .describe("Destination hosts the generator requests (served by the target in dev).")
        .default(["example.com", "example.org", "example.net"]),
}).superRefine(notBelow("maxReplicas", "replicas", "loadGenerator.replicas"));
export type LoadGeneratorConfig = Omit<z.output<typeof loadGeneratorSchema>, "vendorMix"> & {
    vendorMix: Record<string, number>;
};

/** Fills the vendor mix (default: equal shares) and checks it names configured vendors. */
export function resolveLoadGenerator(
    lg: z.output<typeof loadGeneratorSchema>,
    vendorNames: readonly string[],
): { problems: Problem[]; loadGenerator: LoadGeneratorConfig } {
    const problems: Problem[] = Object.keys(lg.vendorMix ?? {})
        .filter((v) => !vendorNames.includes(v))
        .map((v) => ({
            path: ["loadGenerator", "vendorMix", v],
            expected: `a configured vendor (${vendorNames.join(", ")})`,
            found: JSON.stringify(v),
        }));
    const vendorMix = lg.vendorMix ?? Object.fromEntries(vendorNames.map((v) => [v, 1]));
    return { problems, loadGenerator: { ...lg, vendorMix } };
}
