/**
 * What the STOMP backplane's nodes say to each other through the broker (docs/backplanes.md,
 * "STOMP"). Every body is JSON. Pure types, names and one mapping; no I/O.
 *
 * Nodes send COMMANDS to one queue read by one exclusive consumer, the sequencer. It turns them
 * into numbered BATCHES, stores each batch in the log queue (the commit point), then fans it out
 * on the events topic; every node applies the batches in order to its replica of the state.
 */
import type { ErrorCode } from '../../core/errors.js';
import type { ClusterEvent, NotificationDraft } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import type { PushId } from '../../core/push-id.js';
import type { MembershipChange, PresenceWrite } from '../driver.js';
import type { PresenceRow } from '../memory/memory-presence.js';

export interface StompDestinations {
  /** Commands to the sequencer (persistent queue, one exclusive consumer). */
  readonly append: string;
  /** Committed batches and checkpoints (persistent queue with a time-to-live, read by browsing). */
  readonly log: string;
  /**
   * Committed batches, sync marks and node heartbeats, pushed to every node. One destination, so
   * that a single broker keeps them in one order: a heartbeat sent before a sync is seen before
   * its mark.
   */
  readonly events: string;
  /** Notifications from JMS applications (docs/jms.md). */
  readonly notify: string;
}

export function stompDestinations(prefix: string): StompDestinations {
  return {
    append: `/queue/${prefix}.append`,
    log: `/queue/${prefix}.log`,
    events: `/topic/${prefix}.events`,
    notify: `/queue/${prefix}.notify`,
  };
}

/** A request to the sequencer. `c` names it; the entry answering it carries the same `c`. */
export type Command =
  /** `c` is the notification id, so a redelivered command is recognised and not numbered twice. */
  | { readonly k: 'notify'; readonly c: string; readonly draft: NotificationDraft }
  | { readonly k: 'register'; readonly c: string; readonly ids: readonly PushId[] }
  | { readonly k: 'touch'; readonly c: string; readonly ids: readonly PushId[] }
  | { readonly k: 'add'; readonly c: string; readonly group: GroupName; readonly pushId: PushId }
  | { readonly k: 'remove'; readonly c: string; readonly group: GroupName; readonly pushId: PushId }
  | { readonly k: 'probe'; readonly c: string }
  /** Expires the push ID if its time ran out and it is in a group (else answered ok). */
  | { readonly k: 'expire'; readonly c: string; readonly pushId: PushId }
  /** Answered by a mark on the events topic, not stored: a read barrier. */
  | { readonly k: 'sync'; readonly c: string }
  /** Asks for the log window before a checkpoint (events with seq ≤ `through`), sent to `reply`. */
  | { readonly k: 'history'; readonly c: string; readonly through: number; readonly reply: string }
  /** Compare-and-set of a presence record: stored if its version is still `expected`. */
  | {
      readonly k: 'presence';
      readonly c: string;
      readonly pushId: PushId;
      readonly expected: number;
      readonly write: PresenceWrite;
    };

/** One line of a batch. */
export type Entry =
  | { readonly k: 'event'; readonly c?: string | undefined; readonly event: ClusterEvent }
  /** These push IDs live until the batch's `at` + TTL; `expired` lists those that could not. */
  | {
      readonly k: 'live';
      readonly c?: string | undefined;
      readonly ids: readonly PushId[];
      readonly expired?: readonly PushId[];
    }
  /** A presence record stored as `version` (a compare-and-set that held). */
  | {
      readonly k: 'presence';
      readonly c?: string | undefined;
      readonly pushId: PushId;
      readonly version: number;
      readonly write: PresenceWrite;
    }
  /**
   * Done with no change (an idempotent repeat, a probe, a notification numbered before, a
   * presence compare-and-set that found the record changed).
   */
  | { readonly k: 'ok'; readonly c: string; readonly seq?: number | undefined }
  | {
      readonly k: 'rejected';
      readonly c: string;
      readonly code: ErrorCode;
      readonly message: string;
    };

export interface Batch {
  readonly t: 'batch';
  readonly epoch: string;
  /** Batch index: gap-free from 1 within an epoch. */
  readonly bi: number;
  /** The sequencer's clock when it built the batch: liveness and log retention count from it. */
  readonly at: number;
  readonly entries: readonly Entry[];
}

/** The whole state as of batch `bi`, stored in the log queue now and then for nodes that start. */
export interface Checkpoint {
  readonly t: 'checkpoint';
  readonly epoch: string;
  readonly bi: number;
  /** The log's head seq as of `bi`. */
  readonly seq: number;
  readonly at: number;
  /** Membership stays: [pushId, group, joined seq, left seq or null while a member]. */
  readonly stays: readonly (readonly [PushId, GroupName, number, number | null])[];
  /** Push-ID liveness: [pushId, expires at]. */
  readonly live: readonly (readonly [PushId, number])[];
  /** Presence records (absent in a checkpoint of a version without presence). */
  readonly presence?: readonly PresenceRow[];
}

/** Sent on the events topic after the batches it covers: "everything up to `bi` is out". */
export interface SyncMark {
  readonly t: 'mark';
  readonly epoch: string;
  readonly bi: number;
  readonly c: readonly string[];
}

/** A node's heartbeat (`connections` set) or orderly leave (`connections` null). */
export interface NodeBeat {
  readonly t: 'node';
  readonly id: string;
  readonly connections: number | null;
  readonly startedAt: string;
}

/** Part of the answer to a history command: [event, time it was appended] pairs, oldest first. */
export interface HistoryPart {
  readonly t: 'history';
  readonly c: string;
  readonly events: readonly (readonly [ClusterEvent, number])[];
  readonly last: boolean;
}

/** The topic on which one node receives answers meant for it alone. */
export function replyDestination(prefix: string, nodeTag: string): string {
  return `/topic/${prefix}.node.${nodeTag}`;
}

export type LogMessage = Batch | Checkpoint;
export type EventsMessage = Batch | SyncMark | NodeBeat;

/** The command that asks the sequencer for a membership change. */
export function membershipCommand(change: MembershipChange, c: string): Command {
  switch (change.type) {
    case 'member-added':
      return { k: 'add', c, group: change.group, pushId: change.pushId };
    case 'member-removed':
      return { k: 'remove', c, group: change.group, pushId: change.pushId };
    case 'push-id-expired':
      return { k: 'expire', c, pushId: change.pushId };
  }
}
