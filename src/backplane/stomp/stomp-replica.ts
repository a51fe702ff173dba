/**
 * Every node of a STOMP cluster holds a replica of the whole cluster state (the log window,
 * membership with its history, push-ID liveness, presence records) and applies the sequencer's batches to it in
 * order. The sequencer builds batches from commands against its own replica. Pure: no I/O, the
 * caller passes the clock.
 */
import { EventLog } from '../../core/event-log.js';
import type { ClusterEvent, NotificationId } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import { IdempotencyIndex } from '../../core/idempotency-index.js';
import type { MembershipHistory } from '../../core/membership-history.js';
import { MembershipIndex } from '../../core/membership-index.js';
import { PushIdLiveness } from '../../core/push-id-liveness.js';
import type { PushId } from '../../core/push-id.js';
import type { LogEntry, LogHead } from '../driver.js';
import { MemoryPresence } from '../memory/memory-presence.js';
import { windowEntries } from '../memory/memory-store.js';
import type { LogReader } from '../protocol/listener-read.js';
import { RecentCommands } from './recent-commands.js';
import { batchEntries, type SequencerView } from './stomp-batch-builder.js';
import { latestCheckpoint } from './stomp-checkpoint-scan.js';
import type { Batch, Checkpoint, Command, LogMessage } from './stomp-protocol.js';

export interface ReplicaOptions {
  readonly retentionMs: number;
  readonly maxLogBytes: number;
  readonly pushIdTtlMs: number;
  /** The clock presence records are judged by (forgotten after their keep time). */
  readonly now?: () => number;
}

export type CatchUp =
  | { readonly kind: 'applied'; readonly events: readonly ClusterEvent[] }
  /** The replica was replaced by a checkpoint: listeners must re-read (another epoch, or a hole). */
  | { readonly kind: 'reloaded' }
  /** The log queue holds nothing this replica can start from. */
  | { readonly kind: 'empty' };

export class StompReplica implements LogReader {
  epoch: string | null = null;
  /** Index of the last batch applied. */
  bi = 0;
  private log: EventLog;
  private membership = new MembershipIndex();
  private liveness: PushIdLiveness;
  /** Command ids applied recently, to answer a redelivered one without applying it twice. */
  private readonly recent = new RecentCommands();
  /** Idempotency keys within retention, fed by the events (so a rebuilt replica has them). */
  private readonly idempotency: IdempotencyIndex;
  /** Presence records; every write is a compare-and-set judged by the sequencer. */
  readonly presence: MemoryPresence;

  constructor(private readonly options: ReplicaOptions) {
    this.presence = new MemoryPresence(options.now ?? Date.now);
    this.log = this.newLog(0);
    this.liveness = new PushIdLiveness(options.pushIdTtlMs);
    this.idempotency = new IdempotencyIndex(options.retentionMs);
  }

  get loaded(): boolean {
    return this.epoch !== null;
  }

  get headSeq(): number {
    return this.log.headSeq;
  }

  /** Begins a new epoch with an empty state (the first sequencer of a cluster). */
  startEpoch(epoch: string): void {
    this.reset(epoch, 0, 0);
  }

  /** Applies the next batch and returns its events in order. */
  apply(batch: Batch): ClusterEvent[] {
    if (batch.epoch !== this.epoch || batch.bi !== this.bi + 1) {
      throw new Error(`batch ${batch.epoch}/${batch.bi} does not follow ${this.epoch}/${this.bi}`);
    }
    const events: ClusterEvent[] = [];
    for (const entry of batch.entries) {
      switch (entry.k) {
        case 'event':
          this.applyEvent(entry.event, batch.at);
          events.push(entry.event);
          this.recent.remember(entry, batch.at);
          break;
        case 'live':
          for (const id of entry.ids) {
            this.liveness.setExpiresAt(id, batch.at + this.options.pushIdTtlMs);
          }
          break;
        case 'ok':
          this.recent.remember(entry, batch.at);
          break;
        case 'presence':
          this.presence.put(entry.pushId, entry.version, entry.write, batch.at);
          break;
        case 'rejected':
          break;
      }
    }
    this.bi = batch.bi;
    this.log.trim(batch.at);
    this.recent.forgetOld(batch.at);
    this.idempotency.forgetOld(batch.at);
    return events;
  }

  /**
   * Brings the replica up to date from a browse of the log queue (oldest first): applies the
   * batches after `bi` when they follow on, else loads the latest checkpoint and what follows it.
   */
  catchUp(messages: readonly LogMessage[]): CatchUp {
    if (this.loaded) {
      const mine = messages.filter(
        (m): m is Batch => m.t === 'batch' && m.epoch === this.epoch && m.bi > this.bi,
      );
      const newest = messages.findLast((m): m is Checkpoint => m.t === 'checkpoint');
      // Batches that follow on; or none, and no checkpoint ahead of this replica either (the
      // batches a newer checkpoint covers are deleted from the queue: that is a hole too).
      const follows =
        mine.length === 0
          ? newest === undefined || newest.bi <= this.bi
          : mine[0]?.bi === this.bi + 1;
      if ((newest === undefined || newest.epoch === this.epoch) && follows) {
        const events: ClusterEvent[] = [];
        for (const batch of mine) {
          if (batch.bi !== this.bi + 1) break;
          events.push(...this.apply(batch));
        }
        return { kind: 'applied', events };
      }
    }
    return this.loadLatestCheckpoint(messages) ? { kind: 'reloaded' } : { kind: 'empty' };
  }

  /** The whole state as of the last applied batch. */
  checkpoint(at: number): Checkpoint {
    if (this.epoch === null) throw new Error('an empty replica has no checkpoint');
    return {
      t: 'checkpoint',
      epoch: this.epoch,
      bi: this.bi,
      seq: this.log.headSeq,
      at,
      stays: this.membership.exportStays(),
      live: [...this.liveness.entries()],
      presence: this.presence.rows(),
    };
  }

  /** The oldest seq a cursor may resume after here; a node started from a checkpoint lacks what is older. */
  get oldestResumableSeq(): number {
    return this.log.oldestResumableSeq;
  }

  /** The log window up to `seq` (inclusive), for a node that lacks it. */
  historyThrough(seq: number): { event: ClusterEvent; at: number }[] {
    return this.log.entriesThrough(seq);
  }

  /** Puts history received from another node in front of the log window; false if it does not fit. */
  prependHistory(older: readonly { event: ClusterEvent; at: number }[]): boolean {
    for (const { event, at } of older) this.idempotency.note(event, at);
    return this.log.prepend(older);
  }

  /** The first notification appended with an idempotency key, while this replica holds it. */
  idempotencyRecord(key: string): { id: NotificationId; fingerprint: string } | undefined {
    return this.idempotency.get(key, Number.NEGATIVE_INFINITY);
  }

  // --- reads -------------------------------------------------------------------------------

  /** The replica's head; a caller that needs it fresh syncs with the sequencer first. */
  head(): Promise<LogHead> {
    return Promise.resolve(this.logHead());
  }

  logHead(): LogHead {
    const seq = this.log.headSeq;
    return { epoch: this.epoch ?? '0', seq, firstSeq: this.log.oldestResumableSeq + 1 };
  }

  /** Entries `first..last` of the log window. */
  read(first: number, last: number): Promise<LogEntry[]> {
    return Promise.resolve(windowEntries(this.log, first, last));
  }

  histories(pushIds: readonly PushId[]): Promise<Map<PushId, MembershipHistory>> {
    const out = new Map<PushId, MembershipHistory>();
    for (const pushId of pushIds) {
      const history = this.membership.history(pushId);
      if (history) out.set(pushId, history);
    }
    return Promise.resolve(out);
  }

  /** Up to `limit` members whose time ran out (expiry candidates). */
  due(now: number, limit: number): PushId[] {
    const out: PushId[] = [];
    for (const id of this.membership.currentMembers()) {
      if (out.length >= limit) break;
      if (!this.liveness.isLive(id, now)) out.push(id);
    }
    return out;
  }

  members(group: GroupName): PushId[] {
    return this.membership.members(group);
  }

  isLive(pushId: PushId, now: number): boolean {
    return this.liveness.isLive(pushId, now);
  }

  /** Drops what nobody can read any more; every node runs it now and then. */
  sweep(now: number): void {
    this.liveness.sweep(now);
    this.log.trim(now);
    this.membership.forgetBefore(this.log.oldestResumableSeq);
    this.presence.sweep();
  }

  // --- the sequencer's side ------------------------------------------------------------------

  /**
   * Turns commands into the next batch (see batchEntries). Returns null when nothing needs
   * storing. Sync and history commands are left to the caller.
   */
  buildBatch(commands: readonly Command[], now: number): Batch | null {
    if (this.epoch === null) throw new Error('the sequencer has no state');
    const entries = batchEntries(this.view, commands, now);
    if (entries.length === 0) return null;
    return { t: 'batch', epoch: this.epoch, bi: this.bi + 1, at: now, entries };
  }

  /** The replica as the sequencer judges commands against it. */
  private readonly view: SequencerView = {
    headSeq: () => this.log.headSeq,
    isLive: (pushId, now) => this.liveness.isLive(pushId, now),
    isMember: (group, pushId) => this.membership.isMember(group, pushId),
    inAnyGroup: (pushId) => this.membership.groupsOf(pushId).length > 0,
    recent: (c) => this.recent.get(c),
    idempotentSeq: (key, now) => this.idempotency.get(key, now)?.seq,
    presenceVersion: (pushId) => this.presence.versionOf(pushId),
  };

  // --- internals -----------------------------------------------------------------------------

  private applyEvent(event: ClusterEvent, at: number): void {
    switch (event.type) {
      case 'member-added':
        this.membership.add(event.group, event.pushId, event.seq);
        break;
      case 'member-removed':
        this.membership.remove(event.group, event.pushId, event.seq);
        break;
      case 'push-id-expired':
        this.membership.removeEverywhere(event.pushId, event.seq);
        break;
      case 'notification':
        this.idempotency.note(event, at);
        break;
    }
    this.log.append(event, at);
  }

  private newLog(initialSeq: number): EventLog {
    return new EventLog(
      {
        retentionMs: this.options.retentionMs,
        maxBytes: this.options.maxLogBytes,
        maxEvents: Number.MAX_SAFE_INTEGER,
      },
      initialSeq,
    );
  }

  private reset(epoch: string, bi: number, seq: number): void {
    this.epoch = epoch;
    this.bi = bi;
    this.log = this.newLog(seq);
    this.membership = new MembershipIndex();
    this.liveness = new PushIdLiveness(this.options.pushIdTtlMs);
    this.recent.clear();
    this.idempotency.clear();
    this.presence.clear();
  }

  /**
   * Loads the newest checkpoint of a browse: the batches before it (same epoch, ending at its
   * `bi`) refill the log window, the checkpoint gives membership and liveness, and the batches
   * after it are applied.
   */
  private loadLatestCheckpoint(messages: readonly LogMessage[]): boolean {
    const found = latestCheckpoint(messages);
    if (!found) return false;
    const { checkpoint, history, events, contiguous, after } = found;
    const first = events[0]?.event.seq ?? checkpoint.seq + 1;
    this.reset(checkpoint.epoch, checkpoint.bi, contiguous ? first - 1 : checkpoint.seq);
    if (contiguous) {
      for (const { event, at: when } of events) {
        this.log.append(event, when);
        this.idempotency.note(event, when);
      }
    }
    for (const batch of history) {
      for (const entry of batch.entries) this.recent.remember(entry, batch.at);
    }
    for (const [pushId, group, joined, left] of checkpoint.stays) {
      this.membership.importStay(pushId, group, joined, left);
    }
    for (const [pushId, expiresAt] of checkpoint.live) {
      this.liveness.setExpiresAt(pushId, expiresAt);
    }
    this.presence.load(checkpoint.presence ?? []);
    for (const m of after) {
      if (m.t === 'batch' && m.epoch === this.epoch && m.bi === this.bi + 1) this.apply(m);
    }
    return true;
  }
}
