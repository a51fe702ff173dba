import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { JmsNotifyConnection } from '../backplane/stomp/jms-notify-connection.js';
import type { Backplane, NodeInfo } from '../backplane/backplane.js';
import type { HistoryPage, HistoryTarget } from '../core/history.js';
import type { EpushConfig } from '../config/flags.js';
import type { Cursor, CursorPosition } from '../core/cursor.js';
import { EpushError } from '../core/errors.js';
import type { NotificationId } from '../core/events.js';
import type { GroupName } from '../core/group-name.js';
import type { NotifyOptions } from '../core/idempotency.js';
import { NotificationIdSource } from '../core/notification-id.js';
import { mintPushIds, type PushId } from '../core/push-id.js';
import type { AcceptLoop } from '../http/accept-loop.js';
import { RequestHandler, type RequestHandlerOptions } from '../http/request-handler.js';
import { serveStandalone } from '../http/standalone-server.js';
import type { WebSocketTransport } from '../transports/websocket.js';
import {
  ADMIN_GROUP,
  ADMIN_PERIOD_SECONDS,
  type AdminSnapshot,
  type PushService,
} from '../http/push-service.js';
import { EpushMetrics } from '../observability/metrics.js';
import { ConnectionCounter, type ListenerConnection } from '../transports/listener-connection.js';
import { adminFeedThrough, type AdminFeed } from './admin-feed.js';
import { createBackplane } from './create-backplane.js';
import { DeliveryCanary } from './delivery-canary.js';
import { Dispatcher } from './dispatcher.js';
import { requestHandlerOptions, standaloneServerOptions } from './http-settings.js';
import { NodeFigures } from './node-figures.js';
import { NodePresence } from './node-presence.js';
import { NotifyPublisher } from './notify-publisher.js';
import { PeriodicTasks } from './periodic-tasks.js';
import { keepPushIdsAlive } from './push-id-keeper.js';

/** Most deliveries one listen answer carries. */
const MAX_DELIVERIES_PER_ANSWER = 500;
/** How long an answered long-poll stays registered for its re-poll (a browser re-polls at once). */
const MAX_PARK_MS = 5000;
/** Draining: a connection idle this long has no re-poll coming; it is closed. */
const DRAIN_IDLE_GRACE_MS = 250;

export interface EpushNodeDeps {
  readonly log: Logger;
  /** Defaults to a backplane built from `config.backplane`. */
  readonly backplane?: Backplane;
  /**
   * False: the node opens no listening socket of its own (`host`, `port` and the server
   * timeouts are unused); a host application serves {@link EpushNode.http} from its own server
   * (embedding, see `createEpush`). Default true.
   */
  readonly listen?: boolean;
  /** The HTTP surface's settings that do not come from the configuration (embedding). */
  readonly http?: Pick<
    RequestHandlerOptions,
    'basePath' | 'serveApi' | 'keylessApiFromLoopbackOnly'
  >;
}

/**
 * One epush node: composes the backplane, the dispatcher and the HTTP surface, and owns start,
 * drain and stop, heartbeats and keeping held push IDs alive.
 */
export class EpushNode implements PushService {
  readonly backplane: Backplane;
  readonly dispatcher: Dispatcher;
  readonly connections = new ConnectionCounter();
  readonly metrics: EpushMetrics;
  /** Every route and the WebSocket upgrade, without a server (the host's, when embedded). */
  readonly http: RequestHandler;
  readonly presence: NodePresence;
  /** Null when the node does not listen itself (`listen: false`). */
  private readonly server: AcceptLoop | null;
  private readonly websockets: WebSocketTransport;
  private readonly ids = new NotificationIdSource();
  private readonly notifier: NotifyPublisher;
  private readonly startedAt = new Date().toISOString();
  private readonly tasks: PeriodicTasks;
  private stopped = false;
  /** Resident memory when the node started serving: the base of the per-connection figure. */
  private servingRss = 0;
  private readonly canary: DeliveryCanary;
  private readonly figures: NodeFigures;
  /** Publishes this node's figures to the `/admin` dashboards while any is open. */
  private readonly adminFeed: AdminFeed;
  /** `--jms-notify`: the JMS notify queue on a connection of its own. */
  private jms: JmsNotifyConnection | null = null;

  constructor(
    readonly config: EpushConfig,
    private readonly deps: EpushNodeDeps,
  ) {
    this.backplane = deps.backplane ?? createBackplane(config);
    this.tasks = new PeriodicTasks(deps.log);
    this.dispatcher = new Dispatcher(this.backplane, {
      holdMs: config.holdSeconds * 1000,
      maxDeliveriesPerAnswer: MAX_DELIVERIES_PER_ANSWER,
      // Within half a TTL, so a push ID cannot expire unseen while its listener is parked.
      parkMs: Math.min(MAX_PARK_MS, Math.floor((config.pushIdTtl * 1000) / 2)),
      observeLatency: (seconds) => {
        this.metrics.deliveryLatency.observe(seconds);
      },
    });
    this.canary = new DeliveryCanary(
      this.backplane,
      this.dispatcher,
      config.canarySeconds * 1000,
      deps.log,
    );
    this.figures = new NodeFigures({
      config,
      backplane: this.backplane,
      dispatcher: this.dispatcher,
      connections: this.connections,
      canary: this.canary,
      openSockets: () => this.openSockets(),
      rejections: () => this.http.rejections.counts,
      servingRss: () => this.servingRss,
    });
    this.metrics = new EpushMetrics(this.figures.metricsSource());
    this.presence = new NodePresence(this, config);
    this.notifier = new NotifyPublisher(this.backplane, this.ids, (target) => {
      this.metrics.published.inc({ target });
    });
    this.http = new RequestHandler(
      this,
      { ...requestHandlerOptions(config), ...deps.http },
      deps.log,
    );
    this.websockets = this.http.websockets;
    this.adminFeed = adminFeedThrough(
      this.backplane,
      () => this.ids.next(),
      () => this.figures.adminSample(this.metrics),
      deps.log,
    );
    this.server =
      deps.listen === false
        ? null
        : serveStandalone(this.http, standaloneServerOptions(config), deps.log);
  }

  get log(): Logger {
    return this.deps.log;
  }

  /** The bound address, e.g. `http://127.0.0.1:8080`. */
  get url(): string {
    const address = (this.server?.server.address() ?? null) as AddressInfo | null;
    if (!address) throw new Error('the node is not listening');
    const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
    return `http://${host}:${address.port}`;
  }

  async start(): Promise<void> {
    this.backplane.attachNotifyIngress?.(this, this.log);
    await this.backplane.start(this.dispatcher);
    if (this.config.jmsNotify !== '') {
      this.jms = new JmsNotifyConnection(this.config.jmsNotify, this, this.log);
      this.jms.start();
    }
    const head = await this.backplane.head();
    this.dispatcher.start(head.seq);
    const { server } = this;
    if (server) {
      await new Promise<void>((resolve, reject) => {
        const listening = server.server;
        listening.once('error', reject);
        listening.listen({ host: this.config.host, port: this.config.port, backlog: 65535 }, () => {
          listening.off('error', reject);
          resolve();
        });
      });
    }
    this.tasks.every(this.config.heartbeatSeconds * 1000, () => this.heartbeat());
    keepPushIdsAlive(this.tasks, this.backplane, this.dispatcher, this.config.pushIdTtl * 1000);
    await this.heartbeat();
    this.canary.start();
    this.adminFeed.start();
    this.servingRss = process.memoryUsage.rss();
    const g = this.backplane.guarantees;
    this.log.info(
      { backplane: this.backplane.kind, guarantees: g },
      `backplane ${this.backplane.kind}: ${g.summary}`,
    );
    if (server) {
      // The default follows the open-files limit: say what it came to, and what to raise.
      const max = this.config.maxConnections;
      this.log.info(
        { maxConnections: max, maxConnectionsPerIp: this.config.maxConnectionsPerIp },
        max === 0
          ? 'connections: no limit (--max-connections 0)'
          : `connections: at most ${max} open at once (--max-connections; the default is the open-files limit less 256: raise "ulimit -n" for more)`,
      );
    }
  }

  /**
   * SIGTERM: refuse new listeners, answer held ones with `reconnect`, stop accepting, and wait
   * for in-flight requests up to the drain time. Resolves when the node can exit.
   */
  async drain(): Promise<void> {
    const { server } = this;
    let closer: NodeJS.Timeout | undefined;
    // Closed first, so the reconnect answers below also end their connections.
    let closed = new Promise<void>((resolve) => {
      server?.close(() => {
        resolve();
      });
    });
    this.dispatcher.drain();
    this.websockets.closeAll();
    void this.adminFeed.stop();
    if (server) {
      // Sockets whose held listen was just answered become idle a moment later: keep closing them.
      closer = setInterval(() => {
        server.closeIdleConnections(DRAIN_IDLE_GRACE_MS);
      }, 50);
    } else {
      // The host's server is not ours to close: wait until no listener connection is left
      // (held long-polls answered, SSE streams ended, WebSocket close handshakes done).
      closed = new Promise<void>((resolve) => {
        closer = setInterval(() => {
          if (this.connections.total === 0) resolve();
        }, 50);
      });
    }
    const deadline = new Promise<void>((resolve) => {
      setTimeout(resolve, this.config.drainSeconds * 1000).unref();
    });
    await Promise.race([closed, deadline]);
    clearInterval(closer);
    await this.stop();
  }

  /** TCP connections on this node's server; embedded, its listener connections. */
  private openSockets(): number {
    return this.server?.openSockets ?? this.connections.total;
  }

  /** Stops at once: open connections are cut. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.tasks.stopAll();
    this.canary.stop();
    await this.jms?.stop();
    await this.adminFeed.stop();
    this.dispatcher.stop();
    this.websockets.closeAll();
    if (this.server) {
      this.server.closeAllConnections();
      this.server.close();
    } else {
      // The host's connections cannot be cut: answer held listens (reconnect) so none hangs.
      this.dispatcher.drain();
    }
    await this.presence.stop();
    await this.backplane.leave(this.config.nodeId).catch(() => undefined);
    await this.backplane.stop();
  }

  // --- PushService ---------------------------------------------------------------------------

  async createPushIds(count: number): Promise<PushId[]> {
    this.requireBackplane();
    const pushIds = mintPushIds(count);
    await this.backplane.register(pushIds);
    return pushIds;
  }

  addMember(group: GroupName, pushId: PushId): Promise<void> {
    this.requireBackplane();
    return this.backplane.addMember(group, pushId);
  }

  removeMember(group: GroupName, pushId: PushId): Promise<void> {
    this.requireBackplane();
    return this.backplane.removeMember(group, pushId);
  }

  members(group: GroupName): Promise<PushId[]> {
    this.requireBackplane();
    return this.backplane.members(group);
  }

  notifyGroup(
    group: GroupName,
    payloadJson: string,
    options?: NotifyOptions,
  ): Promise<NotificationId> {
    this.requireBackplane();
    return this.notifier.notify({ kind: 'group', group }, payloadJson, options);
  }

  notifyPushId(
    pushId: PushId,
    payloadJson: string,
    options?: NotifyOptions,
  ): Promise<NotificationId> {
    this.requireBackplane();
    return this.notifier.notify({ kind: 'push-id', pushId }, payloadJson, options);
  }

  history(
    target: HistoryTarget,
    since: CursorPosition | null,
    limit: number,
  ): Promise<HistoryPage> {
    this.requireBackplane();
    return this.backplane.history(target, since, limit);
  }

  async clusterNodes(): Promise<NodeInfo[]> {
    this.requireBackplane();
    const nodes = await this.backplane.nodes();
    // This node's own figure is live; the others' are as of their last heartbeat.
    return nodes.map((node) =>
      node.id === this.config.nodeId ? { ...node, connections: this.connections.total } : node,
    );
  }

  listen(
    pushIds: readonly PushId[],
    from: CursorPosition | null,
    connection: ListenerConnection,
  ): Promise<void> {
    return this.dispatcher.listen(pushIds, from, connection);
  }

  notReadyReason(): string | null {
    if (this.dispatcher.isDraining) return 'This node is draining.';
    if (!this.backplane.isUp()) return 'The backplane is unreachable.';
    if (!this.dispatcher.isDelivering) {
      return 'The backplane is reachable but the delivery canary does not come back.';
    }
    if (!this.dispatcher.isUp) return 'The backplane is unreachable.';
    // The asking connection counts: a probe on the last free slot already sees red.
    if (this.server?.atConnectionLimit === true) {
      return `This node is at its connection limit (--max-connections ${this.config.maxConnections}); new connections go elsewhere.`;
    }
    return null;
  }

  metricsText(): Promise<{ contentType: string; body: string }> {
    return this.metrics.render();
  }

  async headCursor(): Promise<Cursor> {
    return (await this.backplane.head()).cursor;
  }

  async adminSnapshot(): Promise<AdminSnapshot> {
    const [nodes, sample] = await Promise.all([
      this.clusterNodes(),
      this.figures.adminSample(this.metrics),
    ]);
    return {
      nodes,
      sample,
      periodSeconds: ADMIN_PERIOD_SECONDS,
      group: ADMIN_GROUP,
      backplane: this.backplane.kind,
    };
  }

  // --- internals -----------------------------------------------------------------------------

  private requireBackplane(): void {
    if (!this.backplane.isUp()) {
      throw new EpushError(
        'backplane_unavailable',
        'The backplane is unreachable; try again shortly.',
        { 'retry-after': '1' },
      );
    }
  }

  /** Seconds of the last canary round trip through the backplane (NaN before the first). */
  get backplaneRoundTrip(): number {
    return this.canary.roundTripSeconds;
  }

  private heartbeat(): Promise<void> {
    return this.backplane.heartbeat({
      id: this.config.nodeId,
      connections: this.connections.total,
      startedAt: this.startedAt,
    });
  }
}
