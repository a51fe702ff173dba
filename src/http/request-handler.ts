import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { randomUUID } from 'node:crypto';
import { EpushError } from '../core/errors.js';
import { MAX_PAYLOAD_BYTES } from '../core/limits.js';
import { RejectionCounter } from '../observability/rejections.js';
import { WebSocketTransport } from '../transports/websocket.js';
import { ListenStormGuard, type ListenStormOptions } from './abuse-limits.js';
import { ApiKeyAuth } from './auth.js';
import { CorsPolicy } from './cors.js';
import { IcepushEndpoints, type IcepushOptions } from './icepush/icepush-endpoints.js';
import { ListenTokens, type ListenTokenOptions } from './listen-tokens.js';
import type { PushService } from './push-service.js';
import { sendError } from './respond.js';
import { Router, type RouteHandler } from './router.js';
import { registerAdminRoutes } from './routes/admin-routes.js';
import { registerApiRoutes } from './routes/api-routes.js';
import { registerHistoryRoutes } from './routes/history-routes.js';
import { registerClientAssetRoutes } from './routes/client-asset-routes.js';
import { registerPresenceRoutes } from './routes/presence-routes.js';
import { registerOpsRoutes } from './routes/ops-routes.js';
import { registerPushRoutes } from './routes/push-routes.js';

export interface RequestHandlerOptions {
  readonly apiKeys: readonly string[];
  readonly insecureDev: boolean;
  /**
   * Whether `/api/*` is served at all (default true). An embedded epush without keys and
   * without `insecureDev` is driven through its in-process API only; `/api/*` is then left to
   * the host application.
   */
  readonly serveApi?: boolean;
  /** Keyless API calls (`insecureDev`) only from loopback peers (embedded: no bind to check). */
  readonly keylessApiFromLoopbackOnly?: boolean;
  readonly corsOrigins: readonly string[];
  /** Unsent output past which an SSE or WebSocket peer is disconnected as too slow. */
  readonly streamBudgetBytes: number;
  /** WebSocket ping period (half-open sockets are dropped after two). */
  readonly pingMs: number;
  /**
   * Prefix of every epush path (normalized: `''`, or `/a/b` without a trailing slash), e.g.
   * `/push-server` serves `/push-server/push/listen`, `/push-server/epush.js`, … A browser
   * client then connects with `url: 'https://host/push-server'`.
   */
  readonly basePath?: string;
  /** Where refused requests are counted (the node's metrics read it); a fresh one by default. */
  readonly rejections?: RejectionCounter;
  /** `--max-payload-kb` in bytes (at most SPEC's 64 KiB, the default). */
  readonly maxPayloadBytes?: number;
  /** `--listen-storm-*`; absent or a backoff of 0: detection off. */
  readonly listenStorm?: ListenStormOptions;
  /**
   * Signed listen tokens (`--listen-token-secret`, `--require-listen-tokens`,
   * `--listen-token-ttl`); off without secrets.
   */
  readonly listenTokens?: Omit<ListenTokenOptions, 'now'>;
  /** `--icepush`: ICEpush's browser protocol on every path ending in its endpoints' names. */
  readonly icepush?: Omit<IcepushOptions, 'maxPayloadBytes'> | null;
}

const PARSE_BASE = 'http://epush.invalid';

/** The request target, with Express's `originalUrl` preferred (it strips a mount path from `url`). */
function rawUrlOf(req: IncomingMessage): string {
  const original = (req as IncomingMessage & { originalUrl?: unknown }).originalUrl;
  return typeof original === 'string' ? original : (req.url ?? '/');
}

function parseTarget(rawUrl: string): URL | null {
  try {
    return new URL(rawUrl, PARSE_BASE);
  } catch {
    return null;
  }
}

/**
 * Every epush route (application API, browser protocol, ops, client assets) and the WebSocket
 * upgrade, without a server: the standalone node wraps it in its own node:http server, an
 * embedding host calls it from its own (SPEC surface unchanged, under `basePath`).
 */
export class RequestHandler {
  readonly websockets: WebSocketTransport;
  readonly basePath: string;
  readonly cors: CorsPolicy;
  /** The API keys and their scopes (`--api-key`). */
  readonly auth: ApiKeyAuth;
  /** Requests refused, by error code (`epush_rejected_requests_total`). */
  readonly rejections: RejectionCounter;
  /** Mints and checks listen tokens; null when no secret is configured (every path skips it). */
  readonly listenTokens: ListenTokens | null;
  /** Listen-storm detection, shared with the accept loop; null when off. */
  readonly listenStorm: ListenStormGuard | null;
  private readonly router = new Router();
  /** ICEpush's endpoints; null without `--icepush`. */
  private readonly icepush: IcepushEndpoints | null;

  constructor(
    readonly service: PushService,
    options: RequestHandlerOptions,
    private readonly log: Logger,
  ) {
    this.basePath = options.basePath ?? '';
    this.cors = new CorsPolicy(options.corsOrigins);
    this.rejections = options.rejections ?? new RejectionCounter();
    this.auth = new ApiKeyAuth(
      options.apiKeys,
      options.insecureDev,
      options.keylessApiFromLoopbackOnly ?? false,
    );
    this.listenTokens = listenTokensOf(options.listenTokens);
    this.listenStorm =
      options.listenStorm === undefined || options.listenStorm.backoffMs === 0
        ? null
        : new ListenStormGuard(options.listenStorm, this.rejections, log);
    if (options.serveApi ?? true)
      registerApiRoutes(
        this.router,
        service,
        this.auth,
        this.listenTokens,
        options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES,
      );
    if ((options.serveApi ?? true) && service.presence)
      registerPresenceRoutes(this.router, service.presence, this.auth);
    if (options.serveApi ?? true) registerHistoryRoutes(this.router, service, this.auth);
    // The dashboard authenticates like the API: without either, /admin is the host's path.
    if (options.serveApi ?? true)
      registerAdminRoutes(this.router, service, this.auth, this.basePath);
    registerPushRoutes(
      this.router,
      service,
      this.cors,
      options.streamBudgetBytes,
      this.listenTokens,
      this.listenStorm,
    );
    this.icepush =
      options.icepush === undefined || options.icepush === null
        ? null
        : new IcepushEndpoints(service, this.auth, {
            ...options.icepush,
            maxPayloadBytes: options.maxPayloadBytes ?? MAX_PAYLOAD_BYTES,
          });
    registerOpsRoutes(this.router, service);
    registerClientAssetRoutes(this.router, options.corsOrigins);
    this.websockets = new WebSocketTransport(service, this.cors, this.rejections, {
      budgetBytes: options.streamBudgetBytes,
      pingMs: options.pingMs,
      listenTokens: this.listenTokens,
    });
  }

  /** Whether a route of epush has this request's path (under `basePath`), whatever the method. */
  owns(req: IncomingMessage): boolean {
    const path = this.localPath(parseTarget(rawUrlOf(req)));
    return path !== null && (this.router.has(path) || this.isIcepush(path));
  }

  /**
   * Serves `req` when one of epush's routes has its path and returns true; otherwise returns
   * false having touched neither `req` nor `res`. The answer itself may come later (a held
   * long-poll, an SSE stream); failures are answered with the JSON error shape.
   */
  serve(req: IncomingMessage, res: ServerResponse): boolean {
    const url = parseTarget(rawUrlOf(req));
    const path = this.localPath(url);
    if (url === null || path === null) return false;
    const { icepush } = this;
    if (icepush !== null && this.isIcepush(path)) {
      const requestId = requestIdOf(req);
      res.setHeader('x-request-id', requestId);
      this.run(req, res, path, requestId, () => icepush.serve(req, res, url)).catch(
        (error: unknown) => {
          this.log.error({ err: error, url: req.url, requestId }, 'request failed');
        },
      );
      return true;
    }
    let found: { handler: RouteHandler; params: string[] } | null;
    try {
      found = this.router.find(req.method ?? 'GET', path);
    } catch (error) {
      // A known path with another method: 405 with Allow.
      this.fail(req, res, error, path, requestIdOf(req));
      return true;
    }
    if (found === null) return false;
    const { handler, params } = found;
    const requestId = requestIdOf(req);
    res.setHeader('x-request-id', requestId);
    if (this.log.isLevelEnabled('debug')) logWhenDone(this.log, req, res, requestId);
    this.run(req, res, path, requestId, () => handler({ req, res, params, url })).catch(
      (error: unknown) => {
        this.log.error({ err: error, url: req.url, requestId }, 'request failed');
      },
    );
    return true;
  }

  /** Serves `req`, answering `not_found` (JSON) for a path epush has no route for. */
  handle(req: IncomingMessage, res: ServerResponse): void {
    if (!this.serve(req, res)) this.notFound(req, res);
  }

  /** Answers `not_found` with the JSON error shape (CORS headers on browser paths). */
  notFound(req: IncomingMessage, res: ServerResponse): void {
    const rawUrl = rawUrlOf(req);
    const url = parseTarget(rawUrl);
    const error =
      url === null
        ? new EpushError('not_found', 'The request target is not a valid path.')
        : new EpushError('not_found', `There is no ${url.pathname} here.`);
    const browser = rawUrl.startsWith(`${this.basePath}/push/`);
    this.rejections.count(error.code);
    sendError(res, error, browser ? this.cors.headersFor(req) : {});
  }

  /**
   * Takes a WebSocket upgrade for `${basePath}/push/ws` (accepted, or refused with the JSON
   * error) and returns true; any other path returns false and the socket is left untouched.
   */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean {
    if (this.localPath(parseTarget(req.url ?? '/')) !== '/push/ws') return false;
    this.websockets.accept(req, socket, head);
    return true;
  }

  private isIcepush(path: string): boolean {
    return this.icepush !== null && IcepushEndpoints.owns(path);
  }

  /** The path inside epush, or null when the target is not under `basePath`. */
  private localPath(url: URL | null): string | null {
    if (url === null) return null;
    const { pathname } = url;
    if (this.basePath === '') return pathname;
    if (!pathname.startsWith(`${this.basePath}/`)) return null;
    return pathname.slice(this.basePath.length);
  }

  private async run(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    requestId: string,
    work: () => Promise<void> | void,
  ): Promise<void> {
    try {
      await work();
    } catch (error) {
      this.fail(req, res, error, path, requestId);
    }
  }

  private fail(
    req: IncomingMessage,
    res: ServerResponse,
    error: unknown,
    path: string,
    requestId: string,
  ): void {
    if (error instanceof EpushError) {
      this.rejections.count(error.code);
    } else {
      this.rejections.count('internal_error');
      this.log.error({ err: error, url: rawUrlOf(req), requestId }, 'unexpected failure');
    }
    const headers = path.startsWith('/push/') ? this.cors.headersFor(req) : {};
    sendError(res, error, { ...headers, 'x-request-id': requestId });
  }
}

/** Listen tokens when a secret is set; requiring them without one would refuse every listen. */
function listenTokensOf(options: Omit<ListenTokenOptions, 'now'> | undefined): ListenTokens | null {
  if (options === undefined || options.secrets.length === 0) {
    if (options?.required === true) {
      throw new Error('requireListenTokens needs at least one listenTokenSecret');
    }
    return null;
  }
  return new ListenTokens(options);
}

/** The caller's `X-Request-Id` when it is a sane token (a proxy's), else a fresh one. */
function requestIdOf(req: IncomingMessage): string {
  const offered = req.headers['x-request-id'];
  return typeof offered === 'string' && /^[\w.:@/+=-]{1,128}$/.test(offered)
    ? offered
    : randomUUID();
}

/** The access log line (debug level): one per request, when its answer is done or cut. */
function logWhenDone(
  log: Logger,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): void {
  const started = performance.now();
  res.once('close', () => {
    log.debug(
      {
        requestId,
        method: req.method,
        url: rawUrlOf(req),
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 10) / 10,
        remote: req.socket.remoteAddress,
        complete: res.writableFinished,
      },
      'request',
    );
  });
}
