import { randomUUID } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { decodeCursor, type CursorPosition } from '../core/cursor.js';
import { EpushError } from '../core/errors.js';
import { MAX_LISTEN_BODY_BYTES } from '../core/limits.js';
import { parseListenRequest } from '../core/listen-request.js';
import type { RejectionCounter } from '../observability/rejections.js';
import { LongPollConnection } from '../transports/long-poll.js';
import { AcceptLoopConnection, Phase, type AcceptLoopOwner } from './accept-loop-connection.js';
import type { ListenStormGuard } from './abuse-limits.js';
import { ConnectionLimits, type ConnectionLimitOptions } from './connection-limits.js';
import type { CorsPolicy } from './cors.js';
import { parseJson } from './json-body.js';
import { parseListenRequestHead } from './listen-request-head.js';
import type { ListenTokens } from './listen-tokens.js';
import type { PushService } from './push-service.js';
import { parsePlainListenBody } from './plain-listen-body.js';
import { RawResponseHead } from './raw-response-head.js';
import { INTERNAL_ERROR } from './respond.js';

export interface AcceptLoopOptions extends ConnectionLimitOptions {
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** `--max-header-kb` in bytes: a longer head goes to node:http, which answers 431. */
  readonly maxHeadBytes: number;
  /** Listen-storm detection (`--listen-storm-*`); null: off. */
  readonly listenStorm: ListenStormGuard | null;
  /** `${basePath}/push/listen`: the one path served here. */
  readonly listenPath: string;
  /** Listen tokens to check (`--listen-token-secret`); absent or null: none (no cost). */
  readonly listenTokens?: ListenTokens | null;
}

const FORBIDDEN_ORIGIN = new EpushError(
  'forbidden_origin',
  'This origin may not listen here (--cors-origins).',
);
const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
/** Bytes a client may send while its listen is held (pipelined); past it, it is cut. */
const MAX_PIPELINED_BYTES = 64 * 1024;
const SWEEP_MS = 1000;

/**
 * The standalone node's accept loop. Long-polling's cost is the re-poll that follows every
 * answer, a full HTTP request per delivery; node:http spends most of a request's CPU on its
 * request and response objects. So this loop reads `POST /push/listen` straight off the socket
 * (a strict subset of HTTP/1.1, see listen-request-head.ts), answers it with one write, and
 * hands every other connection, bytes included, to node:http for good: the API, SSE,
 * WebSocket upgrades, CORS preflights, and any request it does not fully understand.
 */
export class AcceptLoop implements AcceptLoopOwner {
  readonly server: NetServer;
  /** Connections served here (not handed to node:http). */
  private readonly connections = new Set<AcceptLoopConnection>();
  /** Connections waiting for a request (head or body): their timeouts are swept. */
  private readonly waiting = new Set<AcceptLoopConnection>();
  private readonly sweeper: NodeJS.Timeout;
  private closing = false;
  private readonly requestLinePrefix: Buffer;
  private readonly heads: RawResponseHead;
  private readonly limits: ConnectionLimits;

  constructor(
    private readonly http: HttpServer,
    private readonly service: PushService,
    private readonly cors: CorsPolicy,
    private readonly rejections: RejectionCounter,
    private readonly options: AcceptLoopOptions,
    private readonly log: Logger,
  ) {
    this.requestLinePrefix = Buffer.from(`POST ${options.listenPath} HTTP/1.1\r\n`, 'latin1');
    this.heads = new RawResponseHead(cors);
    this.limits = new ConnectionLimits(options, this.heads, rejections, log);
    this.server = createServer({ noDelay: true }, (socket) => {
      this.accept(socket);
    });
    // node:http starts its header and request timeout checks when it starts listening; it
    // never listens itself here, it is handed connections.
    this.server.once('listening', () => {
      this.http.emit('listening');
    });
    this.sweeper = setInterval(() => {
      this.sweep();
    }, SWEEP_MS);
    this.sweeper.unref();
  }

  /** Every accepted socket still open, the ones handed to node:http included. */
  get openSockets(): number {
    return this.limits.open;
  }

  /** Whether the sockets open (the asking one included) have reached `--max-connections`. */
  get atConnectionLimit(): boolean {
    return this.limits.atConnectionLimit;
  }

  /** Stops accepting; `callback` runs once every connection, either kind, has closed. */
  close(callback?: () => void): void {
    this.closing = true;
    clearInterval(this.sweeper);
    this.server.close(() => callback?.());
    this.http.close();
  }

  /**
   * Closes connections with no request in flight for `minIdleMs` (draining: a long-poll between
   * answer and re-poll is idle for a moment; its re-poll is better told `reconnect` than cut).
   */
  closeIdleConnections(minIdleMs = 0): void {
    const before = Date.now() - minIdleMs;
    for (const connection of this.connections) {
      if (
        connection.phase === Phase.Head &&
        connection.input === null &&
        connection.since <= before
      ) {
        closeAfterWrites(connection.socket);
      }
    }
    this.http.closeIdleConnections();
  }

  closeAllConnections(): void {
    for (const connection of this.connections) connection.socket.destroy();
    this.http.closeAllConnections();
  }

  // --- input ---------------------------------------------------------------------------------

  private accept(socket: Socket): void {
    if (!this.limits.admit(socket)) return;
    const connection = new AcceptLoopConnection(this, socket, Date.now());
    this.connections.add(connection);
    this.waiting.add(connection);
    socket.on('data', connection.onData);
    socket.on('close', connection.onClose);
    socket.on('error', noop); // 'close' follows; a reset peer is no news
  }

  /** @internal */
  receive(connection: AcceptLoopConnection, chunk: Buffer): void {
    if (connection.input === null) {
      connection.input = chunk;
      if (connection.phase === Phase.Head) connection.since = Date.now();
    } else {
      connection.input = Buffer.concat([connection.input, chunk]);
    }
    if (connection.phase === Phase.Listening) {
      if (connection.input.length > MAX_PIPELINED_BYTES) connection.socket.destroy();
      return;
    }
    this.advance(connection);
  }

  /** Consumes buffered input: a head, then a body, then serves the listen. */
  private advance(connection: AcceptLoopConnection): void {
    const input = connection.input;
    if (input === null) return;
    if (connection.phase === Phase.Head) {
      // Anything that does not open with the listen's request line is node:http's at once.
      const { requestLinePrefix } = this;
      const compared = Math.min(input.length, requestLinePrefix.length);
      if (input.compare(requestLinePrefix, 0, compared, 0, compared) !== 0) {
        this.handOff(connection);
        return;
      }
      const end = input.indexOf(HEAD_END);
      // Past the head limit node:http answers 431 (it has the same `maxHeaderSize`).
      if (end < 0 || end > this.options.maxHeadBytes) {
        if (end >= 0 || input.length > this.options.maxHeadBytes) this.handOff(connection);
        return;
      }
      const head = parseListenRequestHead(
        input.toString('latin1', 0, end),
        this.options.listenPath,
        MAX_LISTEN_BODY_BYTES,
      );
      if (head === null) {
        this.handOff(connection);
        return;
      }
      connection.phase = Phase.Body;
      connection.contentLength = head.contentLength;
      connection.origin = head.origin;
      connection.host = head.host;
      connection.input = input.length > end + 4 ? input.subarray(end + 4) : null;
    }
    const body = connection.input ?? EMPTY;
    if (body.length < connection.contentLength) return;
    const rest =
      body.length > connection.contentLength ? body.subarray(connection.contentLength) : null;
    connection.input = rest;
    connection.phase = Phase.Listening;
    connection.fresh = false;
    this.waiting.delete(connection);
    this.serveListen(connection, body.subarray(0, connection.contentLength));
  }

  private serveListen(connection: AcceptLoopConnection, body: Buffer): void {
    const listen = new LongPollConnection(connection, this.service.connections);
    connection.listen = listen;
    if (!this.cors.allowsOrigin(connection.origin, connection.host)) {
      this.failListen(connection, listen, FORBIDDEN_ORIGIN);
      return;
    }
    let request;
    try {
      const tokens = this.options.listenTokens ?? null;
      request =
        (tokens === null ? parsePlainListenBody(body) : null) ??
        parseListenRequest(parseJson(body), tokens);
    } catch (error) {
      this.failListen(connection, listen, error);
      return;
    }
    const delayMs =
      this.options.listenStorm?.delayFor(
        connection,
        Date.now(),
        connection.socket,
        request.from?.seq ?? -1,
      ) ?? 0;
    if (delayMs > 0) {
      this.serveLater(listen, request.pushIds, request.from, delayMs).catch((error: unknown) => {
        this.failListen(connection, listen, error);
      });
      return;
    }
    this.service.listen(request.pushIds, request.from, listen).catch((error: unknown) => {
      this.failListen(connection, listen, error);
    });
  }

  /** Answers a listen that could not be served with its error, unless it was answered already. */
  private failListen(
    connection: AcceptLoopConnection,
    listen: LongPollConnection,
    error: unknown,
  ): void {
    if (listen.settle()) this.respondError(connection, error);
  }

  /**
   * A listen of a storming connection, served `delayMs` late: "from now" is pinned to the head
   * at arrival first, so what is published during the delay is in its answer.
   */
  private async serveLater(
    listen: LongPollConnection,
    pushIds: Parameters<PushService['listen']>[0],
    from: CursorPosition | null,
    delayMs: number,
  ): Promise<void> {
    const pinned = from ?? decodeCursor(await this.service.headCursor());
    await new Promise<void>((resolve) => {
      setTimeout(resolve, delayMs).unref();
    });
    if (listen.closed) return;
    await this.service.listen(pushIds, pinned, listen);
  }

  /** node:http takes the connection, with every byte not consumed yet. */
  private handOff(connection: AcceptLoopConnection): void {
    const { socket } = connection;
    this.connections.delete(connection);
    this.waiting.delete(connection);
    socket.off('data', connection.onData);
    socket.off('close', connection.onClose);
    socket.off('error', noop);
    const input = connection.input;
    connection.input = null;
    if (input !== null) socket.unshift(input);
    this.http.emit('connection', socket);
  }

  /** @internal */
  gone(connection: AcceptLoopConnection): void {
    this.connections.delete(connection);
    this.waiting.delete(connection);
    connection.listen?.peerClosed();
    connection.listen = null;
    connection.input = null;
  }

  /** Idle and slow connections past their time: the same limits node:http applies. */
  private sweep(): void {
    const now = Date.now();
    const { headersTimeoutMs, bodyTimeoutMs, idleTimeoutMs } = this.options;
    for (const connection of this.waiting) {
      const age = now - connection.since;
      if (connection.phase === Phase.Head && connection.input === null) {
        if (age > (connection.fresh ? headersTimeoutMs : idleTimeoutMs))
          connection.socket.destroy();
      } else if (connection.phase === Phase.Body ? age > bodyTimeoutMs : age > headersTimeoutMs) {
        this.waiting.delete(connection);
        this.respondError(
          connection,
          new EpushError(
            'request_timeout',
            'The request did not arrive in full within the time allowed.',
            {
              connection: 'close',
            },
          ),
        );
      }
    }
  }

  // --- output --------------------------------------------------------------------------------

  /** @internal Writes one complete response; the connection then waits for its next request. */
  respond(
    connection: AcceptLoopConnection,
    status: number,
    body: string,
    extra: Readonly<Record<string, string>> | null,
  ): void {
    const { socket } = connection;
    connection.listen = null;
    if (socket.destroyed) return;
    const close = this.closing || extra?.connection === 'close';
    let head = this.heads.of(status, connection.origin);
    if (extra !== null) {
      for (const [name, value] of Object.entries(extra)) {
        if (name !== 'connection') head += `${name}: ${value}\r\n`;
      }
    }
    if (close) head += 'connection: close\r\n';
    socket.write(`${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    if (close) {
      closeAfterWrites(socket);
      return;
    }
    connection.phase = Phase.Head;
    connection.contentLength = 0;
    connection.origin = undefined;
    connection.host = undefined;
    connection.since = Date.now();
    this.waiting.add(connection);
    // A pipelined request waits until the fan-out that answered this one is over.
    if (connection.input !== null) {
      queueMicrotask(() => {
        if (connection.phase === Phase.Head) this.advance(connection);
      });
    }
  }

  /** @internal */
  respondError(connection: AcceptLoopConnection, error: unknown): void {
    if (error instanceof EpushError) {
      this.rejections.count(error.code);
      this.respond(connection, error.status, JSON.stringify(error.toJSON()), error.headers);
    } else {
      this.rejections.count('internal_error');
      const requestId = randomUUID();
      this.log.error({ err: error, url: this.options.listenPath, requestId }, 'request failed');
      this.respond(connection, 500, INTERNAL_ERROR, { 'x-request-id': requestId });
    }
  }
}

const EMPTY = Buffer.alloc(0);
function noop(): void {}

/**
 * Closes once what was written has reached the kernel, without waiting for the peer's FIN (as
 * node:http does): a proxy may keep its end of a pooled connection open.
 */
function closeAfterWrites(socket: Socket): void {
  if (socket.writableLength === 0) {
    socket.destroy();
    return;
  }
  socket.end(() => {
    socket.destroy();
  });
}
