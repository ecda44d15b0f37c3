/**
 * A minimal HTTP/1.1 response reader, shared by the generator's fast path (proxy/generate/http1.ts), which counts
 * and drops the body, and the gateway's plain-HTTP hop (proxy/gateway/upstream-http.ts), which relays head and body
 * through a sink. What it reads: the status line, Content-Length, Transfer-Encoding (chunked, with extensions and
 * trailers), Connection and Keep-Alive, and the gateway's refusal header; bodies by length, chunked or to the end of
 * the connection; no body after HEAD, 204 and 304; 1xx heads skipped. Errors are those undici raises for the same
 * events (codes and messages), so that both callers classify them as they did undici's.
 */
import { REFUSAL_HEADER } from "../../catalog/gateway";

/** Longest response head (status line and headers) and trailer section accepted: undici's default, 16 KiB. */
const MAX_HEAD = 16 * 1024;
/** Longest chunk-size line (hex digits and extensions). */
const MAX_CHUNK_LINE = 4096;
const CR = 13;
const LF = 10;
const HEAD_END = Buffer.from("\r\n\r\n", "latin1");

/** A response that is not HTTP/1.x as we read it (undici's parser raises HTTPParserError). */
export class ResponseParseError extends Error {
    readonly code = "HPE_INVALID_RESPONSE";
    constructor(reason: string) {
        super(`Parse Error: ${reason}`);
    }
}

/** undici's error for the same event: code and message are what the generator classifies by. */
export function undiciError(code: string, message: string): Error & { code: string } {
    return Object.assign(new Error(message), { code });
}

const enum State {
    Head,
    Length,
    ChunkSize,
    ChunkExt,
    ChunkSizeLf,
    ChunkData,
    ChunkDataCr,
    ChunkDataLf,
    Trailer,
    Close,
    Done,
}

const lower = (b: Buffer, s: number, e: number) => b.toString("latin1", s, e).toLowerCase();

/** Where a reader that relays (the gateway's) sends what it reads; the generator's reader has none and only counts. */
export interface ResponseSink {
    /** The final head (1xx heads are skipped): status, reason phrase, header names and values as sent, trimmed. */
    head(status: number, reason: string, raw: string[]): void;
    /** Body bytes b[s, e): the data, without chunked framing. */
    body(b: Buffer, s: number, e: number): void;
}

/**
 * Reads one HTTP/1.x response at a time from bytes as they arrive, however they are split. `feed` returns how
 * many of the bytes given follow the response when it completes (0 normally), or -1 when it needs more bytes; `eof` tells whether the end of
 * the connection completes it (a close-delimited body). Throws ResponseParseError on a malformed response.
 */
export class ResponseReader {
    status = 0;
    refused = false;
    /** Body bytes (chunked: the data, without the framing). */
    bytes = 0;
    /** Whether the connection may carry the next request after this response. */
    keepAlive = true;
    /** The server's Keep-Alive timeout hint in ms (-1: none). */
    keepAliveMs = -1;
    /** Whether the response head has arrived (the body timeout applies from then on). */
    headDone = false;
    private state = State.Head;
    private head = false;
    private carry?: Buffer;
    private remaining = 0;
    private lineLength = 0;
    private digits = 0;
    /** Set by a relaying reader: receives the head and the body bytes. */
    sink?: ResponseSink;

    /** Prepares for the response to the next request (`head`: a HEAD request, whose response has no body). */
    reset(head = false): void {
        this.status = 0;
        this.refused = false;
        this.bytes = 0;
        this.keepAlive = true;
        this.keepAliveMs = -1;
        this.headDone = false;
        this.state = State.Head;
        this.head = head;
        this.carry = undefined;
        this.remaining = 0;
    }

    get done(): boolean {
        return this.state === State.Done;
    }

    feed(chunk: Buffer, start: number, end: number): number {
        let b = chunk;
        let i = start;
        let e = end;
        // Bounded: every pass consumes at least one byte or returns.
        while (i < e) {
            switch (this.state) {
                case State.Head: {
                    if (this.carry) {
                        const from = Math.max(0, this.carry.length - 3);
                        b = Buffer.concat([this.carry, b.subarray(i, e)]);
                        i = 0;
                        e = b.length;
                        this.carry = undefined;
                        const at = b.indexOf(HEAD_END, from);
                        if (at < 0) return this.keep(b, 0, e);
                        this.parseHead(b, 0, at + 2);
                        i = at + 4;
                    } else {
                        // (b may be a reused read buffer: search only the bytes given.)
                        const at = e === b.length ? b.indexOf(HEAD_END, i) : b.subarray(0, e).indexOf(HEAD_END, i);
                        if (at < 0) return this.keep(b, i, e);
                        this.parseHead(b, i, at + 2);
                        i = at + 4;
                    }
                    break;
                }
                case State.Length: {
                    const n = Math.min(this.remaining, e - i);
                    this.sink?.body(b, i, i + n);
                    this.bytes += n;
                    this.remaining -= n;
                    i += n;
                    if (this.remaining === 0) this.state = State.Done;
                    break;
                }
                case State.Close:
                    this.sink?.body(b, i, e);
                    this.bytes += e - i;
                    return -1;
                case State.ChunkData: {
                    const n = Math.min(this.remaining, e - i);
                    this.sink?.body(b, i, i + n);
                    this.bytes += n;
                    this.remaining -= n;
                    i += n;
                    if (this.remaining === 0) this.state = State.ChunkDataCr;
                    break;
                }
                case State.Done:
                    return e - i;
                default:
                    i = this.framing(b, i, e);
            }
            if (this.state === State.Done) return e - i;
        }
        return this.state === State.Done ? 0 : -1;
    }

    /** Whether the connection's end completes the response (it does only for a close-delimited body). */
    eof(): boolean {
        if (this.state === State.Close) {
            this.state = State.Done;
            this.keepAlive = false;
        }
        return this.state === State.Done;
    }

    private keep(b: Buffer, s: number, e: number): number {
        if (e - s > MAX_HEAD) throw new ResponseParseError("response head larger than 16 KiB");
        this.carry = Buffer.from(b.subarray(s, e));
        return -1;
    }

    /** Chunked framing, byte by byte: size line, extensions, CRLFs after data, trailer section. */
    private framing(b: Buffer, i: number, e: number): number {
        for (; i < e; i++) {
            const c = b[i];
            switch (this.state) {
                case State.ChunkSize: {
                    const v =
                        c >= 48 && c <= 57 ? c - 48 : c >= 97 && c <= 102 ? c - 87 : c >= 65 && c <= 70 ? c - 55 : -1;
                    if (v >= 0) {
                        if (++this.digits > 12) throw new ResponseParseError("chunk size too large");
                        this.remaining = this.remaining * 16 + v;
                    } else if (this.digits === 0) throw new ResponseParseError("invalid chunk size");
                    else if (c === CR) this.state = State.ChunkSizeLf;
                    else if (c === 59 || c === 32 || c === 9) {
                        this.state = State.ChunkExt;
                        this.lineLength = 0;
                    } else throw new ResponseParseError("invalid chunk size");
                    break;
                }
                case State.ChunkExt:
                    if (c === CR) this.state = State.ChunkSizeLf;
                    else if (++this.lineLength > MAX_CHUNK_LINE)
                        throw new ResponseParseError("chunk extension too long");
                    break;
                case State.ChunkSizeLf:
                    if (c !== LF) throw new ResponseParseError("expected LF after chunk size");
                    if (this.remaining === 0) {
                        this.state = State.Trailer;
                        this.lineLength = 0;
                        this.digits = 0;
                    } else {
                        this.state = State.ChunkData;
                        return i + 1;
                    }
                    break;
                case State.ChunkDataCr:
                    if (c !== CR) throw new ResponseParseError("expected CRLF after chunk data");
                    this.state = State.ChunkDataLf;
                    break;
                case State.ChunkDataLf:
                    if (c !== LF) throw new ResponseParseError("expected CRLF after chunk data");
                    this.startChunk();
                    break;
                case State.Trailer:
                    // lineLength counts the current trailer line; digits counts the whole section (bounded).
                    if (++this.digits > MAX_HEAD) throw new ResponseParseError("trailers larger than 16 KiB");
                    if (c === LF) {
                        if (this.lineLength === 0) {
                            this.state = State.Done;
                            return i + 1;
                        }
                        this.lineLength = 0;
                    } else if (c !== CR) this.lineLength++;
                    break;
                default:
                    return i;
            }
        }
        return i;
    }

    private startChunk(): void {
        this.state = State.ChunkSize;
        this.remaining = 0;
        this.digits = 0;
    }

    /** Parses the head in b[s, e) (e just past the last header line's CRLF) and sets the body's framing. */
    private parseHead(b: Buffer, s: number, e: number): void {
        // "HTTP/1.x SSS" then a reason phrase or nothing.
        if (
            e - s < 14 ||
            b.toString("latin1", s, s + 7) !== "HTTP/1." ||
            (b[s + 7] !== 49 && b[s + 7] !== 48) ||
            b[s + 8] !== 32
        )
            throw new ResponseParseError("invalid status line");
        let status = 0;
        for (let k = s + 9; k < s + 12; k++) {
            if (b[k] < 48 || b[k] > 57) throw new ResponseParseError("invalid status code");
            status = status * 10 + b[k] - 48;
        }
        if (status < 100 || (b[s + 12] !== 32 && b[s + 12] !== CR)) throw new ResponseParseError("invalid status code");
        let keepAlive = b[s + 7] === 49;
        const raw: string[] | undefined = this.sink && status >= 200 ? [] : undefined;
        let length = -1;
        let chunked = false;
        let encoded = false;
        let i = b.indexOf(LF, s) + 1;
        // One header line per pass; bounded by the head's length.
        while (i < e) {
            const eol = b.indexOf(LF, i);
            if (eol < 0 || eol >= e || b[eol - 1] !== CR) throw new ResponseParseError("invalid header line");
            const colon = b.indexOf(58, i);
            if (colon < 0 || colon > eol || colon === i || b[i] === 32 || b[i] === 9)
                throw new ResponseParseError("invalid header line");
            const n = colon - i;
            if (raw) {
                let vs = colon + 1;
                let ve = eol - 1;
                while (vs < ve && (b[vs] === 32 || b[vs] === 9)) vs++;
                while (ve > vs && (b[ve - 1] === 32 || b[ve - 1] === 9)) ve--;
                raw.push(b.toString("latin1", i, colon), b.toString("latin1", vs, ve));
            }
            // Only the header names we read get decoded: compare lengths first.
            if (n === 14 || n === 17 || n === 10 || n === REFUSAL_HEADER.length) {
                const name = lower(b, i, colon);
                const value = () => b.toString("latin1", colon + 1, eol - 1).trim();
                if (name === "content-length") {
                    const v = value();
                    if (!/^[0-9]{1,15}$/.test(v) || (length >= 0 && Number(v) !== length))
                        throw new ResponseParseError("invalid content-length");
                    length = Number(v);
                } else if (name === "transfer-encoding") {
                    encoded = true;
                    const codings = value().toLowerCase().split(",");
                    chunked = codings[codings.length - 1].trim() === "chunked";
                } else if (name === "connection") {
                    const tokens = value().toLowerCase().split(",");
                    for (const t of tokens) {
                        if (t.trim() === "close") keepAlive = false;
                        else if (t.trim() === "keep-alive" && b[s + 7] === 48) keepAlive = true;
                    }
                } else if (name === "keep-alive") {
                    const m = /(?:^|[,\s])timeout=([0-9]{1,9})/i.exec(value());
                    if (m) this.keepAliveMs = Number(m[1]) * 1000;
                } else if (name === REFUSAL_HEADER) this.refused = true;
            }
            i = eol + 1;
        }
        if (status < 200) {
            // 1xx: an interim head, skipped; the final head follows. 101 only answers an upgrade we never ask for.
            if (status === 101) throw new ResponseParseError("unexpected 101 Switching Protocols");
            this.refused = false;
            this.keepAliveMs = -1;
            return;
        }
        this.status = status;
        this.keepAlive = keepAlive;
        this.headDone = true;
        if (raw) {
            const lineEnd = b.indexOf(CR, s + 12);
            (this.sink as ResponseSink).head(status, b.toString("latin1", s + 13, Math.max(s + 13, lineEnd)), raw);
        }
        if (this.head || status === 204 || status === 304) this.state = State.Done;
        else if (encoded) {
            // Transfer-Encoding wins over Content-Length; a message with both cannot be trusted for reuse.
            if (length >= 0) this.keepAlive = false;
            if (chunked) this.startChunk();
            else this.toClose();
        } else if (length === 0) this.state = State.Done;
        else if (length > 0) {
            this.state = State.Length;
            this.remaining = length;
        } else this.toClose();
    }

    private toClose(): void {
        this.state = State.Close;
        this.keepAlive = false;
    }
}
