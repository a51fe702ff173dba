/**
 * THE driver contract: the little that differs between messaging systems. The cluster protocol
 * (ordered delivery with gap and epoch repair, listener reads, the membership-history model,
 * expiry, the node directory, validated decoding, timeouts) is written once above it, in
 * `protocol/`, and turns a driver into a `Backplane`. A new backplane is one driver that passes
 * the conformance suite (test/conformance/).
 *
 * Every method that talks to the vendor may reject with any error: the protocol turns it into
 * `backplane_unavailable` (503) and bounds it by a timeout, so a driver never needs to.
 */
import type {
  ClusterEvent,
  EventDraft,
  NotificationDraft,
  NotificationId,
} from '../core/events.js';
import type { IdempotencyStamp } from '../core/idempotency.js';
import type { GroupName } from '../core/group-name.js';
import type { MembershipHistory } from '../core/membership-history.js';
import type { PushId } from '../core/push-id.js';
import type { BackplaneGuarantees, NodeInfo } from './backplane.js';

/**
 * One entry of the log: its seq, and its event, either as wire text (the event without its seq,
 * validated by the protocol before use) or as an event already typed by an in-process driver.
 */
export interface LogEntry {
  readonly seq: number;
  readonly body: string | ClusterEvent;
}

export interface LogHead {
  /** The log's incarnation; it changes when the vendor lost the log (every cursor resets). */
  readonly epoch: string;
  /** The last seq appended (0 for an empty log). */
  readonly seq: number;
  /** The oldest seq still stored (`seq + 1` when nothing is). */
  readonly firstSeq: number;
}

/** A membership change, made atomically with the append of its event (see `change`). */
export type MembershipChange =
  | { readonly type: 'member-added'; readonly group: GroupName; readonly pushId: PushId }
  | { readonly type: 'member-removed'; readonly group: GroupName; readonly pushId: PushId }
  | { readonly type: 'push-id-expired'; readonly pushId: PushId };

/**
 * `appended`: the event is in the log at `seq`; `unchanged`: the precondition did not hold (a
 * member already, not a member, not expired or in no group) and nothing was appended;
 * `not-live`: an add for a push ID that is unknown or expired.
 */
export type ChangeOutcome =
  | { readonly kind: 'appended'; readonly seq: number }
  | { readonly kind: 'unchanged' }
  | { readonly kind: 'not-live' };

/** What an idempotent append found: the notification it appended, or the one that had the key. */
export type AppendOnceOutcome =
  | { readonly kind: 'appended'; readonly seq: number }
  | { readonly kind: 'seen'; readonly record: IdempotencyRecord };

/** A notification draft published with an Idempotency-Key. */
export type StampedDraft = NotificationDraft & { readonly idem: IdempotencyStamp };

/** The first notification published with an idempotency key (see `appendOnce`). */
export interface IdempotencyRecord {
  readonly id: NotificationId;
  readonly fingerprint: string;
}

/** What a driver reports to the protocol above it. */
export interface DriverLink {
  /**
   * An entry of the live tail. Entries may arrive twice, late, or not at all (a dropped
   * subscription, a trimmed log); the protocol orders them and reads what is missing. `epoch`
   * is the log incarnation the entry belongs to.
   */
  entry(epoch: string, entry: LogEntry): void;
  /** A probe token sent with `sendProbe` came back through the tail's path. */
  probe(token: string): void;
  /** The connection to the vendor went down or came back (a reconnect: tail entries resume). */
  link(up: boolean): void;
}

/** A node's beat as the directory stores it. */
export interface Beat {
  readonly info: Omit<NodeInfo, 'lastSeen'>;
  /** When it was written, on the vendor's clock where it has one (ms since the epoch). */
  readonly at: number;
  /** Its age, measured on the same clock as `at` (so node clocks do not matter). */
  readonly ageMs: number;
}

export interface BackplaneDriver extends Partial<PresenceDriverMethods> {
  /** `memory`, `redis`, `nats`, `stomp`. */
  readonly kind: string;
  /** The vendor's name in messages ("Redis is unreachable …"). */
  readonly vendor: string;
  readonly guarantees: BackplaneGuarantees;

  /** Connects and starts the live tail after the current head; resolves once serving. */
  connect(link: DriverLink): Promise<void>;
  close(): Promise<void>;
  /** True while every connection the driver needs is up. */
  isUp(): boolean;

  // --- the log ---------------------------------------------------------------------------
  /**
   * The log's head. With `fresh`, it includes everything committed on any node before the call
   * (a driver that serves from a local replica syncs first; the others are always fresh).
   */
  head(fresh?: boolean): Promise<LogHead>;
  /**
   * Appends a notification; resolves with its seq once it is stored as durably as
   * `guarantees` says. Seqs are gap-free and every node's tail receives the entry.
   */
  append(draft: EventDraft): Promise<number>;
  /**
   * Appends a notification that carries an idempotency stamp (`draft.idem`) unless a
   * notification with the same key was appended within `retentionMs`: then nothing is appended
   * and the first one's record is returned. Check and append are ONE atomic step with respect
   * to every node (a script, the broker's duplicate detection, the sequencer).
   */
  appendOnce(draft: StampedDraft, retentionMs: number): Promise<AppendOnceOutcome>;
  /** Entries `first..last` (inclusive) in seq order; shorter or with holes where trimmed. */
  read(first: number, last: number): Promise<LogEntry[]>;
  /** Drops entries older than the retention window. */
  trim(retentionMs: number): Promise<void>;
  /** Sends `token` along the path tail entries take; it comes back as `link.probe`. Optional. */
  sendProbe?(token: string): Promise<void>;
  /** Replaces a live tail that stopped delivering (the protocol fills the gap by reading). */
  restartTail?(fromSeq: number): Promise<void>;

  // --- membership ------------------------------------------------------------------------
  /**
   * Checks the change's precondition, appends its event and records it in the push ID's
   * history and in the group's member set, as ONE atomic step with respect to every other
   * change of the same push ID on any node (a script, a compare-and-set, a sequencer).
   * An expiry also forgets the push ID's liveness; it appends only when the push ID is past its
   * TTL and in at least one group.
   */
  change(change: MembershipChange): Promise<ChangeOutcome>;
  /** The stored histories; a push ID that never joined a group may be absent. */
  histories(pushIds: readonly PushId[]): Promise<Map<PushId, MembershipHistory>>;
  members(group: GroupName): Promise<PushId[]>;

  // --- liveness --------------------------------------------------------------------------
  /** Makes push IDs live for one TTL. */
  register(pushIds: readonly PushId[]): Promise<void>;
  /** Extends live push IDs by one TTL; returns those unknown or expired (they stay so). */
  touch(pushIds: readonly PushId[]): Promise<PushId[]>;
  isLive(pushId: PushId): Promise<boolean>;
  /** Up to `limit` push IDs past their TTL that may still be in a group (expiry candidates). */
  dueForExpiry(limit: number): Promise<PushId[]>;

  // --- node directory --------------------------------------------------------------------
  beat(info: Omit<NodeInfo, 'lastSeen'>): Promise<void>;
  beats(): Promise<Beat[]>;
  forget(nodeId: string): Promise<void>;
}

// --- presence (optional) ---------------------------------------------------------------------

/** A push ID's presence record as stored: opaque text for the driver, and its version. */
export interface PresenceEntry {
  /** Increases with every write of this push ID's record (1 for the first). */
  readonly version: number;
  /** The record's text (src/core/presence.ts encodes it; the driver never reads it). */
  readonly record: string;
}

/** What the protocol writes with a record, besides its text: the indexes the sweep reads. */
export interface PresenceWrite {
  readonly record: string;
  /** When `presenceDue` should return the push ID (ms since the epoch); null: never. */
  readonly due: number | null;
  /** Nodes that hold the push ID now; `presenceHeldBy(node)` lists it for each of them. */
  readonly holders: readonly string[];
  /** The record is forgotten this long after the write (ms); null: kept. */
  readonly keepMs: number | null;
}

/**
 * Presence primitives (src/backplane/protocol/presence-protocol.ts decides the states above
 * them). Optional: a backplane without them answers the presence calls 501.
 */
export interface PresenceDriverMethods {
  /**
   * The stored records of these push IDs (absent: never written, or forgotten), with every
   * write and membership change any node completed before the call (a driver that reads a local
   * replica waits until it has caught up: the protocol reads the groups after this).
   */
  presenceRead(pushIds: readonly PushId[]): Promise<Map<PushId, PresenceEntry>>;
  /**
   * Compare-and-set: stores `write` if the record's version is still `expected` (0: no record),
   * as ONE atomic step with respect to every other write of the same push ID on any node, and
   * updates the due and holder indexes with it. Resolves with the new version, or null when the
   * record changed meanwhile (nothing was written; the caller reads again).
   */
  presenceWrite(pushId: PushId, expected: number, write: PresenceWrite): Promise<number | null>;
  /** Up to `limit` push IDs whose due time is at or before `until`, the earliest first. */
  presenceDue(until: number, limit: number): Promise<PushId[]>;
  /** Up to `limit` push IDs whose record names `nodeId` among its holders. */
  presenceHeldBy(nodeId: string, limit: number): Promise<PushId[]>;
  /** The nodes that hold at least one push ID according to the stored records. */
  presenceHolders(): Promise<string[]>;
}
