import { randomBytes } from 'node:crypto';
import { encodeCursor, type CursorPosition } from '../core/cursor.js';
import { EpushError } from '../core/errors.js';
import { EventLog } from '../core/event-log.js';
import type {
  ClusterEvent,
  EventDraft,
  NotificationDraft,
  NotificationEvent,
} from '../core/events.js';
import type { GroupName } from '../core/group-name.js';
import { MembershipIndex } from '../core/membership-index.js';
import { PushIdLiveness } from '../core/push-id-liveness.js';
import type { PushId } from '../core/push-id.js';
import { readLogWindow } from './log-window-read.js';
import type {
  Backplane,
  BackplaneGuarantees,
  BackplaneOptions,
  ClusterEventSink,
  ListenerSnapshot,
  NodeInfo,
} from './backplane.js';

export const MEMORY_GUARANTEES: BackplaneGuarantees = {
  multiNode: false,
  survivesNodeLoss: false,
  survivesBackplaneRestart: false,
  exactResume: true,
  summary: 'single process; exact resume while the process lives; everything is lost when it exits',
};

/**
 * The embedded backplane: the whole cluster state in this process. Several EpushNodes in one
 * process may share one instance (that is how the conformance suite tests multi-node behaviour
 * without a broker); it cannot span processes.
 */
export class MemoryBackplane implements Backplane {
  readonly kind = 'memory';
  readonly guarantees = MEMORY_GUARANTEES;

  private readonly epoch = randomBytes(6).readUIntBE(0, 6).toString(36);
  private readonly log: EventLog;
  private readonly membership = new MembershipIndex();
  private readonly liveness: PushIdLiveness;
  private readonly sinks = new Set<ClusterEventSink>();
  private readonly directory = new Map<string, { info: Omit<NodeInfo, 'lastSeen'>; at: number }>();
  private readonly now: () => number;
  private sweeper: NodeJS.Timeout | null = null;

  constructor(private readonly options: BackplaneOptions) {
    this.now = options.now ?? Date.now;
    this.log = new EventLog({
      retentionMs: options.retentionMs,
      maxBytes: options.maxLogBytes,
      maxEvents: Number.MAX_SAFE_INTEGER,
    });
    this.liveness = new PushIdLiveness(options.pushIdTtlMs);
  }

  // --- EventFanout -------------------------------------------------------------------------

  start(sink: ClusterEventSink): Promise<void> {
    this.sinks.add(sink);
    if (!this.sweeper) {
      const every = Math.min(5000, Math.max(50, Math.floor(this.options.pushIdTtlMs / 10)));
      this.sweeper = setInterval(() => {
        this.sweep();
      }, every);
      this.sweeper.unref();
    }
    sink.onAvailability(true);
    return Promise.resolve();
  }

  stop(): Promise<void> {
    this.sinks.clear();
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    return Promise.resolve();
  }

  isUp(): boolean {
    return true;
  }

  probe(): Promise<void> {
    return Promise.resolve();
  }

  // --- EventLogStore ------------------------------------------------------------------------

  publish(draft: NotificationDraft): Promise<NotificationEvent> {
    return Promise.resolve(this.append(draft) as NotificationEvent);
  }

  head(): Promise<{ cursor: ReturnType<typeof encodeCursor>; seq: number }> {
    const seq = this.log.headSeq;
    return Promise.resolve({ cursor: encodeCursor(this.epoch, seq), seq });
  }

  readForListener(
    from: CursorPosition | null,
    pushIds: readonly PushId[],
    limit: number,
  ): Promise<ListenerSnapshot> {
    return Promise.resolve(
      readLogWindow(this.log, this.membership, this.epoch, from, pushIds, limit),
    );
  }

  // --- MembershipStore ----------------------------------------------------------------------

  register(pushIds: readonly PushId[]): Promise<void> {
    const now = this.now();
    for (const pushId of pushIds) this.liveness.touch(pushId, now);
    return Promise.resolve();
  }

  touch(pushIds: readonly PushId[]): Promise<PushId[]> {
    const now = this.now();
    const expired: PushId[] = [];
    for (const pushId of pushIds) {
      if (this.liveness.isLive(pushId, now)) this.liveness.touch(pushId, now);
      else expired.push(pushId);
    }
    return Promise.resolve(expired);
  }

  addMember(group: GroupName, pushId: PushId): Promise<void> {
    if (!this.liveness.isLive(pushId, this.now())) {
      return Promise.reject(pushIdNotFound(pushId));
    }
    if (!this.membership.isMember(group, pushId)) {
      this.append({ type: 'member-added', group, pushId });
    }
    return Promise.resolve();
  }

  removeMember(group: GroupName, pushId: PushId): Promise<void> {
    if (this.membership.isMember(group, pushId)) {
      this.append({ type: 'member-removed', group, pushId });
    }
    return Promise.resolve();
  }

  members(group: GroupName): Promise<PushId[]> {
    return Promise.resolve(this.membership.members(group));
  }

  isLive(pushId: PushId): Promise<boolean> {
    return Promise.resolve(this.liveness.isLive(pushId, this.now()));
  }

  // --- ClusterDirectory ---------------------------------------------------------------------

  heartbeat(node: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    this.directory.set(node.id, { info: node, at: this.now() });
    return Promise.resolve();
  }

  nodes(): Promise<NodeInfo[]> {
    const now = this.now();
    const live: NodeInfo[] = [];
    for (const [id, { info, at }] of this.directory) {
      if (now - at > this.options.nodeTimeoutMs) this.directory.delete(id);
      else live.push({ ...info, lastSeen: new Date(at).toISOString() });
    }
    return Promise.resolve(live);
  }

  leave(nodeId: string): Promise<void> {
    this.directory.delete(nodeId);
    return Promise.resolve();
  }

  // --- internals ----------------------------------------------------------------------------

  /** Assigns the next seq, applies the event to membership, stores it and fans it out. */
  private append(draft: EventDraft): ClusterEvent {
    const event = { ...draft, seq: this.log.headSeq + 1 } as ClusterEvent;
    switch (event.type) {
      case 'member-added':
        this.membership.add(event.group, event.pushId, event.seq);
        break;
      case 'member-removed':
        this.membership.remove(event.group, event.pushId, event.seq);
        break;
      case 'push-id-expired':
        this.membership.removeEverywhere(event.pushId, event.seq);
        break;
      case 'notification':
        break;
    }
    this.log.append(event, this.now());
    for (const sink of this.sinks) sink.onEvent(event);
    return event;
  }

  /** Expires push IDs, trims the log and forgets membership history nobody can read any more. */
  sweep(): void {
    const now = this.now();
    for (const pushId of this.liveness.sweep(now)) {
      if (this.membership.groupsOf(pushId).length > 0) {
        this.append({ type: 'push-id-expired', pushId });
      }
    }
    this.log.trim(now);
    this.membership.forgetBefore(this.log.oldestResumableSeq);
  }
}

function pushIdNotFound(pushId: PushId): EpushError {
  return new EpushError(
    'push_id_not_found',
    `Push ID ${pushId} is unknown or expired; mint a new one with POST /api/push-ids.`,
  );
}
