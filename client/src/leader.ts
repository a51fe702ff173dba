import { Connection } from './connection.js';
import { compareCursors } from './cursor.js';
import type { RecentDeliveries } from './dedupe.js';
import type { Environment } from './environment.js';
import type { TabRegistry } from './registry.js';
import type { SavedState, StateStore } from './state-store.js';
import type { TabChannel } from './tab-channel.js';
import { createTransport } from './transports/select.js';
import type { Transport } from './transports/transport.js';
import type { ConnectionStatus, ListenAnswer, PushNotification, ResetEvent } from './types.js';

/** The leader's heartbeat period; followers register at the same pace. */
export const HEARTBEAT_MS = 1000;
/** A registration not refreshed for this long (and not since the last heartbeat) is dropped. */
export const REGISTRATION_STALE_MS = 3000;
/** Registry owner of the push IDs inherited from the previous leader until their tabs re-register. */
export const INHERITED_OWNER = '(inherited)';

/** What the leader needs from its tab. */
export interface LeaderHost {
  readonly tabId: string;
  readonly env: Environment;
  readonly registry: TabRegistry;
  readonly recent: RecentDeliveries;
  readonly store: StateStore;
  readonly channel: TabChannel;
  /** Push IDs that expired: never listened on again. */
  readonly expired: ReadonlySet<string>;
  deliverLocally(notifications: readonly PushNotification[], cursor: string | null): void;
  statusChanged(status: ConnectionStatus): void;
  resetLocally(reason: ResetEvent['reason']): void;
  /** Forgets expired push IDs in this tab (views, registry) and emits `expired` for its own. */
  expireLocally(pushIds: readonly string[]): void;
  /** Emits `forbidden` for this tab's push IDs refused with the token they still have. */
  forbidLocally(refused: Readonly<Record<string, string>>, message: string): void;
}

/** Refused (push ID, token) pairs remembered; the oldest are forgotten past it. */
const REFUSED_MEMORY = 1000;

/** What a tab last heard from a leader (`leader` and `deliver` messages). */
export interface HeardState {
  /** The leader tab heard (null: none yet). */
  readonly from: string | null;
  readonly cursor: string | null;
  readonly at: number;
  readonly pushIds: readonly string[];
}

/** Handed-over state older than this is not trusted to describe the current union. */
export const HANDOVER_FRESH_MS = 5000;

/**
 * Where a new leader resumes: the newer of the cursor heard from the last leader and the one it
 * persisted (by sequence when comparable, else by time), and the union either recently named,
 * less the push IDs of tabs that said they were leaving (`departed`): a closed page's push IDs
 * must not be listened on until its registration goes stale, or the server reports it listening
 * for seconds after it closed. A push ID a live tab also registered stays, by its registration.
 */
export function chooseHandover(
  heard: HeardState,
  saved: SavedState | null,
  now: number,
  wasConnected: boolean,
  departed: ReadonlySet<string> = new Set(),
): Handover {
  let cursor = heard.cursor;
  if (saved && saved.cursor !== null) {
    const order = cursor === null ? 1 : compareCursors(saved.cursor, cursor);
    if (order === null ? saved.savedAt >= heard.at : order > 0) cursor = saved.cursor;
  }
  const pushIds = new Set<string>();
  if (now - heard.at <= HANDOVER_FRESH_MS) for (const id of heard.pushIds) pushIds.add(id);
  if (saved && now - saved.savedAt <= HANDOVER_FRESH_MS)
    for (const id of saved.pushIds) pushIds.add(id);
  for (const id of departed) pushIds.delete(id);
  return { cursor, pushIds: [...pushIds], wasConnected };
}

/** Where a new leader starts: the freshest shared cursor and union it could learn. */
export interface Handover {
  readonly cursor: string | null;
  readonly pushIds: readonly string[];
  readonly wasConnected: boolean;
}

/**
 * The leader tab's job: listen on the union of every tab's push IDs over one connection,
 * share each answer with all tabs (notifications deduped, the cursor after them), persist the
 * state so the next leader or a reload resumes exactly, and drop registrations of tabs gone
 * silent. Created when the tab wins leadership, closed when it loses or leaves.
 *
 * Per answer the order is: broadcast the notifications with the new cursor, deliver in this tab
 * what it has not shown, persist. Every tab dedupes for itself: a page that reloads resumes from
 * its own cursor (`since`), and the re-read must reach it even though other tabs saw it. A leader can die with its persisted state AHEAD of what the other tabs
 * heard (Chromium may let the localStorage write through while dropping the broadcast posted
 * just before it), so a successor that heard a leader lately resumes from the cursor it HEARD and
 * dedupes only with what it heard: it re-reads rather than skips. The persisted state serves a
 * tab that heard no leader (a reload of the last tab).
 */
export class LeaderRole {
  private readonly connection: Connection;
  private union: readonly string[] = [];
  /** The union with each push ID's token: a new token re-listens even when the IDs are the same. */
  private unionKey = '';
  /** Push ID → the token ('' for none) the server refused (403): not listened on with it again. */
  private readonly refused = new Map<string, string>();
  private unionScheduled = false;
  /** The oldest `since` of registrations that added push IDs, for the next re-listen. */
  private rewindTo: string | null = null;
  private lastTickAt: number;
  private closed = false;

  constructor(
    private readonly host: LeaderHost,
    handover: Handover,
    transport?: Transport,
  ) {
    const { env } = host;
    const now = env.clock.now();
    this.lastTickAt = now;
    host.registry.set(INHERITED_OWNER, handover.pushIds, now);
    this.connection = new Connection({
      transport: transport ?? createTransport(env),
      clock: env.clock,
      random: env.random,
      logger: env.logger,
      cursor: handover.cursor,
      wasConnected: handover.wasConnected,
      online: env.onLine(),
      tokenOf: (pushId) => this.host.registry.tokenOf(pushId),
      events: {
        forbidden: (pushIds, message, used) => {
          this.onForbidden(pushIds, message, used);
        },
        answer: (answer) => {
          this.onAnswer(answer);
        },
        status: (status) => {
          if (this.closed) return;
          this.host.statusChanged(status);
          this.announce();
        },
        cursorInvalid: () => {
          this.onReset('cursor-invalid');
          this.save();
        },
      },
    });
    host.statusChanged(this.connection.status);
    this.applyUnion(true);
  }

  get status(): ConnectionStatus {
    return this.connection.status;
  }

  get cursor(): string | null {
    return this.connection.cursor;
  }

  /** The push IDs listened on now. */
  get pushIds(): readonly string[] {
    return this.union;
  }

  /**
   * Registrations changed: re-listen once the current burst of changes is over (microtask).
   * `since` is the cursor a tab knew when it added push IDs; if the connection has moved past
   * it meanwhile, the re-listen starts from `since` instead (the dedupe memory drops repeats).
   */
  scheduleUnion(since?: string): void {
    if (this.closed) return;
    if (since !== undefined) {
      const order = compareCursors(since, this.rewindTo ?? since);
      if (order !== null && order <= 0) this.rewindTo = since;
    }
    if (this.unionScheduled) return;
    this.unionScheduled = true;
    queueMicrotask(() => {
      this.unionScheduled = false;
      this.applyUnion(false);
    });
  }

  /**
   * The heartbeat: drop registrations not refreshed for `REGISTRATION_STALE_MS` and not since
   * the previous heartbeat (a hidden tab whose timers the browser throttles still answers
   * heartbeats, since message events are not throttled), then announce.
   */
  tick(): void {
    if (this.closed) return;
    const now = this.host.env.clock.now();
    const cutoff = Math.min(now - REGISTRATION_STALE_MS, this.lastTickAt);
    this.lastTickAt = now;
    this.host.registry.sweep(cutoff, [this.host.tabId]);
    this.applyUnion(false);
    this.announce();
  }

  setOnline(online: boolean): void {
    this.connection.setOnline(online);
  }

  close(): void {
    if (this.closed) return;
    this.connection.close();
    this.save();
    this.closed = true;
  }

  private applyUnion(force: boolean): void {
    if (this.closed) return;
    const expired = this.host.expired;
    const { registry } = this.host;
    const union = registry
      .union()
      .filter((id) => !expired.has(id) && this.refused.get(id) !== (registry.tokenOf(id) ?? ''));
    const rewindTo = this.rewindTo;
    this.rewindTo = null;
    const key = union.map((id) => `${id}=${registry.tokenOf(id) ?? ''}`).join(',');
    // A reloaded page asks for what it missed (see PageLedger) even when its push IDs never
    // left the union (inherited from the saved state, or listened on by another tab).
    const current = this.connection.cursor;
    const behind =
      rewindTo !== null && current !== null && (compareCursors(rewindTo, current) ?? 0) < 0;
    if (!force && key === this.unionKey && !behind) return;
    this.unionKey = key;
    const before = new Set(this.union);
    const grew = union.some((id) => !before.has(id));
    this.union = union;
    this.connection.listenOn(union, grew || behind ? rewindTo : null);
    this.save();
    this.announce();
  }

  private onAnswer(answer: ListenAnswer): void {
    if (this.closed) return;
    const { channel, tabId } = this.host;
    const cursor = this.connection.cursor;
    channel.post({ t: 'deliver', from: tabId, notifications: answer.notifications, cursor });
    this.host.deliverLocally(this.host.recent.admit(answer.notifications), cursor);
    if (answer.reset) this.onReset('cursor-too-old');
    if (answer.expired.length > 0) {
      channel.post({ t: 'expired', from: tabId, pushIds: answer.expired });
      this.host.expireLocally(answer.expired);
      this.applyUnion(false); // at once: the session must not ask again for expired push IDs
    }
    this.save();
  }

  /**
   * The server refused some push IDs' listen tokens: every tab is told (a tab whose token for
   * one of them is still the refused one emits `forbidden`), and the union is listened on
   * without them at once, so the refusal neither loops nor stops the other push IDs.
   */
  private onForbidden(
    pushIds: readonly string[],
    message: string,
    used: Readonly<Record<string, string>>,
  ): void {
    if (this.closed) return;
    for (const id of pushIds) {
      this.refused.delete(id);
      this.refused.set(id, used[id] ?? '');
      if (this.refused.size > REFUSED_MEMORY) {
        const oldest = this.refused.keys().next();
        if (oldest.done !== true) this.refused.delete(oldest.value);
      }
    }
    this.host.channel.post({ t: 'forbidden', from: this.host.tabId, refused: used, message });
    this.host.forbidLocally(used, message);
    this.applyUnion(false);
  }

  private onReset(reason: ResetEvent['reason']): void {
    this.host.channel.post({ t: 'reset', from: this.host.tabId, reason });
    this.host.resetLocally(reason);
  }

  /** Tells every tab the status, the shared cursor and the union. */
  announce(): void {
    if (this.closed) return;
    this.host.channel.post({
      t: 'leader',
      from: this.host.tabId,
      status: this.connection.status,
      cursor: this.connection.cursor,
      pushIds: this.union,
    });
  }

  private save(): void {
    if (this.closed) return;
    this.host.store.save({
      cursor: this.connection.cursor,
      pushIds: this.union,
      savedAt: this.host.env.clock.now(),
    });
  }
}
