import type { GroupName } from '../../core/group-name.js';
import type { MembershipHistory } from '../../core/membership-history.js';
import type { PushId } from '../../core/push-id.js';
import type { BackplaneGuarantees, NodeInfo } from '../backplane.js';
import type {
  AppendOnceOutcome,
  BackplaneDriver,
  Beat,
  ChangeOutcome,
  DriverLink,
  LogEntry,
  LogHead,
  MembershipChange,
  PresenceEntry,
  PresenceWrite,
  StampedDraft,
} from '../driver.js';
import type { EventDraft } from '../../core/events.js';
import { windowEntries, type MemoryStore } from './memory-store.js';

export const MEMORY_GUARANTEES: BackplaneGuarantees = {
  multiNode: false,
  survivesNodeLoss: false,
  survivesBackplaneRestart: false,
  exactResume: true,
  summary: 'single process; exact resume while the process lives; everything is lost when it exits',
};

/**
 * One node's connection to a MemoryStore. Every call completes synchronously (the promises are
 * already settled), so a change and its event are atomic by construction.
 */
export class MemoryDriver implements BackplaneDriver {
  readonly kind = 'memory';
  readonly vendor = 'the memory backplane';
  readonly guarantees = MEMORY_GUARANTEES;
  private link: DriverLink | null = null;

  constructor(private readonly store: MemoryStore) {}

  connect(link: DriverLink): Promise<void> {
    this.link = link;
    this.store.links.add(link);
    link.link(true);
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.link) this.store.links.delete(this.link);
    this.link = null;
    return Promise.resolve();
  }

  isUp(): boolean {
    return true;
  }

  head(): Promise<LogHead> {
    const { log, epoch } = this.store;
    return Promise.resolve({ epoch, seq: log.headSeq, firstSeq: log.oldestResumableSeq + 1 });
  }

  append(draft: EventDraft): Promise<number> {
    return Promise.resolve(this.store.append(draft).seq);
  }

  /** Synchronous, like every call here: the check and the append cannot interleave. */
  appendOnce(draft: StampedDraft): Promise<AppendOnceOutcome> {
    const held = this.store.idempotency.get(draft.idem.key, this.store.now());
    if (held) {
      return Promise.resolve({
        kind: 'seen',
        record: { id: held.id, fingerprint: held.fingerprint },
      });
    }
    return Promise.resolve({ kind: 'appended', seq: this.store.append(draft).seq });
  }

  read(first: number, last: number): Promise<LogEntry[]> {
    return Promise.resolve(windowEntries(this.store.log, first, last));
  }

  trim(): Promise<void> {
    this.store.trim();
    return Promise.resolve();
  }

  sendProbe(token: string): Promise<void> {
    this.link?.probe(token);
    return Promise.resolve();
  }

  change(change: MembershipChange): Promise<ChangeOutcome> {
    const { membership, liveness } = this.store;
    const now = this.store.now();
    switch (change.type) {
      case 'member-added':
        if (!liveness.isLive(change.pushId, now)) return settled({ kind: 'not-live' });
        if (membership.isMember(change.group, change.pushId)) return settled({ kind: 'unchanged' });
        break;
      case 'member-removed':
        if (!membership.isMember(change.group, change.pushId))
          return settled({ kind: 'unchanged' });
        break;
      case 'push-id-expired':
        if (liveness.isLive(change.pushId, now)) return settled({ kind: 'unchanged' });
        liveness.forget(change.pushId);
        if (membership.groupsOf(change.pushId).length === 0) return settled({ kind: 'unchanged' });
        break;
    }
    const seq = this.store.append(change).seq;
    if (change.type === 'member-added') membership.add(change.group, change.pushId, seq);
    else if (change.type === 'member-removed') membership.remove(change.group, change.pushId, seq);
    else membership.removeEverywhere(change.pushId, seq);
    return settled({ kind: 'appended', seq });
  }

  histories(pushIds: readonly PushId[]): Promise<Map<PushId, MembershipHistory>> {
    const out = new Map<PushId, MembershipHistory>();
    for (const pushId of pushIds) {
      const history = this.store.membership.history(pushId);
      if (history) out.set(pushId, history);
    }
    return Promise.resolve(out);
  }

  members(group: GroupName): Promise<PushId[]> {
    return Promise.resolve(this.store.membership.members(group));
  }

  register(pushIds: readonly PushId[]): Promise<void> {
    const now = this.store.now();
    for (const pushId of pushIds) this.store.liveness.touch(pushId, now);
    return Promise.resolve();
  }

  touch(pushIds: readonly PushId[]): Promise<PushId[]> {
    const { liveness } = this.store;
    const now = this.store.now();
    const expired: PushId[] = [];
    for (const pushId of pushIds) {
      if (liveness.isLive(pushId, now)) liveness.touch(pushId, now);
      else expired.push(pushId);
    }
    return Promise.resolve(expired);
  }

  isLive(pushId: PushId): Promise<boolean> {
    return Promise.resolve(this.store.liveness.isLive(pushId, this.store.now()));
  }

  dueForExpiry(limit: number): Promise<PushId[]> {
    return Promise.resolve(this.store.liveness.due(this.store.now(), limit));
  }

  beat(info: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    this.store.directory.set(info.id, { info, at: this.store.now() });
    return Promise.resolve();
  }

  beats(): Promise<Beat[]> {
    const now = this.store.now();
    return Promise.resolve(
      [...this.store.directory.values()].map(({ info, at }) => ({ info, at, ageMs: now - at })),
    );
  }

  forget(nodeId: string): Promise<void> {
    this.store.directory.delete(nodeId);
    return Promise.resolve();
  }

  // --- presence -----------------------------------------------------------------------------

  presenceRead(pushIds: readonly PushId[]): Promise<Map<PushId, PresenceEntry>> {
    return Promise.resolve(this.store.presence.read(pushIds));
  }

  presenceWrite(pushId: PushId, expected: number, write: PresenceWrite): Promise<number | null> {
    return Promise.resolve(this.store.presence.write(pushId, expected, write));
  }

  presenceDue(until: number, limit: number): Promise<PushId[]> {
    return Promise.resolve(this.store.presence.dueUntil(until, limit));
  }

  presenceHeldBy(nodeId: string, limit: number): Promise<PushId[]> {
    return Promise.resolve(this.store.presence.heldByNode(nodeId, limit));
  }

  presenceHolders(): Promise<string[]> {
    return Promise.resolve(this.store.presence.holders());
  }
}

function settled(outcome: ChangeOutcome): Promise<ChangeOutcome> {
  return Promise.resolve(outcome);
}
