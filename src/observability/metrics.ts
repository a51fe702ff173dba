import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { TRANSPORT_NAMES, type TransportName } from '../core/transport-name.js';

/** Figures the metrics read at scrape time (gauges are pulled, never pushed on the hot path). */
export interface MetricsSource {
  connections(): ReadonlyMap<TransportName, number>;
  listeners(): number;
  backplaneUp(): boolean;
  /** Times `backplaneUp` turned false so far. */
  backplaneOutages(): number;
  /** Seconds of the last delivery-canary round trip; NaN before the first. */
  backplaneRoundTrip(): number;
  delivered(): number;
  /** 1 while this node holds a cluster-wide role (the STOMP sequencer), else 0. */
  backplaneLeader(): boolean;
  /** Bytes written to SSE and WebSocket peers and not yet taken by them. */
  outboundQueuedBytes(): number;
  /** The per-connection budget (`--stream-budget-kb`), in bytes. */
  streamBudgetBytes(): number;
  slowConsumerCloses(): ReadonlyMap<string, number>;
  /** TCP connections open on this node's own server (idle keep-alives included). */
  openSockets(): number;
  /** Resident memory grown since the node started serving, per open connection (bytes). */
  memoryPerConnection(): number;
  /** Requests refused so far, by reason (error code or limit). */
  rejections(): ReadonlyMap<string, number>;
}

/**
 * The Prometheus registry of one node (docs/protocol.md). Counters that change per delivery are read
 * from the dispatcher's plain counters at scrape time, so the hot path pays nothing for them.
 */
export class EpushMetrics {
  readonly registry = new Registry();
  readonly published: Counter<'target'>;
  readonly deliveryLatency: Histogram;
  /** Webhook events by outcome: delivered, failed (an attempt that failed), dropped. */
  readonly webhookEvents: Counter<'outcome'>;

  constructor(source: MetricsSource) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: 'epush_process_' });
    new Gauge({
      name: 'epush_connections',
      help: 'Listener connections held by this node (held long-polls, SSE streams, WebSockets)',
      labelNames: ['transport'],
      registers,
      collect() {
        const counts = source.connections();
        for (const transport of TRANSPORT_NAMES) {
          this.set({ transport }, counts.get(transport) ?? 0);
        }
      },
    });
    new Gauge({
      name: 'epush_listeners',
      help: 'Listens waiting for a notification on this node',
      registers,
      collect() {
        this.set(source.listeners());
      },
    });
    new Gauge({
      name: 'epush_backplane_up',
      help: '1 while the backplane is reachable and delivering, else 0',
      registers,
      collect() {
        this.set(source.backplaneUp() ? 1 : 0);
      },
    });
    new Counter({
      name: 'epush_backplane_outages_total',
      help: 'Times epush_backplane_up turned 0 (readiness red, held listeners sent elsewhere), counted even when it healed between two scrapes',
      registers,
      collect() {
        this.reset();
        this.inc(source.backplaneOutages());
      },
    });
    new Gauge({
      name: 'epush_open_sockets',
      help: 'TCP connections open on this node (listener connections, idle keep-alives, API calls)',
      registers,
      collect() {
        this.set(source.openSockets());
      },
    });
    new Gauge({
      name: 'epush_memory_per_connection_bytes',
      help: 'Resident memory grown since the node started serving, divided by its open connections (an estimate: it includes caches and garbage not yet collected)',
      registers,
      collect() {
        this.set(source.memoryPerConnection());
      },
    });
    new Gauge({
      name: 'epush_outbound_queued_bytes',
      help: 'Bytes queued for SSE and WebSocket peers, not yet taken by them (each capped by --stream-budget-kb)',
      registers,
      collect() {
        this.set(source.outboundQueuedBytes());
      },
    });
    new Gauge({
      name: 'epush_stream_budget_bytes',
      help: 'Unsent output an SSE or WebSocket peer may leave before it is disconnected as too slow',
      registers,
      collect() {
        this.set(source.streamBudgetBytes());
      },
    });
    countsByLabel(
      'epush_slow_consumer_disconnects_total',
      'Streams closed because their peer did not take its output within --stream-budget-kb',
      'transport',
      registers,
      () => source.slowConsumerCloses(),
    );
    countsByLabel(
      'epush_rejected_requests_total',
      'Requests and connections refused by this node, by reason (the error code of the answer, or the limit that cut the connection)',
      'reason',
      registers,
      () => source.rejections(),
    );
    this.webhookEvents = new Counter({
      name: 'epush_webhook_events_total',
      help: 'Presence webhook events sent by this node, by outcome: delivered (a 2xx), failed (an attempt that failed; retried), dropped (given up after the retry window, or a full outbox)',
      labelNames: ['outcome'],
      registers,
    });
    for (const outcome of ['delivered', 'failed', 'dropped'])
      this.webhookEvents.inc({ outcome }, 0);
    new Gauge({
      name: 'epush_backplane_leader',
      help: '1 on the node that sequences the cluster (STOMP backplane), else 0',
      registers,
      collect() {
        this.set(source.backplaneLeader() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'epush_backplane_rtt_seconds',
      help: 'Round trip of the last delivery-canary probe through the backplane',
      registers,
      collect() {
        const rtt = source.backplaneRoundTrip();
        if (!Number.isNaN(rtt)) this.set(rtt);
      },
    });
    new Counter({
      name: 'epush_notifications_delivered_total',
      help: 'Deliveries (notification id, push ID) written to listeners by this node',
      registers,
      collect() {
        this.reset();
        this.inc(source.delivered());
      },
    });
    this.published = new Counter({
      name: 'epush_notifications_published_total',
      help: 'Notifications accepted (202) by this node, by target kind',
      labelNames: ['target'],
      registers,
    });
    this.deliveryLatency = new Histogram({
      name: 'epush_delivery_latency_seconds',
      help: 'Time from publish to the answer that carries the notification (one sample per answer)',
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** A counter per label value, read at scrape time from plain counts kept off the hot path. */
function countsByLabel(
  name: string,
  help: string,
  label: string,
  registers: Registry[],
  read: () => ReadonlyMap<string, number>,
): void {
  const reported = new Map<string, number>();
  new Counter({
    name,
    help,
    labelNames: [label],
    registers,
    collect() {
      for (const [value, count] of read()) {
        const delta = count - (reported.get(value) ?? 0);
        if (delta > 0) this.inc({ [label]: value }, delta);
        reported.set(value, count);
      }
    },
  });
}
