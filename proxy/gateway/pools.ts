/**
 * The vendor's pools: credentials, weighted choice among the healthy ones, and health from active probes (a CONNECT
 * through the pool to a canary destination) and from passive failures of real traffic.
 */
import * as fs from "fs";
import * as net from "net";
import { GatewayPool } from "./config";
import { readProxyResponseHead } from "./upstream";

export interface PoolState {
    readonly config: GatewayPool;
    /** `Basic <base64 user:password>`, read once from the mounted Secret at start. */
    readonly authorization: string;
    up: boolean;
    consecutiveFailures: number;
    consecutiveSuccesses: number;
}

export interface HealthPolicy {
    readonly failuresToDown: number;
    readonly successesToUp: number;
}

export function readCredentials(pool: GatewayPool): string {
    const read = (f: string) => fs.readFileSync(f, "utf8").replace(/\r?\n$/, "");
    return "Basic " + Buffer.from(`${read(pool.usernameFile)}:${read(pool.passwordFile)}`).toString("base64");
}

export class Pools {
    readonly all: PoolState[];

    constructor(
        pools: readonly GatewayPool[],
        private readonly policy: HealthPolicy,
        private readonly onChange: (pool: string, up: boolean) => void,
        credentials: (p: GatewayPool) => string = readCredentials,
        private readonly random: () => number = Math.random,
    ) {
        this.all = pools.map((p) => ({
            config: p,
            authorization: credentials(p),
            up: true,
            consecutiveFailures: 0,
            consecutiveSuccesses: 0,
        }));
        for (const p of this.all) onChange(p.config.name, true);
    }

    anyUp(): boolean {
        return this.all.some((p) => p.up && p.config.weight > 0);
    }

    /** A healthy pool chosen by weight, excluding `exclude`; undefined when none is left. */
    pick(exclude?: PoolState): PoolState | undefined {
        let total = 0;
        for (const p of this.all) if (p.up && p !== exclude) total += p.config.weight;
        if (total <= 0) return undefined;
        let r = this.random() * total;
        for (const p of this.all) {
            if (!p.up || p === exclude || p.config.weight <= 0) continue;
            r -= p.config.weight;
            if (r < 0) return p;
        }
        // Floating-point edge: the last eligible pool.
        return [...this.all].reverse().find((p) => p.up && p !== exclude && p.config.weight > 0);
    }

    /** Records an outcome (probe or real traffic) and flips health after enough in a row. */
    record(p: PoolState, ok: boolean): void {
        if (ok) {
            p.consecutiveFailures = 0;
            p.consecutiveSuccesses++;
            if (!p.up && p.consecutiveSuccesses >= this.policy.successesToUp) {
                p.up = true;
                this.onChange(p.config.name, true);
            }
        } else {
            p.consecutiveSuccesses = 0;
            p.consecutiveFailures++;
            if (p.up && p.consecutiveFailures >= this.policy.failuresToDown) {
                p.up = false;
                this.onChange(p.config.name, false);
            }
        }
    }
}

/**
 * One probe: CONNECT to `destination` through the pool, success on a 2xx answer within `timeoutMs`. The tunnel is
 * closed at once; no byte goes to the destination.
 */
export function probePool(p: PoolState, destination: string, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
        let done = false;
        const socket = net.connect({ host: p.config.host, port: p.config.port });
        const finish = (ok: boolean) => {
            if (done) return;
            done = true;
            clearTimeout(timer);
            socket.destroy();
            resolve(ok);
        };
        const timer = setTimeout(() => finish(false), timeoutMs);
        socket.once("error", () => finish(false));
        socket.once("connect", () => {
            socket.write(
                `CONNECT ${destination} HTTP/1.1\r\nHost: ${destination}\r\nProxy-Authorization: ${p.authorization}\r\n\r\n`,
            );
            readProxyResponseHead(socket, 16_384).then(
                (head) => finish(head.status >= 200 && head.status < 300),
                () => finish(false),
            );
        });
    });
}
