import type { ConnectionStatus, PushNotification, ResetEvent } from './types.js';

/**
 * What tabs of one site say to each other over the tab channel. Every message names its sender
 * (`from`, a random per-tab id). Plain JSON-able objects: they travel through structured clone
 * (BroadcastChannel) or JSON (the localStorage fallback).
 *
 * - `register`: a tab's complete set of push IDs; sent on every change and as a heartbeat (every
 *   second, and in reply to each `leader` message). Idempotent. When push IDs were added, `since`
 *   is the shared cursor the tab knew when `listen()` was called: the leader re-listens from it,
 *   so nothing published between `listen()` and the leader hearing of it is missed.
 * - `unregister`: the tab is going away (`pagehide`, `close()`): drop its push IDs now.
 * - `leader`: the leader's heartbeat and announcement: its status, the shared cursor and the union
 *   it listens on. Sent on taking over, on every status or union change, and every second.
 * - `deliver`: the notifications of one answer, already deduped, with the cursor after them.
 *   Sent for every answer, empty ones too, so every tab always knows the latest cursor.
 * - `reset` / `expired`: the answer flags, forwarded so every tab emits the event.
 * - `resign`: the leader gives up leadership; lease followers check the lease at once.
 * - `forbidden`: the server refused listen tokens (403) of these push IDs, each with the token
 *   that was sent; tabs whose token is still that one emit `forbidden`. A `register` carries the
 *   tab's tokens (`tokens`), so the leader can send them with the listen.
 */
export type TabMessage =
  | {
      readonly t: 'register';
      readonly from: string;
      readonly pushIds: readonly string[];
      readonly since?: string;
      /** Listen tokens of some of `pushIds` (`listen(id, cb, { listenToken })`). */
      readonly tokens?: Readonly<Record<string, string>>;
    }
  | { readonly t: 'unregister'; readonly from: string }
  | {
      readonly t: 'leader';
      readonly from: string;
      readonly status: ConnectionStatus;
      readonly cursor: string | null;
      readonly pushIds: readonly string[];
    }
  | {
      readonly t: 'deliver';
      readonly from: string;
      readonly notifications: readonly PushNotification[];
      readonly cursor: string | null;
    }
  | { readonly t: 'reset'; readonly from: string; readonly reason: ResetEvent['reason'] }
  | { readonly t: 'expired'; readonly from: string; readonly pushIds: readonly string[] }
  | {
      readonly t: 'forbidden';
      readonly from: string;
      /** Refused push ID → the token that was sent ('' for none). */
      readonly refused: Readonly<Record<string, string>>;
      readonly message: string;
    }
  | { readonly t: 'resign'; readonly from: string };

const STATUSES: readonly string[] = ['connecting', 'connected', 'reconnecting', 'offline'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isStringArray(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((item) => typeof item === 'string');
}

function isStringRecord(value: unknown): value is Record<string, string> {
  return isRecord(value) && Object.values(value).every((item) => typeof item === 'string');
}

function isCursor(value: unknown): value is string | null {
  return value === null || typeof value === 'string';
}

/** A notification as the server sends it; anything else is refused. */
export function isPushNotification(value: unknown): value is PushNotification {
  return (
    isRecord(value) &&
    typeof value.id === 'string' &&
    typeof value.pushId === 'string' &&
    (value.group === null || typeof value.group === 'string') &&
    'payload' in value
  );
}

/**
 * Validates a message from the channel. Anything else on the origin may post on it (another
 * version of this library, a bug), so a malformed message is dropped, never trusted.
 */
export function parseTabMessage(data: unknown): TabMessage | null {
  if (!isRecord(data) || typeof data.from !== 'string') return null;
  switch (data.t) {
    case 'register':
      return isStringArray(data.pushIds) &&
        (data.since === undefined || typeof data.since === 'string') &&
        (data.tokens === undefined || isStringRecord(data.tokens))
        ? (data as TabMessage)
        : null;
    case 'forbidden':
      return isStringRecord(data.refused) && typeof data.message === 'string'
        ? (data as TabMessage)
        : null;
    case 'expired':
      return isStringArray(data.pushIds) ? (data as TabMessage) : null;
    case 'unregister':
    case 'resign':
      return data as TabMessage;
    case 'leader':
      return typeof data.status === 'string' &&
        STATUSES.includes(data.status) &&
        isCursor(data.cursor) &&
        isStringArray(data.pushIds)
        ? (data as TabMessage)
        : null;
    case 'deliver':
      return Array.isArray(data.notifications) &&
        data.notifications.every(isPushNotification) &&
        isCursor(data.cursor)
        ? (data as TabMessage)
        : null;
    case 'reset':
      return data.reason === 'cursor-too-old' || data.reason === 'cursor-invalid'
        ? (data as TabMessage)
        : null;
    default:
      return null;
  }
}
