import type { ClusterEvent } from '../core/events.js';
import type { GroupName } from '../core/group-name.js';

/**
 * A push ID's membership history as stored in the NATS `stays` bucket: the SET of its membership
 * events, each `[seq, kind, group]`. Merging two records is a set union keyed by seq, so it is
 * commutative and idempotent: several nodes may apply the same events in any order (and again
 * after a crash) and always reach the same record. Stays are derived by replaying it in seq order.
 */
export type StayEntry = readonly [seq: number, kind: 'a' | 'r' | 'x', group: string];

/** Entries kept per group (the oldest go first); like Redis's last 8 stays, with room to spare. */
const KEEP_PER_GROUP = 16;

export interface Stay {
  readonly joined: number;
  readonly left: number;
}

/** The stay entry a membership event adds, or null for a notification. */
export function stayEntryOf(event: ClusterEvent): StayEntry | null {
  switch (event.type) {
    case 'member-added':
      return [event.seq, 'a', event.group];
    case 'member-removed':
      return [event.seq, 'r', event.group];
    case 'push-id-expired':
      return [event.seq, 'x', ''];
    case 'notification':
      return null;
  }
}

export class StayRecord {
  private readonly entries = new Map<number, StayEntry>();
  private derived: Map<GroupName, Stay[]> | null = null;

  constructor(entries: readonly StayEntry[] = []) {
    for (const entry of entries) this.entries.set(entry[0], entry);
  }

  static parse(json: string | null): StayRecord {
    if (json === null || json === '') return new StayRecord();
    return new StayRecord((JSON.parse(json) as { e: StayEntry[] }).e);
  }

  has(seq: number): boolean {
    return this.entries.has(seq);
  }

  /** Adds an entry; false when it was already there. */
  add(entry: StayEntry): boolean {
    if (this.entries.has(entry[0])) return false;
    this.entries.set(entry[0], entry);
    this.derived = null;
    return true;
  }

  get expired(): boolean {
    for (const entry of this.entries.values()) if (entry[1] === 'x') return true;
    return false;
  }

  /** Stays per group, in seq order; an open stay has `left` = Infinity. */
  stays(): Map<GroupName, Stay[]> {
    if (this.derived) return this.derived;
    const out = new Map<GroupName, Stay[]>();
    const open = new Map<GroupName, number>();
    const close = (group: GroupName, seq: number): void => {
      const joined = open.get(group);
      if (joined === undefined) return;
      open.delete(group);
      const list = out.get(group) ?? [];
      list.push({ joined, left: seq });
      out.set(group, list);
    };
    for (const [seq, kind, group] of this.sorted()) {
      const name = group as GroupName;
      if (kind === 'a' && !open.has(name)) open.set(name, seq);
      else if (kind === 'r') close(name, seq);
      else if (kind === 'x') for (const g of [...open.keys()]) close(g, seq);
    }
    for (const [group, joined] of open) {
      const list = out.get(group) ?? [];
      list.push({ joined, left: Infinity });
      out.set(group, list);
    }
    this.derived = out;
    return out;
  }

  isOpen(group: GroupName): boolean {
    return (
      this.stays()
        .get(group)
        ?.some((s) => s.left === Infinity) ?? false
    );
  }

  openGroups(): GroupName[] {
    return [...this.stays()].filter(([, l]) => l.some((s) => s.left === Infinity)).map(([g]) => g);
  }

  wasMemberAt(group: GroupName, seq: number): boolean {
    return (
      this.stays()
        .get(group)
        ?.some((s) => s.joined < seq && seq < s.left) ?? false
    );
  }

  groupsAt(seq: number): GroupName[] {
    const out: GroupName[] = [];
    for (const [group, list] of this.stays()) {
      if (list.some((s) => s.joined <= seq && seq < s.left)) out.push(group);
    }
    return out;
  }

  /**
   * The group's latest state and the seq it was decided at, for the `members` bucket: a later
   * version always wins there, so stale writers cannot reopen a closed membership.
   */
  memberState(group: GroupName): { open: boolean; version: number } {
    let version = 0;
    for (const [seq, kind, g] of this.entries.values()) {
      if ((g === group || kind === 'x') && seq > version) version = seq;
    }
    return { open: this.isOpen(group), version };
  }

  /** Every group that ever appears in the record. */
  groups(): GroupName[] {
    const out = new Set<GroupName>();
    for (const [, kind, group] of this.entries.values())
      if (kind !== 'x') out.add(group as GroupName);
    return [...out];
  }

  toJson(): string {
    // Bound the record: keep the newest entries of each group (and every expiry mark).
    const perGroup = new Map<string, StayEntry[]>();
    for (const entry of this.sorted()) {
      const list = perGroup.get(entry[2]) ?? [];
      list.push(entry);
      perGroup.set(entry[2], list);
    }
    const kept: StayEntry[] = [];
    for (const [group, list] of perGroup)
      kept.push(...(group === '' ? list : list.slice(-KEEP_PER_GROUP)));
    kept.sort((x, y) => x[0] - y[0]);
    return JSON.stringify({ e: kept });
  }

  private sorted(): StayEntry[] {
    return [...this.entries.values()].sort((x, y) => x[0] - y[0]);
  }
}
