import { expect } from "chai";
import { resolvePoolCredentials } from "../../components/credentials";
import { gatewayFileConfig } from "../../components/gateway";
import { VendorSimulators, simulatorFileConfig } from "../../components/simulators";
import { validateGatewayConfig } from "../../proxy/gateway/config";
import { validateVendorSimConfig } from "../../proxy/vendor-sim";
import { find, stackConfig, underMocks, validateObject } from "../harness";
import { workloadViolations } from "../pod-security";

/** The files the components write are the files the program accepts: one contract, checked both ways. */
describe("component files and the program's config validation", () => {
    for (const stack of ["dev", "prod"]) {
        it(`every ${stack} gateway config file passes the gateway's own validation unchanged`, () => {
            const cfg = stackConfig(stack);
            for (const v of cfg.vendors) {
                const file = JSON.parse(JSON.stringify(gatewayFileConfig(cfg, v, "/etc/proxy-monitor/secrets")));
                expect(JSON.parse(JSON.stringify(validateGatewayConfig(file)))).to.deep.equal(file);
            }
        });
    }

    it("every dev simulator config file passes the simulator's own validation unchanged", () => {
        const cfg = stackConfig("dev");
        let n = 0;
        for (const v of cfg.vendors) {
            for (const p of v.pools) {
                const file = JSON.parse(JSON.stringify(simulatorFileConfig(cfg, v, p, "/s")));
                expect(JSON.parse(JSON.stringify(validateVendorSimConfig(file)))).to.deep.equal(file);
                expect(file.latencyP50Ms).to.equal(p.simulator!.latencyP50Ms);
                n++;
            }
        }
        expect(n).to.equal(5);
    });

    it("renders one restricted simulator Deployment and a Service named after the pool host per simulated pool", async () => {
        const cfg = stackConfig("dev", { images: { gateway: "registry.example.com/proxy-monitor/proxy:1.0.0" } });
        const { objects } = await underMocks(
            () => new VendorSimulators("sims-test", { config: cfg, credentials: resolvePoolCredentials(cfg) }),
        );
        for (const o of objects) validateObject(o);
        expect(workloadViolations(objects).violations).to.deep.equal([]);
        const deployments = find(objects, "Deployment");
        expect(
            deployments.filter((d) => (d.metadata.labels as any)["app.kubernetes.io/name"] === "vendor-sim"),
        ).to.have.length(5);
        // and the destination emulator the simulators forward to
        expect(deployments.filter((d) => d.metadata.name === "target")).to.have.length(1);
        const simFile = JSON.parse(
            (find(objects, "ConfigMap").find((c) => (c.data as any)?.["config.json"]?.includes('"pool"'))!.data as any)[
                "config.json"
            ],
        );
        expect(simFile.forwardTls).to.equal("target.proxy-sim.svc.cluster.local:8443");
        const svc = find(objects, "Service", "vendor-a-dc-us-east", "proxy-sim")[0];
        expect((svc.spec as any).ports[0]).to.include({ name: "tcp-proxy", port: 3128, appProtocol: "tcp" });
        expect(Object.keys(find(objects, "Secret")[0].stringData as object).sort()).to.deep.equal([
            "password",
            "username",
        ]);
    });
});
