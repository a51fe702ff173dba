import { randomUUID } from 'node:crypto';
import type { Server as HttpServer } from 'node:http';
import { STATUS_CODES } from 'node:http';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import { decodeCursor, type CursorPosition } from '../core/cursor.js';
import { EpushError } from '../core/errors.js';
import type { RejectionCounter } from '../observability/rejections.js';
import type { ConnectionCounter, ListenerConnection } from '../transports/listener-connection.js';
import { normalizePeerAddress, ThrottledWarning, type ListenStormGuard } from './abuse-limits.js';
import type { CorsPolicy } from './cors.js';
import { parseJson } from './json-body.js';
import { parseListenRequestHead } from './listen-request-head.js';
import type { ListenTokens } from './listen-tokens.js';
import type { PushService } from './push-service.js';
import type { Headers } from './respond.js';
import {
  MAX_LISTEN_BODY_BYTES,
  parseListenRequest,
  parsePlainListenBody,
} from './routes/push-routes.js';

export interface HttpFrontOptions {
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** `--max-connections`: most open sockets; past it 503 `too_many_connections` (0 = no limit). */
  readonly maxConnections: number;
  /** `--max-connections-per-ip`: most open sockets per peer address; past it 429 (0 = off). */
  readonly maxConnectionsPerIp: number;
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

const enum Phase {
  /** Waiting for (the rest of) a request head; idle when nothing has arrived yet. */
  Head,
  /** Head parsed, waiting for the body. */
  Body,
  /** The listen is being served or held; input is buffered until it is answered. */
  Listening,
}

/** One accepted socket while the front serves it (until it is handed to node:http). */
class FrontConnection {
  phase = Phase.Head;
  /** Input not consumed yet. */
  input: Buffer | null = null;
  /** When the current phase's clock started (the first byte of a request, or going idle). */
  since: number;
  contentLength = 0;
  origin: string | undefined = undefined;
  host: string | undefined = undefined;
  listen: HeldListen | null = null;
  /** No request has arrived yet: silence counts against the headers timeout, not the idle one. */
  fresh = true;
  /** Listen-storm state (abuse-limits.ts): plain numbers, no allocation per listen. */
  stormServedAt = Number.NEGATIVE_INFINITY;
  stormQuick = 0;
  stormSeq = -1;
  readonly onData = (chunk: Buffer): void => {
    this.front.receive(this, chunk);
  };
  readonly onClose = (): void => {
    this.front.gone(this);
  };

  constructor(
    readonly front: HttpFront,
    readonly socket: Socket,
    now: number,
  ) {
    this.since = now;
  }
}

/** A held `POST /push/listen` on a front connection: one answer ends it. */
class HeldListen implements ListenerConnection {
  readonly transport = 'long-poll' as const;
  readonly streaming = false;
  answered = false;
  private closeCallback: (() => void) | null = null;

  constructor(
    private readonly connection: FrontConnection,
    private readonly counter: ConnectionCounter,
  ) {
    counter.opened('long-poll');
  }

  get closed(): boolean {
    return this.answered || this.connection.socket.destroyed;
  }

  onClose(callback: () => void): void {
    this.closeCallback = callback;
  }

  send(answerJson: string): void {
    if (this.answered) return;
    this.finish();
    this.connection.front.respond(this.connection, 200, answerJson, null);
  }

  fail(error: unknown): void {
    if (this.answered) return;
    this.finish();
    this.connection.front.respondError(this.connection, error);
  }

  /** The peer went away before the answer. */
  gone(): void {
    if (this.answered) return;
    this.answered = true;
    this.counter.closed('long-poll');
    const callback = this.closeCallback;
    this.closeCallback = null;
    callback?.();
  }

  private finish(): void {
    this.answered = true;
    this.closeCallback = null;
    this.counter.closed('long-poll');
  }
}

/**
 * The standalone node's accept loop. Long-polling's cost is the re-poll that follows every
 * answer, a full HTTP request per delivery; node:http spends most of a request's CPU on its
 * request and response objects. So this loop reads `POST /push/listen` straight off the socket
 * (a strict subset of HTTP/1.1, see listen-request-head.ts), answers it with one write, and
 * hands every other connection, bytes included, to node:http for good: the API, SSE,
 * WebSocket upgrades, CORS preflights, and any request it does not fully understand.
 */
export class HttpFront {
  readonly server: NetServer;
  /** Connections served here (not handed to node:http). */
  private readonly connections = new Set<FrontConnection>();
  /** Connections waiting for a request (head or body): their timeouts are swept. */
  private readonly waiting = new Set<FrontConnection>();
  private readonly sweeper: NodeJS.Timeout;
  private readonly headerCache = new Map<string, string>();
  private dateSecond = 0;
  private dateHeader = '';
  private closing = false;
  private sockets = 0;
  /** Open sockets per peer address, only with `maxConnectionsPerIp`; an entry goes at 0. */
  private readonly perIp = new Map<string, number>();
  private readonly connectionLimitWarning: ThrottledWarning;
  private readonly perIpLimitWarning: ThrottledWarning;
  private readonly requestLinePrefix: Buffer;

  constructor(
    private readonly http: HttpServer,
    private readonly service: PushService,
    private readonly cors: CorsPolicy,
    private readonly rejections: RejectionCounter,
    private readonly options: HttpFrontOptions,
    private readonly log: Logger,
  ) {
    this.requestLinePrefix = Buffer.from(`POST ${options.listenPath} HTTP/1.1\r\n`, 'latin1');
    this.connectionLimitWarning = new ThrottledWarning(
      log,
      'connection limit reached (--max-connections): new connections are refused with 503',
    );
    this.perIpLimitWarning = new ThrottledWarning(
      log,
      'per-address connection limit reached (--max-connections-per-ip): refused with 429',
    );
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
    return this.sockets;
  }

  /** Whether the sockets open (the asking one included) have reached `--max-connections`. */
  get atConnectionLimit(): boolean {
    const max = this.options.maxConnections;
    return max > 0 && this.sockets >= max;
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
    const { maxConnections, maxConnectionsPerIp } = this.options;
    if (maxConnections > 0 && this.sockets >= maxConnections) {
      this.connectionLimitWarning.warn({ open: this.sockets, maxConnections });
      this.refuse(socket, TOO_MANY_CONNECTIONS, 'too_many_connections');
      return;
    }
    let peer: string | undefined;
    if (maxConnectionsPerIp > 0 && socket.remoteAddress !== undefined) {
      peer = normalizePeerAddress(socket.remoteAddress);
      const open = this.perIp.get(peer) ?? 0;
      if (open >= maxConnectionsPerIp) {
        this.perIpLimitWarning.warn({ peer, open, maxConnectionsPerIp });
        this.refuse(socket, PER_IP_LIMIT, 'per_ip_connection_limit');
        return;
      }
      this.perIp.set(peer, open + 1);
    }
    this.sockets += 1;
    socket.once('close', () => {
      this.sockets -= 1;
      if (peer !== undefined) {
        const left = (this.perIp.get(peer) ?? 1) - 1;
        if (left > 0) this.perIp.set(peer, left);
        else this.perIp.delete(peer);
      }
    });
    const connection = new FrontConnection(this, socket, Date.now());
    this.connections.add(connection);
    this.waiting.add(connection);
    socket.on('data', connection.onData);
    socket.on('close', connection.onClose);
    socket.on('error', noop); // 'close' follows; a reset peer is no news
  }

  /** @internal */
  receive(connection: FrontConnection, chunk: Buffer): void {
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
  private advance(connection: FrontConnection): void {
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

  private serveListen(connection: FrontConnection, body: Buffer): void {
    const listen = new HeldListen(connection, this.service.connections);
    connection.listen = listen;
    if (!this.cors.allowsOrigin(connection.origin, connection.host)) {
      listen.fail(FORBIDDEN_ORIGIN);
      return;
    }
    let request;
    try {
      const tokens = this.options.listenTokens ?? null;
      request =
        (tokens === null ? parsePlainListenBody(body) : null) ??
        parseListenRequest(parseJson(body), tokens);
    } catch (error) {
      listen.fail(error);
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
        listen.fail(error);
      });
      return;
    }
    this.service.listen(request.pushIds, request.from, listen).catch((error: unknown) => {
      listen.fail(error);
    });
  }

  /**
   * A listen of a storming connection, served `delayMs` late: "from now" is pinned to the head
   * at arrival first, so what is published during the delay is in its answer.
   */
  private async serveLater(
    listen: HeldListen,
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

  /**
   * Refuses a connection at accept with one complete answer, then closes it. Its input is read
   * and dropped meanwhile: closing with unread input would reset the connection, and the peer
   * might lose the answer.
   */
  private refuse(socket: Socket, error: EpushError, reason: string): void {
    this.rejections.count(reason);
    socket.on('error', noop);
    const body = JSON.stringify(error.toJSON());
    let head = this.statusAndHeaders(error.status, undefined);
    for (const [name, value] of Object.entries(error.headers)) head += `${name}: ${value}\r\n`;
    socket.end(`${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.resume();
    socket.setTimeout(REFUSED_LINGER_MS, () => {
      socket.destroy();
    });
  }

  /** node:http takes the connection, with every byte not consumed yet. */
  private handOff(connection: FrontConnection): void {
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
  gone(connection: FrontConnection): void {
    this.connections.delete(connection);
    this.waiting.delete(connection);
    connection.listen?.gone();
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
    connection: FrontConnection,
    status: number,
    body: string,
    extra: Readonly<Record<string, string>> | null,
  ): void {
    const { socket } = connection;
    connection.listen = null;
    if (socket.destroyed) return;
    const close = this.closing || extra?.connection === 'close';
    let head = this.statusAndHeaders(status, connection.origin);
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
  respondError(connection: FrontConnection, error: unknown): void {
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

  /** The status line and every header but Content-Length, as node:http would send them. */
  private statusAndHeaders(status: number, origin: string | undefined): string {
    const key = `${status} ${this.cors.headersKey(origin)}`;
    let cached = this.headerCache.get(key);
    if (cached === undefined) {
      cached = `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Unknown'}\r\n`;
      const headers: Headers = { ...JSON_HEADERS, ...this.cors.headersForOrigin(origin) };
      for (const [name, value] of Object.entries(headers)) cached += `${name}: ${value}\r\n`;
      this.headerCache.set(key, cached); // bounded: statuses × allowed origins
    }
    return `${cached}date: ${this.date()}\r\n`;
  }

  private date(): string {
    const now = Date.now();
    const second = Math.floor(now / 1000);
    if (second !== this.dateSecond) {
      this.dateSecond = second;
      this.dateHeader = new Date(now).toUTCString();
    }
    return this.dateHeader;
  }
}

const EMPTY = Buffer.alloc(0);
/** How long a refused connection may take to read its answer and close. */
const REFUSED_LINGER_MS = 2000;
const TOO_MANY_CONNECTIONS = new EpushError(
  'too_many_connections',
  'This node is at its connection limit; try again shortly (another node may have room).',
  { 'retry-after': '1', connection: 'close' },
);
const PER_IP_LIMIT = new EpushError(
  'rate_limited',
  'Too many connections from your address; close some or try again later.',
  { 'retry-after': '5', connection: 'close' },
);
const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
} as const;
const INTERNAL_ERROR = JSON.stringify({
  error: {
    code: 'internal_error',
    message: 'The server failed to handle this request; the failure has been logged.',
  },
});

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
