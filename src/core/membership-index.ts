import type { GroupName } from './group-name.js';
import type { PushId } from './push-id.js';

/** One stay of a push ID in a group: member for notifications with `joined < seq < left`. */
interface Stay {
  readonly group: GroupName;
  readonly joined: number;
  left: number;
}

/**
 * Group membership with the history needed to answer "was this push ID a member of that group
 * when notification `seq` was published?" for every seq still in the log's retention window.
 */
export class MembershipIndex {
  private readonly groups = new Map<GroupName, Set<PushId>>();
  private readonly stays = new Map<PushId, Stay[]>();

  /** Returns false when the push ID was already a member. */
  add(group: GroupName, pushId: PushId, seq: number): boolean {
    let members = this.groups.get(group);
    if (!members) {
      members = new Set();
      this.groups.set(group, members);
    }
    if (members.has(pushId)) return false;
    members.add(pushId);
    const stays = this.stays.get(pushId);
    const stay: Stay = { group, joined: seq, left: Infinity };
    if (stays) stays.push(stay);
    else this.stays.set(pushId, [stay]);
    return true;
  }

  /** Returns false when the push ID was not a member. */
  remove(group: GroupName, pushId: PushId, seq: number): boolean {
    const members = this.groups.get(group);
    if (!members?.delete(pushId)) return false;
    if (members.size === 0) this.groups.delete(group);
    for (const stay of this.stays.get(pushId) ?? []) {
      if (stay.group === group && stay.left === Infinity) stay.left = seq;
    }
    return true;
  }

  /** Removes the push ID from every group (expiry); returns the groups it left. */
  removeEverywhere(pushId: PushId, seq: number): GroupName[] {
    const left: GroupName[] = [];
    for (const stay of this.stays.get(pushId) ?? []) {
      if (stay.left === Infinity && this.remove(stay.group, pushId, seq)) left.push(stay.group);
    }
    return left;
  }

  isMember(group: GroupName, pushId: PushId): boolean {
    return this.groups.get(group)?.has(pushId) ?? false;
  }

  members(group: GroupName): PushId[] {
    return [...(this.groups.get(group) ?? [])];
  }

  memberCount(group: GroupName): number {
    return this.groups.get(group)?.size ?? 0;
  }

  get groupCount(): number {
    return this.groups.size;
  }

  /** Current groups of a push ID. */
  groupsOf(pushId: PushId): GroupName[] {
    const out: GroupName[] = [];
    for (const stay of this.stays.get(pushId) ?? [])
      if (stay.left === Infinity) out.push(stay.group);
    return out;
  }

  /** Groups of a push ID just after event `seq` took effect. */
  groupsAt(pushId: PushId, seq: number): GroupName[] {
    const out: GroupName[] = [];
    for (const stay of this.stays.get(pushId) ?? []) {
      if (stay.joined <= seq && seq < stay.left) out.push(stay.group);
    }
    return out;
  }

  /** Whether a notification published at `seq` reached this push ID through `group`. */
  wasMemberAt(group: GroupName, pushId: PushId, seq: number): boolean {
    for (const stay of this.stays.get(pushId) ?? []) {
      if (stay.group === group && stay.joined < seq && seq < stay.left) return true;
    }
    return false;
  }

  /** Forgets stays that ended at or before `seq` (nothing that old can still be read). */
  forgetBefore(seq: number): void {
    for (const [pushId, stays] of this.stays) {
      const kept = stays.filter((stay) => stay.left > seq);
      if (kept.length === 0) this.stays.delete(pushId);
      else if (kept.length !== stays.length) this.stays.set(pushId, kept);
    }
  }

  /** Every stay, for a replica's checkpoint: [pushId, group, joined, left or null if current]. */
  exportStays(): [PushId, GroupName, number, number | null][] {
    const out: [PushId, GroupName, number, number | null][] = [];
    for (const [pushId, stays] of this.stays) {
      for (const stay of stays) {
        out.push([pushId, stay.group, stay.joined, stay.left === Infinity ? null : stay.left]);
      }
    }
    return out;
  }

  /** Restores one exported stay (into an empty index, in export order). */
  importStay(pushId: PushId, group: GroupName, joined: number, left: number | null): void {
    if (left === null) {
      this.add(group, pushId, joined);
      return;
    }
    const stay: Stay = { group, joined, left };
    const stays = this.stays.get(pushId);
    if (stays) stays.push(stay);
    else this.stays.set(pushId, [stay]);
  }

  /** Push IDs that are a member of at least one group now. */
  *currentMembers(): IterableIterator<PushId> {
    for (const [pushId, stays] of this.stays) {
      if (stays.some((stay) => stay.left === Infinity)) yield pushId;
    }
  }
}
