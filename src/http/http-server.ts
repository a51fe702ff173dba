import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { EpushError } from '../core/errors.js';
import { refuseUpgrade } from '../transports/websocket.js';
import { HttpFront } from './http-front.js';
import type { HttpHandler } from './http-handler.js';

export interface HttpServerOptions {
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly idleTimeoutMs: number;
}

/** Answers for requests node:http rejects before they reach a route. */
const CLIENT_ERRORS: Record<string, EpushError> = {
  HPE_HEADER_OVERFLOW: new EpushError('headers_too_large', 'The request headers are too large.'),
  ERR_HTTP_REQUEST_TIMEOUT: new EpushError(
    'request_timeout',
    'The request did not arrive in full within the time allowed.',
  ),
};
const BAD_HTTP = new EpushError('bad_request', 'The request is not valid HTTP/1.1.');
const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/**
 * The standalone node's server around `handler`: the accept loop serves long-polls itself and
 * gives every other connection to a node:http server, where every path the handler has no route
 * for is `not_found`, and so is an upgrade to any other path than `/push/ws`. Timeouts are set so
 * idle or slow sockets cannot pile up: headers must arrive within `headersTimeoutMs`, the whole
 * request within `bodyTimeoutMs` (a held long-poll is past that point: its request has fully
 * arrived), and an idle keep-alive connection closes after `idleTimeoutMs`.
 */
export function serveHandler(
  handler: HttpHandler,
  options: HttpServerOptions,
  log: Logger,
): HttpFront {
  const server = createServer(
    {
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: options.idleTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
    },
    (req, res) => {
      handler.handle(req, res);
    },
  );

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const failure = CLIENT_ERRORS[error.code ?? ''] ?? BAD_HTTP;
    handler.rejections.count(failure.code);
    const body = JSON.stringify(failure.toJSON());
    socket.end(
      `HTTP/1.1 ${failure.status} ${STATUS_TEXT[failure.status] ?? 'Bad Request'}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  });

  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    if (handler.upgrade(req, socket, head)) return;
    socket.on('error', () => {
      socket.destroy();
    });
    handler.rejections.count('not_found');
    refuseUpgrade(
      socket,
      new EpushError('not_found', `No WebSocket endpoint at ${pathOf(req.url)}; use /push/ws.`),
    );
  });
  return new HttpFront(
    server,
    handler.service,
    handler.cors,
    handler.rejections,
    { ...options, listenPath: `${handler.basePath}/push/listen` },
    log,
  );
}

function pathOf(rawUrl: string | undefined): string {
  try {
    return new URL(rawUrl ?? '/', 'http://epush.invalid').pathname;
  } catch {
    return rawUrl ?? '/';
  }
}
