import { encodeCursor, type CursorPosition } from '../../core/cursor.js';
import { deliveriesOf } from '../../core/delivery-matching.js';
import type { GroupName } from '../../core/group-name.js';
import type { Delivery } from '../../core/listen-answer.js';
import type { MembershipHistory } from '../../core/membership-history.js';
import type { PushId } from '../../core/push-id.js';
import type { ListenerSnapshot } from '../backplane.js';
import type { BackplaneDriver } from '../driver.js';

/** What a listener's read needs: a driver, or a replica of the log held in memory. */
export type LogReader = Pick<BackplaneDriver, 'head' | 'read' | 'histories'>;
import { decodeEntry } from './event-codec.js';

/** Entries read at once by a listener's read. */
const READ_PAGE = 500;

/**
 * What a listener on `pushIds` missed since `from` (null = from now), at most `limit`
 * deliveries, and the groups of those push IDs where the read stopped. The histories are read
 * AFTER the head, so they hold every membership change up to it (drivers write a change and its
 * event atomically); a stay is compared by seq, so later changes in them do not matter.
 */
export async function readForListener(
  driver: LogReader,
  from: CursorPosition | null,
  pushIds: readonly PushId[],
  limit: number,
): Promise<ListenerSnapshot> {
  // A cursor may come from a node ahead of this one's view: read after everything committed.
  const head = await driver.head(from !== null);
  const reset: ListenerSnapshot = {
    kind: 'reset',
    cursor: encodeCursor(head.epoch, head.seq),
    cursorSeq: head.seq,
  };
  if (
    from !== null &&
    (from.epoch !== head.epoch || from.seq < head.firstSeq - 1 || from.seq > head.seq)
  ) {
    return reset;
  }
  const histories: ReadonlyMap<PushId, MembershipHistory> =
    pushIds.length === 0 ? new Map() : await driver.histories(pushIds);
  const wanted = new Set(pushIds);
  const wasMemberAt = (group: GroupName, pushId: PushId, seq: number): boolean =>
    histories.get(pushId)?.wasMemberAt(group, seq) ?? false;
  const deliveries: Delivery[] = [];
  let cursorSeq = from === null ? head.seq : from.seq;
  scan: while (cursorSeq < head.seq) {
    const entries = await driver.read(cursorSeq + 1, Math.min(head.seq, cursorSeq + READ_PAGE));
    if (entries.length === 0) return reset;
    for (const entry of entries) {
      if (deliveries.length >= limit) break scan;
      // A hole: trimmed while we read (or damaged): the reader starts over at the head.
      if (entry.seq !== cursorSeq + 1) return reset;
      cursorSeq = entry.seq;
      const event = decodeEntry(entry);
      if (event !== null) deliveries.push(...deliveriesOf(event, pushIds, wanted, wasMemberAt));
    }
  }
  const groups = new Map<PushId, GroupName[]>();
  for (const pushId of wanted) groups.set(pushId, histories.get(pushId)?.groupsAt(cursorSeq) ?? []);
  return {
    kind: 'read',
    deliveries,
    cursor: encodeCursor(head.epoch, cursorSeq),
    cursorSeq,
    groups,
  };
}
