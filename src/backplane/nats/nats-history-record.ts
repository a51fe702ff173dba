import { parseJsonObject } from '../../core/json-object.js';
import { isGroupName, type GroupName } from '../../core/group-name.js';
import { MembershipHistory } from '../../core/membership-history.js';
import type { ClusterEvent } from '../../core/events.js';

/**
 * A push ID's membership history as the NATS `history` bucket stores it: the MembershipHistory
 * text form per group, and `upTo`, the seq of the last membership event of this push ID it
 * includes. The push ID's membership events in the stream after `upTo` are not in it yet (their
 * writer died between the append and the write): readers apply them before use.
 */
export interface HistoryRecord {
  readonly history: MembershipHistory;
  upTo: number;
}

export function emptyRecord(): HistoryRecord {
  return { history: new MembershipHistory(), upTo: 0 };
}

export function encodeRecord(record: HistoryRecord): string {
  return JSON.stringify({ upTo: record.upTo, g: Object.fromEntries(record.history.encode()) });
}

/** The stored record, validated; a value that is not one of ours reads as empty. */
export function decodeRecord(text: string | null): HistoryRecord {
  if (text === null || text === '') return emptyRecord();
  const value = parseJsonObject(text);
  if (value === null) return emptyRecord();
  const { upTo, g } = value;
  if (typeof upTo !== 'number' || typeof g !== 'object' || g === null) return emptyRecord();
  const pairs: [GroupName, string][] = [];
  for (const [group, stays] of Object.entries(g)) {
    if (isGroupName(group) && typeof stays === 'string') pairs.push([group, stays]);
  }
  return { history: MembershipHistory.decode(pairs), upTo };
}

/** Applies one membership event of this push ID (in seq order, after `upTo`). */
export function applyToRecord(record: HistoryRecord, event: ClusterEvent): void {
  if (event.seq <= record.upTo) return;
  switch (event.type) {
    case 'member-added':
      record.history.join(event.group, event.seq);
      break;
    case 'member-removed':
      record.history.leave(event.group, event.seq);
      break;
    case 'push-id-expired':
      record.history.leaveAll(event.seq);
      break;
    case 'notification':
      return;
  }
  record.upTo = event.seq;
}
