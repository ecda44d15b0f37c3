/** Entry point of the bundled program: runs the mode named on the command line (see main.ts). */
import { MODES } from "./main";
import { runAsEntry } from "./run";

runAsEntry(MODES);
