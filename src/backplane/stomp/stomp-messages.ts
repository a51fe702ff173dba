/**
 * The broker's messages, validated before use: anyone with the broker's credentials can write to
 * these destinations, so a body is never trusted by a cast. Anything malformed reads as null.
 */
import { parseJsonObject } from '../../core/json-object.js';
import { ERROR_STATUS, type ErrorCode } from '../../core/errors.js';
import type { ClusterEvent } from '../../core/events.js';
import { isGroupName, type GroupName } from '../../core/group-name.js';
import { isPushId, type PushId } from '../../core/push-id.js';
import type { PresenceWrite } from '../driver.js';
import type { PresenceRow } from '../memory/memory-presence.js';
import { validateDraft, withSeq } from '../protocol/event-codec.js';
import type {
  Batch,
  Checkpoint,
  Command,
  Entry,
  EventsMessage,
  HistoryPart,
  LogMessage,
} from './stomp-protocol.js';

type Json = Record<string, unknown>;

const parse = parseJsonObject;

const isString = (v: unknown): v is string => typeof v === 'string';
const isCount = (v: unknown): v is number =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

function pushIds(value: unknown): PushId[] | null {
  return Array.isArray(value) && value.every(isPushId) ? value : null;
}

const isCountOrNull = (v: unknown): v is number | null => v === null || isCount(v);
const isStrings = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);

function presenceWrite(value: unknown): PresenceWrite | null {
  if (typeof value !== 'object' || value === null) return null;
  const { record, due, holders, keepMs } = value as Json;
  if (!isString(record) || !isCountOrNull(due) || !isStrings(holders)) return null;
  return isCountOrNull(keepMs) ? { record, due, holders, keepMs } : null;
}

function presenceRows(value: unknown): PresenceRow[] | null {
  if (!Array.isArray(value)) return null;
  const rows: PresenceRow[] = [];
  for (const row of value) {
    if (!Array.isArray(row)) return null;
    const [pushId, version, record, due, holders, forgetAt] = row as unknown[];
    if (!isPushId(pushId) || !isCount(version) || !isString(record)) return null;
    if (!isCountOrNull(due) || !isStrings(holders) || !isCountOrNull(forgetAt)) return null;
    rows.push([pushId, version, record, due, holders, forgetAt]);
  }
  return rows;
}

export function parseCommand(text: string): Command | null {
  const m = parse(text);
  if (m === null || !isString(m['c'])) return null;
  const c = m['c'];
  switch (m['k']) {
    case 'notify': {
      const draft = validateDraft(m['draft']);
      return draft?.type === 'notification' ? { k: 'notify', c, draft } : null;
    }
    case 'register':
    case 'touch': {
      const ids = pushIds(m['ids']);
      return ids === null ? null : { k: m['k'], c, ids };
    }
    case 'add':
    case 'remove': {
      const { group, pushId } = m;
      return isGroupName(group) && isPushId(pushId) ? { k: m['k'], c, group, pushId } : null;
    }
    case 'expire':
      return isPushId(m['pushId']) ? { k: 'expire', c, pushId: m['pushId'] } : null;
    case 'probe':
    case 'sync':
      return { k: m['k'], c };
    case 'history':
      return isCount(m['through']) && isString(m['reply'])
        ? { k: 'history', c, through: m['through'], reply: m['reply'] }
        : null;
    case 'presence': {
      const { pushId, expected } = m;
      const write = presenceWrite(m['write']);
      return isPushId(pushId) && isCount(expected) && write !== null
        ? { k: 'presence', c, pushId, expected, write }
        : null;
    }
    default:
      return null;
  }
}

/** A stored event: a draft with its seq. */
function event(value: unknown): ClusterEvent | null {
  if (typeof value !== 'object' || value === null) return null;
  const seq = (value as Json)['seq'];
  const draft = validateDraft(value);
  if (draft === null || !isCount(seq)) return null;
  return withSeq(draft, seq);
}

function entry(value: unknown): Entry | null {
  if (typeof value !== 'object' || value === null) return null;
  const e = value as Json;
  const c = e['c'];
  if (c !== undefined && !isString(c)) return null;
  switch (e['k']) {
    case 'event': {
      const ev = event(e['event']);
      return ev === null ? null : { k: 'event', c, event: ev };
    }
    case 'live': {
      const ids = pushIds(e['ids']);
      const expired = e['expired'] === undefined ? [] : pushIds(e['expired']);
      return ids === null || expired === null ? null : { k: 'live', c, ids, expired };
    }
    case 'presence': {
      const { pushId, version } = e;
      const write = presenceWrite(e['write']);
      return isPushId(pushId) && isCount(version) && write !== null
        ? { k: 'presence', c, pushId, version, write }
        : null;
    }
    case 'ok': {
      const seq = e['seq'];
      if (c === undefined || (seq !== undefined && !isCount(seq))) return null;
      return { k: 'ok', c, seq };
    }
    case 'rejected': {
      const { code, message } = e;
      if (c === undefined || !isString(message) || !isErrorCode(code)) return null;
      return { k: 'rejected', c, code, message };
    }
    default:
      return null;
  }
}

function isErrorCode(value: unknown): value is ErrorCode {
  return isString(value) && Object.hasOwn(ERROR_STATUS, value);
}

function batch(m: Json): Batch | null {
  const { epoch, bi, at, entries } = m;
  if (!isString(epoch) || !isCount(bi) || !isCount(at) || !Array.isArray(entries)) return null;
  const parsed: Entry[] = [];
  for (const value of entries) {
    const e = entry(value);
    if (e === null) return null;
    parsed.push(e);
  }
  return { t: 'batch', epoch, bi, at, entries: parsed };
}

function checkpoint(m: Json): Checkpoint | null {
  const { epoch, bi, seq, at, stays, live } = m;
  if (!isString(epoch) || !isCount(bi) || !isCount(seq) || !isCount(at)) return null;
  const presence = m['presence'] === undefined ? [] : presenceRows(m['presence']);
  if (presence === null) return null;
  if (!Array.isArray(stays) || !Array.isArray(live)) return null;
  const parsedStays: [PushId, GroupName, number, number | null][] = [];
  for (const s of stays) {
    if (!Array.isArray(s)) return null;
    const [pushId, group, joined, left] = s as unknown[];
    if (!isPushId(pushId) || !isGroupName(group) || !isCount(joined)) return null;
    if (left !== null && !isCount(left)) return null;
    parsedStays.push([pushId, group, joined, left]);
  }
  const parsedLive: [PushId, number][] = [];
  for (const l of live) {
    if (!Array.isArray(l)) return null;
    const [pushId, expiresAt] = l as unknown[];
    if (!isPushId(pushId) || !isCount(expiresAt)) return null;
    parsedLive.push([pushId, expiresAt]);
  }
  return {
    t: 'checkpoint',
    epoch,
    bi,
    seq,
    at,
    stays: parsedStays,
    live: parsedLive,
    presence,
  };
}

export function parseLogMessage(text: string): LogMessage | null {
  const m = parse(text);
  if (m?.['t'] === 'batch') return batch(m);
  if (m?.['t'] === 'checkpoint') return checkpoint(m);
  return null;
}

export function parseEventsMessage(text: string): EventsMessage | null {
  const m = parse(text);
  switch (m?.['t']) {
    case 'batch':
      return batch(m);
    case 'mark': {
      const { epoch, bi, c } = m;
      if (!isString(epoch) || !isCount(bi) || !Array.isArray(c) || !c.every(isString)) return null;
      return { t: 'mark', epoch, bi, c };
    }
    case 'node': {
      const { id, connections, startedAt } = m;
      if (!isString(id) || !isString(startedAt)) return null;
      if (connections !== null && !isCount(connections)) return null;
      return { t: 'node', id, connections, startedAt };
    }
    default:
      return null;
  }
}

export function parseHistoryPart(text: string): HistoryPart | null {
  const m = parse(text);
  if (m?.['t'] !== 'history' || !isString(m['c']) || typeof m['last'] !== 'boolean') return null;
  if (!Array.isArray(m['events'])) return null;
  const events: (readonly [ClusterEvent, number])[] = [];
  for (const pair of m['events']) {
    if (!Array.isArray(pair)) return null;
    const [value, at] = pair as unknown[];
    const ev = event(value);
    if (ev === null || !isCount(at)) return null;
    events.push([ev, at]);
  }
  return { t: 'history', c: m['c'], events, last: m['last'] };
}
