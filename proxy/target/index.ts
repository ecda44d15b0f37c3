/**
 * target: a destination emulator over HTTP and HTTPS (HTTP/1.1 and HTTP/2, a self-signed certificate made at
 * start). `/bytes/N` answers N bytes, `/status/N` answers status N; a configured share of requests gets the 403 or
 * 429 a site answers to a banned proxy exit IP. `/ip` is an IP-echo endpoint: it answers the client's exit address,
 * which the vendor simulator passes in a PROXY protocol v1 line ahead of a tunnel's TLS bytes (or in `X-Exit-IP` on
 * plain HTTP); without either, the peer's address.
 */
import * as http from "http";
import * as http2 from "http2";
import * as net from "net";
import { Counter, Registry, collectDefaultMetrics } from "prom-client";
import { TARGET_METRICS } from "../../catalog/loadgen";
import { Fields, ProgramConfigError } from "../common/config-file";
import { Logger, silentLogger } from "../common/log";
import { portOf, startOpsServer } from "../common/ops-server";

export interface TargetConfig {
    readonly listen: {
        readonly host: string;
        readonly httpPort: number;
        readonly httpsPort: number;
        readonly metricsPort: number;
    };
    /** Share of requests answered as to a banned proxy IP (half 403, half 429). */
    readonly banRate: number;
    /** Largest body served, bytes. */
    readonly maxBytes: number;
}

export function validateTargetConfig(raw: unknown, file = "target config"): TargetConfig {
    const problems: string[] = [];
    const f = Fields.of(problems, "", raw);
    const l = f.sub("listen", true);
    const cfg: TargetConfig = {
        listen: {
            host: l.str("host", "0.0.0.0"),
            httpPort: l.num("httpPort", 8080, 0, 65535, true),
            httpsPort: l.num("httpsPort", 8443, 0, 65535, true),
            metricsPort: l.num("metricsPort", 9102, 0, 65535, true),
        },
        banRate: f.num("banRate", 0, 0, 1),
        maxBytes: f.num("maxBytes", 100_000_000, 0, 1e9, true),
    };
    if (problems.length > 0) throw new ProgramConfigError(file, problems);
    return cfg;
}

/** A self-signed certificate for the emulator's TLS listener. */
export async function selfSignedCertificate(): Promise<{ key: string; cert: string }> {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const selfsigned = require("selfsigned") as {
        generate(attrs: { name: string; value: string }[], opts: object): Promise<{ private: string; cert: string }>;
    };
    const pems = await selfsigned.generate([{ name: "commonName", value: "proxy-monitor-target" }], {
        days: 30,
        keySize: 2048,
    });
    return { key: pems.private, cert: pems.cert };
}

export class Target {
    readonly registry = new Registry();
    private readonly answers: Counter<string>;
    private servers: { close(cb: () => void): void; closeAllConnections?: () => void }[] = [];
    private h2Sessions = new Set<http2.ServerHttp2Session>();
    private readonly log: Logger;
    private readonly random: () => number;
    private readonly zeros = Buffer.alloc(64 * 1024, 120);
    /** Exit addresses from PROXY lines, by the connection's peer address and port; raw TLS-port connections. */
    private readonly exits = new Map<string, string>();
    private readonly rawTls = new Set<net.Socket>();

    constructor(
        readonly cfg: TargetConfig,
        opts: { logger?: Logger; random?: () => number; processMetrics?: boolean } = {},
    ) {
        this.log = opts.logger ?? silentLogger;
        this.random = opts.random ?? Math.random;
        const m = TARGET_METRICS.requests;
        this.answers = new Counter({
            name: m.name,
            help: m.help,
            labelNames: [...m.labels],
            registers: [this.registry],
        });
        if (opts.processMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    }

    async start(): Promise<{ httpPort: number; httpsPort: number; metricsPort: number }> {
        const { key, cert } = await selfSignedCertificate();
        const plain = http.createServer((req, res) => this.handle(req, res, "http"));
        plain.keepAliveTimeout = 65_000;
        const secure = http2.createSecureServer({ key, cert, allowHTTP1: true }, (req, res) =>
            this.handle(req, res, "https"),
        );
        secure.on("session", (s: http2.ServerHttp2Session) => {
            this.h2Sessions.add(s);
            s.once("close", () => this.h2Sessions.delete(s));
        });
        const listen = (server: http.Server | http2.Http2SecureServer, port: number) =>
            new Promise<void>((resolve, reject) => {
                server.once("error", reject);
                server.listen(port, this.cfg.listen.host, () => resolve());
            });
        await listen(plain, this.cfg.listen.httpPort);
        // The TLS port reads an optional PROXY protocol v1 line, then hands the connection to the TLS server.
        const front = net.createServer((socket) => this.acceptTls(socket, secure));
        await listen(front as unknown as http.Server, this.cfg.listen.httpsPort);
        const ops = await startOpsServer(this.cfg.listen.metricsPort, this.cfg.listen.host, {
            registry: this.registry,
            ready: () => true,
        });
        this.servers = [plain, front, ops];
        const ports = {
            httpPort: portOf(plain),
            httpsPort: portOf(front as unknown as http.Server),
            metricsPort: portOf(ops),
        };
        this.log.info("target listening", ports);
        return ports;
    }

    private acceptTls(socket: net.Socket, secure: http2.Http2SecureServer): void {
        this.rawTls.add(socket);
        const key = `${socket.remoteAddress}:${socket.remotePort}`;
        socket.once("close", () => {
            this.rawTls.delete(socket);
            this.exits.delete(key);
        });
        socket.on("error", () => socket.destroy());
        socket.once("readable", () => {
            const first = socket.read() as Buffer | null;
            if (first === null) return;
            let rest = first;
            if (first.subarray(0, 6).toString("latin1") === "PROXY ") {
                const end = first.indexOf("\r\n");
                const fields = first.subarray(0, Math.max(0, end)).toString("latin1").split(" ");
                if (end > 0 && net.isIP(fields[2] ?? "")) this.exits.set(key, fields[2]);
                rest = end > 0 ? first.subarray(end + 2) : Buffer.alloc(0);
            }
            if (rest.length > 0) socket.unshift(rest);
            secure.emit("connection", socket);
        });
    }

    /** The client's exit address: from a PROXY line on its connection, the X-Exit-IP header, or the peer. */
    private exitOf(req: http.IncomingMessage | http2.Http2ServerRequest): string {
        const s = req.socket;
        const fromProxy = this.exits.get(`${s?.remoteAddress}:${s?.remotePort}`);
        const header = req.headers["x-exit-ip"];
        return fromProxy ?? (typeof header === "string" ? header : (s?.remoteAddress ?? ""));
    }

    async stop(): Promise<void> {
        for (const s of this.h2Sessions) s.destroy();
        for (const s of this.rawTls) s.destroy();
        await Promise.all(
            this.servers.map((s) => {
                s.closeAllConnections?.();
                return new Promise<void>((r) => s.close(() => r()));
            }),
        );
    }

    private handle(
        req: http.IncomingMessage | http2.Http2ServerRequest,
        res: http.ServerResponse | http2.Http2ServerResponse,
        scheme: string,
    ): void {
        const protocol = req.httpVersion === "2.0" ? "h2" : "h1";
        const url = req.url ?? "/";
        if (url === "/ip") {
            const ip = this.exitOf(req);
            this.answers.labels("200", protocol, scheme).inc();
            req.resume();
            (res as http.ServerResponse).writeHead(200, {
                "content-type": "text/plain",
                "content-length": Buffer.byteLength(ip) + 1,
            });
            res.end(ip + "\n");
            return;
        }
        let status = 200;
        let size = 64;
        const bytes = /^\/bytes\/([0-9]{1,10})/.exec(url);
        const code = /^\/status\/([1-5][0-9][0-9])/.exec(url);
        if (bytes) size = Math.min(Number(bytes[1]), this.cfg.maxBytes);
        if (code) {
            status = Number(code[1]);
            size = 0;
        }
        if (this.cfg.banRate > 0 && this.random() < this.cfg.banRate) {
            status = this.random() < 0.5 ? 403 : 429;
            size = 0;
        }
        this.answers.labels(String(status), protocol, scheme).inc();
        req.resume();
        (res as http.ServerResponse).writeHead(status, {
            "content-type": "application/octet-stream",
            "content-length": size,
        });
        let left = size;
        const write = () => {
            while (left > 0) {
                const n = Math.min(left, this.zeros.length);
                left -= n;
                if (!(res as http.ServerResponse).write(this.zeros.subarray(0, n))) {
                    (res as http.ServerResponse).once("drain", write);
                    return;
                }
            }
            res.end();
        };
        write();
    }
}
