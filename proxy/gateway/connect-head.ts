/**
 * The lean CONNECT reader: crawlers send `CONNECT host:port HTTP/1.1` and a few headers in one packet, and for that
 * case the gateway reads the head itself instead of building Node's HTTP parser, request object and connection
 * tracking for a socket that becomes a tunnel at once. Anything else (another method, a head split over packets or
 * over the size limit, a byte or a header this reader does not accept) returns undefined and goes to Node's parser,
 * which gives every error answer and timeout as before.
 */

export interface ConnectHead {
    /** The request target as sent (`host:port`), checked by the destination policy afterwards. */
    readonly url: string;
    /** Header values by lower-case name (each name at most once). */
    readonly headers: Readonly<Record<string, string>>;
    /** Bytes of the head, including the blank line. */
    readonly bytes: number;
}

const CONNECT = Buffer.from("CONNECT ");
const CRLFCRLF = Buffer.from("\r\n\r\n");
const REQUEST_LINE = /^CONNECT ([^\s]+) HTTP\/1\.1$/;
/** RFC 9110 token, a colon, optional whitespace, a value of visible characters and inner spaces. */
const HEADER_LINE = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):[ \t]*(.*?)[ \t]*$/;
/** Anything but tab, visible ASCII and CR/LF: left to Node's parser. */
const UNUSUAL = /[^\t\x20-\x7e\r\n]/;
/** Headers whose meaning on CONNECT is subtle (a body on a CONNECT request): left to Node's parser. */
const NOT_HERE = new Set(["content-length", "transfer-encoding"]);

/** The CONNECT head that arrived whole at the start of `chunk`, or undefined (then Node's parser reads it). */
export function parseConnectHead(chunk: Buffer, maxBytes: number): ConnectHead | undefined {
    if (chunk.length < CONNECT.length + 4 || chunk.compare(CONNECT, 0, CONNECT.length, 0, CONNECT.length) !== 0)
        return undefined;
    const end = chunk.indexOf(CRLFCRLF);
    if (end < 0 || end + 4 > maxBytes) return undefined;
    const text = chunk.toString("latin1", 0, end);
    if (UNUSUAL.test(text)) return undefined;
    const lines = text.split("\r\n");
    const line = REQUEST_LINE.exec(lines[0]);
    if (!line) return undefined;
    // No prototype: a header named __proto__ is a header like any other.
    const headers = Object.create(null) as Record<string, string>;
    for (let i = 1; i < lines.length; i++) {
        const h = HEADER_LINE.exec(lines[i]);
        if (!h) return undefined;
        const name = h[1].toLowerCase();
        if (NOT_HERE.has(name) || Object.prototype.hasOwnProperty.call(headers, name)) return undefined;
        headers[name] = h[2];
    }
    return { url: line[1], headers, bytes: end + 4 };
}
