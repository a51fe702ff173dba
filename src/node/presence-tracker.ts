import type { Backplane } from '../backplane/backplane.js';
import type { PushId } from '../core/push-id.js';

/** Node-level hold transitions written per backplane call. */
const WRITE_BATCH = 1000;

/** Where the tracker reads which push IDs this node holds (the dispatcher). */
export interface HoldSource {
  visitHolds(visit: (pushId: PushId, parkedAt: number | null) => void): void;
}

/**
 * Turns this node's listeners into NODE-level presence transitions: "started holding push ID
 * P" and "stopped holding P at T". A listen never writes anything itself; a periodic tick
 * compares what the dispatcher holds with what was last written, so a long-poll between two
 * polls, a re-poll, or a new listen replacing an older one on this node cost nothing. A hold
 * that ended is written only after `lingerMs` (it may come back), but with the time it really
 * ended, so the grace counts from there.
 */
export class PresenceTracker {
  /** Push IDs written as held by this node. */
  private readonly written = new Set<PushId>();
  /** Written push IDs no longer held here, with when their hold ended. */
  private readonly endedAt = new Map<PushId, number>();
  /** Written push IDs whose listener is parked (answered, its re-poll not here yet), since when. */
  private readonly parkedAt = new Map<PushId, number>();
  private busy = false;
  /** True once this node's beat is in the directory: before, its holds would read as dead. */
  private announced = false;

  constructor(
    private readonly backplane: Backplane,
    private readonly source: HoldSource,
    private readonly nodeId: string,
    private readonly lingerMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Push IDs this node has written as held (for tests and the dashboard). */
  get heldCount(): number {
    return this.written.size;
  }

  /** One comparison and at most one batch of writes; a failed write is retried next tick. */
  async tick(): Promise<void> {
    if (this.busy || !this.backplane.presenceSupported) return;
    this.busy = true;
    try {
      if (!this.announced) {
        const nodes = await this.backplane.nodes().catch(() => []);
        this.announced = nodes.some((node) => node.id === this.nodeId);
        if (!this.announced) return;
      }
      const now = this.now();
      const started: PushId[] = [];
      const seen = new Set<PushId>();
      this.source.visitHolds((pushId, parkedAt) => {
        seen.add(pushId);
        // Parked (answered, its re-poll not here yet) for less than the linger: still held.
        if (parkedAt === null) this.parkedAt.delete(pushId);
        else if (this.written.has(pushId)) this.parkedAt.set(pushId, parkedAt);
        if (parkedAt === null || now - parkedAt < this.lingerMs) {
          this.endedAt.delete(pushId);
          if (!this.written.has(pushId) && started.length < WRITE_BATCH) started.push(pushId);
        } else if (this.written.has(pushId) && !this.endedAt.has(pushId)) {
          this.endedAt.set(pushId, parkedAt);
        }
      });
      for (const pushId of this.written) {
        if (seen.has(pushId) || this.endedAt.has(pushId)) continue;
        // Gone: a parked listener let go ended when it was answered, any other now.
        this.endedAt.set(pushId, this.parkedAt.get(pushId) ?? now);
      }
      const stopped: { pushId: PushId; at: number }[] = [];
      for (const [pushId, at] of this.endedAt) {
        if (now - at < this.lingerMs) continue;
        stopped.push({ pushId, at });
        if (stopped.length >= WRITE_BATCH) break;
      }
      if (started.length === 0 && stopped.length === 0) return;
      await this.backplane.presenceHolds(this.nodeId, started, stopped);
      for (const pushId of started) this.written.add(pushId);
      for (const { pushId } of stopped) {
        this.written.delete(pushId);
        this.endedAt.delete(pushId);
        this.parkedAt.delete(pushId);
      }
    } finally {
      this.busy = false;
    }
  }

  /** Orderly stop: every hold of this node ends now (a dead node's end at its death instead). */
  async releaseAll(): Promise<void> {
    if (!this.backplane.presenceSupported || this.written.size === 0) return;
    const now = this.now();
    const all = [...this.written].map((pushId) => ({
      pushId,
      at: this.endedAt.get(pushId) ?? now,
    }));
    for (let i = 0; i < all.length; i += WRITE_BATCH) {
      await this.backplane.presenceHolds(this.nodeId, [], all.slice(i, i + WRITE_BATCH));
    }
    this.written.clear();
    this.endedAt.clear();
    this.parkedAt.clear();
  }
}
