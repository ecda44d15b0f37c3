/** Bundles the proxy program into one self-contained CommonJS script (for a ConfigMap, or an image). */
import * as path from "path";
import { buildSync } from "esbuild";

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

if (require.main === module) {
    process.stdout.write(bundleProxy());
}
