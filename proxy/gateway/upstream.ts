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
    /** What the classifier reads: Proxy-Status, X-Squid-Error, the reason phrase. */
    readonly marks: AnswerMarks;
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

/**
 * Resolves with the head once `\r\n\r\n` arrives; rejects on close, error, or a head over `maxBytes` or not HTTP.
 * Leaves the socket paused with its data listener removed, so the caller can pipe it.
 */
export function readProxyResponseHead(socket: net.Socket, maxBytes: number): Promise<ProxyResponseHead> {
    return new Promise((resolve, reject) => {
        let buf: Buffer = Buffer.alloc(0);
        const cleanup = () => {
            socket.off("data", onData);
            socket.off("close", onClose);
            socket.off("error", onError);
        };
        const onClose = () => {
            cleanup();
            reject(new Error("upstream closed before answering"));
        };
        const onError = (e: Error) => {
            cleanup();
            reject(e);
        };
        const onData = (chunk: Buffer) => {
            buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
            const end = buf.indexOf(CRLFCRLF);
            if (end < 0) {
                if (buf.length > maxBytes) {
                    cleanup();
                    reject(new Error("upstream answer head too large"));
                }
                return;
            }
            cleanup();
            socket.pause();
            const text = buf.subarray(0, end + 2).toString("latin1");
            const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(text);
            if (!m) {
                reject(new Error("upstream answer is not HTTP"));
                return;
            }
            resolve({
                status: Number(m[1]),
                headBytes: end + 4,
                head: buf.subarray(0, end + 4),
                rest: buf.subarray(end + 4),
                marks: marksOf(text),
            });
        };
        socket.on("data", onData);
        socket.once("close", onClose);
        socket.once("error", onError);
    });
}
