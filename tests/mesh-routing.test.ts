/**
 * The gateways' sidecars route each pool's connections to that pool. Address-less TCP ServiceEntries on one port
 * are told apart only by allocated addresses (DNS capture + allocation on the gateway pods) or fixed addresses
 * (resolution STATIC); anything else fails the render (and `pulumi preview`) naming the key.
 */
import { expect } from "chai";
import { StackConfig } from "../components/config";
import { ProxyMesh, buildServiceEntries, checkPoolRouting, gatewayProxyConfig } from "../components/mesh";
import { ConfigError, formatProblem } from "../components/validate";
import { find, rawStackConfig, renderedStack, runRenderChanged, stackConfig, underMocks } from "./harness";

type Obj = Record<string, any>;
const prodWith = (change: (raw: Obj) => void): StackConfig => {
    const raw = JSON.parse(JSON.stringify(rawStackConfig("prod")));
    change(raw);
    return stackConfig("prod", raw);
};
const ADDRS = [["203.0.113.10", "203.0.113.11"], ["203.0.113.20"], ["2001:db8::30"]];

describe("pool routing through the gateways' sidecars", function () {
    this.timeout(180_000);

    it("gateway pods capture DNS; with istiod allocation (default) only ISTIO_META_DNS_CAPTURE, with sidecar also DNS_AUTO_ALLOCATE", () => {
        expect(gatewayProxyConfig(stackConfig("prod"))).to.deep.equal({
            holdApplicationUntilProxyStarts: true,
            proxyMetadata: { ISTIO_META_DNS_CAPTURE: "true" },
        });
        const sidecar = prodWith((r) => (r.mesh = { ...r.mesh, addressAllocation: "sidecar" }));
        expect(gatewayProxyConfig(sidecar).proxyMetadata).to.deep.equal({
            ISTIO_META_DNS_CAPTURE: "true",
            ISTIO_META_DNS_AUTO_ALLOCATE: "true",
        });
        const off = prodWith((r) => (r.mesh = { ...r.mesh, addressAllocation: "off" }));
        expect(gatewayProxyConfig(off)).to.deep.equal({ holdApplicationUntilProxyStarts: true });
    });

    it("the rendered gateway Deployments carry the proxy config that allocates addresses", async () => {
        const { objects } = await renderedStack("prod");
        const gws = find(objects, "Deployment").filter((d) => d.metadata.namespace === "proxy-gateways");
        expect(gws).to.have.length(3);
        for (const d of gws) {
            const ann = (d.spec as Obj).template.metadata.annotations["proxy.istio.io/config"];
            expect(JSON.parse(ann).proxyMetadata, d.metadata.name).to.deep.equal({ ISTIO_META_DNS_CAPTURE: "true" });
        }
    });

    it("refuses address-less pools sharing a port when allocation is off, one problem per pool naming its key", () => {
        const off = prodWith((r) => (r.mesh = { ...r.mesh, addressAllocation: "off" }));
        const problems = checkPoolRouting(off).map(formatProblem);
        expect(problems).to.have.length(9);
        expect(problems[0]).to.match(
            /^proxy-monitor:vendors\[0\]\.pools\[0\]\.addresses: expected the pool's fixed IP addresses, since pools vendor-a-dc-us-east, vendor-a-dc-us-west, vendor-a-dc-eu-west share TCP port 8000 without addresses and mesh.addressAllocation is "off"/,
        );
        expect(problems.join("\n")).to.contain("proxy-monitor:vendors[2].pools[2].addresses");
        expect(() => new ProxyMesh("mesh-off", { config: off })).to.throw(
            ConfigError,
            /vendors\[1\]\.pools\[0\]\.addresses/,
        );
        for (const mode of ["istiod", "sidecar"])
            expect(checkPoolRouting(prodWith((r) => (r.mesh = { ...r.mesh, addressAllocation: mode })))).to.deep.equal(
                [],
            );
    });

    it("pools with fixed addresses become STATIC entries with those addresses and endpoints, and need no allocation", async () => {
        const cfg = prodWith((r) => {
            r.mesh = { ...r.mesh, addressAllocation: "off" };
            r.vendors.forEach((v: Obj, vi: number) =>
                v.pools.forEach((p: Obj, pi: number) => (p.addresses = [`203.0.113.${vi * 10 + pi + 1}`])),
            );
            r.vendors[0].pools[0].addresses = ADDRS[0];
            r.vendors[2].pools[0].addresses = ADDRS[2];
        });
        expect(checkPoolRouting(cfg)).to.deep.equal([]);
        const se = buildServiceEntries(cfg).find((s) => s.metadata.name === "vendor-a-dc-us-east")!;
        expect(se.spec).to.deep.equal({
            hosts: ["us-east.dc.vendor-a.example.net"],
            addresses: ADDRS[0],
            location: "MESH_EXTERNAL",
            resolution: "STATIC",
            ports: [{ number: 8000, name: "tcp-8000", protocol: "TCP" }],
            endpoints: [{ address: "203.0.113.10" }, { address: "203.0.113.11" }],
            exportTo: ["."],
        });
        const { objects } = await underMocks(() => new ProxyMesh("mesh-static", { config: cfg }));
        expect(find(objects, "ServiceEntry").every((s) => (s.spec as Obj).resolution === "STATIC")).to.equal(true);
    });

    it("one pool of a shared port without addresses is enough to fail; a lone pool on its port is fine", () => {
        const cfg = prodWith((r) => {
            r.mesh = { ...r.mesh, addressAllocation: "off" };
            r.vendors[0].pools[0].addresses = ["203.0.113.1"];
            r.vendors[0].pools[1].addresses = ["203.0.113.2"];
            for (const v of r.vendors.slice(1))
                v.pools.forEach((p: Obj, i: number) => (p.addresses = [`198.51.100.${i + 1}`]));
        });
        expect(checkPoolRouting(cfg)).to.deep.equal([]);
        const two = prodWith((r) => {
            r.mesh = { ...r.mesh, addressAllocation: "off" };
            r.vendors[0].pools[0].addresses = ["203.0.113.1"];
            for (const v of r.vendors.slice(1))
                v.pools.forEach((p: Obj, i: number) => (p.addresses = [`198.51.100.${i + 1}`]));
        });
        expect(checkPoolRouting(two).map((p) => p.path)).to.deep.equal([
            "proxy-monitor:vendors[0].pools[1].addresses",
            "proxy-monitor:vendors[0].pools[2].addresses",
        ]);
    });

    it("npm run render fails (as pulumi preview would) on address-less shared ports without allocation, naming the keys", async () => {
        const run = await runRenderChanged("prod", "off", (config) => {
            config["proxy-monitor:mesh"] = { ...config["proxy-monitor:mesh"], addressAllocation: "off" };
        });
        expect(run.code).to.equal(1);
        expect(run.stderr).to.contain("Pulumi.off.yaml has 9 configuration problem(s)");
        expect(run.stderr).to.contain(
            "proxy-monitor:vendors[1].pools[2].addresses: expected the pool's fixed IP addresses",
        );
        expect(run.stderr).to.not.match(/\n\s+at /);
    });

    describe("config validation of the new keys", () => {
        const problems = (change: (raw: Obj) => void) => {
            try {
                prodWith(change);
                return "";
            } catch (e) {
                return (e as Error).message;
            }
        };
        it("pool addresses must be IP addresses, each once, never on a simulated pool", () => {
            expect(
                problems((r) => (r.vendors[0].pools[0].addresses = ["eu.example.com", "203.0.113.1", "203.0.113.1"])),
            )
                .to.contain(
                    'proxy-monitor:vendors[vendor-a].pools[dc-us-east].addresses[0]: expected an IPv4 or IPv6 address such as 203.0.113.10, found "eu.example.com"',
                )
                .and.contain(
                    'proxy-monitor:vendors[vendor-a].pools[dc-us-east].addresses[2]: expected each address once, found "203.0.113.1"',
                );
            expect(problems((r) => (r.vendors[0].pools[0].addresses = []))).to.contain(
                "proxy-monitor:vendors[vendor-a].pools[dc-us-east].addresses: expected a list of at least 1 IP address",
            );
            const dev = JSON.parse(JSON.stringify(rawStackConfig("dev")));
            dev.vendors[0].pools[0].addresses = ["10.0.0.1"];
            expect(() => stackConfig("dev", dev)).to.throw(
                /vendors\[vendor-a\]\.pools\[dc-us-east\]\.addresses: expected no addresses on a simulated pool/,
            );
        });
        it("mesh.addressAllocation is one of istiod, sidecar, off", () => {
            expect(problems((r) => (r.mesh = { addressAllocation: "auto" }))).to.contain(
                'proxy-monitor:mesh.addressAllocation: expected one of istiod, sidecar, off, found "auto"',
            );
        });
    });
});
