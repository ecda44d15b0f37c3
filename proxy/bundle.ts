/**
 * Bundles the proxy program into one self-contained CommonJS script, and the files it ships as (see loader.ts).
 *   npx ts-node --transpile-only proxy/bundle.ts             the bundle on stdout
 *   npx ts-node --transpile-only proxy/bundle.ts --out <dir>  loader.js and proxy.js.gz, as the pods get them
 */
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { buildSync } from "esbuild";
import { LOADER, LOADER_FILE, SCRIPT_GZ } from "./loader";

export function bundleProxy(): string {
    const result = buildSync({
        entryPoints: [path.join(__dirname, "cli.ts")],
        bundle: true,
        platform: "node",
        target: "node20",
        format: "cjs",
        minify: true,
        legalComments: "none",
        write: false,
        logLevel: "silent",
    });
    return result.outputFiles[0].text;
}

/** The shipped files: the loader, and the bundle gzipped (deterministic: gzip's header carries no time). */
export function programFiles(script = bundleProxy()): { [LOADER_FILE]: string; [SCRIPT_GZ]: Buffer } {
    return { [LOADER_FILE]: LOADER, [SCRIPT_GZ]: zlib.gzipSync(Buffer.from(script), { level: 9 }) };
}

/** Writes the shipped files into `dir`; returns the entry file to run with `node`. */
export function writeProgram(dir: string, script?: string): string {
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(programFiles(script))) fs.writeFileSync(path.join(dir, name), content);
    return path.join(dir, LOADER_FILE);
}

if (require.main === module) {
    const i = process.argv.indexOf("--out");
    if (i > 0) process.stdout.write(`${writeProgram(process.argv[i + 1])}\n`);
    else process.stdout.write(bundleProxy());
}
