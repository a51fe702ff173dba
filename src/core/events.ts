import type { GroupName } from './group-name.js';
import type { IdempotencyStamp } from './idempotency.js';
import type { PushId } from './push-id.js';

declare const notificationIdBrand: unique symbol;
/** Cluster-unique notification id: the publishing node's random prefix plus a counter. */
export type NotificationId = string & { readonly [notificationIdBrand]: true };

/**
 * A notification as stored in the log. `payloadJson` is serialized once, at publish time, and
 * written verbatim into every answer that carries it.
 */
export interface NotificationEvent {
  readonly type: 'notification';
  readonly seq: number;
  readonly id: NotificationId;
  /** Set for a group notification: it reaches the push IDs that were members at `seq`. */
  readonly group: GroupName | null;
  /** Set for a direct notification. */
  readonly pushId: PushId | null;
  readonly payloadJson: string;
  /** Milliseconds since the epoch, on the publishing node's clock. */
  readonly publishedAt: number;
  /** Set when published with an Idempotency-Key (see core/idempotency.ts). */
  readonly idem?: IdempotencyStamp;
}

/** A push ID joined or left a group; it takes effect for notifications after `seq`. */
export interface MembershipEvent {
  readonly type: 'member-added' | 'member-removed';
  readonly seq: number;
  readonly group: GroupName;
  readonly pushId: PushId;
}

/** A push ID expired: it left every group at `seq`. */
export interface ExpiryEvent {
  readonly type: 'push-id-expired';
  readonly seq: number;
  readonly pushId: PushId;
}

/**
 * The cluster event log carries membership changes in the same sequence as notifications, so
 * "was a member when the notification was published" is a comparison of two sequence numbers,
 * and any node that replays the log in order sees exactly the membership each notification saw.
 */
export type ClusterEvent = NotificationEvent | MembershipEvent | ExpiryEvent;

/** What a publisher hands to the backplane; the backplane assigns `seq`. */
export type NotificationDraft = Omit<NotificationEvent, 'seq'>;

export type EventDraft =
  NotificationDraft | Omit<MembershipEvent, 'seq'> | Omit<ExpiryEvent, 'seq'>;

/** Exhaustiveness guard for switches over event and message unions. */
export function assertNever(value: never): never {
  throw new Error(`unexpected variant: ${JSON.stringify(value)}`);
}

/** Approximate retained size of an event, for the log's byte budget. */
export function eventBytes(event: ClusterEvent): number {
  return event.type === 'notification' ? 160 + event.payloadJson.length : 96;
}
