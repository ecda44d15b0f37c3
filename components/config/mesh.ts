/** `mesh`: how the program fits the cluster's Istio. */
import { z } from "zod";
import { HOST, LABEL, bool, list, oneOf, section, str } from "./kit";

export const ADDRESS_ALLOCATIONS = ["istiod", "sidecar", "off"] as const;
export type AddressAllocation = (typeof ADDRESS_ALLOCATIONS)[number];

export const meshSchema = section({
    istioCni: bool()
        .describe(
            'Istio runs with its CNI plugin, so injected pods need no privileged init container and every namespace can enforce the "restricted" Pod Security Standard. Without CNI, in-mesh namespaces enforce "privileged" and warn on "restricted" (our own pods still meet "restricted").',
        )
        .default(true),
    trustDomain: str(HOST)
        .describe("Istio trust domain of workload identities (`<domain>/ns/<namespace>/sa/<account>`).")
        .default("cluster.local"),
    ingressNamespaces: list(str(LABEL))
        .describe("Namespaces (e.g. an ingress controller's) allowed to reach Grafana and the Prometheus web port.")
        .default([]),
    addressAllocation: oneOf(ADDRESS_ALLOCATIONS)
        .describe(
            "How the gateways' sidecars tell apart pools that share a port without fixed addresses (TCP is routed on destination IP and port only): `istiod` (DNS capture on the gateway pods, addresses allocated by istiod's PILOT_ENABLE_IP_AUTOALLOCATE: Istio 1.23+, on by default from 1.25), `sidecar` (DNS capture and ISTIO_META_DNS_AUTO_ALLOCATE on the gateway pods: Istio 1.9+, deprecated from 1.25) or `off` (every pool that shares a port with another of its vendor must set `addresses`).",
        )
        .default("istiod"),
});
export type MeshConfig = z.output<typeof meshSchema>;
