/** The gateway as a mode of the program (run.ts): its config validated, then started. */
import { jsonLogger } from "../common/log";
import type { Mode } from "../run";
import { validateGatewayConfig } from "./config";
import { Gateway } from "./server";

export const gatewayMode: Mode = async (raw, file) => {
    const g = new Gateway(validateGatewayConfig(raw, file), { logger: jsonLogger("gateway") });
    await g.start();
    return g;
};
