import { olderCursor } from './cursor.js';
import { RecentDeliveries } from './dedupe.js';
import type { Environment } from './environment.js';
import {
  chooseHandover,
  HANDOVER_FRESH_MS,
  HEARTBEAT_MS,
  LeaderRole,
  type Handover,
  type HeardState,
  type LeaderHost,
} from './leader.js';
import { TabRegistry } from './registry.js';
import { StateStore } from './state-store.js';
import { openTabChannel, type TabChannel } from './tab-channel.js';
import { chooseLeadership, type Leadership } from './tab-leadership.js';
import type { TabMessage } from './tab-messages.js';
import type {
  ConnectionStatus,
  PushNotification,
  ResetEvent,
  TimerHandle,
  WindowEventLike,
} from './types.js';

/** A follower forgets registrations it has not heard of for this long (memory bound only). */
const FOLLOWER_FORGET_MS = 30_000;
/** A `since` cursor older than this is not offered: re-reading that far is not worth it. */
const SINCE_FRESH_MS = 60_000;
const WINDOW_EVENTS = ['online', 'offline', 'pagehide', 'pageshow'] as const;

/** What a tab member needs from the page's client: its push IDs, and where events go. */
export interface TabMemberHost {
  /** This tab's push IDs, sorted. */
  ownPushIds(): string[];
  /** Listen tokens of some of them, or undefined when none has one. */
  ownTokens(): Readonly<Record<string, string>> | undefined;
  /** Push IDs the server reported expired: never listened on again (shared with the leader). */
  readonly expired: ReadonlySet<string>;
  /** Notifications for the page's views, with the shared cursor after them. */
  deliver(notifications: readonly PushNotification[], cursor: string | null): void;
  /** The page's own cursor from before a reload (see PageLedger), once; then null. */
  takeResumeCursor(): string | null;
  statusChanged(status: ConnectionStatus): void;
  reset(reason: ResetEvent['reason']): void;
  /** Forgets expired push IDs in this tab and emits `expired` for its own. */
  expire(pushIds: readonly string[]): void;
  /** Emits `forbidden` for this tab's push IDs refused with the token they still have. */
  forbid(refused: Readonly<Record<string, string>>, message: string): void;
}

/**
 * This tab as one of the tabs of its origin that share a connection (what `sharing.mode`
 * `"origin"` means, and what the hub frame runs on the push server's origin): the tab channel,
 * the leadership, every tab's registrations, and the `LeaderRole` while this tab leads. A tab
 * delivers each (notification id, push ID) pair to its host at most once. It follows the page's
 * lifecycle by itself: leaves on `pagehide`, joins again on a `pageshow` from the bfcache.
 */
export class TabMember {
  private readonly registry = new TabRegistry();
  private readonly recent = new RecentDeliveries();
  private readonly store: StateStore;
  private heard: HeardState = { from: null, cursor: null, at: 0, pushIds: [] };
  /** Push IDs of tabs that unregistered, with when (kept out of a handover for a while). */
  private readonly departed = new Map<string, number>();
  private everConnected = false;
  private channel: TabChannel | null = null;
  private leadership: Leadership | null = null;
  private leader: LeaderRole | null = null;
  private heartbeat: TimerHandle | null = null;
  private lastRegisteredAt = Number.NEGATIVE_INFINITY;
  private registrationScheduled = false;
  /** The shared cursor when push IDs were added since the last registration was sent. */
  private addedSince: string | null | undefined = undefined;
  /**
   * A reloaded page's own cursor (what IT was shown; the shared one may be past it): the `since`
   * of its first registration, and where it resumes if it leads within HANDOVER_FRESH_MS.
   */
  private resume: { cursor: string; until: number; registered: boolean } | null = null;
  private closed = false;
  private readonly onWindowEvent = (event: WindowEventLike): void => {
    this.handleWindowEvent(event);
  };

  constructor(
    private readonly env: Environment,
    /** Random per page load; names this tab in the tab protocol. */
    readonly tabId: string,
    private readonly host: TabMemberHost,
  ) {
    this.store = new StateStore(env.localStorage, `${env.channelName}:state`);
    const resume = host.takeResumeCursor();
    if (resume !== null) {
      this.resume = {
        cursor: resume,
        until: env.clock.now() + HANDOVER_FRESH_MS,
        registered: false,
      };
    }
    for (const type of WINDOW_EVENTS) env.window?.addEventListener(type, this.onWindowEvent);
    this.join();
  }

  /** Whether this tab holds the connection. */
  get isLeader(): boolean {
    return this.leader !== null;
  }

  /** How the tabs coordinate here (`none` while left, e.g. in the bfcache). */
  get sharing(): { leadership: string; channel: string } {
    return { leadership: this.leadership?.kind ?? 'none', channel: this.channel?.kind ?? 'none' };
  }

  /**
   * This tab's push IDs (or tokens) changed: registers them with the other tabs once the
   * current burst of changes is over. `added`: some were added, so the leader re-listens from
   * the shared cursor of now (nothing published from this moment on is missed).
   */
  pushIdsChanged(added: boolean): void {
    if (added) {
      this.addedSince ??= this.currentCursor();
      if (this.resume && !this.resume.registered) {
        this.resume.registered = true;
        this.addedSince = olderCursor(this.addedSince, this.resume.cursor);
      }
    }
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

  /** Leaves for good: unregisters, hands leadership over, stops following the page. */
  close(): void {
    if (this.closed) return;
    this.leave();
    this.closed = true;
    for (const type of WINDOW_EVENTS)
      this.env.window?.removeEventListener(type, this.onWindowEvent);
  }

  private join(): void {
    const { env } = this;
    this.channel = openTabChannel(env.channelName, env, (message) => {
      this.onMessage(message);
    });
    this.leadership = chooseLeadership(env, this.channel.kind !== 'none', this.tabId, (leader) => {
      if (leader) this.becomeLeader();
      else this.becomeFollower();
    });
    const pushIds = this.host.ownPushIds();
    this.registry.set(this.tabId, pushIds, env.clock.now());
    if (pushIds.length > 0) this.postRegistration();
    this.leadership.start();
    this.scheduleHeartbeat();
  }

  /** Leaves the site's tabs: unregisters, resigns, closes the channel. */
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

  /** The push IDs of tabs that left within the handover window; older ones are forgotten. */
  private departedIds(now: number): Set<string> {
    for (const [id, at] of this.departed) {
      if (now - at > HANDOVER_FRESH_MS) this.departed.delete(id);
    }
    return new Set(this.departed.keys());
  }

  private handover(): Handover {
    const now = this.env.clock.now();
    const saved = this.store.load();
    // A tab that heard a leader lately resumes from what the tabs were shown (the cursor of the
    // last broadcast it heard). The saved state can be AHEAD of that: a leader whose renderer
    // dies right after an answer may get its localStorage write through while the `deliver`
    // broadcast it posted just before is lost (Chromium, CDP Page.crash), and trusting its
    // cursor would skip the answer for every tab. The saved cursor is for a tab that heard no
    // leader (a reload); what was shown, each page remembers itself (PageLedger).
    const heardLeader = this.heard.cursor !== null && now - this.heard.at <= HANDOVER_FRESH_MS;
    const trusted = saved && heardLeader ? { ...saved, cursor: null } : saved;
    // With Web Locks this tab got the lock because the leader's page let it go (closed, or
    // left): its push IDs leave with it even if its goodbye never arrived. A lease can also be
    // lost by a live leader whose timers were throttled; it re-registers, so nothing is assumed.
    const previous = this.heard.from;
    if (this.leadership?.kind === 'web-locks' && previous !== null && previous !== this.tabId) {
      for (const id of this.registry.delete(previous)) this.departed.set(id, now);
    }
    const chosen = chooseHandover(
      this.heard,
      trusted,
      now,
      this.everConnected,
      this.departedIds(now),
    );
    const resume = this.resume;
    this.resume = null;
    if (!resume || now > resume.until) return chosen;
    return { ...chosen, cursor: olderCursor(chosen.cursor, resume.cursor) };
  }

  private leaderHost(channel: TabChannel): LeaderHost {
    return {
      tabId: this.tabId,
      env: this.env,
      registry: this.registry,
      recent: this.recent,
      store: this.store,
      channel,
      expired: this.host.expired,
      deliverLocally: (notifications, cursor) => {
        this.host.deliver(notifications, cursor);
      },
      statusChanged: (status) => {
        this.setStatus(status);
      },
      resetLocally: (reason) => {
        this.host.reset(reason);
      },
      expireLocally: (pushIds) => {
        this.expire(pushIds);
      },
      forbidLocally: (refused, message) => {
        this.host.forbid(refused, message);
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
        if (!known && this.leader) {
          this.leader.announce(); // a new tab learns the status at once
          // and the leader's own push IDs (followers repeat theirs at every heartbeat): if this
          // leader closes, the newcomer knows which push IDs left with it (see chooseHandover).
          if (this.host.ownPushIds().length > 0) this.postRegistration();
        }
        return;
      }
      case 'unregister':
        this.departedIds(now); // forgets the old ones: the map stays small
        for (const id of this.registry.delete(message.from)) this.departed.set(id, now);
        this.leader?.scheduleUnion();
        return;
      case 'leader':
        this.heard = {
          from: message.from,
          cursor: message.cursor,
          at: now,
          pushIds: message.pushIds,
        };
        if (this.leader) return; // a stale message, or a double lease that heals itself
        this.setStatus(message.status);
        // Heartbeats are answered, not only timed: a hidden tab's timers may be throttled.
        if (this.host.ownPushIds().length > 0) this.postRegistration();
        return;
      case 'deliver':
        if (!this.leader) this.heard = { ...this.heard, cursor: message.cursor, at: now };
        this.host.deliver(this.recent.admit(message.notifications), message.cursor);
        return;
      case 'reset':
        this.host.reset(message.reason);
        return;
      case 'expired':
        this.expire(message.pushIds);
        this.leader?.scheduleUnion();
        return;
      case 'resign':
        this.leadership?.poke();
        return;
      case 'forbidden':
        this.host.forbid(message.refused, message.message);
        return;
    }
  }

  private setStatus(status: ConnectionStatus): void {
    if (status === 'connected') this.everConnected = true;
    this.host.statusChanged(status);
  }

  private expire(pushIds: readonly string[]): void {
    this.registry.dropPushIds(pushIds);
    this.host.expire(pushIds);
  }

  /** The shared cursor as this tab knows it now (null when unknown or too stale to rewind to). */
  private currentCursor(): string | null {
    if (this.leader) return this.leader.cursor;
    return this.env.clock.now() - this.heard.at <= SINCE_FRESH_MS ? this.heard.cursor : null;
  }

  private postRegistration(since?: string): void {
    const pushIds = this.host.ownPushIds();
    const tokens = this.host.ownTokens();
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
        // The leader repeats its registration only when a tab joins: keep it (see handover).
        this.registry.sweep(now - FOLLOWER_FORGET_MS, [this.tabId, this.heard.from ?? '']);
        // Leader heartbeats usually prompt the registration already.
        if (
          this.host.ownPushIds().length > 0 &&
          now - this.lastRegisteredAt >= HEARTBEAT_MS * 0.9
        ) {
          this.postRegistration();
        }
      }
      this.scheduleHeartbeat();
    }, HEARTBEAT_MS);
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
