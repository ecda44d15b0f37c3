/**
 * The one decoder of stack config values: the engine (and a stack file read offline) hands every `proxy-monitor:*`
 * key as a string, objects, lists, numbers and booleans as their JSON text.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../validate";
import { PROJECT } from "./kit";
import { RawConfig } from "./simple-keys";
import { SecretValues, StackConfig, parseStackConfig } from "./stack";

/** The `proxy-monitor:*` values of full-key config (`proxy-monitor:vendors` → `vendors`), JSON decoded. */
export function decodeConfigValues(config: Readonly<Record<string, string>>): RawConfig {
    const raw: RawConfig = {};
    for (const [full, value] of Object.entries(config)) {
        if (!full.startsWith(`${PROJECT}:`)) continue;
        raw[full.slice(PROJECT.length + 1)] = decode(value);
    }
    return raw;
}

function decode(value: string): unknown {
    try {
        return JSON.parse(value);
    } catch {
        return value;
    }
}

/**
 * Reads and validates the stack config; throws ConfigError naming every problem. The secret keys' values reach the
 * stack only as the secret Outputs `pulumi.Config.getSecretObject` returns.
 *
 * Whether a key was set with `--secret` is not visible through Pulumi's public API, so the program treats every
 * secret key as one; the check that none is set in plain text runs where the stack file is read
 * (`scripts/offline.ts`: render, preflight, the local pipeline).
 */
export function loadStackConfig(): StackConfig {
    const { config, problems } = parseStackConfig(decodeConfigValues(pulumi.runtime.allConfig()), pulumi.getStack());
    if (!config) throw new ConfigError(problems);
    return { ...config, secrets: { names: config.secrets.names, values: readSecretValues() } };
}

/** The secret keys as one secret Output, read with Config.getSecretObject (an unset key is empty). */
function readSecretValues(): pulumi.Output<SecretValues> {
    const cfg = new pulumi.Config(PROJECT);
    const credentials = cfg.getSecretObject<SecretValues["credentials"]>("credentials") ?? {};
    const alertingSecrets = cfg.getSecretObject<SecretValues["alertingSecrets"]>("alertingSecrets") ?? {};
    const federationSecrets = cfg.getSecretObject<SecretValues["federationSecrets"]>("federationSecrets") ?? {};
    const crawlerSecrets = cfg.getSecretObject<SecretValues["crawlerSecrets"]>("crawlerSecrets") ?? {};
    return pulumi.secret(
        pulumi
            .all([credentials, alertingSecrets, federationSecrets, crawlerSecrets])
            .apply(([c, a, f, w]): SecretValues => ({
                credentials: c,
                alertingSecrets: a,
                federationSecrets: f,
                crawlerSecrets: w,
            })),
    );
}
