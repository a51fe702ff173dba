import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { EpushError } from '../core/errors.js';
import { MAX_LISTEN_BODY_BYTES } from '../core/limits.js';
import {
  parseListenRequest,
  type ListenRequest,
  type ListenTokenCheck,
} from '../core/listen-request.js';
import type { RejectionCounter } from '../observability/rejections.js';
import type { ListenService } from './listen-service.js';
import { ListenStream, type StreamCloseReason, type StreamWriter } from './listen-stream.js';

/** Close codes a client can act on (4000-4999 are the application's). */
export const WS_CLOSE = {
  /** Ask another node (drain, backplane lost): 1012 Service Restart. */
  reconnect: 1012,
  /** The peer did not take its output within the budget; resume from the last cursor. */
  slowConsumer: 4008,
  error: 1011,
} as const;

/** Which pages may open a socket (the HTTP layer's CORS policy). */
export interface OriginPolicy {
  /**
   * False refuses the upgrade with 403 `forbidden_origin`; undefined: no Origin header. `host`
   * is the request's Host header: a page of the server's own host may always listen.
   */
  allowsOrigin(origin: string | undefined, host?: string): boolean;
}

class WebSocketWriter implements StreamWriter {
  constructor(private readonly ws: WebSocket) {}

  write(answerJson: string): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(answerJson);
  }

  queuedBytes(): number {
    return this.ws.bufferedAmount;
  }

  close(reason: StreamCloseReason): void {
    switch (reason) {
      case 'finished':
        // Only this listen is over; the client may send another on the same socket.
        return;
      case 'reconnect':
        this.ws.close(WS_CLOSE.reconnect, 'listen on another node');
        return;
      case 'slow-consumer':
        this.ws.close(WS_CLOSE.slowConsumer, 'slow consumer: outbound budget exceeded');
        // A peer that does not read will not read the close frame either.
        setTimeout(() => {
          this.ws.terminate();
        }, 1000).unref();
        return;
      case 'error':
        this.ws.close(WS_CLOSE.error, 'internal error');
        return;
    }
  }
}

export interface WebSocketOptions {
  readonly budgetBytes: number;
  /** Ping period; a socket that did not answer the previous ping is dropped (half-open TCP). */
  readonly pingMs: number;
  /** Listen tokens to check (`--listen-token-secret`); absent or null: none. */
  readonly listenTokens?: ListenTokenCheck | null;
}

/**
 * `GET /push/ws` (docs/protocol.md): the client sends `{"listen": {"pushIds": […], "cursor": …}}`, the
 * server sends the objects `/push/listen` answers. A new `listen` message replaces the socket's
 * current listen (the browser client changes its push IDs that way). A message that is not a
 * valid listen is answered with the error object the HTTP API would send; the socket stays.
 */
export class WebSocketTransport {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_LISTEN_BODY_BYTES,
    perMessageDeflate: false,
  });
  private readonly alive = new WeakSet<WebSocket>();
  private readonly pinger: NodeJS.Timeout;

  constructor(
    private readonly service: ListenService,
    private readonly origins: OriginPolicy,
    private readonly rejections: RejectionCounter,
    private readonly options: WebSocketOptions,
  ) {
    this.pinger = setInterval(() => {
      this.ping();
    }, options.pingMs);
    this.pinger.unref();
  }

  /** Closes every socket (a drain or stop): clients reconnect to another node. */
  closeAll(): void {
    clearInterval(this.pinger);
    for (const ws of this.wss.clients) ws.close(WS_CLOSE.reconnect, 'node shutting down');
  }

  /**
   * Takes an upgrade request its caller has routed here (the path is `/push/ws`, under the
   * embedding's base path if any): refuses it with the HTTP API's JSON error when the origin is
   * not allowed or the node is not ready, else completes the handshake and serves the socket.
   */
  accept(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {
      socket.destroy();
    });
    if (!this.origins.allowsOrigin(req.headers.origin, req.headers.host)) {
      this.refuse(
        socket,
        new EpushError('forbidden_origin', 'This origin may not open a WebSocket here.'),
      );
      return;
    }
    const notReady = this.service.notReadyReason();
    if (notReady !== null) {
      this.refuse(socket, new EpushError('not_ready', notReady, { 'retry-after': '1' }));
      return;
    }
    const invalid = handshakeError(req);
    if (invalid !== null) {
      this.refuse(socket, invalid);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.serve(ws);
    });
  }

  private refuse(socket: Duplex, error: EpushError): void {
    this.rejections.count(error.code);
    refuseUpgrade(socket, error);
  }

  private serve(ws: WebSocket): void {
    const { connections } = this.service;
    connections.opened('websocket');
    const writer = new WebSocketWriter(ws);
    connections.trackQueue(writer);
    this.alive.add(ws);
    let stream: ListenStream | null = null;
    ws.on('pong', () => {
      this.alive.add(ws);
    });
    ws.on('error', () => {
      ws.terminate();
    });
    ws.on('close', () => {
      connections.closed('websocket');
      connections.untrackQueue(writer);
      stream?.stop();
    });
    ws.on('message', (data, isBinary) => {
      let request;
      try {
        if (isBinary) throw new EpushError('invalid_body', 'Send listen messages as text.');
        request = parseListenMessage(rawText(data), this.options.listenTokens ?? null);
      } catch (error) {
        const failure =
          error instanceof EpushError ? error : new EpushError('bad_request', 'Bad message.');
        this.rejections.count(failure.code);
        ws.send(JSON.stringify(failure.toJSON()));
        return;
      }
      stream?.stop();
      const current = new ListenStream(
        'websocket',
        writer,
        (pushIds, from, connection) => this.service.listen(pushIds, from, connection),
        request.pushIds,
        this.options.budgetBytes,
        connections,
      );
      stream = current;
      current.start(request.from);
    });
  }

  private ping(): void {
    for (const ws of this.wss.clients) {
      if (!this.alive.has(ws)) {
        ws.terminate();
        continue;
      }
      this.alive.delete(ws);
      ws.ping();
    }
  }
}

function parseListenMessage(text: string, tokens: ListenTokenCheck | null): ListenRequest {
  let message: unknown;
  try {
    message = JSON.parse(text);
  } catch {
    throw new EpushError('invalid_json', 'The message is not valid JSON.');
  }
  if (typeof message !== 'object' || message === null || !('listen' in message)) {
    throw new EpushError(
      'invalid_body',
      'A message is {"listen": {"pushIds": ["…"], "cursor": "<cursor or null>"}}.',
    );
  }
  return parseListenRequest(message.listen, tokens);
}

function rawText(data: Buffer | ArrayBuffer | Buffer[]): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

/** Refuses an upgrade with the HTTP API's JSON error and closes the socket. */
const WEBSOCKET_KEY = /^[+/0-9A-Za-z]{22}==$/;
const TOKEN_LIST = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+(?:[ \t]*,[ \t]*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$/;

/**
 * What `ws` would refuse in the handshake (RFC 6455 §4.2.1), as the JSON error shape: `ws`
 * writes its own refusals as text/html.
 */
function handshakeError(req: IncomingMessage): EpushError | null {
  if (req.method !== 'GET') {
    return new EpushError('method_not_allowed', 'A WebSocket handshake is a GET.', {
      allow: 'GET',
    });
  }
  if (req.headers.upgrade?.toLowerCase() !== 'websocket') {
    return new EpushError('bad_request', 'The Upgrade header must be "websocket".');
  }
  const key = req.headers['sec-websocket-key'];
  if (typeof key !== 'string' || !WEBSOCKET_KEY.test(key.trim())) {
    return new EpushError(
      'bad_request',
      'Sec-WebSocket-Key is missing or not a 16-byte base64 key.',
    );
  }
  const version = req.headers['sec-websocket-version'];
  if (version !== '13' && version !== '8') {
    return new EpushError('bad_request', 'Sec-WebSocket-Version must be 13.', {
      'sec-websocket-version': '13, 8',
    });
  }
  const protocol = req.headers['sec-websocket-protocol'];
  if (
    protocol !== undefined &&
    (!TOKEN_LIST.test(protocol.trim()) ||
      new Set(protocol.split(',').map((p) => p.trim())).size !== protocol.split(',').length)
  ) {
    return new EpushError(
      'bad_request',
      'Sec-WebSocket-Protocol must be a list of distinct tokens.',
    );
  }
  return null;
}

export function refuseUpgrade(socket: Duplex, error: EpushError): void {
  const body = JSON.stringify(error.toJSON());
  const extra = Object.entries(error.headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  socket.end(
    `HTTP/1.1 ${error.status} ${error.status === 503 ? 'Service Unavailable' : 'Error'}\r\n` +
      `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `${extra}Connection: close\r\n\r\n${body}`,
  );
}
