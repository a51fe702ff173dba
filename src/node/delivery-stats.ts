import type { NotificationEvent } from '../core/events.js';
import type { Delivery } from '../core/listen-answer.js';

/** The dispatcher's plain counters, read by the metrics at scrape time. */
export interface DispatcherStats {
  delivered: number;
  answers: number;
  /** Sum of publish→answer latency (ms) and its count, for the first metrics. */
  latencyMsSum: number;
}

/**
 * Counts deliveries and their publish→answer latency: plain integers on the hot path, plus one
 * histogram observation per answer that carries notifications (`observeLatency`).
 */
export class DeliveryStats {
  readonly stats: DispatcherStats = { delivered: 0, answers: 0, latencyMsSum: 0 };

  constructor(
    private readonly now: () => number,
    private readonly observeLatency: ((seconds: number) => void) | undefined,
  ) {}

  /** One answer of any kind written to a listener. */
  answered(): void {
    this.stats.answers += 1;
  }

  /** An answer carrying `deliveries` (a backlog, a catch-up, or what a parked listener collected). */
  deliveries(deliveries: readonly Delivery[]): void {
    if (deliveries.length === 0) return;
    const now = this.now();
    this.stats.delivered += deliveries.length;
    for (const { event } of deliveries) this.stats.latencyMsSum += now - event.publishedAt;
    this.observeLatency?.((now - (deliveries[0]?.event.publishedAt ?? now)) / 1000);
  }

  /** A fan-out answer: `count` deliveries of one event. */
  fanout(event: NotificationEvent, count: number): void {
    this.stats.answers += 1;
    this.stats.delivered += count;
    const latencyMs = this.now() - event.publishedAt;
    this.stats.latencyMsSum += latencyMs * count;
    this.observeLatency?.(latencyMs / 1000);
  }
}
