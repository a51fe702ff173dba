import type { GroupName } from './group-name.js';

/** One stay of a push ID in a group: a member for the events with `joined < seq < left`. */
export interface Stay {
  readonly joined: number;
  /** The seq of the event that ended the stay; `Infinity` while it lasts. */
  readonly left: number;
}

/**
 * Stays kept per group and push ID, the newest first to survive. Every backplane keeps the same
 * number (the Redis scripts too), so a reader far behind gets the same answer everywhere: a push
 * ID that joined and left one group more than this often within the retention window is no
 * longer known to have been a member during its oldest stays.
 */
export const STAYS_PER_GROUP = 8;

/**
 * The membership history of ONE push ID: its stays per group. It answers "was this push ID a
 * member of that group when event `seq` was published?" for any seq in the retention window,
 * and "which groups was it in just after `seq`?". Every backplane stores this one model; its
 * text form (`encodeStays`) is what the Redis scripts and the NATS records hold.
 */
export class MembershipHistory {
  private readonly stays = new Map<GroupName, Stay[]>();

  /** Opens a stay at `seq`; false when the push ID is already a member. */
  join(group: GroupName, seq: number): boolean {
    const list = this.stays.get(group);
    if (list === undefined) {
      this.stays.set(group, [{ joined: seq, left: Infinity }]);
      return true;
    }
    if (list.at(-1)?.left === Infinity) return false;
    list.push({ joined: seq, left: Infinity });
    if (list.length > STAYS_PER_GROUP) list.splice(0, list.length - STAYS_PER_GROUP);
    return true;
  }

  /** Closes the open stay at `seq`; false when the push ID was not a member. */
  leave(group: GroupName, seq: number): boolean {
    const list = this.stays.get(group);
    const last = list?.at(-1);
    if (list === undefined || last?.left !== Infinity) return false;
    list[list.length - 1] = { joined: last.joined, left: seq };
    return true;
  }

  /** Closes every open stay at `seq` (expiry); returns the groups left. */
  leaveAll(seq: number): GroupName[] {
    const left: GroupName[] = [];
    for (const group of this.openGroups()) if (this.leave(group, seq)) left.push(group);
    return left;
  }

  isMember(group: GroupName): boolean {
    return this.stays.get(group)?.at(-1)?.left === Infinity;
  }

  openGroups(): GroupName[] {
    const out: GroupName[] = [];
    for (const [group, list] of this.stays) if (list.at(-1)?.left === Infinity) out.push(group);
    return out;
  }

  /** Whether a notification to `group` published at `seq` reached this push ID. */
  wasMemberAt(group: GroupName, seq: number): boolean {
    for (const stay of this.stays.get(group) ?? []) {
      if (stay.joined < seq && seq < stay.left) return true;
    }
    return false;
  }

  /** The groups this push ID was in just after event `seq` took effect. */
  groupsAt(seq: number): GroupName[] {
    const out: GroupName[] = [];
    for (const [group, list] of this.stays) {
      if (list.some((stay) => stay.joined <= seq && seq < stay.left)) out.push(group);
    }
    return out;
  }

  /** Forgets stays that ended at or before `seq`; true when nothing is left. */
  forgetBefore(seq: number): boolean {
    for (const [group, list] of this.stays) {
      const kept = list.filter((stay) => stay.left > seq);
      if (kept.length === 0) this.stays.delete(group);
      else if (kept.length !== list.length) this.stays.set(group, kept);
    }
    return this.stays.size === 0;
  }

  get isEmpty(): boolean {
    return this.stays.size === 0;
  }

  /** Every stay, oldest first per group. */
  *entries(): IterableIterator<[GroupName, Stay]> {
    for (const [group, list] of this.stays) for (const stay of list) yield [group, stay];
  }

  /** Restores one stay (in `entries` order), as read from a checkpoint or a backplane. */
  restore(group: GroupName, stay: Stay): void {
    const list = this.stays.get(group);
    if (list === undefined) this.stays.set(group, [stay]);
    else list.push(stay);
  }

  /** `group → "joined,left;joined,left;joined,"` (the last one open), as the backplanes store it. */
  encode(): Map<GroupName, string> {
    const out = new Map<GroupName, string>();
    for (const [group, list] of this.stays) out.set(group, encodeStays(list));
    return out;
  }

  /**
   * Reads the stored form back: pairs of group name and stays text. Text that is not a list of
   * stays (a damaged or foreign value) is ignored for that group rather than trusted.
   */
  static decode(pairs: Iterable<readonly [GroupName, string]>): MembershipHistory {
    const history = new MembershipHistory();
    for (const [group, text] of pairs) {
      const list = decodeStays(text);
      if (list !== null && list.length > 0) history.stays.set(group, list);
    }
    return history;
  }
}

export function encodeStays(list: readonly Stay[]): string {
  return list.map((s) => `${s.joined},${s.left === Infinity ? '' : s.left}`).join(';');
}

const STAY = /^(\d{1,15}),(\d{1,15})?$/;

/** Parses stays text; null when any part of it is not a stay. */
export function decodeStays(text: string): Stay[] | null {
  const list: Stay[] = [];
  for (const part of text.split(';')) {
    if (part === '') continue;
    const match = STAY.exec(part);
    if (match === null) return null;
    list.push({
      joined: Number(match[1]),
      left: match[2] === undefined ? Infinity : Number(match[2]),
    });
  }
  return list;
}
