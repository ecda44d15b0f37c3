/** Entry point of the bundled program: runs the mode named on the command line (see main.ts). */
import { main } from "./main";

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: Error) => {
        process.stderr.write(`${e.stack ?? e.message}\n`);
        process.exit(1);
    },
);
