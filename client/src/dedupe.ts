import type { PushNotification } from './types.js';

/** The dedupe key of one delivery: a notification reaches each of its push IDs once. */
export function deliveryKey(notification: Pick<PushNotification, 'id' | 'pushId'>): string {
  // Push IDs are URL-safe (no spaces), so the space cannot be ambiguous.
  return `${notification.id} ${notification.pushId}`;
}

/** How many recent deliveries every tab remembers. An answer carries at most 500. */
export const RECENT_CAPACITY = 2000;

/**
 * A bounded memory of recent delivery keys, oldest evicted first. Every tab keeps one, fed by
 * the leader's broadcasts, so whichever tab leads next already knows what was shown and does not
 * show it again when it re-reads from the shared cursor.
 */
export class RecentDeliveries {
  private readonly keys = new Set<string>();

  constructor(private readonly capacity = RECENT_CAPACITY) {}

  get size(): number {
    return this.keys.size;
  }

  has(key: string): boolean {
    return this.keys.has(key);
  }

  /** Remembers `key`; false when it was already remembered (a duplicate). */
  add(key: string): boolean {
    if (this.keys.has(key)) return false;
    this.keys.add(key);
    if (this.keys.size > this.capacity) {
      const oldest = this.keys.values().next();
      if (oldest.done !== true) this.keys.delete(oldest.value);
    }
    return true;
  }

  /** The notifications not seen before, remembering them all. */
  admit(notifications: readonly PushNotification[]): PushNotification[] {
    return notifications.filter((notification) => this.add(deliveryKey(notification)));
  }

  /** The newest `limit` keys, oldest first (what a new leader or a reload needs). */
  newest(limit: number): string[] {
    const all = [...this.keys];
    return all.slice(Math.max(0, all.length - limit));
  }
}
