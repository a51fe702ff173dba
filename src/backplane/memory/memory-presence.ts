import type { PushId } from '../../core/push-id.js';
import type { PresenceEntry, PresenceWrite } from '../driver.js';

interface Stored {
  readonly version: number;
  readonly record: string;
  readonly due: number | null;
  readonly holders: readonly string[];
  /** When the record is forgotten (ms), or null: kept. */
  readonly forgetAt: number | null;
}

/**
 * One stored record as a row: [pushId, version, record, due, holders, forget at]. A STOMP
 * checkpoint carries these, so a replica that starts from it has every record.
 */
export type PresenceRow = readonly [
  PushId,
  number,
  string,
  number | null,
  readonly string[],
  number | null,
];

/**
 * Presence records held in memory with their due and holder indexes: the store of the memory
 * backplane, and every STOMP node's replica of them. Every call is synchronous, so a
 * compare-and-set is atomic by construction.
 */
export class MemoryPresence {
  private readonly records = new Map<PushId, Stored>();
  private readonly due = new Map<PushId, number>();
  private readonly heldBy = new Map<string, Set<PushId>>();
  /** Records that are forgotten at some time (an expired push ID's), for the sweep. */
  private readonly forgettable = new Set<PushId>();

  constructor(private readonly now: () => number) {}

  read(pushIds: readonly PushId[]): Map<PushId, PresenceEntry> {
    const out = new Map<PushId, PresenceEntry>();
    for (const pushId of pushIds) {
      const stored = this.current(pushId);
      if (stored) out.set(pushId, { version: stored.version, record: stored.record });
    }
    return out;
  }

  /** The record's version (0: none), as a compare-and-set judges it. */
  versionOf(pushId: PushId): number {
    return this.current(pushId)?.version ?? 0;
  }

  write(pushId: PushId, expected: number, write: PresenceWrite): number | null {
    if (this.versionOf(pushId) !== expected) return null;
    this.put(pushId, expected + 1, write, this.now());
    return expected + 1;
  }

  /** Stores a record as decided elsewhere (a STOMP batch): `at` is when it was written. */
  put(pushId: PushId, version: number, write: PresenceWrite, at: number): void {
    const forgetAt = write.keepMs === null ? null : at + write.keepMs;
    this.store(pushId, {
      version,
      record: write.record,
      due: write.due,
      holders: write.holders,
      forgetAt,
    });
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

  /** Drops the records whose keep time ran out, read or not. */
  sweep(): void {
    for (const pushId of this.forgettable) this.current(pushId);
  }

  rows(): PresenceRow[] {
    return [...this.records].map(([pushId, s]) => [
      pushId,
      s.version,
      s.record,
      s.due,
      s.holders,
      s.forgetAt,
    ]);
  }

  load(rows: readonly PresenceRow[]): void {
    this.clear();
    for (const [pushId, version, record, due, holders, forgetAt] of rows) {
      this.store(pushId, { version, record, due, holders, forgetAt });
    }
  }

  clear(): void {
    this.records.clear();
    this.due.clear();
    this.heldBy.clear();
    this.forgettable.clear();
  }

  private store(pushId: PushId, stored: Stored): void {
    this.index(pushId, this.records.get(pushId)?.holders ?? [], stored.holders);
    this.records.set(pushId, stored);
    if (stored.due === null) this.due.delete(pushId);
    else this.due.set(pushId, stored.due);
    if (stored.forgetAt === null) this.forgettable.delete(pushId);
    else this.forgettable.add(pushId);
  }

  /** The record unless its keep time ran out (then it and its indexes are dropped). */
  private current(pushId: PushId): Stored | undefined {
    const stored = this.records.get(pushId);
    if (stored === undefined || stored.forgetAt === null || stored.forgetAt > this.now()) {
      return stored;
    }
    this.index(pushId, stored.holders, []);
    this.records.delete(pushId);
    this.due.delete(pushId);
    this.forgettable.delete(pushId);
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
