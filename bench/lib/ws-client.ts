/**
 * A minimal WebSocket client side for one raw `net.Socket` (the load generator's side of
 * `GET /push/ws`, RFC 6455): the upgrade request, the 101 answer (Sec-WebSocket-Accept checked),
 * unmasked server frames (text, ping, pong, close; no fragmentation, no extensions: epush sends
 * whole text frames and offers no compression), and masked client frames (the one listen message,
 * pongs and the close echo). No allocation per frame beyond the text itself when a read holds
 * whole frames, which is the usual case.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ProtocolError } from './http-client.js';

const HEADER_END = Buffer.from('\r\n\r\n');
const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';
const ACCEPT = /\r\nsec-websocket-accept:[ \t]*([A-Za-z0-9+/=]+)/i;
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_FRAME_BYTES = 16 * 1024 * 1024;

export const OPCODE = { text: 1, binary: 2, close: 8, ping: 9, pong: 10 } as const;

export interface WsHandlers {
  /** The 101 arrived and its accept key matched: frames may be sent. */
  readonly onOpen: () => void;
  readonly onText: (text: string) => void;
  readonly onPing: (payload: Buffer) => void;
  readonly onClose: (code: number | null, reason: string) => void;
  /** The upgrade was refused with an HTTP answer. */
  readonly onRefused: (status: number, body: string) => void;
}

/** A fresh Sec-WebSocket-Key and the upgrade request that carries it. */
export function wsUpgrade(path: string, hostHeader: string): { key: string; text: string } {
  const key = randomBytes(16).toString('base64');
  const text =
    `GET ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  return { key, text };
}

/** One final (FIN) client frame, masked as RFC 6455 §5.3 requires of a client. */
export function maskedFrame(opcode: number, payload: Buffer): Buffer {
  const length = payload.length;
  const extra = length < 126 ? 0 : length < 65536 ? 2 : 8;
  const frame = Buffer.allocUnsafe(2 + extra + 4 + length);
  frame[0] = 0x80 | opcode;
  if (extra === 0) frame[1] = 0x80 | length;
  else if (extra === 2) {
    frame[1] = 0x80 | 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 0x80 | 127;
    frame.writeBigUInt64BE(BigInt(length), 2);
  }
  const maskAt = 2 + extra;
  randomBytes(4).copy(frame, maskAt);
  const dataAt = maskAt + 4;
  for (let i = 0; i < length; i++) frame[dataAt + i] = payload[i]! ^ frame[maskAt + (i & 3)]!;
  return frame;
}

export class WsParser {
  private pending: Buffer | null = null;
  private headDone = false;
  private refusedStatus = 0;
  private refusedLength = 0;
  private closed = false;

  constructor(
    private readonly key: string,
    private readonly handlers: WsHandlers,
  ) {}

  /** Feeds bytes read from the socket; throws ProtocolError on anything it cannot frame. */
  feed(chunk: Buffer): void {
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    let offset = 0;
    if (!this.headDone) {
      const end = buf.indexOf(HEADER_END);
      if (end === -1) {
        if (buf.length > MAX_HEAD_BYTES) throw new ProtocolError('response head too large');
        this.pending = Buffer.from(buf);
        return;
      }
      const head = buf.toString('latin1', 0, end);
      if (!head.startsWith('HTTP/1.')) {
        throw new ProtocolError(`bad status line: ${head.slice(0, 40)}`);
      }
      const status = Number(head.slice(9, 12));
      this.headDone = true;
      offset = end + HEADER_END.length;
      if (status !== 101) {
        this.refusedStatus = status;
        const length = CONTENT_LENGTH.exec(head);
        this.refusedLength = length ? Number(length[1]) : 0;
      } else {
        const accept = ACCEPT.exec(head)?.[1];
        const expected = createHash('sha1')
          .update(this.key + GUID)
          .digest('base64');
        if (accept !== expected) throw new ProtocolError('bad Sec-WebSocket-Accept');
        this.handlers.onOpen();
      }
    }
    if (this.refusedStatus !== 0) {
      if (buf.length - offset < this.refusedLength) {
        this.pending = Buffer.from(buf.subarray(offset));
        return;
      }
      const body = buf.toString('utf8', offset, offset + this.refusedLength);
      const status = this.refusedStatus;
      this.refusedStatus = 0;
      this.closed = true;
      this.handlers.onRefused(status, body);
      return;
    }
    while (offset < buf.length) {
      if (this.closed) throw new ProtocolError('bytes after a close frame');
      if (buf.length - offset < 2) break;
      const b0 = buf[offset]!;
      const b1 = buf[offset + 1]!;
      if ((b1 & 0x80) !== 0) throw new ProtocolError('masked server frame');
      if ((b0 & 0x70) !== 0) throw new ProtocolError('RSV bits set (no extension was agreed)');
      const opcode = b0 & 0x0f;
      if ((b0 & 0x80) === 0 || opcode === 0) {
        throw new ProtocolError('fragmented message (not expected from epush)');
      }
      let length = b1 & 0x7f;
      let at = offset + 2;
      if (length === 126) {
        if (buf.length - offset < 4) break;
        length = buf.readUInt16BE(at);
        at += 2;
      } else if (length === 127) {
        if (buf.length - offset < 10) break;
        const big = buf.readBigUInt64BE(at);
        if (big > BigInt(MAX_FRAME_BYTES)) throw new ProtocolError(`frame of ${big} bytes`);
        length = Number(big);
        at += 8;
      }
      if (buf.length - at < length) break;
      const end = at + length;
      offset = end;
      switch (opcode) {
        case OPCODE.text:
          this.handlers.onText(buf.toString('utf8', at, end));
          break;
        case OPCODE.ping:
          this.handlers.onPing(Buffer.from(buf.subarray(at, end)));
          break;
        case OPCODE.pong:
          break;
        case OPCODE.close: {
          this.closed = true;
          const code = length >= 2 ? buf.readUInt16BE(at) : null;
          this.handlers.onClose(code, length > 2 ? buf.toString('utf8', at + 2, end) : '');
          return;
        }
        default:
          throw new ProtocolError(`unexpected opcode ${opcode}`);
      }
    }
    if (offset < buf.length) {
      if (buf.length - offset > MAX_FRAME_BYTES + 14) throw new ProtocolError('frame too large');
      this.pending = Buffer.from(buf.subarray(offset));
    }
  }
}
