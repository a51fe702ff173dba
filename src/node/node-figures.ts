import type { Backplane } from '../backplane/backplane.js';
import type { EpushConfig } from '../config/flags.js';
import type { AdminSample } from '../http/push-service.js';
import type { EpushMetrics, MetricsSource } from '../observability/metrics.js';
import type { ConnectionCounter } from '../transports/listener-connection.js';
import type { DeliveryCanary } from './delivery-canary.js';
import type { Dispatcher } from './dispatcher.js';

/** What a node reads its figures from. */
export interface FigureSources {
  readonly config: EpushConfig;
  readonly backplane: Backplane;
  readonly dispatcher: Dispatcher;
  readonly connections: ConnectionCounter;
  readonly canary: DeliveryCanary;
  /** TCP connections on the node's server; embedded, its listener connections. */
  openSockets(): number;
  /** Requests refused so far, by reason. */
  rejections(): ReadonlyMap<string, number>;
  /** Resident memory when the node started serving; 0 before. */
  servingRss(): number;
}

/**
 * What a node reports about itself, read from the same sources for `/metrics` and for the
 * `/admin` dashboard's samples, so the two never disagree. Everything is pulled when asked.
 */
export class NodeFigures {
  constructor(private readonly sources: FigureSources) {}

  /** The gauges' sources for the node's Prometheus registry. */
  metricsSource(): MetricsSource {
    const { config, backplane, dispatcher, connections, canary } = this.sources;
    return {
      connections: () => connections.byTransport,
      listeners: () => dispatcher.listenerCount,
      backplaneUp: () => this.backplaneUp(),
      backplaneOutages: () => dispatcher.outageCount,
      backplaneRoundTrip: () => canary.roundTripSeconds,
      delivered: () => dispatcher.stats.delivered,
      backplaneLeader: () => backplane.isLeader?.() ?? false,
      outboundQueuedBytes: () => connections.queuedBytes(),
      streamBudgetBytes: () => config.streamBudgetKb * 1024,
      slowConsumerCloses: () => connections.slowConsumerCloses,
      openSockets: () => this.sources.openSockets(),
      rejections: () => this.sources.rejections(),
      memoryPerConnection: () => {
        const open = this.sources.openSockets();
        const base = this.sources.servingRss();
        if (open === 0 || base === 0) return 0;
        return Math.max(0, process.memoryUsage.rss() - base) / open;
      },
    };
  }

  /** This node's figures for the `/admin` dashboard. */
  async adminSample(metrics: EpushMetrics): Promise<AdminSample> {
    const { config, backplane, dispatcher, connections, canary } = this.sources;
    const counts = connections.byTransport;
    const published = (await metrics.published.get()).values.reduce(
      (sum, { value }) => sum + value,
      0,
    );
    const rtt = canary.roundTripSeconds;
    return {
      node: config.nodeId,
      at: Date.now(),
      connections: {
        'long-poll': counts.get('long-poll') ?? 0,
        sse: counts.get('sse') ?? 0,
        websocket: counts.get('websocket') ?? 0,
      },
      listeners: dispatcher.listenerCount,
      listening: dispatcher.heldPushIdCount,
      openSockets: this.sources.openSockets(),
      published,
      delivered: dispatcher.stats.delivered,
      backplane: {
        up: this.backplaneUp(),
        rttSeconds: Number.isNaN(rtt) ? null : rtt,
        leader: backplane.isLeader?.() ?? false,
      },
      rssBytes: process.memoryUsage.rss(),
    };
  }

  private backplaneUp(): boolean {
    return this.sources.dispatcher.isUp && this.sources.backplane.isUp();
  }
}
