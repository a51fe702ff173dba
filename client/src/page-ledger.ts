import { RecentDeliveries, deliveryKey } from './dedupe.js';
import type { PushNotification, StorageLike } from './types.js';

/** A reload resumes from the page's cursor only if the page was alive this recently. */
export const RESUME_FRESH_MS = 60_000;
/** How many of this page's delivery keys survive a reload (~20 KiB). */
export const PAGE_SHOWN_LIMIT = 512;

/**
 * What THIS page's views were shown, in the page's sessionStorage (one tab, this origin), so a
 * reload of the page neither misses nor repeats a notification. Only the page knows: a
 * notification the leader (or the hub frame) handed over as the page was unloading may never
 * have reached a view, while the shared cursor already moved past it. So the page resumes
 * from its own cursor (a `since` when it registers again) and dedupes with its own keys.
 * Best effort: without sessionStorage a reload resumes from the shared cursor, as before.
 */
export class PageLedger {
  private readonly shown = new RecentDeliveries();
  private cursor: string | null = null;
  private savedAt = 0;
  private readonly cursorKey: string;
  private readonly shownKey: string;

  constructor(
    private readonly storage: StorageLike | null,
    key: string,
  ) {
    this.cursorKey = `${key}:page-cursor`;
    this.shownKey = `${key}:page-shown`;
    this.load();
  }

  /**
   * The cursor this page had seen everything up to, if it was alive within `RESUME_FRESH_MS`
   * of `now` (null otherwise, or without storage).
   */
  resumeCursor(now: number): string | null {
    return this.cursor !== null && now - this.savedAt <= RESUME_FRESH_MS ? this.cursor : null;
  }

  /** The notifications to this page's push IDs not shown here before, remembering them. */
  admit(
    notifications: readonly PushNotification[],
    isOwn: (pushId: string) => boolean,
  ): PushNotification[] {
    return notifications.filter(
      (notification) => isOwn(notification.pushId) && this.shown.add(deliveryKey(notification)),
    );
  }

  /** After the views ran: every notification up to `cursor` was shown (`changed`: new keys). */
  record(cursor: string | null, changed: boolean, now: number): void {
    if (cursor !== null) this.cursor = cursor;
    this.savedAt = now;
    if (!this.storage) return;
    try {
      this.storage.setItem(this.cursorKey, JSON.stringify({ cursor: this.cursor, at: now }));
      if (changed) {
        this.storage.setItem(this.shownKey, JSON.stringify(this.shown.newest(PAGE_SHOWN_LIMIT)));
      }
    } catch {
      // Quota or a storage that went away: a reload resumes from the shared cursor.
    }
  }

  private load(): void {
    if (!this.storage) return;
    try {
      const saved: unknown = JSON.parse(this.storage.getItem(this.cursorKey) ?? 'null');
      const keys: unknown = JSON.parse(this.storage.getItem(this.shownKey) ?? '[]');
      if (typeof saved === 'object' && saved !== null) {
        const { cursor, at } = saved as Record<string, unknown>;
        if (typeof cursor === 'string' && typeof at === 'number') {
          this.cursor = cursor;
          this.savedAt = at;
        }
      }
      if (Array.isArray(keys)) {
        for (const key of keys) if (typeof key === 'string') this.shown.add(key);
      }
    } catch {
      // Unreadable: start empty.
    }
  }
}
