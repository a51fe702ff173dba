import type { GroupName } from './group-name.js';
import { MembershipHistory } from './membership-history.js';
import type { PushId } from './push-id.js';

/**
 * Group membership held in memory (the memory backplane, a STOMP replica): the members of each
 * group, and each push ID's MembershipHistory to answer "was this push ID a member of that group
 * when notification `seq` was published?" for every seq still in the log's retention window.
 */
export class MembershipIndex {
  private readonly groups = new Map<GroupName, Set<PushId>>();
  private readonly histories = new Map<PushId, MembershipHistory>();

  /** Returns false when the push ID was already a member. */
  add(group: GroupName, pushId: PushId, seq: number): boolean {
    if (!this.historyOf(pushId).join(group, seq)) return false;
    let members = this.groups.get(group);
    if (!members) {
      members = new Set();
      this.groups.set(group, members);
    }
    members.add(pushId);
    return true;
  }

  /** Returns false when the push ID was not a member. */
  remove(group: GroupName, pushId: PushId, seq: number): boolean {
    if (!this.histories.get(pushId)?.leave(group, seq)) return false;
    this.dropMember(group, pushId);
    return true;
  }

  /** Removes the push ID from every group (expiry); returns the groups it left. */
  removeEverywhere(pushId: PushId, seq: number): GroupName[] {
    const left = this.histories.get(pushId)?.leaveAll(seq) ?? [];
    for (const group of left) this.dropMember(group, pushId);
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
    return this.histories.get(pushId)?.openGroups() ?? [];
  }

  /** The push ID's history, or null when it never joined a group (or it was forgotten). */
  history(pushId: PushId): MembershipHistory | null {
    return this.histories.get(pushId) ?? null;
  }

  /** Groups of a push ID just after event `seq` took effect. */
  groupsAt(pushId: PushId, seq: number): GroupName[] {
    return this.histories.get(pushId)?.groupsAt(seq) ?? [];
  }

  /** Whether a notification published at `seq` reached this push ID through `group`. */
  wasMemberAt(group: GroupName, pushId: PushId, seq: number): boolean {
    return this.histories.get(pushId)?.wasMemberAt(group, seq) ?? false;
  }

  /** Forgets stays that ended at or before `seq` (nothing that old can still be read). */
  forgetBefore(seq: number): void {
    for (const [pushId, history] of this.histories) {
      if (history.forgetBefore(seq)) this.histories.delete(pushId);
    }
  }

  /** Every stay, for a replica's checkpoint: [pushId, group, joined, left or null if current]. */
  exportStays(): [PushId, GroupName, number, number | null][] {
    const out: [PushId, GroupName, number, number | null][] = [];
    for (const [pushId, history] of this.histories) {
      for (const [group, stay] of history.entries()) {
        out.push([pushId, group, stay.joined, stay.left === Infinity ? null : stay.left]);
      }
    }
    return out;
  }

  /** Restores one exported stay (into an empty index, in export order). */
  importStay(pushId: PushId, group: GroupName, joined: number, left: number | null): void {
    this.historyOf(pushId).restore(group, { joined, left: left ?? Infinity });
    if (left === null) {
      let members = this.groups.get(group);
      if (!members) {
        members = new Set();
        this.groups.set(group, members);
      }
      members.add(pushId);
    }
  }

  /** Push IDs that are a member of at least one group now. */
  *currentMembers(): IterableIterator<PushId> {
    for (const [pushId, history] of this.histories) {
      if (history.openGroups().length > 0) yield pushId;
    }
  }

  private historyOf(pushId: PushId): MembershipHistory {
    let history = this.histories.get(pushId);
    if (!history) {
      history = new MembershipHistory();
      this.histories.set(pushId, history);
    }
    return history;
  }

  private dropMember(group: GroupName, pushId: PushId): void {
    const members = this.groups.get(group);
    if (!members?.delete(pushId)) return;
    if (members.size === 0) this.groups.delete(group);
  }
}
