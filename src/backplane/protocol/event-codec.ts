import { parseJsonObject } from '../../core/json-object.js';
import type { ClusterEvent, EventDraft, NotificationId } from '../../core/events.js';
import { isGroupName } from '../../core/group-name.js';
import type { IdempotencyStamp } from '../../core/idempotency.js';
import { isPushId } from '../../core/push-id.js';
import type { NodeInfo } from '../backplane.js';
import type { LogEntry } from '../driver.js';

/** The wire text of an event draft, as every driver stores it. */
export function encodeDraft(draft: EventDraft): string {
  return JSON.stringify(draft);
}

/**
 * The event of a log entry, validated field by field: wire text from a broker is never trusted
 * by a cast. Null when the entry is not an event of ours (a damaged or foreign entry); the
 * protocol then skips it, and the seq stays accounted for.
 */
export function decodeEntry(entry: LogEntry): ClusterEvent | null {
  // In-process drivers hand over the event itself: nothing crossed a wire.
  if (typeof entry.body !== 'string') return entry.body;
  let parsed: unknown;
  try {
    parsed = JSON.parse(entry.body);
  } catch {
    return null;
  }
  const draft = validateDraft(parsed);
  return draft === null ? null : withSeq(draft, entry.seq);
}

/** The event of a draft once the log gave it `seq`. */
export function withSeq(draft: EventDraft, seq: number): ClusterEvent {
  switch (draft.type) {
    case 'notification':
      return { ...draft, seq };
    case 'member-added':
    case 'member-removed':
      return { type: draft.type, group: draft.group, pushId: draft.pushId, seq };
    case 'push-id-expired':
      return { type: draft.type, pushId: draft.pushId, seq };
  }
}

/** A draft read from the wire, or null when any field is missing or of the wrong kind. */
export function validateDraft(value: unknown): EventDraft | null {
  if (typeof value !== 'object' || value === null) return null;
  const v = value as Record<string, unknown>;
  switch (v['type']) {
    case 'notification': {
      const { id, group, pushId, payloadJson, publishedAt, idem } = v;
      if (typeof id !== 'string' || id.length === 0 || id.length > 64) return null;
      if (group !== null && !isGroupName(group)) return null;
      if (pushId !== null && !isPushId(pushId)) return null;
      if (typeof payloadJson !== 'string' || typeof publishedAt !== 'number') return null;
      const stamp = idempotencyStampOf(idem);
      if (stamp === null) return null;
      return {
        type: 'notification',
        id: id as NotificationId,
        group,
        pushId,
        payloadJson,
        publishedAt,
        ...(stamp === undefined ? {} : { idem: stamp }),
      };
    }
    case 'member-added':
    case 'member-removed': {
      const { group, pushId } = v;
      if (!isGroupName(group) || !isPushId(pushId)) return null;
      return { type: v['type'], group, pushId };
    }
    case 'push-id-expired': {
      const { pushId } = v;
      if (!isPushId(pushId)) return null;
      return { type: 'push-id-expired', pushId };
    }
    default:
      return null;
  }
}

/** An event's idempotency stamp: undefined when absent, null when malformed. */
function idempotencyStampOf(value: unknown): IdempotencyStamp | undefined | null {
  if (value === undefined) return undefined;
  if (typeof value !== 'object' || value === null) return null;
  const { key, fingerprint } = value as Record<string, unknown>;
  if (typeof key !== 'string' || key.length === 0 || key.length > 64) return null;
  if (typeof fingerprint !== 'string' || fingerprint.length > 64) return null;
  return { key, fingerprint };
}

/** A node's beat as written by `beat`, validated. */
export function nodeInfoOf(json: string): Omit<NodeInfo, 'lastSeen'> | null {
  const value = parseJsonObject(json);
  if (value === null) return null;
  const { id, connections, startedAt } = value;
  if (typeof id !== 'string' || typeof connections !== 'number' || typeof startedAt !== 'string')
    return null;
  return { id, connections, startedAt };
}
