/**
 * The lean CONNECT reader: crawlers send `CONNECT host:port HTTP/1.1` and a few headers in one packet, and for that
 * case the gateway reads the head itself instead of building Node's HTTP parser, request object and connection
 * tracking for a socket that becomes a tunnel at once. Anything else (another method, a head split over packets or
 * over the size limit, a byte or a header this reader does not accept) returns undefined and goes to Node's parser,
 * which gives every error answer and timeout as before.
 *
 * It reads bytes, not text: one pass over the head with no regular expression, split or per-line string, since it
 * runs once per tunnel (a fleet opens thousands a second).
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
const VERSION = Buffer.from(" HTTP/1.1");
const CRLFCRLF = Buffer.from("\r\n\r\n");
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;
const COLON = 0x3a;
/** RFC 9110 token characters (header names), by byte. */
const TOKEN = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
    TOKEN[c.charCodeAt(0)] = 1;
/**
 * Left to Node's parser: headers whose meaning on CONNECT is subtle (a body on a CONNECT request), and names an
 * ordinary object already has (`constructor`, `__proto__`), so that the headers can live in a plain object: V8 keeps
 * a plain object's properties fast, where a prototype-less one is a slow dictionary (three times this reader's cost).
 */
const NOT_HERE = new Set([
    "content-length",
    "transfer-encoding",
    ...Object.getOwnPropertyNames(Object.prototype).filter((n) => n === n.toLowerCase()),
]);

/** A byte of a header value: tab or visible ASCII (RFC 9110 field-vchar without obs-text, and inner whitespace). */
function valueByte(c: number): boolean {
    return c === HTAB || (c >= SP && c <= 0x7e);
}

/** The CONNECT head that arrived whole at the start of `chunk`, or undefined (then Node's parser reads it). */
export function parseConnectHead(chunk: Buffer, maxBytes: number): ConnectHead | undefined {
    if (chunk.length < CONNECT.length + 4 || chunk.compare(CONNECT, 0, CONNECT.length, 0, CONNECT.length) !== 0)
        return undefined;
    const end = chunk.indexOf(CRLFCRLF);
    if (end < 0 || end + 4 > maxBytes) return undefined;
    // The request target: visible ASCII up to one space, then exactly ` HTTP/1.1` and the line's end.
    let i = CONNECT.length;
    while (i < end && chunk[i] > SP && chunk[i] <= 0x7e) i++;
    if (i === CONNECT.length || i + VERSION.length > end) return undefined;
    if (chunk.compare(VERSION, 0, VERSION.length, i, i + VERSION.length) !== 0) return undefined;
    const url = chunk.toString("latin1", CONNECT.length, i);
    i += VERSION.length;
    const headers: Record<string, string> = {};
    // Each header line: CRLF, a token, a colon, optional whitespace, a value (trailing whitespace trimmed).
    while (i < end) {
        if (chunk[i] !== CR || chunk[i + 1] !== LF) return undefined;
        i += 2;
        const nameStart = i;
        while (i < end && TOKEN[chunk[i]] === 1) i++;
        if (i === nameStart || chunk[i] !== COLON) return undefined;
        const name = chunk.toString("latin1", nameStart, i).toLowerCase();
        i++;
        while (i < end && (chunk[i] === SP || chunk[i] === HTAB)) i++;
        const valueStart = i;
        let valueEnd = i;
        while (i < end && chunk[i] !== CR) {
            const c = chunk[i++];
            if (!valueByte(c)) return undefined;
            if (c !== SP && c !== HTAB) valueEnd = i;
        }
        if (NOT_HERE.has(name) || headers[name] !== undefined) return undefined;
        headers[name] = chunk.toString("latin1", valueStart, valueEnd);
    }
    return { url, headers, bytes: end + 4 };
}
