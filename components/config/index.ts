/**
 * The typed stack configuration: one module per section holds its schema (zod), defaults and checks; `stack.ts`
 * puts them together; `StackConfig` is the type they produce. Decoding the engine's values is `decode.ts`.
 */
export { PROJECT } from "./kit";
export {
    SECRET_KEYS,
    KNOWN_KEYS,
    SECTIONS,
    SecretValues,
    StackConfig,
    StackSecrets,
    parseStackConfig,
    structuredSchema,
} from "./stack";
export { SIMPLE_KEYS, RawConfig } from "./simple-keys";
export { TIERS, Tier, VendorConfig, PoolConfig, SimulatorConfig, SlaConfig, PoolCredentials } from "./vendors";
export { CrawlerNamespaceConfig } from "./crawlers";
export { ReceiverConfig } from "./alerting";
export { RemoteClusterConfig } from "./federation";
export { Resources } from "./resources";
export { MONITORING_MODES, MonitoringConfig, OperatorConfig } from "./monitoring";
export { RemoteWriteConfig } from "./prometheus";
export { ADDRESS_ALLOCATIONS, AddressAllocation } from "./mesh";
export { CrawlerWorkloadConfig } from "./autoscaling";
export { DEFAULTS, simpleKeyDefault } from "./defaults";
export { decodeConfigValues, loadStackConfig } from "./decode";
