import type { EpushError } from '../../core/errors.js';
import type { ClusterEvent } from '../../core/events.js';
import { unavailable } from '../protocol/backplane-call.js';
import {
  publishTransient,
  stompHeaders,
  subscribeAcknowledged,
  subscribeConfirmed,
  type Client,
  type IMessage,
} from './stomp-connection.js';
import { parseEventsMessage, parseHistoryPart, parseLogMessage } from './stomp-messages.js';
import {
  replyDestination,
  type Batch,
  type Command,
  type EventsMessage,
  type LogMessage,
  type StompDestinations,
} from './stomp-protocol.js';
import type { StompReplica } from './stomp-replica.js';
import { VENDOR, type StompRequests } from './stomp-requests.js';

const START_TIMEOUT_MS = 20_000;
const HISTORY_TIMEOUT_MS = 10_000;

/** What the follower needs of its node. */
export interface FollowerHost {
  readonly replica: StompReplica;
  readonly dest: StompDestinations;
  readonly prefix: string;
  readonly requests: StompRequests;
  client(): Client;
  connection(): number;
  isSequencer(): boolean;
  /** Events of applied batches, in seq order, for the node's tail. */
  emit(events: readonly ClusterEvent[]): void;
  /** The replica was replaced by a checkpoint: the node's tail must look again. */
  reloaded(): void;
  onBeat(beat: Extract<EventsMessage, { t: 'node' }>): void;
  forceDisconnect(): void;
}

/**
 * Keeps a node's replica following the sequencer: applies the batches of the events topic in
 * order, buffers them while it catches up, and fills holes from the log queue (a browse: the
 * newest checkpoint and the batches after it) and from the sequencer (the log window before
 * that checkpoint). A replica that reloaded skips seqs; the protocol's tail sees the hole and
 * its listeners re-read.
 */
export class StompFollower {
  caughtUp = false;
  /** Set when the replica was loaded from a checkpoint: the log window before it is missing. */
  private needHistory = false;
  private buffered: Batch[] = [];
  private recovering: Promise<void> | null = null;
  private readonly histories = new Map<
    string,
    { parts: (readonly [ClusterEvent, number])[]; done: (error?: Error) => void }
  >();
  /** Where answers meant for this node alone arrive (history parts). */
  private readonly reply: string;

  constructor(private readonly host: FollowerHost) {
    this.reply = replyDestination(host.prefix, host.requests.nodeTag);
  }

  /** Subscribes on a new connection and catches up; resolves once the replica is current. */
  async subscribe(connection: number, onAppend: (message: IMessage) => void): Promise<void> {
    const client = this.host.client();
    this.caughtUp = false;
    this.buffered = [];
    await subscribeAcknowledged(client, this.host.dest.events, (message) => {
      if (connection === this.host.connection()) this.onEventsMessage(message);
    });
    await subscribeAcknowledged(client, this.reply, (message) => {
      if (connection === this.host.connection()) this.onReplyMessage(message);
    });
    await subscribeConfirmed(client, this.host.dest.append, onAppend, {
      ack: 'client-individual',
      'activemq.exclusive': 'true',
      'activemq.prefetchSize': '2000',
    });
    // A mark coming back proves a sequencer exists and has stored a checkpoint to start from.
    await this.host.requests.sync(true, START_TIMEOUT_MS);
    await this.recover();
    // Listeners that fail over here bring cursors from before this node's checkpoint.
    await this.fillHistory().catch(() => undefined);
  }

  reset(): void {
    this.caughtUp = false;
    this.buffered = [];
  }

  setCaughtUp(caughtUp: boolean): void {
    this.caughtUp = caughtUp;
    if (caughtUp) this.host.requests.settle();
  }

  failHistories(error: EpushError): void {
    for (const [c, history] of this.histories) {
      history.done(error);
      this.histories.delete(c);
    }
  }

  applyBatch(batch: Batch): void {
    this.host.emit(this.host.replica.apply(batch));
    this.host.requests.answer(batch);
  }

  /**
   * Catches the replica up from the log queue, then applies what the events topic delivered
   * meanwhile. Single-flight: the follower and the sequencer paths share it.
   */
  recover(): Promise<void> {
    this.recovering ??= this.recoverOnce().finally(() => {
      this.recovering = null;
    });
    return this.recovering;
  }

  private async recoverOnce(): Promise<void> {
    const { replica } = this.host;
    const connection = this.host.connection();
    for (let attempt = 0; attempt < 5; attempt++) {
      const messages = await this.browseLog();
      if (connection !== this.host.connection()) throw unavailable(VENDOR, 'connection lost');
      const result = replica.catchUp(messages);
      if (result.kind === 'applied') this.host.emit(result.events);
      else if (result.kind === 'reloaded') {
        this.needHistory = true;
        this.host.reloaded();
      }
      const waiting = this.buffered;
      this.buffered = [];
      let hole = false;
      for (const batch of waiting) {
        if (batch.epoch === replica.epoch && batch.bi <= replica.bi) continue;
        if (batch.epoch === replica.epoch && batch.bi === replica.bi + 1) {
          this.applyBatch(batch);
        } else {
          hole = true;
          this.buffered.push(batch);
        }
      }
      if (!hole && replica.loaded) {
        this.setCaughtUp(true);
        return;
      }
      if (!replica.loaded && this.host.isSequencer()) return;
    }
    throw unavailable(VENDOR, 'the log queue did not fill the gap');
  }

  /** Reads the whole log queue without consuming it (a STOMP queue browser). */
  private browseLog(): Promise<LogMessage[]> {
    const client = this.host.client();
    return new Promise((resolve, reject) => {
      const messages: LogMessage[] = [];
      const timer = setTimeout(() => {
        subscription.unsubscribe();
        reject(unavailable(VENDOR, 'browsing the log queue timed out'));
      }, START_TIMEOUT_MS);
      const subscription = client.subscribe(
        this.host.dest.log,
        (message) => {
          if (message.headers.browser === 'end') {
            clearTimeout(timer);
            subscription.unsubscribe();
            resolve(messages);
            return;
          }
          const parsed = parseLogMessage(message.body);
          if (parsed) messages.push(parsed);
        },
        stompHeaders({ browser: 'true' }),
      );
    });
  }

  private onEventsMessage(message: IMessage): void {
    const parsed = parseEventsMessage(message.body);
    if (parsed === null) {
      // Not ours or malformed (anyone with the broker's credentials can write here): this
      // replica may now miss a batch, so it re-reads the log queue.
      this.buffered = [];
      void this.recover().catch(() => {
        this.host.forceDisconnect();
      });
      return;
    }
    switch (parsed.t) {
      case 'batch':
        this.onBatch(parsed);
        break;
      case 'mark':
        this.host.requests.onMark(parsed);
        break;
      case 'node':
        this.host.onBeat(parsed);
        break;
    }
  }

  private onBatch(batch: Batch): void {
    const { replica } = this.host;
    if (!this.caughtUp || this.recovering) {
      this.buffered.push(batch);
      return;
    }
    if (batch.epoch === replica.epoch && batch.bi <= replica.bi) return;
    if (batch.epoch === replica.epoch && batch.bi === replica.bi + 1) {
      this.applyBatch(batch);
      return;
    }
    // A hole (this node missed batches) or another epoch: the log queue has what is missing.
    this.buffered.push(batch);
    void this.recover()
      .then(() => this.fillHistory())
      .catch(() => {
        this.host.forceDisconnect();
      });
  }

  /** Asks the sequencer for the log window this replica lacks, if any; best effort. */
  private async fillHistory(): Promise<void> {
    if (!this.needHistory || this.host.isSequencer()) return;
    this.needHistory = false;
    const through = this.host.replica.oldestResumableSeq;
    if (through <= 0) return;
    const client = this.host.client();
    const c = this.host.requests.nextId();
    const parts = await new Promise<(readonly [ClusterEvent, number])[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.histories.delete(c);
        reject(unavailable(VENDOR, 'the log history did not arrive in time'));
      }, HISTORY_TIMEOUT_MS);
      const collected: (readonly [ClusterEvent, number])[] = [];
      this.histories.set(c, {
        parts: collected,
        done: (error) => {
          clearTimeout(timer);
          this.histories.delete(c);
          if (error) reject(error);
          else resolve(collected);
        },
      });
      publishTransient(
        client,
        this.host.dest.append,
        JSON.stringify({ k: 'history', c, through, reply: this.reply } satisfies Command),
        HISTORY_TIMEOUT_MS,
      );
    });
    this.host.replica.prependHistory(parts.map(([event, at]) => ({ event, at })));
  }

  private onReplyMessage(message: IMessage): void {
    const part = parseHistoryPart(message.body);
    if (part === null) return;
    const history = this.histories.get(part.c);
    if (!history) return;
    history.parts.push(...part.events);
    if (part.last) history.done();
  }
}
