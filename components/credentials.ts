/**
 * Credentials of every vendor pool: from the `credentials` config secret, or, for simulated pools without
 * configured ones, generated once with @pulumi/random. The gateway (which presents them upstream) and the pool's
 * simulator (which requires them) receive the same values.
 */
import * as pulumi from "@pulumi/pulumi";
import * as random from "@pulumi/random";
import { StackConfig } from "./config";

/** The stack settings pool credentials are resolved from. */
export type CredentialsStackConfig = Pick<StackConfig, "vendors" | "secrets">;

export interface SecretCredentials {
    readonly username: pulumi.Output<string>;
    readonly password: pulumi.Output<string>;
}

/** vendor -> pool -> credentials, all as Pulumi secrets. */
export type PoolCredentialMap = Readonly<Record<string, Readonly<Record<string, SecretCredentials>>>>;

export function resolvePoolCredentials(
    cfg: CredentialsStackConfig,
    opts?: pulumi.CustomResourceOptions,
): PoolCredentialMap {
    const out: Record<string, Record<string, SecretCredentials>> = {};
    for (const v of cfg.vendors) {
        out[v.name] = {};
        for (const p of v.pools) {
            if (cfg.secrets.names.credentials[v.name]?.includes(p.name)) {
                const given = cfg.secrets.values.apply((s) => s.credentials[v.name][p.name]);
                out[v.name][p.name] = {
                    username: given.apply((c) => c.username),
                    password: given.apply((c) => c.password),
                };
            } else {
                const pw = new random.RandomPassword(
                    `${v.name}-${p.name}-sim-password`,
                    { length: 32, special: false },
                    opts,
                );
                out[v.name][p.name] = {
                    username: pulumi.secret(`${v.name}-${p.name}`),
                    password: pulumi.secret(pw.result),
                };
            }
        }
    }
    return out;
}
