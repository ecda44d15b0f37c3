/**
 * The operations port every mode serves: /metrics (Prometheus exposition), /healthz (alive) and /readyz (ready to
 * serve traffic), plus optional admin routes for tests and the local pipeline.
 */
import * as http from "http";
import { Registry } from "prom-client";

export interface OpsServerOptions {
    registry: Registry;
    /** Ready to take traffic (e.g. the gateway has a healthy pool). */
    ready: () => boolean;
    /** Extra routes: path -> handler (POST or GET). */
    routes?: Record<string, (req: http.IncomingMessage, res: http.ServerResponse, url: URL) => void>;
}

export function startOpsServer(port: number, host: string, o: OpsServerOptions): Promise<http.Server> {
    const server = http.createServer((req, res) => {
        const url = new URL(req.url ?? "/", "http://ops");
        if (url.pathname === "/metrics") {
            o.registry.metrics().then(
                (text) => {
                    res.writeHead(200, { "content-type": o.registry.contentType });
                    res.end(text);
                },
                (e: Error) => {
                    res.writeHead(500);
                    res.end(e.message);
                },
            );
            return;
        }
        if (url.pathname === "/healthz") {
            res.writeHead(200, { "content-type": "text/plain" });
            res.end("ok\n");
            return;
        }
        if (url.pathname === "/readyz") {
            const ok = o.ready();
            res.writeHead(ok ? 200 : 503, { "content-type": "text/plain" });
            res.end(ok ? "ready\n" : "not ready\n");
            return;
        }
        const route = o.routes?.[url.pathname];
        if (route) return route(req, res, url);
        res.writeHead(404);
        res.end();
    });
    server.keepAliveTimeout = 65_000;
    return new Promise((resolve, reject) => {
        server.once("error", reject);
        server.listen(port, host, () => resolve(server));
    });
}

/** Address a listening server got (for port 0 in tests). */
export function portOf(server: { address(): unknown }): number {
    const a = server.address();
    if (a && typeof a === "object" && "port" in a) return (a as { port: number }).port;
    throw new Error("server is not listening on a TCP port");
}
