import { encodeCursor, type CursorPosition } from '../core/cursor.js';
import { deliveriesOf } from '../core/delivery-matching.js';
import type { EventLog } from '../core/event-log.js';
import type { GroupName } from '../core/group-name.js';
import type { Delivery } from '../core/listen-answer.js';
import type { MembershipIndex } from '../core/membership-index.js';
import type { PushId } from '../core/push-id.js';
import type { ListenerSnapshot } from './backplane.js';

/**
 * A listener's read from a log window held in memory (the memory backplane, a STOMP replica):
 * the deliveries after `from`, at most `limit`, and the push IDs' groups where the read stopped.
 * A cursor of another epoch, older than the window or beyond its head is answered with `reset`.
 */
export function readLogWindow(
  log: EventLog,
  membership: MembershipIndex,
  epoch: string,
  from: CursorPosition | null,
  pushIds: readonly PushId[],
  limit: number,
): ListenerSnapshot {
  const head = log.headSeq;
  const startSeq = from === null ? head : from.seq;
  const read = from !== null && from.epoch !== epoch ? null : log.readSince(startSeq);
  if (read === null || read.kind === 'gone') {
    return { kind: 'reset', cursor: encodeCursor(epoch, head), cursorSeq: head };
  }
  const wanted = new Set(pushIds);
  const deliveries: Delivery[] = [];
  let cursorSeq = startSeq;
  const wasMemberAt = (group: GroupName, pushId: PushId, seq: number): boolean =>
    membership.wasMemberAt(group, pushId, seq);
  for (const event of read.events) {
    if (deliveries.length >= limit) break;
    cursorSeq = event.seq;
    deliveries.push(...deliveriesOf(event, pushIds, wanted, wasMemberAt));
  }
  const groups = new Map<PushId, GroupName[]>();
  for (const pushId of wanted) groups.set(pushId, membership.groupsAt(pushId, cursorSeq));
  return { kind: 'read', deliveries, cursor: encodeCursor(epoch, cursorSeq), cursorSeq, groups };
}
