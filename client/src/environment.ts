import { iframeHubOpener, type HubFrameOpener } from './hub-link.js';
import type { EventSourceConstructor } from './transports/sse.js';
import type { WebSocketConstructor } from './transports/websocket.js';
import type {
  BroadcastChannelConstructor,
  Clock,
  ConnectOptions,
  FetchLike,
  LockManagerLike,
  Logger,
  StorageLike,
  TimerHandle,
  TransportName,
  WindowLike,
} from './types.js';

/** Everything the client touches outside itself, resolved once from options and the browser. */
export interface Environment {
  /** The push server's base URL, absolute, without a trailing slash. */
  readonly baseUrl: string;
  readonly channelName: string;
  readonly transport: TransportName | 'auto';
  readonly WebSocket: WebSocketConstructor | null;
  readonly EventSource: EventSourceConstructor | null;
  readonly holdMs: number;
  readonly abandonAfterMs: number;
  readonly fetch: FetchLike;
  readonly BroadcastChannel: BroadcastChannelConstructor | null;
  readonly locks: LockManagerLike | null;
  readonly localStorage: StorageLike | null;
  readonly sessionStorage: StorageLike | null;
  readonly window: WindowLike | null;
  readonly onLine: () => boolean;
  readonly clock: Clock;
  readonly random: () => number;
  readonly logger: Logger;
  /** `site`: through the hub frame; `origin`: with this origin's tabs (see `sharing`). */
  readonly sharing: 'site' | 'origin';
  /** `sharing: "site"` was asked for: no fallback to the origin's tabs. */
  readonly sharingForced: boolean;
  /** Opens the hub frame; null where the page cannot (no DOM). */
  readonly hubFrame: HubFrameOpener | null;
  readonly hubTimeoutMs: number;
}

/** Bumped when tabs of two versions could not understand each other: they then never mix. */
export const TAB_PROTOCOL_VERSION = 1;

const DEFAULT_HOLD_SECONDS = 25;
const DEFAULT_ABANDON_MARGIN_SECONDS = 10;
/** For the hub frame to load and answer; a frame that loads and stays silent fails sooner. */
const DEFAULT_HUB_TIMEOUT_SECONDS = 10;

// A view of the global object with everything optional: the client also loads in workers,
// old browsers and Node (tests), where any of these may be missing.
interface BrowserGlobals {
  fetch?: typeof fetch;
  WebSocket?: WebSocketConstructor;
  EventSource?: EventSourceConstructor;
  BroadcastChannel?: BroadcastChannelConstructor;
  navigator?: { locks?: LockManagerLike; onLine?: boolean };
  localStorage?: StorageLike;
  sessionStorage?: StorageLike;
  location?: { href: string; origin?: string };
  document?: Parameters<typeof iframeHubOpener>[0];
  addEventListener?: WindowLike['addEventListener'];
  removeEventListener?: WindowLike['removeEventListener'];
  setTimeout: (callback: () => void, ms: number) => TimerHandle;
  clearTimeout: (handle: TimerHandle) => void;
  console: Logger;
}

/** `url` resolved against the page, normalised so equal servers get equal channel names. */
export function normaliseBaseUrl(url: string, pageHref: string | undefined): string {
  if (typeof url !== 'string' || url === '') {
    throw new TypeError('EPush.connect: `url` (the push server base URL) is required');
  }
  const resolved = new URL(url, pageHref);
  resolved.hash = '';
  resolved.search = '';
  return resolved.href.replace(/\/+$/, '');
}

export function resolveEnvironment(options: ConnectOptions): Environment {
  const g = globalThis as unknown as BrowserGlobals;
  const baseUrl = normaliseBaseUrl(options.url, g.location?.href);
  const transport = options.transport ?? 'auto';
  const logger = options.logger ?? g.console;
  if (!['auto', 'websocket', 'sse', 'long-poll'].includes(transport)) {
    throw new TypeError(
      `EPush.connect: \`transport\` must be "auto", "websocket", "sse" or "long-poll" (got "${transport}")`,
    );
  }
  const holdSeconds = positive(options.holdSeconds, DEFAULT_HOLD_SECONDS, 'holdSeconds');
  const margin = positive(
    options.abandonMarginSeconds,
    DEFAULT_ABANDON_MARGIN_SECONDS,
    'abandonMarginSeconds',
  );
  const fetchFn = options.fetch ?? (g.fetch ? g.fetch.bind(globalThis) : null);
  if (!fetchFn) throw new TypeError('EPush.connect: no fetch in this environment; pass `fetch`');
  const window: WindowLike | null =
    options.window !== undefined
      ? options.window
      : g.addEventListener && g.removeEventListener
        ? (g as unknown as WindowLike)
        : null;
  const sharing = options.sharing ?? 'auto';
  if (!['auto', 'site', 'origin'].includes(sharing)) {
    throw new TypeError(
      `EPush.connect: \`sharing\` must be "auto", "site" or "origin" (got "${sharing}")`,
    );
  }
  const hubFrame = options.hubFrame !== undefined ? options.hubFrame : browserHubOpener(g);
  // A page of the push server's own origin shares with the hub frames directly.
  const sameOrigin = g.location?.origin === new URL(baseUrl).origin;
  const useHub = sharing === 'site' || (sharing === 'auto' && hubFrame !== null && !sameOrigin);
  return {
    baseUrl,
    sharing: useHub ? 'site' : 'origin',
    sharingForced: sharing === 'site',
    hubFrame,
    hubTimeoutMs:
      positive(options.hubTimeoutSeconds, DEFAULT_HUB_TIMEOUT_SECONDS, 'hubTimeoutSeconds') * 1000,
    channelName: options.channelName ?? `epush/${TAB_PROTOCOL_VERSION} ${baseUrl}`,
    transport,
    WebSocket: options.WebSocket !== undefined ? options.WebSocket : (g.WebSocket ?? null),
    EventSource: options.EventSource !== undefined ? options.EventSource : (g.EventSource ?? null),
    holdMs: holdSeconds * 1000,
    abandonAfterMs: (holdSeconds + margin) * 1000,
    fetch: fetchFn,
    BroadcastChannel:
      options.BroadcastChannel !== undefined
        ? options.BroadcastChannel
        : (g.BroadcastChannel ?? null),
    locks: options.locks !== undefined ? options.locks : (g.navigator?.locks ?? null),
    localStorage: usableStorage(
      options.localStorage !== undefined ? options.localStorage : browserStorage(g, 'localStorage'),
    ),
    sessionStorage: usableStorage(
      options.sessionStorage !== undefined
        ? options.sessionStorage
        : browserStorage(g, 'sessionStorage'),
    ),
    window,
    onLine: options.onLine ?? (() => g.navigator?.onLine !== false),
    clock: {
      now: options.now ?? (() => Date.now()),
      setTimeout: options.setTimeout ?? ((callback, ms) => g.setTimeout(callback, ms)),
      clearTimeout:
        options.clearTimeout ??
        ((handle) => {
          g.clearTimeout(handle);
        }),
    },
    random: options.random ?? Math.random,
    logger,
  };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`EPush.connect: \`${name}\` must be a positive number of seconds`);
  }
  return value;
}

/** The iframe opener where there is a DOM to put the frame in and a window to hear it. */
function browserHubOpener(g: BrowserGlobals): HubFrameOpener | null {
  if (!g.document || typeof g.document.createElement !== 'function') return null;
  if (typeof globalThis.addEventListener !== 'function') return null;
  return iframeHubOpener(g.document, globalThis);
}

function browserStorage(
  g: BrowserGlobals,
  name: 'localStorage' | 'sessionStorage',
): StorageLike | null {
  try {
    // Reading the property itself throws where storage is blocked (SecurityError).
    return g[name] ?? null;
  } catch {
    return null;
  }
}

/** The storage, if writing to it works (private modes may throw on every write). */
function usableStorage(storage: StorageLike | null): StorageLike | null {
  if (!storage) return null;
  try {
    const probe = 'epush/probe';
    storage.setItem(probe, '1');
    storage.removeItem(probe);
    return storage;
  } catch {
    return null;
  }
}

/** A random tab id; `getRandomValues` works in insecure contexts too (unlike `randomUUID`). */
export function randomId(): string {
  const bytes = new Uint8Array(12);
  const crypto = (
    globalThis as { crypto?: { getRandomValues?: (array: Uint8Array) => Uint8Array } }
  ).crypto;
  if (crypto?.getRandomValues) crypto.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}
