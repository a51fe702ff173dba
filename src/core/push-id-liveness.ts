import type { PushId } from './push-id.js';

/**
 * Push-ID expiry bookkeeping: a push ID lives until `ttl` after it was last held by a listener
 * (or minted). Pure: the caller passes the clock and runs `sweep`.
 */
export class PushIdLiveness {
  private readonly expiresAt = new Map<PushId, number>();

  constructor(private readonly ttlMs: number) {}

  get size(): number {
    return this.expiresAt.size;
  }

  /** Starts or extends the life of push IDs (minting, or a listener holding them). */
  touch(pushId: PushId, now: number): void {
    this.expiresAt.set(pushId, now + this.ttlMs);
  }

  isLive(pushId: PushId, now: number): boolean {
    const at = this.expiresAt.get(pushId);
    return at !== undefined && at > now;
  }

  /** Removes and returns the push IDs whose time ran out. */
  sweep(now: number): PushId[] {
    const expired: PushId[] = [];
    for (const [pushId, at] of this.expiresAt) {
      if (at <= now) {
        expired.push(pushId);
        this.expiresAt.delete(pushId);
      }
    }
    return expired;
  }

  /** Up to `limit` push IDs whose time ran out (still known: `forget` removes them). */
  due(now: number, limit: number): PushId[] {
    const out: PushId[] = [];
    for (const [pushId, at] of this.expiresAt) {
      if (at > now) continue;
      out.push(pushId);
      if (out.length >= limit) break;
    }
    return out;
  }

  forget(pushId: PushId): void {
    this.expiresAt.delete(pushId);
  }

  /** When the push ID expires (ms since the epoch), if it is known. */
  expiresAtOf(pushId: PushId): number | undefined {
    return this.expiresAt.get(pushId);
  }

  /** Sets an expiry decided elsewhere (a replica following its cluster's sequencer). */
  setExpiresAt(pushId: PushId, at: number): void {
    this.expiresAt.set(pushId, at);
  }

  entries(): IterableIterator<[PushId, number]> {
    return this.expiresAt.entries();
  }
}
