/**
 * A minimal HTTP/1.1 client on raw `net.Socket`s, so that the load generator costs as little CPU
 * per response as possible: no `http.Agent`, no header objects, one keep-alive connection each,
 * Content-Length bodies only (which is all epush sends on these paths).
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export class ProtocolError extends Error {}

/**
 * Called once per complete response. `body` may be a view into a shared read buffer: copy what you
 * keep. `head` is the status line and headers (latin1), for protocols that resume by header.
 */
export type OnResponse = (
  status: number,
  body: Buffer,
  connectionClose: boolean,
  head: string,
) => void;

const HEADER_END = Buffer.from('\r\n\r\n');
const CONTENT_LENGTH = /\r\ncontent-length:[ \t]*(\d+)/i;
const CHUNKED = /\r\ntransfer-encoding:[^\r]*chunked/i;
const CONNECTION_CLOSE = /\r\nconnection:[ \t]*close/i;
const MAX_HEAD_BYTES = 64 * 1024;
const MAX_BODY_BYTES = 16 * 1024 * 1024;

/** Incremental response parser for one connection (responses arrive in request order). */
export class ResponseParser {
  private pending: Buffer | null = null;

  constructor(private readonly onResponse: OnResponse) {}

  /** Feeds bytes read from the socket; throws ProtocolError on anything it cannot frame. */
  feed(chunk: Buffer): void {
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    let offset = 0;
    while (offset < buf.length) {
      const headEnd = buf.indexOf(HEADER_END, offset);
      if (headEnd === -1) {
        if (buf.length - offset > MAX_HEAD_BYTES)
          throw new ProtocolError('response head too large');
        break;
      }
      const head = buf.toString('latin1', offset, headEnd);
      if (!head.startsWith('HTTP/1.'))
        throw new ProtocolError(`bad status line: ${head.slice(0, 40)}`);
      const status = Number(head.slice(9, 12));
      if (!Number.isInteger(status)) throw new ProtocolError(`bad status: ${head.slice(0, 40)}`);
      if (CHUNKED.test(head)) throw new ProtocolError('chunked bodies are not supported');
      const lengthMatch = CONTENT_LENGTH.exec(head);
      let length = 0;
      if (lengthMatch) length = Number(lengthMatch[1]);
      else if (status >= 200 && status !== 204 && status !== 304) {
        throw new ProtocolError(`status ${status} without Content-Length`);
      }
      if (length > MAX_BODY_BYTES) throw new ProtocolError(`body of ${length} bytes`);
      const bodyStart = headEnd + HEADER_END.length;
      if (buf.length < bodyStart + length) break;
      offset = bodyStart + length;
      this.onResponse(status, buf.subarray(bodyStart, offset), CONNECTION_CLOSE.test(head), head);
    }
    if (offset < buf.length) this.pending = Buffer.from(buf.subarray(offset));
  }

  get hasPartial(): boolean {
    return this.pending !== null;
  }
}

// One read buffer shared by every socket of the process: reads are handled synchronously, so
// nothing is allocated per read (the parser copies only partial responses).
const SHARED_READ_BUFFER = Buffer.allocUnsafe(256 * 1024);

export interface RawConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly localAddress?: string;
  readonly onData: (chunk: Buffer) => void;
}

/** Opens a TCP connection that hands every read to `onData` from the shared buffer. */
export function rawConnect(options: RawConnectOptions): Socket {
  const { onData } = options;
  return connect({
    host: options.host,
    port: options.port,
    family: 4,
    noDelay: true,
    ...(options.localAddress === undefined ? {} : { localAddress: options.localAddress }),
    onread: {
      buffer: SHARED_READ_BUFFER,
      callback: (bytes: number, buffer: Uint8Array): boolean => {
        onData(Buffer.from(buffer.buffer, buffer.byteOffset, bytes));
        return true;
      },
    },
  });
}

/** `POST /push/listen` for one push ID from `cursor` (null: from now), as epush's client sends it. */
export function listenRequestText(
  hostHeader: string,
  pushId: string,
  cursor: string | null,
): string {
  const from = cursor === null ? 'null' : `"${cursor}"`;
  return requestText(
    'POST',
    '/push/listen',
    hostHeader,
    `{"pushIds":["${pushId}"],"cursor":${from}}`,
  );
}

export function requestText(
  method: string,
  path: string,
  hostHeader: string,
  body: string | null,
): string {
  if (body === null) return `${method} ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\n\r\n`;
  return (
    `${method} ${path} HTTP/1.1\r\nHost: ${hostHeader}\r\nContent-Type: application/json\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

export interface ApiResponse {
  readonly status: number;
  readonly body: string;
  /** performance.now() just before the request was written, and when its response was parsed. */
  readonly sentAt: number;
  readonly doneAt: number;
}

interface PendingRequest {
  readonly sentAt: number;
  readonly resolve: (response: ApiResponse) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * One keep-alive connection for the application API. Requests may be pipelined; responses are
 * matched in order. A failed or timed-out request fails the connection and every request on it.
 */
export class ApiClient {
  private readonly queue: PendingRequest[] = [];
  private readonly parser: ResponseParser;
  private readonly hostHeader: string;
  private failure: Error | null = null;

  private constructor(
    private readonly socket: Socket,
    host: string,
    port: number,
  ) {
    this.hostHeader = `${host}:${port}`;
    this.parser = new ResponseParser((status, body) => {
      const pending = this.queue.shift();
      if (!pending) {
        this.fail(new ProtocolError(`unsolicited response ${status}`));
        return;
      }
      clearTimeout(pending.timer);
      pending.resolve({
        status,
        body: body.toString('utf8'),
        sentAt: pending.sentAt,
        doneAt: performance.now(),
      });
    });
  }

  static open(
    host: string,
    port: number,
    timeoutMs = 5000,
    localAddress?: string,
  ): Promise<ApiClient> {
    return new Promise((resolve, reject) => {
      let client: ApiClient | null = null;
      const socket = rawConnect({
        host,
        port,
        ...(localAddress === undefined ? {} : { localAddress }),
        onData: (chunk) => {
          if (!client) return;
          try {
            client.parser.feed(chunk);
          } catch (error) {
            client.fail(error as Error);
          }
        },
      });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`API connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        client = new ApiClient(socket, host, port);
        resolve(client);
      });
      socket.on('error', (error) => {
        clearTimeout(timer);
        if (client) client.fail(error);
        else reject(error);
      });
      socket.on('close', () => {
        client?.fail(new Error('API connection closed'));
      });
    });
  }

  /** Sends one request; the write happens synchronously inside this call. */
  request(method: string, path: string, body?: unknown, timeoutMs = 30_000): Promise<ApiResponse> {
    if (this.failure) return Promise.reject(this.failure);
    const text = requestText(
      method,
      path,
      this.hostHeader,
      body === undefined ? null : JSON.stringify(body),
    );
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new Error(`${method} ${path} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      const sentAt = performance.now();
      this.queue.push({ sentAt, resolve, reject, timer });
      this.socket.write(text);
    });
  }

  close(): void {
    this.failure ??= new Error('API connection closed by the client');
    this.socket.end();
  }

  private fail(error: Error): void {
    this.failure ??= error;
    for (const pending of this.queue.splice(0)) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.socket.destroy();
  }
}
