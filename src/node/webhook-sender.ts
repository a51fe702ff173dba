import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Backplane, PresenceEvent, PresenceOutboxSink } from '../backplane/backplane.js';
import type { PushId } from '../core/push-id.js';
import { signWebhook } from '../core/webhook-signature.js';

/** Events per POST. */
const MAX_BATCH = 100;
/** A new batch waits this long for more events (changes often come together). */
const BATCH_WINDOW_MS = 100;
/** A receiver that has not answered within this is a failed attempt (it is retried). */
const ATTEMPT_TIMEOUT_MS = 10_000;
const FIRST_RETRY_MS = 1000;
const MAX_RETRY_MS = 60_000;
/** A batch is retried for this long (the promise is at least 10 minutes), then dropped. */
const GIVE_UP_MS = 60 * 60_000;

export interface WebhookSenderOptions {
  readonly url: string;
  readonly secret: string;
  readonly backplane: Pick<Backplane, 'presenceAck'>;
  readonly count: (outcome: 'delivered' | 'failed' | 'dropped', events: number) => void;
  readonly log: Logger;
  readonly now?: () => number;
  readonly giveUpMs?: number;
  readonly firstRetryMs?: number;
}

interface Item {
  readonly pushId: PushId;
  readonly event: PresenceEvent;
}

interface Batch {
  readonly delivery: string;
  readonly items: readonly Item[];
  readonly body: string;
  readonly firstAt: number;
  attempts: number;
}

/**
 * Sends this node's presence events to the webhook receiver: signed JSON batches, one POST in
 * flight, retried with exponential backoff, each acknowledged event then taken out of its
 * record's outbox (until then another node sends it if this one dies). It runs on its own: a
 * slow, hanging or failing receiver delays only the webhooks, never a listen or a notify.
 */
export class WebhookSender implements PresenceOutboxSink {
  private readonly queue: Item[] = [];
  private current: Batch | null = null;
  private running = false;
  private stopped = false;
  private timer: NodeJS.Timeout | null = null;
  private wake: (() => void) | null = null;
  private readonly inFlight = new AbortController();
  /** Acknowledgements not yet written to the backplane (retried with the next batch). */
  private unacked: Item[] = [];
  private readonly now: () => number;

  constructor(private readonly options: WebhookSenderOptions) {
    this.now = options.now ?? Date.now;
  }

  /** Events waiting (queued, and in the batch being sent). */
  get pending(): number {
    return this.queue.length + (this.current?.items.length ?? 0);
  }

  owned(pushId: PushId, events: readonly PresenceEvent[]): void {
    if (this.stopped) return;
    for (const event of events) this.queue.push({ pushId, event });
    if (this.running) return;
    this.running = true;
    void this.run().finally(() => {
      this.running = false;
    });
  }

  dropped(count: number): void {
    this.options.count('dropped', count);
    this.options.log.warn({ count }, 'webhook events dropped from a full outbox');
  }

  stop(): void {
    this.stopped = true;
    this.inFlight.abort();
    if (this.timer) clearTimeout(this.timer);
    this.wake?.();
  }

  private async run(): Promise<void> {
    while (!this.stopped && (this.current !== null || this.queue.length > 0)) {
      if (this.current === null && this.queue.length < MAX_BATCH) {
        await this.sleep(BATCH_WINDOW_MS);
        if (this.isStopped()) return;
      }
      const batch = (this.current ??= this.nextBatch());
      const ok = await this.attempt(batch);
      if (this.isStopped()) return;
      if (ok) {
        this.options.count('delivered', batch.items.length);
        this.current = null;
        await this.acknowledge(batch.items);
        continue;
      }
      this.options.count('failed', batch.items.length);
      batch.attempts += 1;
      if (this.now() - batch.firstAt >= (this.options.giveUpMs ?? GIVE_UP_MS)) {
        this.options.count('dropped', batch.items.length);
        this.options.log.warn(
          { delivery: batch.delivery, events: batch.items.length },
          'webhook batch dropped: the receiver failed for the whole retry window',
        );
        this.current = null;
        await this.acknowledge(batch.items);
        continue;
      }
      const first = this.options.firstRetryMs ?? FIRST_RETRY_MS;
      const backoff = Math.min(MAX_RETRY_MS, first * 2 ** (batch.attempts - 1));
      await this.sleep(backoff / 2 + Math.random() * (backoff / 2));
    }
  }

  /** Read through a call: `stop()` may have run during an await (no narrowing across it). */
  private isStopped(): boolean {
    return this.stopped;
  }

  private nextBatch(): Batch {
    const items = this.queue.splice(0, MAX_BATCH);
    const events = items.map(({ pushId, event }) => ({
      type: `push_id.${event.state}`,
      pushId,
      at: new Date(event.at).toISOString(),
      id: event.id,
    }));
    return {
      delivery: randomUUID(),
      items,
      body: JSON.stringify({ events }),
      firstAt: this.now(),
      attempts: 0,
    };
  }

  /** One POST; true on a 2xx. Every retry of a batch has the same body and delivery id. */
  private async attempt(batch: Batch): Promise<boolean> {
    const t = Math.floor(this.now() / 1000);
    try {
      const response = await fetch(this.options.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'user-agent': 'epush-webhooks',
          'epush-delivery': batch.delivery,
          'epush-signature': signWebhook(this.options.secret, batch.body, t),
        },
        body: batch.body,
        signal: AbortSignal.any([this.inFlight.signal, AbortSignal.timeout(ATTEMPT_TIMEOUT_MS)]),
        redirect: 'manual',
      });
      await response.body?.cancel();
      return response.status >= 200 && response.status < 300;
    } catch (error) {
      if (!this.stopped) {
        this.options.log.warn(
          { delivery: batch.delivery, err: error },
          'webhook attempt failed; it is retried',
        );
      }
      return false;
    }
  }

  /** Takes sent events out of their outboxes; what fails is retried with the next batch. */
  private async acknowledge(items: readonly Item[]): Promise<void> {
    const all = [...this.unacked, ...items];
    const byPushId = new Map<PushId, string[]>();
    for (const { pushId, event } of all) {
      const ids = byPushId.get(pushId) ?? [];
      ids.push(event.id);
      byPushId.set(pushId, ids);
    }
    try {
      await this.options.backplane.presenceAck(
        [...byPushId].map(([pushId, ids]) => ({ pushId, ids })),
      );
      this.unacked = [];
    } catch {
      // Still in the outboxes: resent only if this node dies before the next acknowledgement.
      this.unacked = all;
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.timer = setTimeout(resolve, ms);
      this.timer.unref();
    });
  }
}
