import type { ClusterEvent } from '../../core/events.js';
import type { ClusterEventSink } from '../backplane.js';
import type { BackplaneDriver, LogEntry } from '../driver.js';
import { decodeEntry } from './event-codec.js';

/** Entries read at once while filling a gap. */
const READ_PAGE = 500;
/** After a failed catch-up (the vendor went away again), try again this soon. */
const RETRY_MS = 250;

/**
 * Turns a driver's live tail, which may repeat, reorder, drop or stop, into what a node needs:
 * every event of the log exactly once, in seq order, without gaps. A hole is filled by reading
 * the log; what cannot be read any more (trimmed, or a new epoch: the vendor lost the log) is
 * reported with `onGap`, so the node's listeners re-read with their cursors.
 */
export class OrderedTail {
  private epoch = '';
  private lastSeq = 0;
  /** Entries that arrived while a catch-up ran, applied after it; null when none runs. */
  private queued: { epoch: string; entry: LogEntry }[] | null = null;
  private retry: NodeJS.Timeout | null = null;
  private readonly waiters = new Set<{ seq: number; resolve: () => void }>();
  private stopped = false;
  private catching = false;
  private started = false;

  constructor(
    private readonly driver: BackplaneDriver,
    private readonly sink: () => ClusterEventSink | null,
    private readonly onSkipped: (seq: number) => void,
  ) {}

  /** Starts after `seq` of `epoch` (the head when the node connected). */
  startAt(epoch: string, seq: number): void {
    this.epoch = epoch;
    this.lastSeq = seq;
    this.started = true;
  }

  get position(): { epoch: string; seq: number } {
    return { epoch: this.epoch, seq: this.lastSeq };
  }

  stop(): void {
    this.stopped = true;
    if (this.retry) clearTimeout(this.retry);
    this.retry = null;
  }

  /** An entry from the driver's live tail. */
  receive(epoch: string, entry: LogEntry): void {
    // Before the start position is known, entries are read back by the first catch-up.
    if (!this.started) return;
    if (this.queued) {
      this.queued.push({ epoch, entry });
      return;
    }
    this.deliver(epoch, entry);
  }

  /** Resolves once the tail has delivered `seq` (or a later one). */
  reached(seq: number): Promise<void> {
    if (this.lastSeq >= seq) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        seq,
        resolve: (): void => {
          this.waiters.delete(waiter);
          resolve();
        },
      };
      this.waiters.add(waiter);
    });
  }

  /** Forgets a waiter that gave up (a probe's timeout). */
  abandon(seq: number): void {
    for (const waiter of this.waiters) if (waiter.seq === seq) this.waiters.delete(waiter);
  }

  private deliver(epoch: string, entry: LogEntry): void {
    if (epoch !== this.epoch) {
      // The vendor lost its log (a restart without persistence): a new epoch begins and every
      // cursor of the old one resets.
      this.epoch = epoch;
      this.lastSeq = entry.seq - 1;
      this.sink()?.onGap(entry.seq - 1);
    }
    if (entry.seq <= this.lastSeq) return;
    if (entry.seq !== this.lastSeq + 1) {
      this.queued = [{ epoch, entry }];
      void this.catchUp();
      return;
    }
    this.emit(entry);
  }

  private emit(entry: LogEntry): void {
    this.lastSeq = entry.seq;
    const event: ClusterEvent | null = decodeEntry(entry);
    if (event === null) this.onSkipped(entry.seq);
    else this.sink()?.onEvent(event);
    for (const waiter of this.waiters) if (waiter.seq <= entry.seq) waiter.resolve();
  }

  /**
   * Reads what the tail missed, up to the log's head, then applies what arrived meanwhile.
   * Called on a hole, after a reconnect, and when a probe finds the tail behind the head.
   */
  async catchUp(): Promise<void> {
    if (this.stopped || !this.started) return;
    if (this.queued && this.catching) return;
    this.queued ??= [];
    this.catching = true;
    let failed = false;
    try {
      const head = await this.driver.head();
      if (head.epoch !== this.epoch) {
        this.epoch = head.epoch;
        this.lastSeq = head.seq;
        this.sink()?.onGap(head.seq);
      }
      while (this.lastSeq < head.seq) {
        const last = Math.min(head.seq, this.lastSeq + READ_PAGE);
        const entries = await this.driver.read(this.lastSeq + 1, last);
        if (entries[0]?.seq !== this.lastSeq + 1) {
          // Trimmed before this node could read it: listeners go back to the log.
          this.lastSeq = head.seq;
          this.sink()?.onGap(head.seq);
          break;
        }
        for (const entry of entries) {
          if (entry.seq !== this.lastSeq + 1) break;
          this.emit(entry);
        }
      }
    } catch {
      failed = true;
    } finally {
      this.catching = false;
      const queued = this.queued;
      this.queued = null;
      if (failed) this.retryLater(queued);
      else for (const { epoch, entry } of queued) this.deliver(epoch, entry);
    }
  }

  /** Keeps what arrived and tries again shortly, instead of spinning while the vendor is away. */
  private retryLater(queued: { epoch: string; entry: LogEntry }[]): void {
    this.queued = queued;
    if (this.retry || this.stopped) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      const held = this.queued ?? [];
      this.queued = null;
      for (const { epoch, entry } of held) this.deliver(epoch, entry);
      // Whatever is still missing up to the head (or a hole the held entries left).
      void this.catchUp();
    }, RETRY_MS);
    this.retry.unref();
  }
}
