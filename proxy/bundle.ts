/**
 * Bundles the proxy program into self-contained CommonJS scripts, and the files it ships as (see loader.ts): every
 * mode (cli.ts) and the gateway alone (gateway/cli.ts).
 *   npx ts-node --transpile-only proxy/bundle.ts             the full bundle on stdout
 *   npx ts-node --transpile-only proxy/bundle.ts --out <dir>  loader.js, proxy.js.gz and gateway.js.gz (as the pods
 *                                                             get them)
 */
import * as fs from "fs";
import * as path from "path";
import * as zlib from "zlib";
import { buildSync } from "esbuild";
import { GATEWAY_GZ, LOADER, LOADER_FILE, SCRIPT_GZ } from "./loader";

/** The entry files of the two bundles. */
export const ENTRIES = { proxy: path.join(__dirname, "cli.ts"), gateway: path.join(__dirname, "gateway", "cli.ts") };

/** Bundles `entry`: the script, and the files it holds (paths relative to the repository) with their bytes in it. */
export function bundle(entry: string, minify = true): { text: string; inputs: Record<string, number> } {
    const result = buildSync({
        entryPoints: [entry],
        bundle: true,
        platform: "node",
        target: "node20",
        format: "cjs",
        minify,
        legalComments: "none",
        write: false,
        metafile: true,
        logLevel: "silent",
    });
    const inputs = Object.values(result.metafile.outputs)[0].inputs;
    return {
        text: result.outputFiles[0].text,
        inputs: Object.fromEntries(Object.entries(inputs).map(([f, v]) => [f, v.bytesInOutput])),
    };
}

/** Every mode in one script. */
export function bundleProxy(): string {
    return bundle(ENTRIES.proxy).text;
}

/** The gateway mode alone: what the loader runs for `gateway`, and the benchmarks measure. */
export function bundleGateway(): string {
    return bundle(ENTRIES.gateway).text;
}

export interface ProgramScripts {
    readonly proxy: string;
    readonly gateway: string;
}

/** Both bundles, built now. */
export function programScripts(): ProgramScripts {
    return { proxy: bundleProxy(), gateway: bundleGateway() };
}

/** The shipped files: the loader and the bundles gzipped (deterministic: gzip's header carries no time). */
export function programFiles(scripts: ProgramScripts = programScripts()): {
    [LOADER_FILE]: string;
    [SCRIPT_GZ]: Buffer;
    [GATEWAY_GZ]: Buffer;
} {
    const gz = (s: string) => zlib.gzipSync(Buffer.from(s), { level: 9 });
    return { [LOADER_FILE]: LOADER, [SCRIPT_GZ]: gz(scripts.proxy), [GATEWAY_GZ]: gz(scripts.gateway) };
}

/** Writes the shipped files into `dir`; returns the entry file to run with `node`. */
export function writeProgram(dir: string, scripts?: ProgramScripts): string {
    fs.mkdirSync(dir, { recursive: true });
    for (const [name, content] of Object.entries(programFiles(scripts)))
        fs.writeFileSync(path.join(dir, name), content);
    return path.join(dir, LOADER_FILE);
}

if (require.main === module) {
    const i = process.argv.indexOf("--out");
    if (i > 0) process.stdout.write(`${writeProgram(process.argv[i + 1])}\n`);
    else process.stdout.write(bundleProxy());
}
