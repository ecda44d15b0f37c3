/**
 * `npm run dashboards`: writes dashboards/<name>.json for importing into a Grafana you already run. The files are
 * built from the prod stack's config (its crawler namespaces and series budget appear in the Infrastructure
 * dashboard); every query filters by the $datasource, $cluster, $vendor and $pool variables. `--check` exits 1 when
 * a file differs from what the code generates.
 */
import * as fs from "fs";
import * as path from "path";
import { allDashboards } from "../dashboards";
import { command, parseCommand } from "./cli";
import { ROOT, loadStackFile } from "./offline";

export const DASHBOARD_STACK = "prod";

export function dashboardFiles(): Record<string, string> {
    return Object.fromEntries(
        Object.entries(allDashboards(loadStackFile(DASHBOARD_STACK))).map(([name, json]) => [
            `${name}.json`,
            JSON.stringify(json, null, 2) + "\n",
        ]),
    );
}

export const DASHBOARDS = command({
    usage: "npm run dashboards --",
    description: `
Writes dashboards/<name>.json, built from the ${DASHBOARD_STACK} stack's config, for importing into a Grafana you
already run (the deployed Grafana provisions the same dashboards).`,
    flags: {
        check: { type: "boolean", help: "write nothing; exit 1 when a file differs from what the code generates" },
    },
});

if (require.main === module) {
    const { check } = parseCommand(DASHBOARDS, process.argv.slice(2));
    let stale = 0;
    for (const [file, text] of Object.entries(dashboardFiles())) {
        const target = path.join(ROOT, "dashboards", file);
        const current = fs.existsSync(target) ? fs.readFileSync(target, "utf8") : "";
        if (current === text) continue;
        if (check) {
            process.stderr.write(`dashboards/${file} is out of date: run npm run dashboards\n`);
            stale++;
        } else {
            fs.writeFileSync(target, text);
            process.stdout.write(`wrote dashboards/${file}\n`);
        }
    }
    process.exit(stale > 0 ? 1 : 0);
}
