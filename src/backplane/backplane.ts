/**
 * THE backplane contract: what every messaging system under epush (memory, Redis, NATS
 * JetStream, STOMP brokers) must provide. It is split by capability, not by vendor.
 *
 * The model: one cluster-wide, totally ordered EVENT LOG. Notifications and membership changes
 * are both events in it, numbered by a gap-free `seq`. A cursor is `(epoch, seq)`, so a listener
 * can resume on ANY node, and "member when the notification was published" is a seq comparison.
 * The cluster protocol (who wakes whom, catch-up, drain) lives once in src/node above this
 * contract; a backplane only stores the log and membership and moves events between nodes.
 */
import type { Logger } from 'pino';
import type { Cursor, CursorPosition } from '../core/cursor.js';
import type { ClusterEvent, NotificationDraft, NotificationEvent } from '../core/events.js';
import type { GroupName } from '../core/group-name.js';
import type { Delivery } from '../core/listen-answer.js';
import type { NotificationId } from '../core/events.js';
import type { NotifyOptions } from '../core/idempotency.js';
import type { PushId } from '../core/push-id.js';
import type { StampedDraft } from './driver.js';
import type { HistoryPage, HistoryTarget } from '../core/history.js';

/** What `publishOnce` did: published the notification, or found the key's first call. */
export type PublishOnceOutcome =
  | { readonly kind: 'published'; readonly event: NotificationEvent }
  | { readonly kind: 'repeat'; readonly id: NotificationId };

/** What a backplane promises; the node prints it at start-up and docs/backplanes.md tabulates it. */
export interface BackplaneGuarantees {
  /** Nodes in different processes or machines share state through it. */
  readonly multiNode: boolean;
  /** A notification answered 202 survives the death (SIGKILL) of any single epush node. */
  readonly survivesNodeLoss: boolean;
  /** A notification answered 202 survives a restart of the backplane service itself. */
  readonly survivesBackplaneRestart: boolean;
  /** A cursor resumes exactly (nothing skipped, nothing repeated) on any node within retention. */
  readonly exactResume: boolean;
  /** One honest sentence for the start-up banner. */
  readonly summary: string;
}

export interface BackplaneOptions {
  /** How far back a cursor can resume (the log's time window). */
  readonly retentionMs: number;
  /** A push ID no listener has held for this long expires. */
  readonly pushIdTtlMs: number;
  /** Upper bound on the bytes the log retains; past it the oldest events go (cursors then reset). */
  readonly maxLogBytes: number;
  /** A node not heard from for this long is dead (a few heartbeats). */
  readonly nodeTimeoutMs: number;
  /** A push ID stays `listening` this long after its last hold ended (default 5 s). */
  readonly presenceGraceMs?: number;
  /** Webhooks on: this node's id, the sender of the presence events it decides (see below). */
  readonly presenceWebhookNode?: string;
  /** Every presence state change, decided once for the cluster (the webhook feed). */
  readonly onPresenceChanges?: (
    pushId: PushId,
    changes: readonly { readonly state: 'listening' | 'idle' | 'expired'; readonly at: number }[],
  ) => void;
  /** Clock, injectable for tests. */
  readonly now?: () => number;
}

/** What a broker-side notify path (the JMS ingress) publishes through: the node's own notify. */
export interface NotifyTarget {
  notifyGroup(
    group: GroupName,
    payloadJson: string,
    options?: NotifyOptions,
  ): Promise<NotificationId>;
  notifyPushId(
    pushId: PushId,
    payloadJson: string,
    options?: NotifyOptions,
  ): Promise<NotificationId>;
}

/** Receives the cluster's events on this node. */
export interface ClusterEventSink {
  /** Every event of the log, in seq order and without gaps, this node's own included. */
  onEvent(event: ClusterEvent): void;
  /**
   * The backplane could not deliver events up to `resumeSeq` in order (e.g. after a reconnect
   * it could not fill): the node must make its waiting listeners re-read from the log.
   */
  onGap(resumeSeq: number): void;
  /** Reachability changed; while down, the API answers 503 and readiness is red. */
  onAvailability(up: boolean): void;
}

/** Fan-out between nodes: the live tail of the log, pushed to every node. */
export interface EventFanout {
  /** Starts delivering events after the current head to `sink`; resolves once connected. */
  start(sink: ClusterEventSink): Promise<void>;
  stop(): Promise<void>;
  /** True while the backplane is reachable. */
  isUp(): boolean;
  /**
   * Sends a probe along the same path as events and resolves when it has come back to this
   * node. Being connected is not enough (a subscription can die silently while commands still
   * work); the node's delivery canary calls this every second and turns readiness red when it
   * stops coming back.
   */
  probe(): Promise<void>;
}

/** What a listener needs to start waiting: its backlog, and membership as of the same point. */
export type ListenerSnapshot =
  | {
      readonly kind: 'read';
      /** Deliveries after the listener's cursor, oldest first, at most the requested limit. */
      readonly deliveries: readonly Delivery[];
      /** Where this read stopped; the listener's next cursor. */
      readonly cursor: Cursor;
      readonly cursorSeq: number;
      /** Current groups of each push ID as of `cursorSeq`. */
      readonly groups: ReadonlyMap<PushId, readonly GroupName[]>;
    }
  /** The cursor cannot be resumed (older than retention, or another epoch): start from `cursor`. */
  | { readonly kind: 'reset'; readonly cursor: Cursor; readonly cursorSeq: number };

/** The ordered, durable event log. */
export interface EventLogStore {
  /**
   * Appends a notification and fans it out to every node. Resolves only once it is stored as
   * durably as `guarantees` says: an API that answered 202 must be able to rely on it.
   */
  publish(draft: NotificationDraft): Promise<NotificationEvent>;
  /**
   * Publishes a notification stamped with an idempotency key, unless the key was used within
   * retention on any node: then nothing is published and the first call's id is returned. The
   * same key with another fingerprint throws EpushError `idempotency_conflict` (409).
   */
  publishOnce(draft: StampedDraft): Promise<PublishOnceOutcome>;
  /**
   * The notification history of a group or a push ID within retention (see HistoryTarget);
   * throws EpushError `push_id_not_found` for a push ID the cluster does not know.
   */
  history(target: HistoryTarget, since: CursorPosition | null, limit: number): Promise<HistoryPage>;
  /** The cursor meaning "from now": the current head. */
  head(): Promise<{ cursor: Cursor; seq: number }>;
  /**
   * Reads what a listener on `pushIds` missed since `from` (null = from now), and the groups
   * of those push IDs at the point where the read stopped.
   */
  readForListener(
    from: CursorPosition | null,
    pushIds: readonly PushId[],
    limit: number,
  ): Promise<ListenerSnapshot>;
}

/** Groups and push-ID liveness, consistent from every node. */
export interface MembershipStore {
  /** Makes freshly minted push IDs live for one TTL. */
  register(pushIds: readonly PushId[]): Promise<void>;
  /**
   * Extends the life of push IDs a listener holds; returns those that are unknown or already
   * expired (they stay expired: a push ID never comes back).
   */
  touch(pushIds: readonly PushId[]): Promise<PushId[]>;
  /** Throws EpushError `push_id_not_found` for an unknown or expired push ID. Idempotent. */
  addMember(group: GroupName, pushId: PushId): Promise<void>;
  /** Idempotent; removing a non-member is not an error. */
  removeMember(group: GroupName, pushId: PushId): Promise<void>;
  members(group: GroupName): Promise<PushId[]>;
  /** True when the push ID is known and not expired. */
  isLive(pushId: PushId): Promise<boolean>;
}

export interface NodeInfo {
  readonly id: string;
  readonly connections: number;
  readonly startedAt: string;
  readonly lastSeen: string;
}

/** Node membership of the cluster. */
export interface ClusterDirectory {
  /** Records this node as alive with its current figures; called every heartbeat. */
  heartbeat(node: Omit<NodeInfo, 'lastSeen'>): Promise<void>;
  /** Live nodes (heard from within a few heartbeats). */
  nodes(): Promise<NodeInfo[]>;
  /** Removes a node at once (orderly shutdown). */
  leave(nodeId: string): Promise<void>;
}

/** A push ID's presence as the API reports it (`since`: ms since the epoch). */
export interface PushIdPresenceView {
  readonly state: 'listening' | 'idle' | 'expired';
  readonly since: number;
  readonly groups: readonly GroupName[];
}

/**
 * Presence (who is listening), the same from every node. Only node-level transitions are
 * written: a listen that does not change which push IDs a node holds never reaches it.
 */
export interface PresenceStore {
  /** False on a backplane that keeps no presence: the calls below then throw 501. */
  readonly presenceSupported: boolean;
  /** This node started holding `started` and stopped holding `stopped` (each at its `at`). */
  presenceHolds(
    nodeId: string,
    started: readonly PushId[],
    stopped: readonly { readonly pushId: PushId; readonly at: number }[],
  ): Promise<void>;
  /** Null for a push ID never minted. */
  presenceOf(pushId: PushId): Promise<PushIdPresenceView | null>;
  groupPresence(group: GroupName): Promise<{ members: number; listening: PushId[] }>;
  /**
   * Webhooks (with `presenceWebhookNode`): `sink` receives the events this node must send,
   * each once: the changes it decided, and those of a sender that died unacknowledged.
   */
  presenceOutbox(sink: PresenceOutboxSink): void;
  /** Takes events the receiver acknowledged (or that were given up) out of the outboxes. */
  presenceAck(acks: readonly PresenceAck[]): Promise<void>;
}

/** A presence change to send as a webhook event. */
export interface PresenceEvent {
  /** Unique per change (kept across a failover of its sender). */
  readonly id: string;
  readonly state: 'listening' | 'idle' | 'expired';
  /** When the state began (ms). */
  readonly at: number;
}

export interface PresenceOutboxSink {
  owned(pushId: PushId, events: readonly PresenceEvent[]): void;
  /** Events dropped from a full outbox (a receiver failing for a long time). */
  dropped(count: number): void;
}

export interface PresenceAck {
  readonly pushId: PushId;
  readonly ids: readonly string[];
}

export interface Backplane
  extends EventFanout, EventLogStore, MembershipStore, ClusterDirectory, PresenceStore {
  /** `memory`, `redis`, `nats`, `stomp`. */
  readonly kind: string;
  readonly guarantees: BackplaneGuarantees;
  /** True on the node that holds a cluster-wide role (the STOMP sequencer); absent elsewhere. */
  isLeader?(): boolean;
  /**
   * Lets applications notify through the broker itself (STOMP: the JMS notify queue, see
   * docs/jms.md); called once, before `start`. Absent where the backplane has no such path.
   */
  attachNotifyIngress?(target: NotifyTarget, log: Logger): void;
}
