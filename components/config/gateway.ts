/** `gateway`: the per-vendor forward proxies. */
import { z } from "zod";
import { DURATION, bool, num, section, str, notBelow } from "./kit";

export const gatewaySchema = section({
    replicas: num({ min: 1, max: 100, int: true }).describe("minimum replicas per vendor").default(2),
    maxReplicas: num({ min: 1, max: 500, int: true }).describe("maximum replicas per vendor (HPA)").default(10),
    targetCpuUtilization: num({ min: 1, max: 100, int: true }).describe("HPA CPU target, percent").default(70),
    maxTunnels: num({ min: 1, max: 1_000_000, int: true }).describe("concurrent tunnels per gateway pod").default(4096),
    connectTimeout: str(DURATION).describe("time to connect through a pool").default("10s"),
    idleTimeout: str(DURATION).describe("idle time before a tunnel is closed").default("60s"),
    totalTimeout: str(DURATION).describe("longest life of a tunnel").default("10m"),
    probeInterval: str(DURATION).describe("how often each pool is probed").default("15s"),
    probeDestination: str({
        re: /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[0-9]{1,5}$/,
        expected: "host:port, such as www.example.com:443",
    })
        .describe("host:port the gateways CONNECT to through each pool to probe it.")
        .default("www.example.com:443"),
    logSampleRate: num({ min: 0, max: 1 }).describe("Fraction of finished requests logged, 0..1.").default(0.01),
    crawlerAuth: bool()
        .describe(
            "Require crawlers to authenticate to the gateways (Proxy-Authorization Basic `<namespace>:<secret>`, the secret from `crawlerSecrets.<namespace>`), for clusters where Istio's AuthorizationPolicy is not enforced.",
        )
        .default(false),
    responseHeaders: bool()
        .describe(
            "Tell crawlers which pool served them and how many retries it took (X-Proxy-Monitor-Pool and X-Proxy-Monitor-Retries response headers; never a host or a secret).",
        )
        .default(false),
}).superRefine(notBelow("maxReplicas", "replicas", "gateway.replicas"));
export type GatewayConfig = z.output<typeof gatewaySchema>;
