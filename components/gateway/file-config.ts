/**
 * The gateway program's config file (config.json in its ConfigMap), built from the stack config. The program
 * validates the same file at start (proxy/gateway/config.ts); a test feeds every rendered file to that validation.
 */
import * as pulumi from "@pulumi/pulumi";
import { durationBucketsMs } from "../../catalog/datamodel";
import { EXIT_IP_DEFAULTS, GatewayFileConfig, HEALTH_DEFAULTS } from "../../proxy/gateway/config";
import { StackConfig, VendorConfig } from "../config";
import { PORTS } from "../names";
import { durationMs } from "../validate";

/** Key of the gateway Secret holding `<crawler namespace>:<secret>` lines when gateway.crawlerAuth is on. */
export const CRAWLER_AUTH_KEY = "crawlers";

/**
 * The crawler-auth file of a vendor's gateway: one `<namespace>:<secret>` line per crawler namespace that may use
 * the vendor, a secret Output; undefined when gateway.crawlerAuth is off.
 */
export function crawlerAuthLines(
    cfg: Pick<StackConfig, "gateway" | "crawlers" | "secrets">,
    vendor: VendorConfig,
): pulumi.Output<string> | undefined {
    if (!cfg.gateway.crawlerAuth) return undefined;
    const namespaces = cfg.crawlers.namespaces.filter((ns) => ns.vendors.includes(vendor.name)).map((ns) => ns.name);
    return cfg.secrets.values.apply((s) => namespaces.map((ns) => `${ns}:${s.crawlerSecrets[ns]}\n`).join(""));
}

/** Seconds the gateway lets tunnels drain on SIGTERM; the pod's grace period is this plus a margin. */
export const GATEWAY_DRAIN_SECONDS = 30;
/**
 * Seconds Istio's agent keeps the gateway's sidecar up after SIGTERM (`terminationDrainDuration`, 5 s by default):
 * longer than the gateway's own drain, so tunnels are not cut under it, and shorter than the grace period.
 */
export const SIDECAR_DRAIN_SECONDS = GATEWAY_DRAIN_SECONDS + 5;
/** The gateway pod's terminationGracePeriodSeconds: the sidecar's drain plus a margin for the last flush. */
export const GATEWAY_GRACE_SECONDS = SIDECAR_DRAIN_SECONDS + 5;

export type { GatewayFileConfig };

/** The stack settings a gateway's file reads: the gateway policy and the destinations. */
export type GatewayFileStackConfig = Pick<StackConfig, "gateway" | "destinations">;

export function gatewayFileConfig(
    cfg: GatewayFileStackConfig,
    vendor: VendorConfig,
    secretsDir: string,
): GatewayFileConfig {
    const g = cfg.gateway;
    const interval = durationMs(g.probeInterval);
    return {
        vendor: vendor.name,
        profile: vendor.profile,
        responseHeaders: g.responseHeaders,
        listen: { host: "0.0.0.0", proxyPort: PORTS.gatewayProxy, metricsPort: PORTS.proxyMetrics },
        pools: vendor.pools.map((p) => ({
            name: p.name,
            host: p.host,
            port: p.port,
            weight: p.weight,
            region: p.region,
            usernameFile: `${secretsDir}/${p.name}.username`,
            passwordFile: `${secretsDir}/${p.name}.password`,
        })),
        destinations: {
            tracked: [...cfg.destinations.tracked],
            allowed: [...cfg.destinations.allowed],
            connectPorts: [...cfg.destinations.connectPorts],
            allowInternal: cfg.destinations.allowInternal,
        },
        timeouts: {
            connectMs: durationMs(g.connectTimeout),
            idleMs: durationMs(g.idleTimeout),
            totalMs: durationMs(g.totalTimeout),
        },
        limits: { maxTunnels: g.maxTunnels, maxHeaderBytes: 16 * 1024, maxBodyBytes: 10 * 1024 * 1024 },
        probe: {
            intervalMs: interval,
            timeoutMs: Math.min(interval, durationMs(g.connectTimeout)),
            destination: g.probeDestination,
            failuresToDown: 3,
            successesToUp: 2,
        },
        health: HEALTH_DEFAULTS,
        exitIp: vendor.exitIp
            ? {
                  ...EXIT_IP_DEFAULTS,
                  header: (vendor.exitIp.header ?? "").toLowerCase(),
                  stripHeader: vendor.exitIp.stripHeader,
                  sessionPattern: vendor.exitIp.sessionPattern,
                  sessionUsername: vendor.exitIp.sessionUsername,
                  echo: {
                      url: vendor.exitIp.echoUrl ?? "",
                      intervalMs: Math.max(1000, durationMs(vendor.exitIp.echoInterval)),
                      insecureSkipVerify: vendor.exitIp.echoInsecureSkipVerify,
                  },
              }
            : EXIT_IP_DEFAULTS,
        logSampleRate: g.logSampleRate,
        shutdownGraceMs: GATEWAY_DRAIN_SECONDS * 1000,
        metrics: true,
        ...(g.crawlerAuth ? { crawlerAuthFile: `${secretsDir}/${CRAWLER_AUTH_KEY}` } : {}),
        durationBucketsMs: durationBucketsMs([vendor.sla.p95LatencyMs]),
    };
}
