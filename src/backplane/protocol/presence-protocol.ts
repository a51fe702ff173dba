import { randomBytes } from 'node:crypto';
import { EpushError } from '../../core/errors.js';
import type { GroupName } from '../../core/group-name.js';
import {
  decodePresence,
  encodePresence,
  mintedRecord,
  nextDue,
  presenceAt,
  settled,
  withHold,
  withRelease,
  type OutboxEvent,
  type PresenceChange,
  type PresenceClock,
  type PresenceRecord,
  type PresenceView,
} from '../../core/presence.js';
import type { PushId } from '../../core/push-id.js';
import type { BackplaneDriver, PresenceDriverMethods, PresenceEntry } from '../driver.js';

/** Push IDs per batch of driver calls (reads, writes, due and holder scans). */
const BATCH = 200;
/** A compare-and-set that keeps losing gives up after this many reads (the sweep retries). */
const ATTEMPTS = 8;
/** Unacknowledged webhook events kept per push ID; older ones are dropped (and counted). */
export const OUTBOX_MAX = 32;
/** An expired push ID's record is kept this long, so it reports `expired` rather than 404. */
export const EXPIRED_KEEP_MS = 7 * 86_400_000;

export interface PresenceOptions {
  readonly graceMs: number;
  readonly ttlMs: number;
  readonly nodeTimeoutMs: number;
  readonly now: () => number;
  /** Every state change decided here, once for the cluster (the webhook feed). */
  readonly onChanges?: (pushId: PushId, changes: readonly PresenceChange[]) => void;
  /** Set when webhooks are on: changes go to the record's outbox, sent by `nodeId`. */
  readonly webhooks?: PresenceWebhooks;
}

export interface PresenceWebhooks {
  /** This node: the sender of the events it decides or takes over from a dead node. */
  readonly nodeId: string;
  /** Events that became this node's to send (once per event and owner, after the write). */
  readonly onOwned: (pushId: PushId, events: readonly OutboxEvent[]) => void;
  /** Events dropped from a full outbox (the receiver has been failing for a long time). */
  readonly onDropped?: (count: number) => void;
}

/** Webhook events acknowledged by the receiver, to take out of the outboxes. */
export interface OutboxAck {
  readonly pushId: PushId;
  readonly ids: readonly string[];
}

/** A node let go of a push ID at `at` (its last listener there ended then). */
export interface Release {
  readonly pushId: PushId;
  readonly at: number;
}

export interface PushIdPresence extends PresenceView {
  readonly groups: readonly GroupName[];
}

/**
 * Presence, written once above the drivers: node-level hold transitions, the per-push-ID
 * compare-and-set that decides each state change exactly once for the cluster, the sweep that
 * turns deadlines and dead nodes into `idle` and `expired`, and the reads behind the API.
 * A listen never reaches this class: the node's PresenceTracker reports only the moments it
 * starts or stops holding a push ID.
 */
export class PresenceProtocol {
  private readonly driver: BackplaneDriver & PresenceDriverMethods;
  readonly supported: boolean;
  /** When this node began deciding: until a node timeout later its directory may lack nodes. */
  private readonly startedAt: number;

  constructor(
    driver: BackplaneDriver,
    private readonly options: PresenceOptions,
  ) {
    this.driver = driver as BackplaneDriver & PresenceDriverMethods;
    this.startedAt = options.now();
    this.supported =
      typeof driver.presenceRead === 'function' &&
      typeof driver.presenceWrite === 'function' &&
      typeof driver.presenceDue === 'function' &&
      typeof driver.presenceHeldBy === 'function' &&
      typeof driver.presenceHolders === 'function';
  }

  /** Records freshly minted push IDs: idle, since now. */
  async minted(pushIds: readonly PushId[]): Promise<void> {
    if (!this.supported) return;
    const clock = await this.clock();
    await this.update(pushIds, clock, (record) =>
      record === null ? { record: mintedRecord(clock.now), changes: [] } : null,
    );
  }

  /** This node started holding `started` and stopped holding `stopped`: one batch of writes. */
  async holds(
    nodeId: string,
    started: readonly PushId[],
    stopped: readonly Release[],
  ): Promise<void> {
    if (!this.supported || (started.length === 0 && stopped.length === 0)) return;
    const clock = await this.clock();
    await this.update(started, clock, (record) =>
      withHold(record ?? mintedRecord(clock.now), nodeId, clock),
    );
    const at = new Map(stopped.map((release) => [release.pushId, release.at]));
    await this.update([...at.keys()], clock, (record, pushId) => {
      if (record === null) return null;
      const next = withRelease(record, nodeId, at.get(pushId) ?? clock.now);
      return next === record ? null : { record: next, changes: [] };
    });
  }

  /** The presence of one push ID; null when it was never minted (or forgotten long since). */
  async of(pushId: PushId): Promise<PushIdPresence | null> {
    this.require();
    const [entries, clock] = await Promise.all([this.driver.presenceRead([pushId]), this.clock()]);
    // Read after the record: where reads are served by a local replica, the record's read is a
    // barrier, so the groups include a change that another node answered a moment ago.
    const [live, histories] = await Promise.all([
      this.driver.isLive(pushId),
      this.driver.histories([pushId]),
    ]);
    const record = decodeEntry(entries.get(pushId));
    if (record === null && !live) return null;
    // A push ID minted before presence was kept (an upgrade) is reported idle as of now.
    const view = presenceAt(record ?? mintedRecord(clock.now), live, clock);
    const groups = view.state === 'expired' ? [] : (histories.get(pushId)?.openGroups() ?? []);
    return { ...view, groups };
  }

  /** A group's member count and the members listening now. */
  async ofGroup(group: GroupName): Promise<{ members: number; listening: PushId[] }> {
    this.require();
    const [members, clock] = await Promise.all([this.driver.members(group), this.clock()]);
    const listening: PushId[] = [];
    for (let i = 0; i < members.length; i += BATCH) {
      const chunk = members.slice(i, i + BATCH);
      const entries = await this.driver.presenceRead(chunk);
      for (const pushId of chunk) {
        const record = decodeEntry(entries.get(pushId));
        // Members are live: an expired push ID has left every group.
        if (record && presenceAt(record, true, clock).state === 'listening') listening.push(pushId);
      }
    }
    return { members: members.length, listening };
  }

  /** Takes events the receiver acknowledged out of their records' outboxes. */
  async ack(acks: readonly OutboxAck[]): Promise<void> {
    if (!this.supported || acks.length === 0) return;
    const clock = await this.clock();
    const ids = new Map(acks.map((ack) => [ack.pushId, new Set(ack.ids)]));
    await this.update([...ids.keys()], clock, (record, pushId) => {
      const acked = ids.get(pushId);
      if (record === null || !record.outbox.some((event) => acked?.has(event.id))) return null;
      const outbox = record.outbox.filter((event) => !acked?.has(event.id));
      return { record: { ...record, outbox }, changes: [] };
    });
  }

  /**
   * Writes down what time decided: records past their due time (grace over, TTL over) and
   * records held by nodes that died. Every node sweeps; the compare-and-set makes a repeat by
   * another node write nothing and report nothing.
   */
  async sweep(): Promise<void> {
    if (!this.supported) return;
    const clock = await this.clock();
    const due = await this.driver.presenceDue(clock.now, BATCH);
    if (due.length > 0) {
      const live = new Map<PushId, boolean>();
      await Promise.all(
        due.map(async (pushId) => {
          live.set(pushId, await this.driver.isLive(pushId));
        }),
      );
      await this.update(due, clock, (record, pushId) =>
        record === null ? null : settled(record, live.get(pushId) ?? true, clock),
      );
    }
    for (const node of await this.driver.presenceHolders()) {
      if (clock.deathOf(node) === null) continue;
      const held = await this.driver.presenceHeldBy(node, BATCH);
      await this.update(held, clock, (record) =>
        record === null ? null : settled(record, true, clock),
      );
    }
  }

  /**
   * Reads, transforms and compare-and-sets each push ID's record; a lost race reads again.
   * `change` returns null to leave a record as it is.
   */
  private async update(
    pushIds: readonly PushId[],
    clock: PresenceClock,
    change: (
      record: PresenceRecord | null,
      pushId: PushId,
    ) => { record: PresenceRecord; changes: readonly PresenceChange[] } | null,
  ): Promise<void> {
    for (let i = 0; i < pushIds.length; i += BATCH) {
      let pending = pushIds.slice(i, i + BATCH);
      for (let attempt = 0; attempt < ATTEMPTS && pending.length > 0; attempt++) {
        const entries = await this.driver.presenceRead(pending);
        const lost: PushId[] = [];
        await Promise.all(
          pending.map(async (pushId) => {
            const entry = entries.get(pushId);
            const before = decodeEntry(entry);
            const next = change(before, pushId);
            if (next === null) return;
            const record = this.withOutbox(next.record, next.changes, clock);
            const written = await this.driver.presenceWrite(pushId, entry?.version ?? 0, {
              record: encodePresence(record),
              due: nextDue(record, clock),
              // The outbox's senders are indexed too: a dead sender's events are found.
              holders: [...new Set([...record.holders, ...record.outbox.map((e) => e.by)])],
              keepMs: record.state === 'expired' ? EXPIRED_KEEP_MS : null,
            });
            if (written === null) {
              lost.push(pushId);
              return;
            }
            if (next.changes.length > 0) this.options.onChanges?.(pushId, next.changes);
            this.handOver(pushId, before, record);
          }),
        );
        pending = lost;
      }
    }
  }

  /**
   * With webhooks on: the decided changes join the outbox with this node as their sender, a
   * dead sender's events become this node's, and a full outbox drops its oldest.
   */
  private withOutbox(
    record: PresenceRecord,
    changes: readonly PresenceChange[],
    clock: PresenceClock,
  ): PresenceRecord {
    const webhooks = this.options.webhooks;
    if (webhooks === undefined) return record;
    const me = webhooks.nodeId;
    let outbox = record.outbox.map((event) =>
      event.by !== me && clock.deathOf(event.by) !== null ? { ...event, by: me } : event,
    );
    for (const change of changes) {
      outbox.push({ id: randomBytes(9).toString('base64url'), ...change, by: me });
    }
    if (outbox.length > OUTBOX_MAX) {
      webhooks.onDropped?.(outbox.length - OUTBOX_MAX);
      outbox = outbox.slice(-OUTBOX_MAX);
    }
    return { ...record, outbox };
  }

  /** Hands the events that became this node's with a write to its webhook sender. */
  private handOver(pushId: PushId, before: PresenceRecord | null, after: PresenceRecord): void {
    const webhooks = this.options.webhooks;
    if (webhooks === undefined) return;
    const me = webhooks.nodeId;
    const had = new Set(before?.outbox.filter((e) => e.by === me).map((e) => e.id));
    const owned = after.outbox.filter((event) => event.by === me && !had.has(event.id));
    if (owned.length > 0) webhooks.onOwned(pushId, owned);
  }

  /** The clock of one decision: now, and which holder nodes are dead since when. */
  private async clock(): Promise<PresenceClock> {
    const { now, graceMs, ttlMs, nodeTimeoutMs } = this.options;
    const at = now();
    const beats = await this.driver.beats();
    const deaths = new Map<string, number | null>();
    for (const beat of beats) {
      deaths.set(beat.info.id, beat.ageMs > nodeTimeoutMs ? at - beat.ageMs : null);
    }
    return {
      now: at,
      graceMs,
      ttlMs,
      // A holder missing from the directory left or was forgotten: dead for at least a timeout.
      // Not yet on a node that started less than a timeout ago: a directory built from the beats
      // it heard (STOMP) may lack a live node that has not beaten since.
      deathOf: (node) =>
        deaths.has(node)
          ? (deaths.get(node) ?? null)
          : at - this.startedAt < nodeTimeoutMs
            ? null
            : at - nodeTimeoutMs,
    };
  }

  private require(): void {
    if (!this.supported) {
      throw new EpushError(
        'presence_unsupported',
        `The ${this.driver.kind} backplane does not keep presence yet.`,
      );
    }
  }
}

function decodeEntry(entry: PresenceEntry | undefined): PresenceRecord | null {
  return entry === undefined ? null : decodePresence(entry.record);
}
