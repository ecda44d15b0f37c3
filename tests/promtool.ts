/** Running Debian's promtool and amtool on generated files; a missing tool fails with the package to install. */
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import YAML from "yaml";

export function tool(name: "promtool" | "amtool" | "prometheus" | "prometheus-alertmanager", pkg: string): string {
    const r = spawnSync(name, ["--version"], { encoding: "utf8" });
    if (r.error) throw new Error(`${name} is not installed: apt-get install -y ${pkg} (.ci/run installs it)`);
    return name;
}

export function promtool(args: string[], cwd?: string): { code: number; out: string } {
    const r = spawnSync(tool("promtool", "prometheus"), args, { encoding: "utf8", cwd, timeout: 120_000 });
    return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

export function tempDir(prefix: string): string {
    return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function writeYaml(dir: string, name: string, obj: unknown): string {
    const f = path.join(dir, name);
    fs.writeFileSync(f, typeof obj === "string" ? obj : YAML.stringify(obj, { lineWidth: 0 }));
    return f;
}

/**
 * Debian's Prometheus is built without Kubernetes discovery, so before `promtool check config` the jobs that use it
 * get a static placeholder target (their relabelling on discovery labels goes with it), and absolute file paths
 * (service-account token, CA, secrets) are pointed at placeholder files in `dir`. Everything else is checked as
 * generated.
 */
export function forDebianPromtool(config: Record<string, any>, dir: string): string {
    const c = JSON.parse(JSON.stringify(config));
    for (const j of c.scrape_configs ?? []) {
        if (!j.kubernetes_sd_configs) continue;
        delete j.kubernetes_sd_configs;
        j.static_configs = [{ targets: ["node.invalid:10250"] }];
        j.relabel_configs = (j.relabel_configs ?? []).filter(
            (r: any) => !(r.source_labels ?? []).some((l: string) => l.startsWith("__meta_kubernetes")),
        );
    }
    let text = YAML.stringify(c, { lineWidth: 0 });
    for (const file of new Set(
        [...text.matchAll(/(?:credentials_file|ca_file|password_file|bearer_token_file): (\/\S+)/g)].map((m) => m[1]),
    )) {
        const local = path.join(dir, "files", file.replace(/\//g, "_"));
        fs.mkdirSync(path.dirname(local), { recursive: true });
        fs.writeFileSync(local, "placeholder\n");
        text = text.split(file).join(local);
    }
    text = text.replace(/\/etc\/prometheus\/rules\/\*\.yaml/g, path.join(dir, "rules", "*.yaml"));
    return writeYaml(dir, "prometheus.yml", text);
}
