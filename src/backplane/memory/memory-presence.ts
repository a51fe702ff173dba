import type { PushId } from '../../core/push-id.js';
import type { PresenceEntry, PresenceWrite } from '../driver.js';

interface Stored {
  readonly version: number;
  readonly record: string;
  readonly holders: readonly string[];
  /** When the record is forgotten (ms), or Infinity. */
  readonly forgetAt: number;
}

/**
 * Presence records of the memory backplane with their due and holder indexes. Every call is
 * synchronous, so a compare-and-set is atomic by construction.
 */
export class MemoryPresence {
  private readonly records = new Map<PushId, Stored>();
  private readonly due = new Map<PushId, number>();
  private readonly heldBy = new Map<string, Set<PushId>>();

  constructor(private readonly now: () => number) {}

  read(pushIds: readonly PushId[]): Map<PushId, PresenceEntry> {
    const out = new Map<PushId, PresenceEntry>();
    for (const pushId of pushIds) {
      const stored = this.current(pushId);
      if (stored) out.set(pushId, { version: stored.version, record: stored.record });
    }
    return out;
  }

  write(pushId: PushId, expected: number, write: PresenceWrite): number | null {
    const stored = this.current(pushId);
    if ((stored?.version ?? 0) !== expected) return null;
    this.index(pushId, stored?.holders ?? [], write.holders);
    const version = expected + 1;
    const forgetAt = write.keepMs === null ? Infinity : this.now() + write.keepMs;
    this.records.set(pushId, { version, record: write.record, holders: write.holders, forgetAt });
    if (write.due === null) this.due.delete(pushId);
    else this.due.set(pushId, write.due);
    return version;
  }

  dueUntil(until: number, limit: number): PushId[] {
    // One pass without copying the index (it may hold every minted push ID), then a sort of
    // the few that are due.
    const due: [PushId, number][] = [];
    for (const entry of this.due) if (entry[1] <= until) due.push(entry);
    due.sort((a, b) => a[1] - b[1]);
    return due.slice(0, limit).map(([pushId]) => pushId);
  }

  heldByNode(nodeId: string, limit: number): PushId[] {
    return [...(this.heldBy.get(nodeId) ?? [])].slice(0, limit);
  }

  holders(): string[] {
    return [...this.heldBy.keys()];
  }

  /** The record unless its keep time ran out (then it and its indexes are dropped). */
  private current(pushId: PushId): Stored | undefined {
    const stored = this.records.get(pushId);
    if (stored === undefined || stored.forgetAt > this.now()) return stored;
    this.index(pushId, stored.holders, []);
    this.records.delete(pushId);
    this.due.delete(pushId);
    return undefined;
  }

  private index(pushId: PushId, before: readonly string[], after: readonly string[]): void {
    for (const node of before) {
      if (after.includes(node)) continue;
      const set = this.heldBy.get(node);
      set?.delete(pushId);
      if (set?.size === 0) this.heldBy.delete(node);
    }
    for (const node of after) {
      let set = this.heldBy.get(node);
      if (set === undefined) this.heldBy.set(node, (set = new Set()));
      set.add(pushId);
    }
  }
}
