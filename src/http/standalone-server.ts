import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { EpushError } from '../core/errors.js';
import { refuseUpgrade } from '../transports/websocket.js';
import { AcceptLoop } from './accept-loop.js';
import type { RequestHandler } from './request-handler.js';
import { sendError } from './respond.js';

export interface StandaloneServerOptions {
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** `--max-connections` (0 = no limit). */
  readonly maxConnections: number;
  /** `--max-connections-per-ip` (0 = off). */
  readonly maxConnectionsPerIp: number;
  /** `--max-header-kb` in bytes: the accept loop's head limit and node:http's `maxHeaderSize`. */
  readonly maxHeadBytes: number;
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
const NO_HOST = new EpushError('bad_request', 'An HTTP/1.1 request needs a Host header.', {
  connection: 'close',
});
const BAD_EXPECT = new EpushError(
  'expectation_failed',
  'The only expectation this server meets is "Expect: 100-continue".',
  { connection: 'close' },
);
const NO_CONNECT = new EpushError(
  'method_not_allowed',
  'CONNECT is not served here: epush is not a proxy.',
);
const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  405: 'Method Not Allowed',
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
export function serveStandalone(
  handler: RequestHandler,
  options: StandaloneServerOptions,
  log: Logger,
): AcceptLoop {
  const server = createServer(
    {
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: options.idleTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
      maxHeaderSize: options.maxHeadBytes,
      // Checked below, so the refusal has the JSON error shape (node:http's is a bare 400).
      requireHostHeader: false,
    },
    (req, res) => {
      if (req.httpVersion === '1.1' && req.headers.host === undefined) {
        handler.rejections.count(NO_HOST.code);
        sendError(res, NO_HOST);
        return;
      }
      handler.handle(req, res);
    },
  );

  // An Expect other than 100-continue: node:http's own answer is a bare 417.
  server.on('checkExpectation', (_req, res) => {
    handler.rejections.count(BAD_EXPECT.code);
    sendError(res, BAD_EXPECT);
  });

  // CONNECT: without a listener node:http closes the connection without a word.
  server.on('connect', (_req, socket: Socket) => {
    socket.on('error', () => {
      socket.destroy();
    });
    handler.rejections.count(NO_CONNECT.code);
    writeRawError(socket, NO_CONNECT);
  });

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const failure = CLIENT_ERRORS[error.code ?? ''] ?? BAD_HTTP;
    handler.rejections.count(failure.code);
    writeRawError(socket, failure);
  });

  server.on('upgrade', (req, socket: Socket, head: Buffer) => {
    if (req.httpVersion === '1.1' && req.headers.host === undefined) {
      socket.on('error', () => {
        socket.destroy();
      });
      handler.rejections.count(NO_HOST.code);
      writeRawError(socket, NO_HOST);
      return;
    }
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
  return new AcceptLoop(
    server,
    handler.service,
    handler.cors,
    handler.rejections,
    {
      ...options,
      listenPath: `${handler.basePath}/push/listen`,
      listenStorm: handler.listenStorm,
      listenTokens: handler.listenTokens,
    },
    log,
  );
}

/** Answers `failure` (JSON error shape) straight on the socket, then closes it. */
function writeRawError(socket: Socket, failure: EpushError): void {
  const body = JSON.stringify(failure.toJSON());
  socket.end(
    `HTTP/1.1 ${failure.status} ${STATUS_TEXT[failure.status] ?? 'Bad Request'}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
      `Connection: close\r\n\r\n${body}`,
  );
}

function pathOf(rawUrl: string | undefined): string {
  try {
    return new URL(rawUrl ?? '/', 'http://epush.invalid').pathname;
  } catch {
    return rawUrl ?? '/';
  }
}
