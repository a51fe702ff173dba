import { randomBytes } from 'node:crypto';
import { EpushError } from '../../core/errors.js';
import { unavailable } from '../protocol/backplane-call.js';
import { publishTransient, type Client } from './stomp-connection.js';
import type { Batch, Command, Entry, SyncMark } from './stomp-protocol.js';

const COMMAND_TIMEOUT_MS = 5000;
/** A command nobody sequenced within this time is dropped by the broker (the caller got a 503). */
const COMMAND_EXPIRES_MS = 60_000;
export const VENDOR = 'The STOMP broker';

interface Pending {
  readonly resolve: (entry: Entry) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface SyncWait {
  /** Set when the mark arrived: the batch index the replica must reach. */
  targetBi: number | null;
  readonly markOnly: boolean;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

/** What requests need to know of the node's connection and replica. */
export interface RequestHost {
  /** The connected client, or throws `backplane_unavailable`. */
  client(): Client;
  readonly appendQueue: string;
  /** The replica's epoch and last applied batch. */
  position(): { epoch: string | null; bi: number };
  /** True while this node is the sequencer and caught up: its replica is the truth. */
  isLeader(): boolean;
  /** True once the replica is caught up on this connection (a barrier may settle). */
  caughtUp(): boolean;
}

/**
 * A node's requests to the sequencer: commands, answered by the entry of the batch that numbers
 * them, and sync barriers, answered by a mark on the events topic ("everything up to batch bi is
 * out"), which resolve once this replica has applied that batch.
 */
export class StompRequests {
  private readonly tag = randomBytes(6).toString('hex');
  private counter = 0;
  private readonly pending = new Map<string, Pending>();
  private readonly syncs = new Map<string, SyncWait>();
  private syncCurrent: Promise<void> | null = null;
  private syncNext: Promise<void> | null = null;

  constructor(private readonly host: RequestHost) {}

  get nodeTag(): string {
    return this.tag;
  }

  nextId(): string {
    this.counter += 1;
    return `${this.tag}.${this.counter.toString(36)}`;
  }

  /** Sends a command to the sequencer; resolves with the entry that answers it. */
  command(command: Command): Promise<Entry> {
    const client = this.host.client();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(command.c);
        reject(unavailable(VENDOR, 'the sequencer did not answer in time'));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(command.c, { resolve, reject, timer });
      try {
        // Not persistent: nothing is promised before the batch is committed, and a command the
        // broker loses in a restart ends in a 503 for its caller, never in a false 202.
        publishTransient(
          client,
          this.host.appendQueue,
          JSON.stringify(command),
          COMMAND_EXPIRES_MS,
        );
      } catch {
        clearTimeout(timer);
        this.pending.delete(command.c);
        reject(unavailable(VENDOR, 'the connection to the broker was lost'));
      }
    });
  }

  /** Answers the commands a batch numbered (called after the replica applied it). */
  answer(batch: Batch): void {
    for (const entry of batch.entries) {
      if (entry.c === undefined) continue;
      const pending = this.pending.get(entry.c);
      if (!pending) continue;
      this.pending.delete(entry.c);
      clearTimeout(pending.timer);
      if (entry.k === 'rejected') pending.reject(new EpushError(entry.code, entry.message));
      else pending.resolve(entry);
    }
    this.settle();
  }

  /**
   * Resolves once this replica holds everything committed before the call. One sync is in
   * flight at a time; callers that arrive meanwhile share the next one.
   */
  barrier(): Promise<void> {
    if (this.host.isLeader()) return Promise.resolve();
    if (!this.syncCurrent) {
      this.syncCurrent = this.sync(false, COMMAND_TIMEOUT_MS).finally(() => {
        this.syncCurrent = null;
      });
      return this.syncCurrent;
    }
    this.syncNext ??= this.syncCurrent
      .catch(() => undefined)
      .then(() => {
        this.syncNext = null;
        return this.barrier();
      });
    return this.syncNext;
  }

  /** A sync round trip; `markOnly` resolves on the mark, without waiting for the replica. */
  sync(markOnly: boolean, timeoutMs: number): Promise<void> {
    const client = this.host.client();
    const c = this.nextId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.syncs.delete(c);
        reject(unavailable(VENDOR, 'the sequencer did not answer in time'));
      }, timeoutMs);
      this.syncs.set(c, {
        targetBi: null,
        markOnly,
        timer,
        reject,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      try {
        publishTransient(
          client,
          this.host.appendQueue,
          JSON.stringify({ k: 'sync', c } satisfies Command),
          COMMAND_TIMEOUT_MS,
        );
      } catch {
        clearTimeout(timer);
        this.syncs.delete(c);
        reject(unavailable(VENDOR, 'the connection to the broker was lost'));
      }
    });
  }

  onMark(mark: SyncMark): void {
    const { epoch } = this.host.position();
    for (const c of mark.c) {
      const wait = this.syncs.get(c);
      if (!wait) continue;
      if (wait.markOnly) {
        this.syncs.delete(c);
        wait.resolve();
      } else {
        wait.targetBi = mark.epoch === epoch ? mark.bi : Number.POSITIVE_INFINITY;
      }
    }
    this.settle();
  }

  /** Resolves the barriers this replica has now reached. */
  settle(): void {
    if (!this.host.caughtUp()) return;
    const { bi } = this.host.position();
    for (const [c, wait] of this.syncs) {
      if (wait.targetBi !== null && bi >= wait.targetBi) {
        this.syncs.delete(c);
        wait.resolve();
      }
    }
  }

  /** Fails everything in flight (the connection was lost). */
  failAll(error: EpushError): void {
    for (const [c, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(error);
      this.pending.delete(c);
    }
    for (const [c, wait] of this.syncs) {
      clearTimeout(wait.timer);
      wait.reject(error);
      this.syncs.delete(c);
    }
  }
}
