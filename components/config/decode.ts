/**
 * The one decoder of stack config values: the engine (and a stack file read offline) hands every `proxy-monitor:*`
 * key as a string, objects, lists, numbers and booleans as their JSON text.
 */
import * as pulumi from "@pulumi/pulumi";
import { ConfigError } from "../validate";
import { PROJECT } from "./kit";
import { RawConfig } from "./simple-keys";
import { StackConfig, parseStackConfig } from "./stack";

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

/** Reads the `proxy-monitor:*` keys from the Pulumi runtime. */
export function readRawConfig(): { raw: RawConfig; secretKeys: Set<string> } {
    const all = pulumi.runtime.allConfig();
    // isConfigSecret is exported by the runtime's config module but not declared in its typings.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const runtimeConfig = require("@pulumi/pulumi/runtime/config") as { isConfigSecret?: (key: string) => boolean };
    const secretKeys = new Set<string>();
    for (const full of Object.keys(all))
        if (full.startsWith(`${PROJECT}:`) && runtimeConfig.isConfigSecret?.(full))
            secretKeys.add(full.slice(PROJECT.length + 1));
    return { raw: decodeConfigValues(all), secretKeys };
}

/** Reads and validates the stack config; throws ConfigError naming every problem. */
export function loadStackConfig(): StackConfig {
    const { raw, secretKeys } = readRawConfig();
    const { config, problems } = parseStackConfig(raw, pulumi.getStack(), secretKeys);
    if (!config) throw new ConfigError(problems);
    return config;
}
