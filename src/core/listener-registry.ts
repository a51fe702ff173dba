import { assertNever, type ClusterEvent } from './events.js';
import type { GroupName } from './group-name.js';
import type { PushId } from './push-id.js';

export interface RegisteredListener {
  readonly pushIds: readonly PushId[];
}

/** Who a notification wakes: each listener with the push IDs of its that the event reaches. */
export type Wakeups<L> = Map<L, PushId[]>;

/**
 * The listeners of this node that are waiting, indexed by push ID and by group, kept current by
 * replaying cluster events in order. A push ID has at most one waiting listener: a newer listen
 * for it displaces the older (the caller answers the displaced one).
 */
export class ListenerRegistry<L extends RegisteredListener> {
  private readonly byPushId = new Map<PushId, L>();
  private readonly groupsOf = new Map<PushId, Set<GroupName>>();
  private readonly waitingInGroup = new Map<GroupName, Set<PushId>>();
  private listenerCount = 0;

  /** Told each push ID whose registration changed (set by whoever follows holds, e.g. presence). */
  onChange: ((pushId: PushId) => void) | null = null;

  get size(): number {
    return this.listenerCount;
  }

  get pushIdCount(): number {
    return this.byPushId.size;
  }

  get(pushId: PushId): L | undefined {
    return this.byPushId.get(pushId);
  }

  pushIds(): IterableIterator<PushId> {
    return this.byPushId.keys();
  }

  /**
   * Registers a listener with the current groups of its push IDs; returns the listeners it
   * displaced (already unregistered).
   */
  add(listener: L, groups: ReadonlyMap<PushId, readonly GroupName[]>): L[] {
    const displaced: L[] = [];
    for (const pushId of listener.pushIds) {
      const older = this.byPushId.get(pushId);
      if (older && older !== listener && !displaced.includes(older)) displaced.push(older);
    }
    for (const older of displaced) this.remove(older);
    for (const pushId of listener.pushIds) {
      this.byPushId.set(pushId, listener);
      this.onChange?.(pushId);
      for (const group of groups.get(pushId) ?? []) this.join(group, pushId);
    }
    this.listenerCount += 1;
    return displaced;
  }

  /** Unregisters a listener; a no-op when it is no longer registered. */
  remove(listener: L): void {
    let removed = false;
    for (const pushId of listener.pushIds) {
      if (this.byPushId.get(pushId) !== listener) continue;
      removed = true;
      this.byPushId.delete(pushId);
      this.onChange?.(pushId);
      for (const group of this.groupsOf.get(pushId) ?? []) this.leave(group, pushId);
    }
    if (removed) this.listenerCount -= 1;
  }

  /**
   * Applies one cluster event in log order: membership events update the index, a notification
   * returns the listeners it wakes. Must see every event, in seq order, to stay exact.
   */
  apply(event: ClusterEvent): Wakeups<L> | null {
    switch (event.type) {
      case 'notification':
        return this.wakeupsFor(event.group, event.pushId);
      case 'member-added':
        if (this.byPushId.has(event.pushId)) this.join(event.group, event.pushId);
        return null;
      case 'member-removed':
        this.leave(event.group, event.pushId);
        return null;
      case 'push-id-expired':
        for (const group of this.groupsOf.get(event.pushId) ?? []) this.leave(group, event.pushId);
        return null;
      default:
        return assertNever(event);
    }
  }

  /** Listeners a notification to `group` or `pushId` wakes, by current membership. */
  wakeupsFor(group: GroupName | null, pushId: PushId | null): Wakeups<L> | null {
    let wakeups: Wakeups<L> | null = null;
    this.visitWakeups(group, pushId, (listener, pushIds) => {
      (wakeups ??= new Map()).set(listener, [...pushIds]);
    });
    return wakeups;
  }

  /**
   * Calls `visit` once per listener a notification wakes, with the push IDs of its that it
   * reaches (do not keep or change the array: it may be the listener's own). The fan-out path:
   * a listener of one push ID, the common case, costs no allocation.
   */
  visitWakeups(
    group: GroupName | null,
    pushId: PushId | null,
    visit: (listener: L, pushIds: readonly PushId[]) => void,
  ): void {
    if (pushId !== null) {
      const listener = this.byPushId.get(pushId);
      if (listener) visit(listener, listener.pushIds.length === 1 ? listener.pushIds : [pushId]);
      return;
    }
    if (group === null) return;
    const waiting = this.waitingInGroup.get(group);
    if (!waiting) return;
    let several: Map<L, PushId[]> | null = null;
    for (const member of waiting) {
      const listener = this.byPushId.get(member);
      if (!listener) continue;
      if (listener.pushIds.length === 1) {
        visit(listener, listener.pushIds);
        continue;
      }
      several ??= new Map();
      const pushIds = several.get(listener);
      if (pushIds) pushIds.push(member);
      else several.set(listener, [member]);
    }
    if (several !== null) for (const [listener, pushIds] of several) visit(listener, pushIds);
  }

  private join(group: GroupName, pushId: PushId): void {
    let groups = this.groupsOf.get(pushId);
    if (!groups) {
      groups = new Set();
      this.groupsOf.set(pushId, groups);
    }
    groups.add(group);
    let waiting = this.waitingInGroup.get(group);
    if (!waiting) {
      waiting = new Set();
      this.waitingInGroup.set(group, waiting);
    }
    waiting.add(pushId);
  }

  private leave(group: GroupName, pushId: PushId): void {
    const groups = this.groupsOf.get(pushId);
    if (groups?.delete(group) && groups.size === 0) this.groupsOf.delete(pushId);
    const waiting = this.waitingInGroup.get(group);
    if (waiting?.delete(pushId) && waiting.size === 0) this.waitingInGroup.delete(group);
  }
}
