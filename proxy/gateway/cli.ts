/**
 * Entry point of the gateway's own bundle: the gateway mode alone, without the simulator, the generator (and its
 * HTTP client) or the target. Parsing a bundle four times the size costs a gateway about 10 MB resident for its
 * whole life (docs/performance-tuning.md, "Memory"); the loader runs this bundle for `gateway` (proxy/loader.ts).
 */
import { runAsEntry } from "../run";
import { gatewayMode } from "./mode";

runAsEntry({ gateway: gatewayMode });
