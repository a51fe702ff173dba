import { isPushNotification } from './tab-messages.js';
import type { ConnectionStatus, PushNotification, ResetEvent, TransportName } from './types.js';

/**
 * What a page and its hub frame (`/epush-hub.html` on the push server's origin) say to each
 * other with `postMessage`. Each message carries `p` (the protocol, so other users of
 * `postMessage` on the page are ignored) and `t` (its type).
 *
 * Page to hub:
 * - `hello`: sent until the hub answers; the options of the page's `connect()` that the shared
 *   connection uses, and after a reload `since`, the cursor the page had seen everything up to
 *   (its PageLedger). Idempotent.
 * - `register`: the page's complete set of push IDs with their listen tokens, on every change.
 * - `bye`: the page closed its client; the hub leaves the site's tabs.
 *
 * Hub to page (only ever to the page that said `hello`, with its origin as target):
 * - `ready`: the hub shares the site's connection; `state` says how. `refused`: it cannot
 *   share here (e.g. no storage, no locks: each frame would lead alone), the page falls back.
 * - `state`: on every change of status or leadership.
 * - `deliver`: notifications to this page's push IDs, and the shared `cursor` after them (sent
 *   for every answer, with no notifications when none is for this page).
 * - `reset`, `expired` (this page's push IDs only), `forbidden` (this page's push IDs, each with
 *   the token that was refused).
 */
export const HUB_PROTOCOL = 'epush-hub/1';

/** How the hub's client shares the connection, as the page reports it in `push.sharing`. */
export interface HubState {
  readonly status: ConnectionStatus;
  readonly isLeader: boolean;
  readonly leadership: string;
  readonly channel: string;
}

/** The options of a page's `connect()` that the hub applies to its own client. */
export interface HubHello {
  readonly channelName?: string;
  readonly transport?: TransportName | 'auto';
  readonly holdSeconds?: number;
  readonly abandonMarginSeconds?: number;
  readonly since?: string;
}

export type PageToHub =
  | ({ readonly p: typeof HUB_PROTOCOL; readonly t: 'hello' } & HubHello)
  | {
      readonly p: typeof HUB_PROTOCOL;
      readonly t: 'register';
      readonly pushIds: readonly string[];
      readonly tokens?: Readonly<Record<string, string>>;
    }
  | { readonly p: typeof HUB_PROTOCOL; readonly t: 'bye' };

export type HubToPage =
  | { readonly p: typeof HUB_PROTOCOL; readonly t: 'ready' | 'state'; readonly state: HubState }
  | { readonly p: typeof HUB_PROTOCOL; readonly t: 'refused'; readonly reason: string }
  | {
      readonly p: typeof HUB_PROTOCOL;
      readonly t: 'deliver';
      readonly notifications: readonly PushNotification[];
      readonly cursor?: string | null;
    }
  | { readonly p: typeof HUB_PROTOCOL; readonly t: 'reset'; readonly reason: ResetEvent['reason'] }
  | { readonly p: typeof HUB_PROTOCOL; readonly t: 'expired'; readonly pushIds: readonly string[] }
  | {
      readonly p: typeof HUB_PROTOCOL;
      readonly t: 'forbidden';
      readonly refused: Readonly<Record<string, string>>;
      readonly message: string;
    };

/** A page never registers more than this through one hub (the server takes 100 per listen). */
export const MAX_HUB_PUSH_IDS = 1000;
/** Longer than any cursor the server mints (`<epoch>-<seq>`, src/core/cursor.ts). */
const MAX_CURSOR_LENGTH = 64;

function isCursor(value: unknown): value is string {
  return typeof value === 'string' && value !== '' && value.length <= MAX_CURSOR_LENGTH;
}
function isStatus(value: unknown): value is ConnectionStatus {
  return (
    value === 'connecting' ||
    value === 'connected' ||
    value === 'reconnecting' ||
    value === 'offline'
  );
}

function isTransport(value: unknown): value is TransportName | 'auto' {
  return value === 'auto' || value === 'websocket' || value === 'sse' || value === 'long-poll';
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function strings(value: unknown, max: number): string[] | null {
  if (!Array.isArray(value) || value.length > max) return null;
  const out: string[] = [];
  for (const item of value) {
    if (typeof item !== 'string') return null;
    out.push(item);
  }
  return out;
}

function stringRecord(value: unknown): Record<string, string> | null {
  if (!isRecord(value)) return null;
  const out: Record<string, string> = {};
  for (const [key, item] of Object.entries(value)) {
    if (typeof item !== 'string') return null;
    out[key] = item;
  }
  return out;
}

function positive(value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0;
}

function hubState(value: unknown): HubState | null {
  if (!isRecord(value)) return null;
  const { status, isLeader, leadership, channel } = value;
  if (!isStatus(status) || typeof isLeader !== 'boolean') return null;
  if (typeof leadership !== 'string' || typeof channel !== 'string') return null;
  return { status, isLeader, leadership, channel };
}

/**
 * A message from a page, validated field by field (the hub trusts nothing a page sends); null
 * for anything else.
 */
export function parsePageMessage(data: unknown): PageToHub | null {
  if (!isRecord(data) || data.p !== HUB_PROTOCOL) return null;
  const p = HUB_PROTOCOL;
  switch (data.t) {
    case 'hello': {
      const { channelName, transport, holdSeconds, abandonMarginSeconds, since } = data;
      if (channelName !== undefined && (typeof channelName !== 'string' || channelName === ''))
        return null;
      if (transport !== undefined && !isTransport(transport)) return null;
      if (holdSeconds !== undefined && !positive(holdSeconds)) return null;
      if (abandonMarginSeconds !== undefined && !positive(abandonMarginSeconds)) return null;
      if (since !== undefined && !isCursor(since)) return null;
      return {
        p,
        t: 'hello',
        ...(channelName === undefined ? {} : { channelName }),
        ...(transport === undefined ? {} : { transport }),
        ...(holdSeconds === undefined ? {} : { holdSeconds }),
        ...(abandonMarginSeconds === undefined ? {} : { abandonMarginSeconds }),
        ...(since === undefined ? {} : { since }),
      };
    }
    case 'register': {
      const pushIds = strings(data.pushIds, MAX_HUB_PUSH_IDS);
      const tokens = data.tokens === undefined ? undefined : stringRecord(data.tokens);
      if (!pushIds || tokens === null) return null;
      return { p, t: 'register', pushIds, ...(tokens === undefined ? {} : { tokens }) };
    }
    case 'bye':
      return { p, t: 'bye' };
    default:
      return null;
  }
}

/** A message from the hub frame, validated; null for anything else. */
export function parseHubMessage(data: unknown): HubToPage | null {
  if (!isRecord(data) || data.p !== HUB_PROTOCOL) return null;
  const p = HUB_PROTOCOL;
  switch (data.t) {
    case 'ready':
    case 'state': {
      const state = hubState(data.state);
      return state ? { p, t: data.t, state } : null;
    }
    case 'refused':
      return typeof data.reason === 'string' ? { p, t: 'refused', reason: data.reason } : null;
    case 'deliver': {
      const { notifications, cursor } = data;
      if (!Array.isArray(notifications)) return null;
      if (cursor !== undefined && cursor !== null && !isCursor(cursor)) return null;
      const valid: PushNotification[] = [];
      for (const notification of notifications) {
        if (!isPushNotification(notification)) return null;
        valid.push(notification);
      }
      return { p, t: 'deliver', notifications: valid, cursor: cursor ?? null };
    }
    case 'reset':
      return data.reason === 'cursor-too-old' || data.reason === 'cursor-invalid'
        ? { p, t: 'reset', reason: data.reason }
        : null;
    case 'expired': {
      const pushIds = strings(data.pushIds, MAX_HUB_PUSH_IDS);
      return pushIds ? { p, t: 'expired', pushIds } : null;
    }
    case 'forbidden': {
      const refused = stringRecord(data.refused);
      return refused && typeof data.message === 'string'
        ? { p, t: 'forbidden', refused, message: data.message }
        : null;
    }
    default:
      return null;
  }
}
