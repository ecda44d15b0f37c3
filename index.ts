/**
 * proxy-monitor: reads and validates the stack config, composes the components, exports the stack outputs.
 * Every component lives in components/; this file only wires them together.
 */
import { loadStackConfig } from "./components/config";
import { ProxyMesh } from "./components/mesh";
import { NAMES, PORTS } from "./components/names";
import { serviceHost } from "./components/k8s";

const config = loadStackConfig();

const mesh = new ProxyMesh("mesh", { config });

/** The proxy URL crawlers set as HTTP_PROXY and HTTPS_PROXY, per vendor. */
export const proxyUrls = Object.fromEntries(
    config.vendors.map((v) => [
        v.name,
        `http://${serviceHost(NAMES.gateway(v.name), config.namespaces.gateways)}:${PORTS.gatewayProxy}`,
    ]),
);
export const cluster = config.cluster;
export const namespaces = mesh.namespaces;
