import type { Backplane } from '../backplane/backplane.js';
import type { PushId } from '../core/push-id.js';

/** Node-level hold transitions written per backplane call. */
const WRITE_BATCH = 1000;

/** Where the tracker reads which push IDs this node holds (the dispatcher). */
export interface HoldSource {
  /** Push IDs whose hold changed since the last call (the first call: every held one). */
  takeChanged(): Iterable<PushId>;
  /** Not held here (undefined), held by a live listen (null), or parked since when. */
  holdOf(pushId: PushId): number | null | undefined;
}

/**
 * Turns this node's listeners into NODE-level presence transitions: "started holding push ID
 * P" and "stopped holding P at T". A listen never writes anything itself; a periodic tick
 * looks at the push IDs whose hold changed since the last one (and the parked ones, whose park
 * may have outlived the linger), so a long-poll between two polls, a re-poll, or a new listen
 * replacing an older one on this node cost nothing, and a tick costs nothing while the held
 * listeners only wait. A hold that ended is written only after `lingerMs` (it may come back),
 * but with the time it really ended, so the grace counts from there.
 */
export class PresenceTracker {
  /** Push IDs written as held by this node. */
  private readonly written = new Set<PushId>();
  /** Written push IDs no longer held here, with when their hold ended. */
  private readonly endedAt = new Map<PushId, number>();
  /** Push IDs whose listener is parked (answered, its re-poll not here yet), since when. */
  private readonly parkedAt = new Map<PushId, number>();
  /** Held push IDs not written yet (a batch is at most WRITE_BATCH). */
  private readonly toStart = new Set<PushId>();
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
      for (const pushId of this.source.takeChanged()) this.examine(pushId, now);
      // A park's end is a matter of time, not of a change: look at the parked ones again.
      for (const pushId of [...this.parkedAt.keys()]) this.examine(pushId, now);
      const started: PushId[] = [];
      for (const pushId of this.toStart) {
        if (started.length >= WRITE_BATCH) break;
        started.push(pushId);
      }
      const stopped: { pushId: PushId; at: number }[] = [];
      for (const [pushId, at] of this.endedAt) {
        if (now - at < this.lingerMs) continue;
        stopped.push({ pushId, at });
        if (stopped.length >= WRITE_BATCH) break;
      }
      if (started.length === 0 && stopped.length === 0) return;
      await this.backplane.presenceHolds(this.nodeId, started, stopped);
      for (const pushId of started) {
        this.written.add(pushId);
        this.toStart.delete(pushId);
      }
      for (const { pushId } of stopped) {
        this.written.delete(pushId);
        this.endedAt.delete(pushId);
        this.parkedAt.delete(pushId);
      }
    } finally {
      this.busy = false;
    }
  }

  /** Brings what is known of `pushId` up to date with how this node holds it now. */
  private examine(pushId: PushId, now: number): void {
    const parkedAt = this.source.holdOf(pushId);
    if (parkedAt === undefined) {
      // Gone: a parked listener let go ended when it was answered, any other now.
      this.toStart.delete(pushId);
      const since = this.parkedAt.get(pushId);
      this.parkedAt.delete(pushId);
      if (this.written.has(pushId) && !this.endedAt.has(pushId)) {
        this.endedAt.set(pushId, since ?? now);
      }
      return;
    }
    if (parkedAt === null || now - parkedAt < this.lingerMs) {
      // Held, or parked for less than the linger: still held.
      if (parkedAt === null) this.parkedAt.delete(pushId);
      else this.parkedAt.set(pushId, parkedAt);
      this.endedAt.delete(pushId);
      if (!this.written.has(pushId)) this.toStart.add(pushId);
      return;
    }
    // Parked past the linger: the hold ended at the answer (a re-poll is a change again).
    this.parkedAt.delete(pushId);
    this.toStart.delete(pushId);
    if (this.written.has(pushId) && !this.endedAt.has(pushId)) this.endedAt.set(pushId, parkedAt);
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
    this.toStart.clear();
  }
}
