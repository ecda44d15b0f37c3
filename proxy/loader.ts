/**
 * How the program ships: two bundles gzipped, every mode (`proxy.js.gz`) and the gateway alone (`gateway.js.gz`),
 * beside a small loader (`loader.js`) that unzips the one the mode needs in memory and runs it. The pods run
 * `node /opt/proxy-monitor/loader.js <mode> …` from the script ConfigMap or a built image (proxy/Dockerfile), and
 * `npm run local` and the e2e test run the same files. The gateway has its own bundle because V8 parses all of a
 * script it runs: the full bundle (four times the size, most of it the generator's HTTP client) costs a gateway
 * about 10 MB resident for its whole life.
 */

/** The file name the full bundle runs under (its `__filename`); it ships gzipped as SCRIPT_GZ. */
export const SCRIPT_FILE = "proxy.js";
/** The full bundle gzipped (the bundles are larger than a ConfigMap holds uncompressed). */
export const SCRIPT_GZ = "proxy.js.gz";
/** The file name the gateway's bundle runs under; it ships gzipped as GATEWAY_GZ. */
export const GATEWAY_FILE = "gateway.js";
/** The gateway's bundle gzipped: what the loader runs for the `gateway` mode. */
export const GATEWAY_GZ = "gateway.js.gz";
/** The entry file: `node <dir>/loader.js <mode> --config <file>`. */
export const LOADER_FILE = "loader.js";
/** Unzips the mode's bundle in memory and runs it as a CommonJS module (nothing is written: the root filesystem is read-only). */
export const LOADER = [
    '"use strict";',
    'const fs = require("fs"), path = require("path"), zlib = require("zlib"), Module = require("module");',
    `const name = process.argv[2] === "gateway" ? ${JSON.stringify(GATEWAY_FILE)} : ${JSON.stringify(SCRIPT_FILE)};`,
    "const file = path.join(__dirname, name);",
    'const source = zlib.gunzipSync(fs.readFileSync(file + ".gz")).toString("utf8");',
    "const m = new Module(file, module);",
    "m.filename = file;",
    "m.paths = Module._nodeModulePaths(__dirname);",
    "m._compile(source, file);",
    "",
].join("\n");

/**
 * Flags `node` runs a mode with, before the entry file: the pods' command line, `npm run local` and the benchmarks
 * take them from here. V8's heap sizing can only be set when node starts, not from inside the program.
 *
 * gateway: by default V8 lets the young generation grow to 2 x 16 MB and the old generation grow far past what is
 * live before a full collection (under the gateway benchmark: 45 MB of old space holding 13 MB of live objects), for
 * about 145 MB resident. Smaller semi-spaces and a lower growing factor keep it near 100 MB (measured in
 * docs/performance-tuning.md, "Memory").
 */
export const NODE_FLAGS: Readonly<Record<string, readonly string[]>> = {
    gateway: ["--max-semi-space-size=4", "--heap-growing-percent=25"],
};

/** The flags of `mode` (none for modes without their own). */
export function nodeFlags(mode: string): readonly string[] {
    return NODE_FLAGS[mode] ?? [];
}
