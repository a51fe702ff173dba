/**
 * Public and injectable types of the browser client. The injectable ones are structural and
 * minimal on purpose: the browser's own objects satisfy them, and tests can fake them in Node.
 */

/** One notification to one of a view's push IDs, exactly as the server sent it (docs/protocol.md). */
export interface PushNotification {
  /** Cluster-unique; together with `pushId` it names one delivery, the key the client dedupes by. */
  readonly id: string;
  readonly pushId: string;
  /** The group the notification was sent to, or null when it was sent to the push ID directly. */
  readonly group: string | null;
  /** The JSON payload sent with it, or null when none was sent (notify-then-pull). */
  readonly payload: unknown;
}

/**
 * The state of the site's one shared connection, the same in every tab:
 * `connecting` until the first listen is established, `connected` while listens succeed,
 * `reconnecting` after a failure until a listen succeeds again, `offline` while the browser
 * reports no network (nothing is attempted then).
 */
export type ConnectionStatus = 'connecting' | 'connected' | 'reconnecting' | 'offline';

/** Transports the client can use, in the order it tries them. */
export type TransportName = 'websocket' | 'sse' | 'long-poll';

/** Why the client asks applications to reload their state. */
export interface ResetEvent {
  /**
   * `cursor-too-old`: the server no longer keeps the notifications since the shared cursor
   * (retention passed, or the log was lost); `cursor-invalid`: the server did not recognise the
   * cursor at all. Either way some notifications may have been missed: reload state.
   */
  readonly reason: 'cursor-too-old' | 'cursor-invalid';
}

/** Events `on()` accepts, with the value each one passes to its callbacks. */
export interface EPushEvents {
  status: ConnectionStatus;
  reset: ResetEvent;
  /** Push IDs of this page that the server reports expired; they are no longer listened to. */
  expired: readonly string[];
  /**
   * Push IDs of this page whose listen the server refused (403 `forbidden`: listen token
   * missing, expired or not matching). They are not listened to until `listen()` is called
   * again for them with another `listenToken`.
   */
  forbidden: ForbiddenEvent;
}

/** The `forbidden` event. */
export interface ForbiddenEvent {
  readonly pushIds: readonly string[];
  /** The server's sentence (names the first push ID and why). */
  readonly message: string;
}

/** Options of `listen()`. */
export interface ListenOptions {
  /**
   * The push ID's signed listen token, from the application's server (`POST /api/push-ids`
   * or `POST /api/listen-tokens`) when the push server has `--listen-token-secret`. Calling
   * `listen()` again with a new token (e.g. before the old one expires) replaces it.
   */
  readonly listenToken?: string;
}

export type EPushEventName = keyof EPushEvents;

/** The body of a `/push/listen` request. */
export interface ListenRequest {
  readonly pushIds: readonly string[];
  /** Null means "from now": only notifications published after the listen arrives. */
  readonly cursor: string | null;
  /** Parallel to `pushIds` (null: none for that one); absent when no push ID has a token. */
  readonly listenTokens?: readonly (string | null)[];
}

/** A server answer to one listen (docs/protocol.md), validated. */
export interface ListenAnswer {
  readonly notifications: readonly PushNotification[];
  readonly cursor: string;
  readonly expired: readonly string[];
  /** The node is draining: listen again at once, the load balancer picks another node. */
  readonly reconnect: boolean;
  /** The cursor was older than the server's retention: applications must reload state. */
  readonly reset: boolean;
  /** A newer listen for some of these push IDs took this one over. */
  readonly replaced: boolean;
}

// --- injectables ---------------------------------------------------------------------------

/** Opaque handle returned by `setTimeout`: a number in browsers, an object in Node. */
export type TimerHandle = number | object;

/** Time and timers; injected so tests can drive time by hand. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

export interface FetchInit {
  method: string;
  headers: Record<string, string>;
  body: string;
  signal: AbortSignal;
  cache: RequestCache;
}

export interface ResponseLike {
  readonly ok: boolean;
  readonly status: number;
  readonly headers: { get(name: string): string | null };
  text(): Promise<string>;
}

/** The part of `fetch` the client uses. */
export type FetchLike = (url: string, init: FetchInit) => Promise<ResponseLike>;

/** The part of a `BroadcastChannel` instance the client uses. */
export interface BroadcastChannelLike {
  postMessage(message: unknown): void;
  addEventListener(type: 'message', listener: (event: { readonly data: unknown }) => void): void;
  close(): void;
}

export type BroadcastChannelConstructor = new (name: string) => BroadcastChannelLike;

/** The part of `navigator.locks` (Web Locks API) the client uses. */
export interface LockManagerLike {
  request(
    name: string,
    options: { signal?: AbortSignal },
    callback: (lock: unknown) => Promise<void>,
  ): Promise<unknown>;
}

/** The part of `localStorage` the client uses. */
export interface StorageLike {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** The window events the client reads (`storage`, `online`, `offline`, `pagehide`, `pageshow`). */
export interface WindowEventLike {
  readonly type: string;
  /** `storage` events. */
  readonly key?: string | null;
  readonly newValue?: string | null;
  /** `pageshow`/`pagehide`: the page goes into (or comes back from) the back/forward cache. */
  readonly persisted?: boolean;
}

export interface WindowLike {
  addEventListener(type: string, listener: (event: WindowEventLike) => void): void;
  removeEventListener(type: string, listener: (event: WindowEventLike) => void): void;
}

export interface Logger {
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
}

import type { HubFrameOpener } from './hub-link.js';
import type { EventSourceConstructor } from './transports/sse.js';
import type { WebSocketConstructor } from './transports/websocket.js';

/** Options of `EPush.connect()`. */
export interface ConnectOptions {
  /** Base URL of the push server (absolute, or relative to the page), e.g. `https://push.example.com`. */
  url: string;
  /**
   * `auto` (the default) tries WebSocket, then SSE, then long-poll, and falls back by itself
   * when a proxy refuses or buffers one; a name forces that transport.
   */
  transport?: TransportName | 'auto';
  /**
   * Name shared by every tab and application that should share one connection: the Web Lock,
   * BroadcastChannel and localStorage keys derive from it. Default: derived from the resolved
   * `url`, so two push servers never mix.
   */
  channelName?: string;
  /** The server's `--hold-seconds` (default 25); a listen unanswered after hold + margin is abandoned. */
  holdSeconds?: number;
  /** Margin added to `holdSeconds` before a listen is abandoned (default 10). */
  abandonMarginSeconds?: number;
  /**
   * How this page shares the connection. `auto` (the default): through the hub frame of the
   * push server's origin, with every origin of the site, falling back to this origin's tabs when
   * the hub does not answer; `site`: the hub only (no fallback: without it, no connection);
   * `origin`: this origin's tabs only, no frame.
   */
  sharing?: 'auto' | 'site' | 'origin';
  /**
   * How long the hub frame has to load and answer before the page shares per origin (default
   * 10); a frame that loaded (or was blocked) and does not answer within 0.5 s fails at once.
   */
  hubTimeoutSeconds?: number;

  // Injectables: the browser's own by default; tests pass fakes. `null` disables one.
  fetch?: FetchLike;
  /** Opens the hub frame (default: a hidden iframe where there is a DOM). */
  hubFrame?: HubFrameOpener | null;
  WebSocket?: WebSocketConstructor | null;
  EventSource?: EventSourceConstructor | null;
  BroadcastChannel?: BroadcastChannelConstructor | null;
  locks?: LockManagerLike | null;
  localStorage?: StorageLike | null;
  /** Where this page remembers what its views were shown, so a reload resumes exactly. */
  sessionStorage?: StorageLike | null;
  /**
   * The cursor this page's views had seen everything up to before a reload (default: what the
   * page's sessionStorage says). The hub frame passes its page's.
   */
  resumeCursor?: string;
  window?: WindowLike | null;
  /** Whether the browser believes it is online (`navigator.onLine`). */
  onLine?: () => boolean;
  now?: () => number;
  setTimeout?: (callback: () => void, ms: number) => TimerHandle;
  clearTimeout?: (handle: TimerHandle) => void;
  /** Source of jitter, uniform in [0, 1). */
  random?: () => number;
  logger?: Logger;
}
