/**
 * How the program ships: the bundle gzipped (`proxy.js.gz`) beside a small loader (`loader.js`) that unzips it in
 * memory and runs it. The pods run `node /opt/proxy-monitor/loader.js <mode> …` from the script ConfigMap or a built
 * image (proxy/Dockerfile), and `npm run local` and the e2e test run the same two files.
 */

/** The file name the bundle runs under (its `__filename`); the bundle itself ships gzipped as SCRIPT_GZ. */
export const SCRIPT_FILE = "proxy.js";
/** The gzipped bundle and the loader that runs it (the bundle is larger than a ConfigMap holds uncompressed). */
export const SCRIPT_GZ = "proxy.js.gz";
/** The entry file: `node <dir>/loader.js <mode> --config <file>`. */
export const LOADER_FILE = "loader.js";
/** Unzips the bundle in memory and runs it as a CommonJS module (nothing is written: the root filesystem is read-only). */
export const LOADER = [
    '"use strict";',
    'const fs = require("fs"), path = require("path"), zlib = require("zlib"), Module = require("module");',
    `const file = path.join(__dirname, ${JSON.stringify(SCRIPT_FILE)});`,
    `const source = zlib.gunzipSync(fs.readFileSync(path.join(__dirname, ${JSON.stringify(SCRIPT_GZ)}))).toString("utf8");`,
    "const m = new Module(file, module);",
    "m.filename = file;",
    "m.paths = Module._nodeModulePaths(__dirname);",
    "m._compile(source, file);",
    "",
].join("\n");
