/** `destinations`: the hosts crawlers reach through the gateways. */
import { z } from "zod";
import { parsePortRange } from "../../proxy/gateway/destinations";
import { HOST, bool, list, section, str, unique } from "./kit";

const HOST_PATTERN = {
    re: /^(\*|(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)$/,
    expected: "a host name or pattern such as example.com, *.example.com or *",
};

export const destinationsSchema = section({
    tracked: list(str(HOST))
        .describe("Hosts that get their own `destination` label value; every other host is `other`.")
        .default([])
        .superRefine((hosts, ctx) => {
            unique(
                ctx,
                hosts.map((name, i) => ({ name, path: [i] })),
                "destination",
            );
            if (hosts.includes("other"))
                ctx.addIssue({
                    code: "custom",
                    message: "no host named 'other' (it is the bucket of untracked hosts)",
                    input: hosts,
                    params: { found: '"other"' },
                });
        }),
    allowed: list(str(HOST_PATTERN))
        .describe("Host patterns the gateways accept (`*.example.com` allowed); others get 403. Defaults to all (`*`).")
        .default(["*"]),
    connectPorts: list(
        z
            .union([z.number(), z.string()], { error: 'a port (1-65535) or a range "lo-hi"' })
            .transform((x) => String(x))
            .refine((x) => parsePortRange(x) !== undefined, { error: 'a port (1-65535) or a range "lo-hi"' }),
    )
        .describe('Ports crawlers may reach through the gateways, as numbers or "lo-hi" ranges; others get 403.')
        .default(["443", "80"]),
    allowInternal: bool()
        .describe(
            "Let crawlers reach loopback, private, link-local and cluster addresses and cluster DNS names through the gateways (otherwise 403 internal-address / internal-name).",
        )
        .default(false),
});
export type DestinationsConfig = z.output<typeof destinationsSchema>;
