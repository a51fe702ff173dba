/**
 * epush mounted into a Node application's own HTTP server and framework (node:http, Express,
 * Fastify, Koa, …): the routes under a base path, the WebSocket upgrade, and an in-process
 * application API. docs/embedding.md shows each framework.
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { EpushConfig } from '../config/flags.js';
import { ConfigError, embeddedConfig, type EmbeddedFlagKey } from '../config/load-config.js';
import { EpushError } from '../core/errors.js';
import type { NotificationId } from '../core/events.js';
import type { PushId } from '../core/push-id.js';
import {
  parseGroupName,
  parsePushId,
  parsePushIdCount,
  serializePayload,
} from '../http/api-input.js';
import type { NodeInfo } from '../backplane/backplane.js';
import { EpushNode } from '../node/epush-node.js';
import { createLogger } from '../observability/logger.js';
import { refuseUpgrade } from '../transports/websocket.js';

/** An option's value: typed as in {@link EpushConfig}, or as the flag's text; lists also as arrays. */
type OptionValue<T> = T extends readonly string[] ? string | readonly string[] : T | string;

/**
 * The flags an embedded epush takes, by their camelCase names (`holdSeconds` for
 * `--hold-seconds`), each optional with the flags table's default. `host`, `port`, `workers`
 * and the server timeouts are not among them: the host application owns its server.
 */
export type EpushEmbedConfig = {
  readonly [K in EmbeddedFlagKey]?: OptionValue<EpushConfig[K]> | undefined;
};

export interface CreateEpushOptions extends EpushEmbedConfig {
  /**
   * Where epush's paths start, e.g. `/push-server` (default `''`: at the root). Every path of
   * docs/protocol.md, §4 and §6 moves under it: `${basePath}/api/…`, `${basePath}/push/listen`,
   * `${basePath}/push/sse`, `${basePath}/push/ws`, `${basePath}/epush.js`, `${basePath}/readyz`, …
   * A browser client connects with `EPush.connect({ url: 'https://app.example.com/push-server' })`.
   */
  readonly basePath?: string | undefined;
  /** Where epush logs (a pino logger, e.g. the host's or a child of it); default: stderr at `logLevel`. */
  readonly logger?: Logger | undefined;
}

/** Express-style continuation: called (without an argument) for requests epush does not serve. */
export type NextFunction = (error?: unknown) => void;

export interface EpushReadiness {
  /** True when the backplane is reachable, the delivery canary comes back and epush is not closing. */
  readonly ready: boolean;
  /** Why not, when not ready (what `GET ${basePath}/readyz` answers). */
  readonly reason: string | null;
}

/** Normalizes a base path: `''` or `/seg/seg` (no trailing slash); throws ConfigError otherwise. */
export function normalizeBasePath(basePath: string | undefined): string {
  if (basePath === undefined || basePath === '' || basePath === '/') return '';
  const trimmed = basePath.replace(/\/+$/, '');
  if (!/^(\/[A-Za-z0-9._~!$&'()*+,;=:@-]+)+$/.test(trimmed) || /\/\.{1,2}(\/|$)/.test(trimmed)) {
    throw new ConfigError(
      `createEpush: basePath must be "" or a path like /push-server (got "${basePath}")`,
    );
  }
  return trimmed;
}

/**
 * An epush node living inside a host application's process: no listening socket of its own.
 * Mount {@link EmbeddedEpush.handler} in the host's request pipeline and
 * {@link EmbeddedEpush.upgrade} (or {@link EmbeddedEpush.attach}) on its server, call
 * {@link EmbeddedEpush.start}, and drive it from the host's code through the in-process API,
 * which validates input exactly as the HTTP API does and fails with the same `EpushError` codes.
 */
export class EmbeddedEpush {
  /** The node underneath (metrics, the backplane, …); its `url` is unavailable (it does not listen). */
  readonly node: EpushNode;
  readonly basePath: string;
  private readonly attached = new WeakSet<Server>();
  private started: Promise<void> | null = null;
  private closed: Promise<void> | null = null;

  constructor(options: CreateEpushOptions = {}) {
    const { basePath, logger, ...flags } = options;
    this.basePath = normalizeBasePath(basePath);
    const config = embeddedConfig(flags);
    const serveApi = config.apiKey.length > 0 || config.insecureDev;
    this.node = new EpushNode(config, {
      log: logger ?? createLogger(config.logLevel, config.nodeId),
      listen: false,
      http: { basePath: this.basePath, serveApi, keylessApiFromLoopbackOnly: true },
    });
  }

  get config(): EpushConfig {
    return this.node.config;
  }

  /**
   * The request handler (node:http signature, also Express middleware): serves epush's routes
   * under `basePath` — the answer may come later (held long-polls, SSE streams) — and calls
   * `next()` for every other request, or answers `not_found` (JSON) when there is no `next`.
   * Mount it before any body parser (one that keeps the parsed body on `req.body`, as
   * `express.json()` does, is tolerated).
   */
  readonly handler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void => {
    if (this.node.http.serve(req, res)) return;
    if (next) next();
    else this.node.http.notFound(req, res);
  };

  /** Whether the request is epush's (a route under `basePath` has its path); for Koa, Fastify. */
  owns(req: IncomingMessage): boolean {
    return this.node.http.owns(req);
  }

  /**
   * The `'upgrade'` listener body: takes `${basePath}/push/ws` and returns true; returns false
   * for any other path, leaving the socket untouched for the host's own WebSocket endpoints.
   */
  readonly upgrade = (req: IncomingMessage, socket: Duplex, head: Buffer): boolean =>
    this.node.http.upgrade(req, socket, head);

  /**
   * Listens for upgrades on the host's server. An upgrade to another path is left to the
   * server's other `'upgrade'` listeners; when epush's is the only one it is refused with 404
   * (node:http would otherwise leave the socket hanging). Attaching twice is harmless.
   */
  attach(server: Server): this {
    if (this.attached.has(server)) return this;
    this.attached.add(server);
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      if (this.upgrade(req, socket, head)) return;
      if (server.listenerCount('upgrade') > 1) return;
      socket.on('error', () => {
        socket.destroy();
      });
      refuseUpgrade(socket, new EpushError('not_found', 'There is no WebSocket endpoint here.'));
    });
    return this;
  }

  /**
   * Connects the backplane and joins the cluster; requests before then are answered 503
   * (`backplane_unavailable` / `not_ready`). Resolves when epush serves; calling it again
   * returns the same promise.
   */
  start(): Promise<void> {
    if (this.closed) return Promise.reject(new Error('this epush instance is closed'));
    this.started ??= this.startNow();
    return this.started;
  }

  /**
   * Drains as `epush start` does on SIGTERM: no new listeners, held long-polls and SSE streams
   * are answered with `"reconnect": true` and their cursor, WebSockets are closed (1012); waits
   * up to `drainSeconds` for them to go, then leaves the cluster and stops the backplane. The
   * host's server and its other connections are left alone. Idempotent.
   */
  close(): Promise<void> {
    this.closed ??= this.closeNow();
    return this.closed;
  }

  /** Whether epush accepts listeners now; the same answer as `GET ${basePath}/readyz`. */
  readiness(): EpushReadiness {
    const reason = this.started ? this.node.notReadyReason() : 'epush has not been started.';
    return { ready: reason === null, reason };
  }

  // --- in-process application API (docs/protocol.md without HTTP) ---------------------------------------

  /** Mints `count` (1–1000, default 1) push IDs; `invalid_count` otherwise. */
  createPushIds(count?: number): Promise<PushId[]> {
    return this.call(() => this.node.createPushIds(parsePushIdCount(count)));
  }

  /** `PUT /api/groups/{group}/members/{pushId}`. */
  addMember(group: string, pushId: string): Promise<void> {
    return this.call(() => this.node.addMember(parseGroupName(group), parsePushId(pushId)));
  }

  /** `DELETE /api/groups/{group}/members/{pushId}`. */
  removeMember(group: string, pushId: string): Promise<void> {
    return this.call(() => this.node.removeMember(parseGroupName(group), parsePushId(pushId)));
  }

  /** `GET /api/groups/{group}/members`. */
  members(group: string): Promise<PushId[]> {
    return this.call(() => this.node.members(parseGroupName(group)));
  }

  /**
   * Notifies every member of `group` with `payload` (a JSON value, serialized once; absent:
   * `null`); resolves with the notification's id, as `{ id }` like the HTTP API and
   * `EpushApiClient`. `invalid_body` for a value JSON cannot carry, `payload_too_large` past `maxPayloadKb`
   * (64 KiB) serialized.
   */
  async notifyGroup(group: string, payload?: unknown): Promise<{ id: NotificationId }> {
    const id = await this.call(() =>
      this.node.notifyGroup(
        parseGroupName(group),
        serializePayload(payload, this.node.config.maxPayloadKb * 1024),
      ),
    );
    return { id };
  }

  /** Notifies one push ID; `push_id_not_found` when it is unknown or expired. */
  async notifyPushId(pushId: string, payload?: unknown): Promise<{ id: NotificationId }> {
    const id = await this.call(() =>
      this.node.notifyPushId(
        parsePushId(pushId),
        serializePayload(payload, this.node.config.maxPayloadKb * 1024),
      ),
    );
    return { id };
  }

  /** The cluster's nodes (`GET /api/cluster`). */
  cluster(): Promise<NodeInfo[]> {
    return this.call(() => this.node.clusterNodes());
  }

  // --- internals -------------------------------------------------------------------------------

  /** Synchronous validation failures become rejections, as over HTTP they become answers. */
  private async call<T>(work: () => Promise<T>): Promise<T> {
    return work();
  }

  private async startNow(): Promise<void> {
    try {
      await this.node.start();
    } catch (error) {
      await this.node.stop().catch(() => undefined);
      throw error;
    }
    const { config, log } = this.node;
    log.info(
      { basePath: this.basePath, nodeId: config.nodeId, backplane: this.node.backplane.kind },
      `epush embedded at ${this.basePath === '' ? '/' : this.basePath} (node ${config.nodeId}, backplane ${this.node.backplane.kind})`,
    );
    if (config.apiKey.length === 0 && !config.insecureDev) {
      log.info('no apiKey: the application API is served in-process only, not over HTTP');
    } else if (config.insecureDev) {
      log.warn('insecureDev: the HTTP application API takes keyless calls from loopback peers');
    }
  }

  private async closeNow(): Promise<void> {
    if (this.started) {
      await this.started.catch(() => undefined);
      await this.node.drain();
    } else {
      await this.node.stop().catch(() => undefined);
    }
  }
}

/**
 * Creates an embedded epush (not yet started). Bad options throw a ConfigError with the CLI's
 * one-line message, e.g. `createEpush: holdSeconds (--hold-seconds) must be an integer from 1
 * to 3600 (got "0")`.
 */
export function createEpush(options: CreateEpushOptions = {}): EmbeddedEpush {
  return new EmbeddedEpush(options);
}
