/**
 * `npm test` runs this first (npm's `pretest`): the tests run real Prometheus, Alertmanager, tinyproxy and squid and
 * give pods network namespaces, so on a machine without them the suite stops here, at once, with the one command
 * that installs what is missing, instead of as a screen of failing tests. `.ci/run` installs the same packages (a
 * test keeps the two lists equal).
 */
import { spawnSync } from "child_process";
import { Tool, missingTools } from "./bench-checks";
import { command, parseCommand } from "./cli";

/** The executables the tests start, and the Debian package of each. */
export const TEST_TOOLS: Tool[] = [
    { bin: "prometheus", pkg: "prometheus" },
    { bin: "promtool", pkg: "prometheus" },
    { bin: "prometheus-alertmanager", pkg: "prometheus-alertmanager" },
    { bin: "amtool", pkg: "prometheus-alertmanager" },
    { bin: "tinyproxy", pkg: "tinyproxy" },
    { bin: "squid", pkg: "squid" },
    { bin: "ip", pkg: "iproute2" },
    { bin: "openssl", pkg: "openssl" },
    { bin: "unshare", pkg: "util-linux" },
    { bin: "nsenter", pkg: "util-linux" },
];

export const TEST_TOOLS_COMMAND = command({
    usage: "npm run test:tools --",
    description: `
Checks that the programs the tests run are installed (npm test runs it first), and that this machine can give a
process its own network namespace (the pod emulator). Exits 1 with the one command that installs what is missing.`,
    flags: {},
});

/** Why this machine cannot make network namespaces, or undefined when it can (root, or unprivileged user namespaces). */
export function netnsProblem(): string | undefined {
    const root = process.getuid?.() === 0;
    const r = spawnSync("unshare", [...(root ? [] : ["--user", "--map-root-user"]), "--net", "true"], {
        stdio: "pipe",
    });
    if (r.status === 0) return undefined;
    return "this user cannot create network namespaces (`unshare --net`): run the tests as root, or allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)";
}

function main(): number {
    parseCommand(TEST_TOOLS_COMMAND, process.argv.slice(2));
    const m = missingTools(TEST_TOOLS);
    if (m) {
        process.stderr.write(
            `npm test needs programs that are not installed: ${m.missing.join(", ")}.\nInstall them with:\n  sudo apt-get update && ${m.install}\nthen run npm test again (.ci/run does both).\n`,
        );
        return 1;
    }
    const ns = netnsProblem();
    if (ns) {
        process.stderr.write(`npm test: ${ns}.\n`);
        return 1;
    }
    return 0;
}

if (require.main === module) process.exit(main());
