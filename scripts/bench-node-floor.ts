/**
 * The least a Node forward proxy does, as a reference row in `npm run bench:gateway`: a CONNECT read from the first
 * packet, sent on through an upstream proxy with its credentials, and a relay both ways (on `net`, as the gateway's
 * lean path); plain HTTP through the same upstream with Node's http server and client, kept alive. No policy,
 * admission, metrics, classification, retries or timeouts: its tunnel figure is what Node's sockets cost, the floor
 * under any proxy written in Node on this machine.
 *
 *   node <bundled file> <port> <upstream port> <user:password>
 */
import * as http from "http";
import * as net from "net";

const [port, upstream, credentials] = [Number(process.argv[2]), Number(process.argv[3]), process.argv[4] ?? ""];
const HOST = "127.0.0.1";
const auth = "Basic " + Buffer.from(credentials).toString("base64");
const OK = Buffer.from("HTTP/1.1 200 Connection Established\r\n\r\n");
const agent = new http.Agent({ keepAlive: true, maxSockets: 1024 });

/** Plain HTTP: Node's server and client, kept-alive to the upstream. */
const server = http.createServer((req, res) => {
    const headers = { ...req.headers, "proxy-authorization": auth };
    const up = http.request({ host: HOST, port: upstream, method: req.method, path: req.url, headers, agent }, (a) => {
        res.writeHead(a.statusCode ?? 502, a.headers);
        a.pipe(res);
    });
    up.on("error", () => res.destroy());
    req.pipe(up);
});

/** CONNECT read from the first packet on `net` (as the gateway's lean reader does), then a relay both ways. */
function tunnel(client: net.Socket, first: Buffer): void {
    const text = first.toString("latin1");
    const end = text.indexOf("\r\n\r\n");
    const target = text.slice(8, text.indexOf(" ", 8));
    const u = net.connect({ host: HOST, port: upstream, noDelay: true });
    const close = () => {
        client.destroy();
        u.destroy();
    };
    u.on("error", close);
    client.on("error", close);
    u.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\nProxy-Authorization: ${auth}\r\n\r\n`);
    // The upstream's answer to CONNECT fits one read here (a short head on loopback); a 2xx opens the relay.
    u.once("data", (answer: Buffer) => {
        if (!/^HTTP\/1\.[01] 2/.test(answer.toString("latin1", 0, 12))) return close();
        client.write(OK);
        if (end + 4 < first.length) u.write(first.subarray(end + 4));
        const rest = answer.subarray(answer.indexOf("\r\n\r\n") + 4);
        if (rest.length > 0) client.write(rest);
        client.pipe(u);
        u.pipe(client);
        u.on("close", close);
        client.on("close", close);
    });
}

net.createServer({ noDelay: true }, (socket) => {
    socket.once("data", (first: Buffer) => {
        if (first.toString("latin1", 0, 8) === "CONNECT " && first.includes("\r\n\r\n")) return tunnel(socket, first);
        socket.pause();
        socket.unshift(first);
        server.emit("connection", socket);
        socket.resume();
    });
}).listen(port, HOST);
