import { randomBytes } from 'node:crypto';
import type { ClusterEvent } from '../../core/events.js';
import { unavailable } from '../protocol/backplane-call.js';
import { publishTransient, sendWithReceipt, subscribeConfirmed } from './stomp-connection.js';
import type { Client, IMessage } from './stomp-connection.js';
import { parseCommand, parseLogMessage } from './stomp-messages.js';
import {
  replyDestination,
  type Batch,
  type Command,
  type HistoryPart,
  type StompDestinations,
  type SyncMark,
} from './stomp-protocol.js';
import type { StompReplica } from './stomp-replica.js';
import { VENDOR } from './stomp-requests.js';

const COMMAND_TIMEOUT_MS = 5000;
const MAX_BATCH_COMMANDS = 500;
const CHECKPOINT_EVERY_BATCHES = 200;
/** Bytes of events per history part (one STOMP frame). */
const HISTORY_PART_BYTES = 256 * 1024;

interface Inbound {
  readonly command: Command | null;
  readonly message: IMessage;
}

/** What the sequencer needs of its node. */
export interface SequencerHost {
  readonly replica: StompReplica;
  readonly dest: StompDestinations;
  readonly prefix: string;
  readonly now: () => number;
  /** Bumped on every connect and disconnect: work of an older connection stops. */
  connection(): number;
  client(): Client;
  /** Catches the replica up from the log queue. */
  recover(): Promise<void>;
  /** Applies a committed batch to the replica and tells the node (events, answers). */
  applyBatch(batch: Batch): void;
  setCaughtUp(caughtUp: boolean): void;
  /** Drops the connection: the broker then hands the queue to a sequencer that starts clean. */
  forceDisconnect(): void;
}

/**
 * The sequencer role of a STOMP node. The broker hands the append queue to one exclusive
 * consumer at a time; that node numbers the commands into batches, stores each batch in the
 * persistent log queue (the commit point: a batch exists once the broker's receipt is back),
 * fans it out on the events topic, and only then acknowledges the commands. It stores
 * checkpoints and consumes the log queue up to its newest checkpoint, so the queue stays short.
 */
export class StompSequencer {
  private inbox: Inbound[] = [];
  /** The connection on which this node is the sequencer (-1: it is not). */
  private sequencerOf = -1;
  private sequencingFor = -1;
  private checkpointDue = false;
  private lastCheckpointAt = 0;
  private batchesSinceCheckpoint = 0;
  /** The log queue's messages this sequencer holds unacknowledged, oldest first. */
  private logHeld: IMessage[] = [];

  constructor(
    private readonly host: SequencerHost,
    private readonly checkpointMs: number,
  ) {}

  /** True while this node is the sequencer on its current connection. */
  isActive(): boolean {
    return this.sequencerOf === this.host.connection();
  }

  /** A message of the append queue (this node's exclusive subscription). */
  onAppendMessage(message: IMessage, connection: number): void {
    if (connection !== this.host.connection()) return;
    this.inbox.push({ command: parseCommand(message.body), message });
    void this.run(connection);
  }

  /** Called by the node's periodic timer: a checkpoint when one is due. */
  tick(): void {
    if (!this.isActive()) return;
    if (this.host.now() - this.lastCheckpointAt >= this.checkpointMs) this.checkpointDue = true;
    void this.run(this.host.connection());
  }

  /** Forgets the role (the connection is gone; nothing held was acknowledged). */
  reset(): void {
    this.sequencerOf = -1;
    this.inbox = [];
    this.logHeld = [];
  }

  private async run(connection: number): Promise<void> {
    if (this.sequencingFor === connection) return;
    this.sequencingFor = connection;
    try {
      if (this.sequencerOf !== connection) await this.takeOver(connection);
      while (
        connection === this.host.connection() &&
        (this.inbox.length > 0 || this.checkpointDue)
      ) {
        await this.sequenceOnce(connection);
      }
    } catch {
      // Lost the broker mid-batch: force a new connection, so the broker hands the queue to a
      // sequencer that starts from the log queue (this one or another); nothing was acknowledged.
      if (connection === this.host.connection()) this.host.forceDisconnect();
    } finally {
      if (this.sequencingFor === connection) this.sequencingFor = -1;
    }
  }

  /** Becomes the sequencer: first catch up on everything the previous one committed. */
  private async takeOver(connection: number): Promise<void> {
    const { replica } = this.host;
    this.sequencerOf = connection;
    this.host.setCaughtUp(false);
    await this.host.recover();
    const client = this.host.client();
    if (!replica.loaded) {
      // Nothing could be read (a new or emptied log queue): this replica is the state.
      replica.startEpoch(randomBytes(6).readUIntBE(0, 6).toString(36));
      this.checkpointDue = true;
    }
    this.host.setCaughtUp(true);
    // A checkpoint at once: a node that starts now finds the state without waiting for a timer.
    await this.storeCheckpoint(client, connection);
    await subscribeConfirmed(
      client,
      this.host.dest.log,
      (message) => {
        this.onLogMessage(message, connection);
      },
      { ack: 'client-individual', 'activemq.prefetchSize': '20000' },
    );
  }

  private async sequenceOnce(connection: number): Promise<void> {
    const { replica, dest } = this.host;
    const client = this.host.client();
    const taken = this.inbox.splice(0, MAX_BATCH_COMMANDS);
    const commands = taken.flatMap((inbound) => (inbound.command ? [inbound.command] : []));
    const batch = replica.buildBatch(commands, this.host.now());
    if (batch) {
      const body = JSON.stringify(batch);
      await withTimeout(
        sendWithReceipt(client, dest.log, body, { persistent: 'true' }),
        COMMAND_TIMEOUT_MS,
      );
      if (connection !== this.host.connection()) throw unavailable(VENDOR, 'connection lost');
      publishTransient(client, dest.events, body);
      this.host.applyBatch(batch);
      this.batchesSinceCheckpoint += 1;
      if (this.batchesSinceCheckpoint >= CHECKPOINT_EVERY_BATCHES) this.checkpointDue = true;
    }
    for (const command of commands) {
      if (command.k === 'history')
        this.sendHistory(client, command.c, command.through, command.reply);
    }
    const syncs = commands.filter((command) => command.k === 'sync').map((command) => command.c);
    if (syncs.length > 0 && replica.epoch !== null) {
      const mark: SyncMark = { t: 'mark', epoch: replica.epoch, bi: replica.bi, c: syncs };
      publishTransient(client, dest.events, JSON.stringify(mark));
    }
    for (const inbound of taken) inbound.message.ack();
    if (this.checkpointDue) await this.storeCheckpoint(client, connection);
  }

  private async storeCheckpoint(client: Client, connection: number): Promise<void> {
    const at = this.host.now();
    await withTimeout(
      sendWithReceipt(
        client,
        this.host.dest.log,
        JSON.stringify(this.host.replica.checkpoint(at)),
        {
          persistent: 'true',
        },
      ),
      COMMAND_TIMEOUT_MS,
    );
    if (connection !== this.host.connection()) throw unavailable(VENDOR, 'connection lost');
    this.checkpointDue = false;
    this.lastCheckpointAt = at;
    this.batchesSinceCheckpoint = 0;
  }

  /** Sends the log window through `through` to a node that started from a checkpoint. */
  private sendHistory(client: Client, c: string, through: number, reply: string): void {
    // Only a reply topic of this cluster: the command comes from anyone who can write the queue.
    if (!reply.startsWith(replyDestination(this.host.prefix, ''))) return;
    const entries = this.host.replica.historyThrough(through);
    let part: (readonly [ClusterEvent, number])[] = [];
    let bytes = 0;
    const flush = (last: boolean): void => {
      publishTransient(
        client,
        reply,
        JSON.stringify({ t: 'history', c, events: part, last } satisfies HistoryPart),
      );
      part = [];
      bytes = 0;
    };
    for (const { event, at } of entries) {
      part.push([event, at]);
      bytes += event.type === 'notification' ? 200 + event.payloadJson.length : 120;
      if (bytes >= HISTORY_PART_BYTES) flush(false);
    }
    flush(true);
  }

  /**
   * The sequencer consumes the log queue: a checkpoint covers everything stored before it, so
   * those messages are acknowledged (deleted) once it arrives; the newest checkpoint and the
   * batches after it stay, for nodes that start and for the next sequencer.
   */
  private onLogMessage(message: IMessage, connection: number): void {
    if (connection !== this.host.connection()) return;
    if (parseLogMessage(message.body)?.t === 'checkpoint') {
      for (const held of this.logHeld) held.ack();
      this.logHeld = [];
    }
    this.logHeld.push(message);
  }
}

export function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(unavailable(VENDOR, 'the broker did not confirm in time'));
    }, ms);
    promise.then(
      () => {
        clearTimeout(timer);
        resolve();
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error instanceof Error ? error : new Error(String(error)));
      },
    );
  });
}
