/** Reading an upstream proxy's answer to CONNECT: the status line and headers, bounded in size. */
import * as net from "net";
import { AnswerMarks, VENDOR_HEADERS } from "./classify";

export interface ProxyResponseHead {
    readonly status: number;
    /** Bytes of the status line and headers, including the blank line. */
    readonly headBytes: number;
    /** The raw head (relayed to the crawler on a refusal). */
    readonly head: Buffer;
    /** Bytes that arrived after the head (already tunnel payload). */
    readonly rest: Buffer;
}

/** One compiled pattern per header the classifier reads (built once, not per answer). */
const HEADER_PATTERNS = new Map<string, RegExp>(
    ["proxy-status", "x-squid-error", ...VENDOR_HEADERS].map((n) => [
        n,
        new RegExp(`\\r\\n${n}:[ \\t]*([^\\r]*)`, "i"),
    ]),
);

/** The classifier's marks from a raw head (status line and headers). */
export function marksOf(head: string): AnswerMarks {
    const header = (name: string) => (HEADER_PATTERNS.get(name) as RegExp).exec(head)?.[1];
    let vendor: Record<string, string> | undefined;
    if (/\r\n(x-brd|x-luminati|x-error-desc|x-crawlera|zyte-error|x-soax)/i.test(head)) {
        vendor = {};
        for (const name of VENDOR_HEADERS) {
            const v = header(name);
            if (v !== undefined) vendor[name] = v;
        }
    }
    return {
        vendor,
        reasonPhrase: /^HTTP\/1\.[01] [0-9]{3} ?([^\r]*)/.exec(head)?.[1],
        proxyStatus: header("proxy-status"),
        squidError: header("x-squid-error"),
    };
}

const CRLFCRLF = Buffer.from("\r\n\r\n");
const HTTP1 = Buffer.from("HTTP/1.");

/** The status of a status line `HTTP/1.0|1 NNN` at the start of `buf`, or undefined. */
function statusOf(buf: Buffer): number | undefined {
    if (buf.length < 12 || buf.compare(HTTP1, 0, HTTP1.length, 0, HTTP1.length) !== 0) return undefined;
    if ((buf[7] !== 0x30 && buf[7] !== 0x31) || buf[8] !== 0x20) return undefined;
    let status = 0;
    for (let i = 9; i < 12; i++) {
        const d = buf[i] - 0x30;
        if (d < 0 || d > 9) return undefined;
        status = status * 10 + d;
    }
    return status;
}

/**
 * Calls `answered` with the head once `\r\n\r\n` arrives, or `failed` on close, error, or a head over `maxBytes` or
 * not HTTP. Leaves the socket paused with its listeners removed, so the caller can relay it. Callbacks rather than a
 * promise: this runs once per tunnel.
 */
export function onProxyResponseHead(
    socket: net.Socket,
    maxBytes: number,
    answered: (head: ProxyResponseHead) => void,
    failed: (e: Error) => void,
): void {
    let buf: Buffer | undefined;
    const cleanup = () => {
        socket.off("data", onData);
        socket.off("close", onClose);
        socket.off("error", onError);
    };
    const onClose = () => {
        cleanup();
        failed(new Error("upstream closed before answering"));
    };
    const onError = (e: Error) => {
        cleanup();
        failed(e);
    };
    const onData = (chunk: Buffer) => {
        buf = buf === undefined ? chunk : Buffer.concat([buf, chunk]);
        const end = buf.indexOf(CRLFCRLF);
        if (end < 0) {
            if (buf.length > maxBytes) {
                cleanup();
                failed(new Error("upstream answer head too large"));
            }
            return;
        }
        cleanup();
        socket.pause();
        const status = statusOf(buf);
        if (status === undefined) return failed(new Error("upstream answer is not HTTP"));
        answered({ status, headBytes: end + 4, head: buf.subarray(0, end + 4), rest: buf.subarray(end + 4) });
    };
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.on("error", onError);
}

/** onProxyResponseHead as a promise (the probes'). */
export function readProxyResponseHead(socket: net.Socket, maxBytes: number): Promise<ProxyResponseHead> {
    return new Promise((resolve, reject) => onProxyResponseHead(socket, maxBytes, resolve, reject));
}

/** The classifier's marks of an answer head. */
export function marksOfHead(head: ProxyResponseHead): AnswerMarks {
    return marksOf(head.head.toString("latin1", 0, head.headBytes - 2));
}
