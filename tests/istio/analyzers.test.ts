/**
 * Istio's analyzers (istioctl analyze) as offline checks over every stack file's rendered objects. Each test is
 * named by its IST code and links the message page; tests/istio/analyzers.ts holds the rules.
 */
import { expect } from "chai";
import * as path from "path";
import { K8sObject, ROOT, STACKS, renderedStack, stackConfig } from "../harness";
import { ANALYZERS, MeshContext, meshContext, messageUrl } from "./analyzers";

describe("Istio analyzers over the rendered stacks", function () {
    this.timeout(180_000);
    it("finds the stack files", () => {
        expect(STACKS).to.include.members(["dev", "prod"]);
        expect(path.basename(ROOT)).to.be.a("string");
    });
    for (const stack of STACKS) {
        describe(`--stack ${stack}`, () => {
            let objects: K8sObject[];
            let ctx: MeshContext;
            before(async () => {
                objects = (await renderedStack(stack)).objects;
                ctx = meshContext(stackConfig(stack));
            });
            for (const [codes, analyze] of Object.entries(ANALYZERS)) {
                const urls = codes.split("/").map(messageUrl).join(" ");
                it(`${codes}: no finding (${urls})`, () => {
                    const findings = analyze(objects, ctx);
                    expect(
                        findings.map((f) => `${f.code} ${f.object}: ${f.message}`),
                        findings.map((f) => `${f.code} ${f.object}: ${f.message}`).join("\n"),
                    ).to.deep.equal([]);
                });
            }
        });
    }
});
