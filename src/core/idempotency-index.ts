import type { ClusterEvent, NotificationId } from './events.js';

interface Held {
  readonly id: NotificationId;
  readonly fingerprint: string;
  readonly seq: number;
  readonly at: number;
}

/**
 * The idempotency keys of the notifications appended within retention, for the backplanes
 * whose state lives in memory (the memory store, the STOMP replica). Fed from the events
 * themselves (they carry their stamp), so a replica rebuilt from the log knows the same keys.
 */
export class IdempotencyIndex {
  /** In order of append, so the oldest go first. */
  private readonly held = new Map<string, Held>();

  constructor(private readonly retentionMs: number) {}

  /** Records the stamp of a notification event (other events are ignored). */
  note(event: ClusterEvent, at: number): void {
    if (event.type !== 'notification' || event.idem === undefined) return;
    const before = this.held.get(event.idem.key);
    // Only a key reused past its retention names a new notification.
    if (before !== undefined && before.at > at - this.retentionMs) return;
    this.held.delete(event.idem.key);
    this.held.set(event.idem.key, {
      id: event.id,
      fingerprint: event.idem.fingerprint,
      seq: event.seq,
      at,
    });
  }

  /** The first notification with `key`, if it was appended within retention of `now`. */
  get(key: string, now: number): Held | undefined {
    const held = this.held.get(key);
    return held !== undefined && held.at > now - this.retentionMs ? held : undefined;
  }

  forgetOld(now: number): void {
    for (const [key, { at }] of this.held) {
      if (at > now - this.retentionMs) break;
      this.held.delete(key);
    }
  }

  clear(): void {
    this.held.clear();
  }
}
