import { encodeCursor, type CursorPosition } from '../../core/cursor.js';
import { deliveriesOf } from '../../core/delivery-matching.js';
import { EpushError } from '../../core/errors.js';
import type { NotificationEvent } from '../../core/events.js';
import type { HistoryItem, HistoryPage, HistoryTarget } from '../../core/history.js';
import type { GroupName } from '../../core/group-name.js';
import type { MembershipHistory } from '../../core/membership-history.js';
import type { PushId } from '../../core/push-id.js';
import type { BackplaneDriver } from '../driver.js';
import { decodeEntry } from './event-codec.js';
import type { LogReader } from './listener-read.js';

/** Log entries read at once. */
const READ_PAGE = 500;
/**
 * Most log entries one history call examines (docs/protocol.md): a page may then hold fewer
 * than `limit` notifications although more follow; its cursor continues the read.
 */
export const HISTORY_SCAN_LIMIT = 10_000;

export type HistoryReader = LogReader & Pick<BackplaneDriver, 'isLive'>;

/**
 * The notifications of a group (its group notifications), or of a push ID (its direct ones and
 * the group notifications of the groups it was a member of when each was published: the same
 * question a listener's read answers). With `since`, what came after it, oldest first, at most
 * `limit`; without, the most recent `limit`. At most HISTORY_SCAN_LIMIT entries are examined.
 */
export async function readHistory(
  driver: HistoryReader,
  target: HistoryTarget,
  since: CursorPosition | null,
  limit: number,
): Promise<HistoryPage> {
  const head = await driver.head(true);
  const headCursor = encodeCursor(head.epoch, head.seq);
  if (
    since !== null &&
    (since.epoch !== head.epoch || since.seq < head.firstSeq - 1 || since.seq > head.seq)
  ) {
    return { items: [], cursor: headCursor, reset: true };
  }
  const match = await matcher(driver, target);
  if (since === null) {
    return {
      items: await readBackwards(driver, head, match, limit),
      cursor: headCursor,
      reset: false,
    };
  }
  const items: HistoryItem[] = [];
  let cursorSeq = since.seq;
  const scanEnd = Math.min(head.seq, since.seq + HISTORY_SCAN_LIMIT);
  scan: while (cursorSeq < scanEnd) {
    const entries = await driver.read(cursorSeq + 1, Math.min(scanEnd, cursorSeq + READ_PAGE));
    // A hole: trimmed while we read: the reader starts over at the head.
    if (entries.length === 0 || entries[0]?.seq !== cursorSeq + 1) {
      return { items: [], cursor: headCursor, reset: true };
    }
    for (const entry of entries) {
      if (items.length >= limit) break scan;
      if (entry.seq !== cursorSeq + 1) return { items: [], cursor: headCursor, reset: true };
      cursorSeq = entry.seq;
      const event = decodeEntry(entry);
      if (event?.type === 'notification') items.push(...match(event));
    }
  }
  return { items, cursor: encodeCursor(head.epoch, cursorSeq), reset: false };
}

type Matcher = (event: NotificationEvent) => HistoryItem[];

async function matcher(driver: HistoryReader, target: HistoryTarget): Promise<Matcher> {
  if (target.kind === 'group') {
    return (event) => (event.group === target.group ? [{ event, pushId: null }] : []);
  }
  const { pushId } = target;
  const histories: ReadonlyMap<PushId, MembershipHistory> = await driver.histories([pushId]);
  if (!histories.has(pushId) && !(await driver.isLive(pushId))) {
    throw new EpushError(
      'push_id_not_found',
      `Push ID ${pushId} is unknown to the cluster (never minted, or expired without a group).`,
    );
  }
  const history = histories.get(pushId);
  const wanted = new Set([pushId]);
  const wasMemberAt = (group: GroupName, _id: PushId, seq: number): boolean =>
    history?.wasMemberAt(group, seq) ?? false;
  return (event) =>
    deliveriesOf(event, [pushId], wanted, wasMemberAt).map((d) => ({ event, pushId: d.pushId }));
}

/** The most recent `limit` matches, scanning back from the head; oldest first. */
async function readBackwards(
  driver: HistoryReader,
  head: { seq: number; firstSeq: number },
  match: Matcher,
  limit: number,
): Promise<HistoryItem[]> {
  const found: HistoryItem[] = [];
  const stop = Math.max(head.firstSeq, head.seq - HISTORY_SCAN_LIMIT + 1);
  let high = head.seq;
  while (high >= stop && found.length < limit) {
    const low = Math.max(stop, high - READ_PAGE + 1);
    const entries = await driver.read(low, high);
    for (let i = entries.length - 1; i >= 0 && found.length < limit; i--) {
      const entry = entries[i];
      const event = entry === undefined ? null : decodeEntry(entry);
      if (event?.type === 'notification') found.push(...match(event).reverse());
    }
    high = low - 1;
  }
  return found.slice(0, limit).reverse();
}
