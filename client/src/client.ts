import { RecentDeliveries } from './dedupe.js';
import { Emitter } from './emitter.js';
import { randomId, resolveEnvironment, type Environment } from './environment.js';
import {
  chooseHandover,
  HANDOVER_FRESH_MS,
  HEARTBEAT_MS,
  LeaderRole,
  type Handover,
  type HeardState,
} from './leader.js';
import { TabRegistry } from './registry.js';
import { StateStore } from './state-store.js';
import { openTabChannel, type TabChannel } from './tab-channel.js';
import { chooseLeadership, type Leadership } from './tab-leadership.js';
import type { TabMessage } from './tab-messages.js';
import type {
  ConnectOptions,
  ConnectionStatus,
  EPushEvents,
  ListenOptions,
  PushNotification,
  ResetEvent,
  TimerHandle,
  WindowEventLike,
} from './types.js';

/** Push IDs the server accepts (src/core/push-id.ts); checked here so one bad ID cannot break
 * the listen shared by every application of the site. */
const PUSH_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;
/** Listen tokens as the server mints them (src/http/listen-tokens.ts). */
const LISTEN_TOKEN_PATTERN = /^v1\.\d{1,12}\.[A-Za-z0-9_-]{43}$/;
/** A follower forgets registrations it has not heard of for this long (memory bound only). */
const FOLLOWER_FORGET_MS = 30_000;
const EXPIRED_MEMORY = 1000;
/** A `since` cursor older than this is not offered: re-reading that far is not worth it. */
const SINCE_FRESH_MS = 60_000;

type NotificationCallback = (notification: PushNotification) => void;

/**
 * One page's handle on the site's shared push connection (what `EPush.connect()` returns).
 * Every tab runs one; leadership picks the single tab whose `LeaderRole` holds the connection,
 * the others are followers that register their push IDs and receive their notifications over the
 * tab channel. A tab delivers each (notification id, push ID) pair to its views at most once.
 */
export class EPushClient {
  /** Random per page load; names this tab in the tab protocol. */
  readonly tabId: string;
  private readonly env: Environment;
  private readonly views = new Map<string, Set<NotificationCallback>>();
  /** Listen tokens of this tab's push IDs (`listen(id, cb, { listenToken })`). */
  private readonly tokens = new Map<string, string>();
  private readonly emitter: Emitter<EPushEvents>;
  private readonly registry = new TabRegistry();
  private readonly recent = new RecentDeliveries();
  private readonly expiredIds = new Set<string>();
  private readonly store: StateStore;
  private heard: HeardState = { cursor: null, at: 0, pushIds: [] };
  private currentStatus: ConnectionStatus;
  private everConnected = false;
  private channel: TabChannel | null = null;
  private leadership: Leadership | null = null;
  private leader: LeaderRole | null = null;
  private heartbeat: TimerHandle | null = null;
  private lastRegisteredAt = Number.NEGATIVE_INFINITY;
  private registrationScheduled = false;
  /** The shared cursor when push IDs were added since the last registration was sent. */
  private addedSince: string | null | undefined = undefined;
  private closed = false;
  private references = 1;
  private readonly onWindowEvent = (event: WindowEventLike): void => {
    this.handleWindowEvent(event);
  };

  constructor(options: ConnectOptions) {
    this.env = resolveEnvironment(options);
    this.tabId = randomId();
    this.store = new StateStore(this.env.localStorage, `${this.env.channelName}:state`);
    this.emitter = new Emitter((error) => {
      this.env.logger.error('epush: an event listener threw', error);
    });
    this.currentStatus = this.env.onLine() ? 'connecting' : 'offline';
    for (const type of ['online', 'offline', 'pagehide', 'pageshow']) {
      this.env.window?.addEventListener(type, this.onWindowEvent);
    }
    this.join();
  }

  /** The shared connection's status, as last reported by the leader. */
  get status(): ConnectionStatus {
    return this.currentStatus;
  }

  /** Whether this tab holds the site's connection (diagnostics and tests). */
  get isLeader(): boolean {
    return this.leader !== null;
  }

  /** How tabs coordinate here: `web-locks`, `lease` or `solo`, over `broadcast-channel`, `storage` or `none`. */
  get sharing(): { leadership: string; channel: string } {
    return { leadership: this.leadership?.kind ?? 'none', channel: this.channel?.kind ?? 'none' };
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
      this.addedSince ??= this.currentCursor();
      if (token !== undefined) this.tokens.set(pushId, token);
      this.ownPushIdsChanged();
    } else if (token !== undefined && this.tokens.get(pushId) !== token) {
      // A fresh token for a push ID already listened on (the old one expires, or was refused).
      this.tokens.set(pushId, token);
      this.ownPushIdsChanged();
    }
    set.add(view);
    return () => {
      const current = this.views.get(pushId);
      if (!current?.delete(view) || current.size > 0) return;
      this.views.delete(pushId);
      this.tokens.delete(pushId);
      if (!this.closed) this.ownPushIdsChanged();
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
    this.leave();
    this.closed = true;
    for (const type of ['online', 'offline', 'pagehide', 'pageshow']) {
      this.env.window?.removeEventListener(type, this.onWindowEvent);
    }
    this.views.clear();
    this.emitter.clear();
  }

  // --- joining and leaving the site's tabs --------------------------------------------------

  private join(): void {
    const { env } = this;
    this.channel = openTabChannel(env.channelName, env, (message) => {
      this.onMessage(message);
    });
    this.leadership = chooseLeadership(env, this.channel.kind !== 'none', this.tabId, (leader) => {
      if (leader) this.becomeLeader();
      else this.becomeFollower();
    });
    this.registry.set(this.tabId, this.ownPushIds(), env.clock.now());
    if (this.views.size > 0) this.postRegistration();
    this.leadership.start();
    this.scheduleHeartbeat();
  }

  /** Leaves the site's tabs: unregisters, resigns, closes the channel. Views stay (bfcache). */
  private leave(): void {
    const channel = this.channel;
    if (!channel) return;
    channel.post({ t: 'unregister', from: this.tabId });
    if (this.leader) {
      this.leader.close();
      this.leader = null;
      channel.post({ t: 'resign', from: this.tabId });
    }
    this.leadership?.stop();
    this.leadership = null;
    channel.close();
    this.channel = null;
    if (this.heartbeat !== null) this.env.clock.clearTimeout(this.heartbeat);
    this.heartbeat = null;
  }

  private becomeLeader(): void {
    if (this.leader || !this.channel || this.closed) return;
    this.leader = new LeaderRole(this.leaderHost(this.channel), this.handover());
  }

  private becomeFollower(): void {
    this.leader?.close();
    this.leader = null;
    this.postRegistration();
  }

  private handover(): Handover {
    const now = this.env.clock.now();
    const saved = this.store.load();
    // A tab that heard a leader lately resumes from what the tabs were shown (the cursor of the
    // last broadcast it heard) and dedupes with what it heard. The saved state can be AHEAD of
    // that: a leader whose renderer dies right after an answer may get its localStorage write
    // through while the `deliver` broadcast it posted just before is lost (Chromium, CDP
    // Page.crash), and trusting that state (its cursor or its `recent` keys) would skip the
    // answer for every tab. The saved state is for a tab that heard no leader (a reload).
    const heardLeader = this.heard.cursor !== null && now - this.heard.at <= HANDOVER_FRESH_MS;
    if (saved && !heardLeader) for (const key of saved.recent) this.recent.add(key);
    const trusted = saved && heardLeader ? { ...saved, cursor: null } : saved;
    return chooseHandover(this.heard, trusted, now, this.everConnected);
  }

  private leaderHost(channel: TabChannel): ConstructorParameters<typeof LeaderRole>[0] {
    return {
      tabId: this.tabId,
      env: this.env,
      registry: this.registry,
      recent: this.recent,
      store: this.store,
      channel,
      expired: this.expiredIds,
      deliverLocally: (notifications) => {
        this.deliverLocally(notifications);
      },
      statusChanged: (status) => {
        this.setStatus(status);
      },
      resetLocally: (reason) => {
        this.emitReset(reason);
      },
      expireLocally: (pushIds) => {
        this.expireLocally(pushIds);
      },
      forbidLocally: (refused, message) => {
        this.forbidLocally(refused, message);
      },
    };
  }

  // --- the tab protocol ---------------------------------------------------------------------

  private onMessage(message: TabMessage): void {
    if (this.closed || message.from === this.tabId) return;
    const now = this.env.clock.now();
    switch (message.t) {
      case 'register': {
        const known = this.registry.has(message.from);
        this.registry.set(message.from, message.pushIds, now, message.tokens);
        this.leader?.scheduleUnion(message.since);
        if (!known) this.leader?.announce(); // a new tab learns the status at once
        return;
      }
      case 'unregister':
        this.registry.delete(message.from);
        this.leader?.scheduleUnion();
        return;
      case 'leader':
        this.heard = { cursor: message.cursor, at: now, pushIds: message.pushIds };
        if (this.leader) return; // a stale message, or a double lease that heals itself
        this.setStatus(message.status);
        // Heartbeats are answered, not only timed: a hidden tab's timers may be throttled.
        if (this.views.size > 0) this.postRegistration();
        return;
      case 'deliver':
        if (!this.leader) this.heard = { ...this.heard, cursor: message.cursor, at: now };
        this.deliverLocally(this.recent.admit(message.notifications));
        return;
      case 'reset':
        this.emitReset(message.reason);
        return;
      case 'expired':
        this.expireLocally(message.pushIds);
        this.leader?.scheduleUnion();
        return;
      case 'resign':
        this.leadership?.poke();
        return;
      case 'forbidden':
        this.forbidLocally(message.refused, message.message);
        return;
    }
  }

  /** The shared cursor as this tab knows it now (null when unknown or too stale to rewind to). */
  private currentCursor(): string | null {
    if (this.leader) return this.leader.cursor;
    return this.env.clock.now() - this.heard.at <= SINCE_FRESH_MS ? this.heard.cursor : null;
  }

  private ownPushIds(): string[] {
    return [...this.views.keys()].sort();
  }

  /** This tab's push IDs changed: tell the registry, the other tabs and (if leading) re-listen. */
  private ownPushIdsChanged(): void {
    if (this.registrationScheduled) return;
    this.registrationScheduled = true;
    queueMicrotask(() => {
      this.registrationScheduled = false;
      if (this.closed || !this.channel) return;
      const since = this.addedSince ?? undefined;
      this.addedSince = undefined;
      this.postRegistration(since);
      this.leader?.scheduleUnion(since);
    });
  }

  private postRegistration(since?: string): void {
    const pushIds = this.ownPushIds();
    const tokens = this.tokens.size === 0 ? undefined : Object.fromEntries(this.tokens);
    this.registry.set(this.tabId, pushIds, this.env.clock.now(), tokens);
    this.lastRegisteredAt = this.env.clock.now();
    this.channel?.post({
      t: 'register',
      from: this.tabId,
      pushIds,
      ...(since === undefined ? {} : { since }),
      ...(tokens === undefined ? {} : { tokens }),
    });
  }

  private scheduleHeartbeat(): void {
    this.heartbeat = this.env.clock.setTimeout(() => {
      this.heartbeat = null;
      if (this.closed || !this.channel) return;
      const now = this.env.clock.now();
      if (this.leader) {
        this.leader.tick();
      } else {
        this.registry.sweep(now - FOLLOWER_FORGET_MS, this.tabId);
        // Leader heartbeats usually prompt the registration already.
        if (this.views.size > 0 && now - this.lastRegisteredAt >= HEARTBEAT_MS * 0.9) {
          this.postRegistration();
        }
      }
      this.scheduleHeartbeat();
    }, HEARTBEAT_MS);
  }

  // --- local delivery and events ------------------------------------------------------------

  private deliverLocally(notifications: readonly PushNotification[]): void {
    for (const notification of notifications) {
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
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === 'connected') this.everConnected = true;
    if (status === this.currentStatus) return;
    this.currentStatus = status;
    this.emitter.emit('status', status);
  }

  private emitReset(reason: ResetEvent['reason']): void {
    this.emitter.emit('reset', { reason });
  }

  private expireLocally(pushIds: readonly string[]): void {
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
    this.registry.dropPushIds(pushIds);
    if (mine.length > 0) {
      this.ownPushIdsChanged();
      this.emitter.emit('expired', mine);
    }
  }

  /** `forbidden` for this tab's push IDs that still have the token the server refused. */
  private forbidLocally(refused: Readonly<Record<string, string>>, message: string): void {
    const mine = Object.keys(refused).filter(
      (id) => this.views.has(id) && (this.tokens.get(id) ?? '') === refused[id],
    );
    if (mine.length > 0) this.emitter.emit('forbidden', { pushIds: mine, message });
  }

  private handleWindowEvent(event: WindowEventLike): void {
    if (this.closed) return;
    switch (event.type) {
      case 'online':
      case 'offline': {
        const online = event.type === 'online';
        if (this.leader) this.leader.setOnline(online);
        else if (!online) this.setStatus('offline');
        return;
      }
      case 'pagehide':
        // Leaving (or entering the back/forward cache): hand leadership over now, drop our IDs.
        this.leave();
        return;
      case 'pageshow':
        if (event.persisted === true && !this.channel) this.join();
        return;
    }
  }
}
