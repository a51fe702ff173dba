import { eventBytes, type ClusterEvent } from './events.js';

export interface EventLogLimits {
  /** Events older than this (by the time they were appended) are dropped. */
  readonly retentionMs: number;
  /** Hard cap on retained bytes (approximate); the oldest events go first. */
  readonly maxBytes: number;
  /** Hard cap on retained events. */
  readonly maxEvents: number;
}

export type ReadSince =
  | { readonly kind: 'events'; readonly events: readonly ClusterEvent[] }
  /** Events after the requested position were already dropped: the reader must start over. */
  | { readonly kind: 'gone' };

/**
 * An ordered, gap-free window of the cluster event log: sequence numbers are contiguous, so an
 * index is `seq - firstSeq`. Pure: the caller passes the clock.
 */
export class EventLog {
  private events: ClusterEvent[] = [];
  private appendedAt: number[] = [];
  private start = 0;
  private bytes = 0;
  /** Highest seq ever appended; the log's head. */
  private head: number;
  /** Every event with seq ≤ this has been dropped (or never existed here). */
  private droppedThrough: number;

  constructor(
    private readonly limits: EventLogLimits,
    initialSeq = 0,
  ) {
    this.head = initialSeq;
    this.droppedThrough = initialSeq;
  }

  get headSeq(): number {
    return this.head;
  }

  /** The oldest seq a reader may still resume after (its next read starts one past it). */
  get oldestResumableSeq(): number {
    return this.droppedThrough;
  }

  get size(): number {
    return this.events.length - this.start;
  }

  get retainedBytes(): number {
    return this.bytes;
  }

  /** Appends the next event; its seq must be exactly head + 1. */
  append(event: ClusterEvent, now: number): void {
    if (event.seq !== this.head + 1) {
      throw new Error(`event log gap: expected seq ${this.head + 1}, got ${event.seq}`);
    }
    this.events.push(event);
    this.appendedAt.push(now);
    this.head = event.seq;
    this.bytes += eventBytes(event);
    this.trim(now);
  }

  /**
   * Forgets everything and continues from `seq` (used when a reader finds a gap it cannot fill):
   * readers behind `seq` get `gone`.
   */
  restartAt(seq: number): void {
    this.events = [];
    this.appendedAt = [];
    this.start = 0;
    this.bytes = 0;
    this.head = seq;
    this.droppedThrough = seq;
  }

  /** Events with seq > `afterSeq`, at most `limit` of them. */
  readSince(afterSeq: number, limit = Infinity): ReadSince {
    if (afterSeq < this.droppedThrough || afterSeq > this.head) return { kind: 'gone' };
    const from = this.start + (afterSeq - this.droppedThrough);
    const to = Math.min(this.events.length, from + limit);
    return { kind: 'events', events: this.events.slice(from, to) };
  }

  /** Retained events with seq ≤ `seq`, oldest first, with the time each was appended. */
  entriesThrough(seq: number): { event: ClusterEvent; at: number }[] {
    const out: { event: ClusterEvent; at: number }[] = [];
    for (let i = this.start; i < this.events.length; i++) {
      const event = this.events[i];
      if (!event || event.seq > seq) break;
      out.push({ event, at: this.appendedAt[i] ?? 0 });
    }
    return out;
  }

  /**
   * Puts older events back in front of the window (a node that started from a checkpoint
   * receiving the history before it). They must end exactly where the window starts; returns
   * false, changing nothing, when they do not.
   */
  prepend(older: readonly { event: ClusterEvent; at: number }[]): boolean {
    const first = older[0];
    if (!first) return true;
    const contiguous = older.every((entry, i) => entry.event.seq === first.event.seq + i);
    if (!contiguous || first.event.seq + older.length - 1 !== this.droppedThrough) return false;
    this.events = [...older.map((entry) => entry.event), ...this.events.slice(this.start)];
    this.appendedAt = [...older.map((entry) => entry.at), ...this.appendedAt.slice(this.start)];
    this.start = 0;
    for (const entry of older) this.bytes += eventBytes(entry.event);
    this.droppedThrough = first.event.seq - 1;
    return true;
  }

  /** Drops what retention no longer covers. Called on append and by the owner's sweep. */
  trim(now: number): void {
    const cutoff = now - this.limits.retentionMs;
    while (this.start < this.events.length) {
      const over =
        this.bytes > this.limits.maxBytes ||
        this.events.length - this.start > this.limits.maxEvents;
      const at = this.appendedAt[this.start] ?? now;
      if (!over && at >= cutoff) break;
      const dropped = this.events[this.start];
      if (dropped) {
        this.bytes -= eventBytes(dropped);
        this.droppedThrough = dropped.seq;
      }
      this.start += 1;
    }
    // Compact lazily so trimming stays O(1) amortised.
    if (this.start > 1024 && this.start * 2 > this.events.length) {
      this.events = this.events.slice(this.start);
      this.appendedAt = this.appendedAt.slice(this.start);
      this.start = 0;
    }
  }
}
