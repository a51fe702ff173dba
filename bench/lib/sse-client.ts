/**
 * A minimal Server-Sent Events reader for one raw `net.Socket` (the load generator's side of
 * `GET /push/sse`): the HTTP/1.1 response head, a chunked (or close-delimited) body, and SSE
 * events separated by a blank line, with `data:`, `id:` and `retry:` fields. Enough for what epush
 * writes (`\n` line ends, ASCII JSON); it is not a general EventSource. No allocation per event
 * beyond the event's own string when a read holds whole chunks, which is the usual case.
 */
import { ProtocolError } from './http-client.js';

const HEADER_END = Buffer.from('\r\n\r\n');
const CRLF = Buffer.from('\r\n');
const EVENT_END = Buffer.from('\n\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const CHUNKED = /\r\ntransfer-encoding:[^\r]*chunked/i;
const EVENT_STREAM = /\r\ncontent-type:[ \t]*text\/event-stream/i;
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_EVENT_BYTES = 1024 * 1024;

export interface SseHandlers {
  /** A stream was opened (200 text/event-stream). */
  readonly onOpen: () => void;
  /** One event with a non-empty data buffer; `data` is the `data:` lines joined by `\n`. */
  readonly onEvent: (data: string, id: string | null) => void;
  /** A non-200 answer (its Content-Length body), instead of a stream. */
  readonly onRefused: (status: number, body: string) => void;
  /** The server ended the response (the last chunk); the socket may stay open. */
  readonly onEnd: () => void;
}

type BodyState = 'size' | 'data' | 'data-crlf' | 'trailer' | 'raw' | 'done';

/** `GET path` for an event stream on a keep-alive connection. */
export function sseRequestText(path: string, hostHeader: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nAccept: text/event-stream\r\n\r\n`;
}

export class SseParser {
  private head: Buffer | null = null;
  private headDone = false;
  private state: BodyState = 'size';
  /** Bytes left in the current chunk (state 'data') or in a refused answer's body. */
  private remaining = 0;
  /** Part of a chunk-size line or of a CRLF split across reads. */
  private framing: Buffer | null = null;
  /** Bytes of an event not yet ended by a blank line. */
  private event: Buffer | null = null;
  private refusedStatus = 0;
  private refusedBody: Buffer[] = [];
  retryMs: number | null = null;

  constructor(private readonly handlers: SseHandlers) {}

  /** Feeds bytes read from the socket; throws ProtocolError on anything it cannot frame. */
  feed(chunk: Buffer): void {
    let offset = 0;
    if (!this.headDone) {
      const buf = this.head === null ? chunk : Buffer.concat([this.head, chunk]);
      const end = buf.indexOf(HEADER_END);
      if (end === -1) {
        if (buf.length > MAX_HEAD_BYTES) throw new ProtocolError('response head too large');
        this.head = Buffer.from(buf);
        return;
      }
      this.head = null;
      this.headDone = true;
      const head = buf.toString('latin1', 0, end);
      if (!head.startsWith('HTTP/1.')) {
        throw new ProtocolError(`bad status line: ${head.slice(0, 40)}`);
      }
      const status = Number(head.slice(9, 12));
      const rest = buf.subarray(end + HEADER_END.length);
      if (status !== 200 || !EVENT_STREAM.test(head)) {
        const length = CONTENT_LENGTH.exec(head);
        this.refusedStatus = status;
        this.remaining = length ? Number(length[1]) : 0;
        this.state = 'done';
        this.refused(rest);
        return;
      }
      this.state = CHUNKED.test(head) ? 'size' : 'raw';
      this.handlers.onOpen();
      chunk = rest;
      offset = 0;
    } else if (this.refusedStatus !== 0) {
      this.refused(chunk);
      return;
    }
    while (offset < chunk.length) {
      switch (this.state) {
        case 'raw':
          this.body(chunk.subarray(offset));
          return;
        case 'data': {
          const take = Math.min(this.remaining, chunk.length - offset);
          this.body(chunk.subarray(offset, offset + take));
          offset += take;
          this.remaining -= take;
          if (this.remaining === 0) this.state = 'data-crlf';
          break;
        }
        case 'size':
        case 'data-crlf':
        case 'trailer': {
          // A line: the chunk size, the CRLF after a chunk's data, or the end of the trailer.
          let line: Buffer;
          const at = chunk.indexOf(CRLF, offset);
          if (this.framing !== null) {
            const joined = Buffer.concat([this.framing, chunk.subarray(offset)]);
            const end = joined.indexOf(CRLF);
            if (end === -1) {
              if (joined.length > 1024) throw new ProtocolError('chunk-size line too long');
              this.framing = joined;
              return;
            }
            this.framing = null;
            line = joined.subarray(0, end);
            offset += end + 2 - (joined.length - (chunk.length - offset));
          } else if (at === -1) {
            this.framing = Buffer.from(chunk.subarray(offset));
            return;
          } else {
            line = chunk.subarray(offset, at);
            offset = at + 2;
          }
          if (this.state === 'data-crlf') {
            if (line.length !== 0) throw new ProtocolError('no CRLF after chunk data');
            this.state = 'size';
          } else if (this.state === 'trailer') {
            if (line.length === 0) {
              this.state = 'done';
              this.handlers.onEnd();
            }
          } else {
            const size = parseInt(line.toString('latin1'), 16);
            if (!Number.isInteger(size) || size < 0) {
              throw new ProtocolError(`bad chunk size ${line.toString('latin1').slice(0, 20)}`);
            }
            if (size === 0) this.state = 'trailer';
            else {
              this.remaining = size;
              this.state = 'data';
            }
          }
          break;
        }
        case 'done':
          throw new ProtocolError('bytes after the end of the event stream');
      }
    }
  }

  private refused(bytes: Buffer): void {
    if (bytes.length > 0) this.refusedBody.push(Buffer.from(bytes));
    const got = this.refusedBody.reduce((sum, part) => sum + part.length, 0);
    if (got >= this.remaining) {
      const body = Buffer.concat(this.refusedBody).toString('utf8', 0, this.remaining);
      this.refusedBody = [];
      this.handlers.onRefused(this.refusedStatus, body);
    }
  }

  /** Body bytes of the event stream: split into events at blank lines. */
  private body(bytes: Buffer): void {
    let buf = bytes;
    if (this.event !== null) {
      buf = Buffer.concat([this.event, bytes]);
      this.event = null;
    }
    let offset = 0;
    for (;;) {
      const end = buf.indexOf(EVENT_END, offset);
      if (end === -1) break;
      this.dispatch(buf.toString('utf8', offset, end));
      offset = end + EVENT_END.length;
    }
    if (offset < buf.length) {
      if (buf.length - offset > MAX_EVENT_BYTES) throw new ProtocolError('event too large');
      this.event = Buffer.from(buf.subarray(offset));
    }
  }

  private dispatch(text: string): void {
    let data: string | null = null;
    let id: string | null = null;
    let from = 0;
    while (from <= text.length) {
      let to = text.indexOf('\n', from);
      if (to === -1) to = text.length;
      let line = text.slice(from, to);
      from = to + 1;
      if (line.endsWith('\r')) line = line.slice(0, -1);
      if (line === '' || line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon === -1 ? line : line.slice(0, colon);
      let value = colon === -1 ? '' : line.slice(colon + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data = data === null ? value : `${data}\n${value}`;
      else if (field === 'id') id = value;
      else if (field === 'retry') this.retryMs = Number(value);
    }
    if (data !== null && data !== '') this.handlers.onEvent(data, id);
  }
}
