import { expect } from "chai";
import * as fs from "fs";
import * as path from "path";
import YAML from "yaml";
import { ROOT } from "./harness";

/** The pull-request workflow: pinned, wired, safe for forks, and described by the deployment guide. */
describe(".github/workflows/preview.yml", () => {
    const text = fs.readFileSync(path.join(ROOT, ".github/workflows/preview.yml"), "utf8");
    const wf = YAML.parse(text);
    const steps = (job: string) => wf.jobs[job].steps as Record<string, any>[];

    it("pins every action to a commit SHA with its full version in a comment", () => {
        const uses = [...text.matchAll(/uses: (\S+)(.*)/g)];
        expect(uses.length).to.be.greaterThan(3);
        for (const [, ref, comment] of uses) {
            expect(ref, ref).to.match(/^[a-z0-9-]+\/[a-z0-9-]+@[0-9a-f]{40}$/);
            expect(comment, ref).to.match(/^ # v[0-9]+\.[0-9]+\.[0-9]+$/);
        }
    });

    it("pins the Pulumi CLI to the version of @pulumi/pulumi the program uses", () => {
        const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
        const pulumi = steps("preview").find((s) => String(s.uses).startsWith("pulumi/actions@"))!;
        expect(pulumi.with["pulumi-version"]).to.equal(pkg.dependencies["@pulumi/pulumi"]);
        expect(pkg.dependencies["@pulumi/pulumi"]).to.match(/^[0-9]+\.[0-9]+\.[0-9]+$/);
    });

    it("previews every stack file with its own cluster's kubeconfig, backend and passphrase wired", () => {
        const stacks = fs
            .readdirSync(ROOT)
            .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
            .filter((s) => s);
        const include = wf.jobs.preview.strategy.matrix.include as { stack: string; kubeconfig: string }[];
        expect(include.map((i) => i.stack).sort()).to.deep.equal(stacks.sort());
        expect(new Set(include.map((i) => i.kubeconfig)).size).to.equal(include.length);
        const env = wf.jobs.preview.env;
        expect(env.PULUMI_BACKEND_URL).to.contain("PULUMI_BACKEND_URL");
        expect(env.PULUMI_CONFIG_PASSPHRASE).to.equal("${{ secrets.PULUMI_CONFIG_PASSPHRASE }}");
        expect(text).to.contain("secrets[matrix.kubeconfig]");
        const pulumi = steps("preview").find((s) => String(s.uses).startsWith("pulumi/actions@"))!;
        expect(pulumi.with["stack-name"]).to.contain("vars.PULUMI_ORG");
    });

    it("gives fork pull requests the tests and no secrets: no pull_request_target, preview only for own branches", () => {
        expect(Object.keys(wf.on)).to.deep.equal(["pull_request"]);
        expect(wf.jobs.preview.if).to.equal("github.event.pull_request.head.repo.full_name == github.repository");
        expect(wf.jobs.test.if).to.equal(undefined);
        expect(JSON.stringify(wf.jobs.test)).to.not.contain("secrets.");
        expect(wf.permissions).to.deep.equal({ contents: "read" });
    });

    it("installs what .ci/run installs, and the guide explains every variable and secret it reads", () => {
        const ci = fs.readFileSync(path.join(ROOT, ".ci/run"), "utf8");
        const ciPackages = /apt_packages=\(([^)]*)\)/
            .exec(ci)![1]
            .split(/\s+/)
            .filter((x) => x);
        const apt = steps("test").find((s) => /apt-get install/.test(s.run ?? ""))!;
        expect(apt.run.split("install -y ")[1].split(/\s+/).sort()).to.deep.equal(ciPackages.sort());
        const guide = fs.readFileSync(path.join(ROOT, "docs/deployment-guide.md"), "utf8");
        const names = new Set([
            ...[...text.matchAll(/(?:secrets|vars)\.([A-Z_]+)/g)].map((m) => m[1]),
            ...(wf.jobs.preview.strategy.matrix.include as { kubeconfig: string }[]).map((i) => i.kubeconfig),
        ]);
        names.delete("GITHUB_TOKEN");
        for (const n of names) expect(guide, n).to.contain(`\`${n}\``);
    });
});
