import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { EpushError } from '../core/errors.js';
import { ApiKeyAuth } from './auth.js';
import { CorsPolicy } from './cors.js';
import type { PushService } from './push-service.js';
import { sendError } from './respond.js';
import { Router } from './router.js';
import { registerApiRoutes } from './routes/api-routes.js';
import { registerClientAssetRoutes } from './routes/client-asset-routes.js';
import { registerOpsRoutes } from './routes/ops-routes.js';
import { registerPushRoutes } from './routes/push-routes.js';
import { WebSocketTransport } from '../transports/websocket.js';

export interface HttpOptions {
  readonly apiKeys: readonly string[];
  readonly insecureDev: boolean;
  readonly corsOrigins: readonly string[];
  readonly headersTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly idleTimeoutMs: number;
  /** Unsent output past which an SSE or WebSocket peer is disconnected as too slow. */
  readonly streamBudgetBytes: number;
  /** WebSocket ping period (half-open sockets are dropped after two). */
  readonly pingMs: number;
}

export interface HttpSurface {
  readonly server: Server;
  readonly websockets: WebSocketTransport;
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
 * The HTTP surface on plain node:http: one router for the application API, the browser
 * protocol and the ops endpoints. Timeouts are set so idle or slow sockets cannot pile up:
 * headers must arrive within `headersTimeoutMs`, the whole request within `bodyTimeoutMs`
 * (a held long-poll is past that point: its request has fully arrived), and an idle keep-alive
 * connection closes after `idleTimeoutMs`.
 */
export function createHttpServer(
  service: PushService,
  options: HttpOptions,
  log: Logger,
): HttpSurface {
  const router = new Router();
  const cors = new CorsPolicy(options.corsOrigins);
  registerApiRoutes(router, service, new ApiKeyAuth(options.apiKeys, options.insecureDev));
  registerPushRoutes(router, service, cors, options.streamBudgetBytes);
  registerOpsRoutes(router, service);
  registerClientAssetRoutes(router);

  const server = createServer(
    {
      headersTimeout: options.headersTimeoutMs,
      requestTimeout: options.bodyTimeoutMs,
      keepAliveTimeout: options.idleTimeoutMs,
      connectionsCheckingInterval: Math.min(1000, options.headersTimeoutMs),
    },
    (req, res) => {
      handle(req, res).catch((error: unknown) => {
        log.error({ err: error, url: req.url }, 'request failed');
      });
    },
  );

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const isBrowserPath = rawUrl.startsWith('/push/');
    try {
      let url: URL;
      try {
        url = new URL(rawUrl, 'http://epush.invalid');
      } catch {
        throw new EpushError('not_found', 'The request target is not a valid path.');
      }
      const { handler, params } = router.match(req.method ?? 'GET', url.pathname);
      await handler({ req, res, params, url });
    } catch (error) {
      if (!(error instanceof EpushError))
        log.error({ err: error, url: rawUrl }, 'unexpected failure');
      sendError(res, error, isBrowserPath ? cors.headersFor(req) : {});
    }
  }

  server.on('clientError', (error: NodeJS.ErrnoException, socket: Socket) => {
    if (!socket.writable || error.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const failure = CLIENT_ERRORS[error.code ?? ''] ?? BAD_HTTP;
    const body = JSON.stringify(failure.toJSON());
    socket.end(
      `HTTP/1.1 ${failure.status} ${STATUS_TEXT[failure.status] ?? 'Bad Request'}\r\n` +
        `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Connection: close\r\n\r\n${body}`,
    );
  });

  const websockets = new WebSocketTransport(server, service, cors, {
    budgetBytes: options.streamBudgetBytes,
    pingMs: options.pingMs,
  });
  return { server, websockets };
}
