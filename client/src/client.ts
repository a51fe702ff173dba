import { Emitter } from './emitter.js';
import { randomId, resolveEnvironment, type Environment } from './environment.js';
import { HubLink } from './hub-link.js';
import { PageLedger } from './page-ledger.js';
import { TabMember, type TabMemberHost } from './tab-member.js';
import type {
  ConnectOptions,
  ConnectionStatus,
  EPushEvents,
  ListenOptions,
  PushNotification,
  ResetEvent,
  WindowEventLike,
} from './types.js';

/** Push IDs the server accepts (src/core/push-id.ts); checked here so one bad ID cannot break
 * the listen shared by every application of the site. */
const PUSH_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
/** Listen tokens as the server mints them (src/http/listen-tokens.ts). */
const LISTEN_TOKEN_PATTERN = /^v1\.\d{1,12}\.[A-Za-z0-9_-]{43}$/;
const EXPIRED_MEMORY = 1000;
/** The hub page, relative to the push server's base URL (served by the node). */
export const HUB_PATH = '/epush-hub.html';

type NotificationCallback = (notification: PushNotification) => void;

/** How this page shares the connection (`push.sharing`). */
export interface SharingInfo {
  /**
   * `site`: through the hub frame of the push server's origin, with every origin of the site;
   * `origin`: with the tabs of this page's origin only (the hub is not used or did not load).
   */
  readonly mode: 'site' | 'origin';
  /** `web-locks`, `lease` or `solo` (`none` while not joined, or before the hub answered). */
  readonly leadership: string;
  /** `broadcast-channel`, `storage` or `none`. In `site` mode both are the hub frame's. */
  readonly channel: string;
}

/**
 * One page's handle on the site's shared push connection (what `EPush.connect()` returns): the
 * views (`listen()`), the events, and the way this page shares the connection. Either it joins
 * the site's tabs through the hub frame (`HubLink`, site mode) or it joins the tabs of its own
 * origin itself (`TabMember`, origin mode; also the fallback when the hub does not answer).
 * Each view gets each (notification id, push ID) pair at most once, across reloads too (the
 * page's own ledger in sessionStorage).
 */
export class EPushClient {
  /** Random per page load; names this tab in the tab protocol. */
  readonly tabId: string;
  private readonly env: Environment;
  private readonly views = new Map<string, Set<NotificationCallback>>();
  /** Listen tokens of this tab's push IDs (`listen(id, cb, { listenToken })`). */
  private readonly tokens = new Map<string, string>();
  private readonly emitter: Emitter<EPushEvents>;
  private readonly expiredIds = new Set<string>();
  private currentStatus: ConnectionStatus;
  private member: TabMember | null = null;
  private hub: HubLink | null = null;
  private closed = false;
  private references = 1;
  private readonly ledger: PageLedger;
  /** The page's cursor from before a reload, for whoever shares the connection for it. */
  private resumeCursor: string | null;
  private readonly deliveryWatchers = new Set<(cursor: string | null) => void>();
  private readonly onPageHide = (event: WindowEventLike): void => {
    // The page was alive up to now and had seen everything up to its cursor.
    if (event.type === 'pagehide') this.ledger.record(null, false, this.env.clock.now());
  };

  constructor(options: ConnectOptions) {
    this.env = resolveEnvironment(options);
    this.tabId = randomId();
    this.ledger = new PageLedger(this.env.sessionStorage, this.env.channelName);
    this.resumeCursor = options.resumeCursor ?? this.ledger.resumeCursor(this.env.clock.now());
    this.env.window?.addEventListener('pagehide', this.onPageHide);
    this.emitter = new Emitter((error) => {
      this.env.logger.error('epush: an event listener threw', error);
    });
    this.currentStatus = this.env.onLine() ? 'connecting' : 'offline';
    if (this.env.sharing === 'site' && this.env.hubFrame) this.openHub(options);
    else if (this.env.sharing === 'site') this.hubFailed('this page cannot embed frames');
    else this.joinOrigin();
  }

  /** The shared connection's status, as last reported by the leader. */
  get status(): ConnectionStatus {
    return this.currentStatus;
  }

  /** Whether this tab (in site mode: this page's hub frame) holds the site's connection. */
  get isLeader(): boolean {
    return this.hub ? (this.hub.hubState?.isLeader ?? false) : (this.member?.isLeader ?? false);
  }

  /** How this page shares the connection (diagnostics; see {@link SharingInfo}). */
  get sharing(): SharingInfo {
    if (this.hub) {
      const state = this.hub.hubState;
      return {
        mode: 'site',
        leadership: state?.leadership ?? 'none',
        channel: state?.channel ?? 'none',
      };
    }
    if (this.env.sharing === 'site' && !this.member) {
      return { mode: 'site', leadership: 'none', channel: 'none' }; // forced, and failed
    }
    return { mode: 'origin', ...(this.member?.sharing ?? { leadership: 'none', channel: 'none' }) };
  }

  /** The channel name the tabs of this site share (lock, BroadcastChannel and storage keys). */
  get channelName(): string {
    return this.env.channelName;
  }

  /**
   * Calls `callback` for every notification to `pushId` from now on, once per notification,
   * in every tab that listens on it. Returns `stop`, which ends this view only (idempotent).
   */
  listen(pushId: string, callback: NotificationCallback, options: ListenOptions = {}): () => void {
    if (this.closed) throw new Error('EPush: listen() on a closed client');
    if (typeof pushId !== 'string' || !PUSH_ID_PATTERN.test(pushId)) {
      throw new TypeError(`EPush: ${JSON.stringify(pushId)} is not a push ID`);
    }
    if (typeof callback !== 'function') throw new TypeError('EPush: listen() needs a callback');
    const token = (options as { listenToken?: unknown }).listenToken;
    if (token !== undefined && (typeof token !== 'string' || !LISTEN_TOKEN_PATTERN.test(token))) {
      throw new TypeError(
        'EPush: listenToken must be a token from the server (v1.<expires>.<mac>)',
      );
    }
    if (this.expiredIds.has(pushId)) {
      queueMicrotask(() => {
        if (!this.closed) this.emitter.emit('expired', [pushId]);
      });
      return () => undefined;
    }
    const view: NotificationCallback = (notification) => {
      callback(notification);
    };
    let set = this.views.get(pushId);
    if (!set) {
      set = new Set();
      this.views.set(pushId, set);
      if (token !== undefined) this.tokens.set(pushId, token);
      this.ownPushIdsChanged(true);
    } else if (token !== undefined && this.tokens.get(pushId) !== token) {
      // A fresh token for a push ID already listened on (the old one expires, or was refused).
      this.tokens.set(pushId, token);
      this.ownPushIdsChanged(false);
    }
    set.add(view);
    return () => {
      const current = this.views.get(pushId);
      if (!current?.delete(view) || current.size > 0) return;
      this.views.delete(pushId);
      this.tokens.delete(pushId);
      if (!this.closed) this.ownPushIdsChanged(false);
    };
  }

  /** Subscribes to `status`, `reset`, `expired` or `forbidden`; returns the unsubscribe function. */
  on<K extends keyof EPushEvents>(event: K, callback: (value: EPushEvents[K]) => void): () => void {
    return this.emitter.on(event, callback);
  }

  off<K extends keyof EPushEvents>(event: K, callback: (value: EPushEvents[K]) => void): void {
    this.emitter.off(event, callback);
  }

  /**
   * Releases this reference; the client shuts down when every `connect()` that returned it has
   * closed (two applications on one page share it). Shutting down unregisters this tab's push
   * IDs and hands leadership over at once.
   */
  close(): void {
    if (this.closed) return;
    this.references -= 1;
    if (this.references > 0) return;
    this.shutdown();
  }

  /** Another `connect()` on this page got this instance. */
  retain(): void {
    this.references += 1;
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Closes now, whatever the references (tests; a page that really wants to stop). */
  shutdown(): void {
    if (this.closed) return;
    this.member?.close();
    this.hub?.close();
    this.env.window?.removeEventListener('pagehide', this.onPageHide);
    this.closed = true;
    this.views.clear();
    this.emitter.clear();
  }

  /**
   * For the hub frame: `watcher` runs after each batch handed to the views, with the shared
   * cursor after it, so the hub can tell its page. Not part of the page API.
   */
  onDelivered(watcher: (cursor: string | null) => void): () => void {
    this.deliveryWatchers.add(watcher);
    return () => {
      this.deliveryWatchers.delete(watcher);
    };
  }

  // --- how this page shares ------------------------------------------------------------------

  private openHub(options: ConnectOptions): void {
    const { env } = this;
    const hubFrame = env.hubFrame;
    if (!hubFrame) return;
    const host = this.host();
    // Told to the hub, and kept for the origin's tabs should the hub fail.
    const since = this.resumeCursor;
    this.hub = new HubLink(
      {
        url: env.baseUrl + HUB_PATH,
        hello: {
          ...(options.channelName === undefined ? {} : { channelName: options.channelName }),
          transport: env.transport,
          holdSeconds: env.holdMs / 1000,
          abandonMarginSeconds: (env.abandonAfterMs - env.holdMs) / 1000,
          ...(since === null ? {} : { since }),
        },
        open: hubFrame,
        timeoutMs: env.hubTimeoutMs,
        clock: env.clock,
        logger: env.logger,
      },
      {
        ...host,
        failed: (reason) => {
          this.hubFailed(reason);
        },
      },
    );
  }

  /** The hub did not answer: share per origin (auto), or stay without a connection (forced). */
  private hubFailed(reason: string): void {
    this.hub = null;
    if (this.closed) return;
    if (this.env.sharingForced) {
      this.env.logger.error(`epush: sharing "site" is forced but ${reason}; not connecting`);
      return;
    }
    this.env.logger.warn(`epush: ${reason}; sharing with this origin's tabs only`);
    this.joinOrigin();
  }

  private joinOrigin(): void {
    this.member = new TabMember(this.env, this.tabId, this.host());
  }

  /** What the page offers whoever shares the connection for it (member or hub link). */
  private host(): TabMemberHost {
    return {
      expired: this.expiredIds,
      ownPushIds: (): string[] => [...this.views.keys()].sort(),
      ownTokens: (): Readonly<Record<string, string>> | undefined =>
        this.tokens.size === 0 ? undefined : Object.fromEntries(this.tokens),
      deliver: (notifications: readonly PushNotification[], cursor: string | null): void => {
        this.deliverLocally(notifications, cursor);
      },
      takeResumeCursor: (): string | null => this.takeResumeCursor(),
      statusChanged: (status: ConnectionStatus): void => {
        this.setStatus(status);
      },
      reset: (reason: ResetEvent['reason']): void => {
        this.emitter.emit('reset', { reason });
      },
      expire: (pushIds: readonly string[]): void => {
        this.expireLocally(pushIds);
      },
      forbid: (refused: Readonly<Record<string, string>>, message: string): void => {
        this.forbidLocally(refused, message);
      },
    };
  }

  private takeResumeCursor(): string | null {
    const cursor = this.resumeCursor;
    this.resumeCursor = null;
    return cursor;
  }

  /** This page's push IDs changed: tell whoever shares the connection for it. */
  private ownPushIdsChanged(added: boolean): void {
    this.member?.pushIdsChanged(added);
    this.hub?.pushIdsChanged();
  }

  // --- local delivery and events ------------------------------------------------------------

  /** Hands `notifications` to this page's views, each once, then notes the `cursor` after them. */
  private deliverLocally(notifications: readonly PushNotification[], cursor: string | null): void {
    if (this.closed) return;
    const fresh = this.ledger.admit(notifications, (pushId) => this.views.has(pushId));
    for (const notification of fresh) {
      const views = this.views.get(notification.pushId);
      if (!views) continue;
      for (const view of [...views]) {
        try {
          view(notification);
        } catch (error) {
          this.env.logger.error('epush: a notification callback threw', error);
        }
      }
    }
    this.ledger.record(cursor, fresh.length > 0, this.env.clock.now());
    for (const watcher of this.deliveryWatchers) watcher(cursor);
  }

  private setStatus(status: ConnectionStatus): void {
    if (this.closed || status === this.currentStatus) return;
    this.currentStatus = status;
    this.emitter.emit('status', status);
  }

  private expireLocally(pushIds: readonly string[]): void {
    if (this.closed) return;
    const mine: string[] = [];
    for (const id of pushIds) {
      if (this.expiredIds.has(id)) continue;
      this.expiredIds.add(id);
      if (this.expiredIds.size > EXPIRED_MEMORY) {
        const oldest = this.expiredIds.values().next();
        if (oldest.done !== true) this.expiredIds.delete(oldest.value);
      }
      this.tokens.delete(id);
      if (this.views.delete(id)) mine.push(id);
    }
    if (mine.length > 0) {
      this.ownPushIdsChanged(false);
      this.emitter.emit('expired', mine);
    }
  }

  /** `forbidden` for this tab's push IDs that still have the token the server refused. */
  private forbidLocally(refused: Readonly<Record<string, string>>, message: string): void {
    if (this.closed) return;
    const mine = Object.keys(refused).filter(
      (id) => this.views.has(id) && (this.tokens.get(id) ?? '') === refused[id],
    );
    if (mine.length > 0) this.emitter.emit('forbidden', { pushIds: mine, message });
  }
}
