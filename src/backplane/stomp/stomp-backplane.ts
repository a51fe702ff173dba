/**
 * The STOMP backplane, for JMS brokers (tested on ActiveMQ Classic 5.17). A JMS broker keeps
 * queues and topics, not a numbered log, so epush builds one over it (docs/backplanes.md, "STOMP"):
 *
 * - every node sends its changes as commands to the queue `<prefix>.append`, which it also
 *   consumes with `activemq.exclusive`: the broker hands the queue to one consumer at a time, the
 *   SEQUENCER, and to another when that node dies;
 * - the sequencer numbers the commands into batches, stores each batch in the persistent queue
 *   `<prefix>.log` (the commit point: a batch exists once the broker's receipt is back), then
 *   fans it out on the topic `<prefix>.events`, and only then acknowledges the commands;
 * - every node applies the batches to its replica of the whole state (StompReplica); a node
 *   that starts, or missed batches, browses the log queue: the newest checkpoint, then the
 *   batches after it, and asks the sequencer for the log window before that checkpoint;
 * - the sequencer writes a checkpoint every `checkpointMs` or every CHECKPOINT_EVERY_BATCHES
 *   batches, and consumes the log queue up to its newest checkpoint, so the queue stays short
 *   enough to browse (ActiveMQ browses only what it has paged in: about ten thousand messages).
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { Cursor, CursorPosition } from '../../core/cursor.js';
import { EpushError } from '../../core/errors.js';
import type { ClusterEvent, NotificationDraft, NotificationEvent } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import type { PushId } from '../../core/push-id.js';
import type {
  Backplane,
  BackplaneGuarantees,
  BackplaneOptions,
  ClusterEventSink,
  ListenerSnapshot,
  NodeInfo,
} from '../backplane.js';
import {
  BACKPLANE_LIVENESS,
  publishTransient,
  sendWithReceipt,
  stompClient,
  stompHeaders,
  subscribeConfirmed,
  type Client,
  type IMessage,
} from './stomp-connection.js';
import {
  stompDestinations,
  type Batch,
  type Command,
  type Entry,
  type EventsMessage,
  type HistoryPart,
  type LogMessage,
  replyDestination,
  type StompDestinations,
  type SyncMark,
} from './stomp-protocol.js';
import { JmsNotifyIngress, type NotifyTarget } from './jms-notify-ingress.js';
import { StompReplica } from './stomp-replica.js';
import { parseStompUrl, type StompTarget } from './stomp-url.js';

export const STOMP_GUARANTEES: BackplaneGuarantees = {
  multiNode: true,
  survivesNodeLoss: true,
  survivesBackplaneRestart: true,
  exactResume: true,
  summary:
    'JMS broker over STOMP: a sequencer chosen by the broker numbers every change and stores it ' +
    'in a persistent queue before any node sees it; a 202 survives any node and a broker ' +
    'restart (persistent broker); exact resume within --retention-seconds; every node holds ' +
    'the whole state in memory',
};

const COMMAND_TIMEOUT_MS = 5000;
const START_TIMEOUT_MS = 20_000;
/** A command nobody sequenced within this time is dropped by the broker (the caller got a 503). */
const COMMAND_EXPIRES_MS = 60_000;
const MAX_BATCH_COMMANDS = 500;
const CHECKPOINT_EVERY_BATCHES = 200;
/** Bytes of events per history part (one STOMP frame). */
const HISTORY_PART_BYTES = 256 * 1024;
const HISTORY_TIMEOUT_MS = 10_000;
const RECONNECT_DELAY_MS = 200;

/** Tuning, for tests. */
export interface StompTuning {
  /** How often the sequencer stores a checkpoint (default: min(60 s, retention / 2)). */
  readonly checkpointMs?: number;
}

interface Pending {
  readonly resolve: (entry: Entry) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface SyncWait {
  /** Set when the mark arrived: the batch index the replica must reach. */
  targetBi: number | null;
  readonly resolve: () => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

interface Inbound {
  readonly command: Command | null;
  readonly message: IMessage;
}

export class StompBackplane implements Backplane {
  readonly kind = 'stomp';
  readonly guarantees = STOMP_GUARANTEES;

  private readonly target: StompTarget;
  private readonly dest: StompDestinations;
  private readonly replica: StompReplica;
  private readonly now: () => number;
  private readonly checkpointMs: number;
  private readonly tag = randomBytes(6).toString('hex');
  /** Where answers meant for this node alone arrive (history parts). */
  private readonly reply: string;
  private readonly histories = new Map<
    string,
    { parts: (readonly [ClusterEvent, number])[]; done: (error?: Error) => void }
  >();
  /** Set when the replica was loaded from a checkpoint: the log window before it is missing. */
  private needHistory = false;
  /** The log queue's messages this sequencer holds unacknowledged, oldest first. */
  private logHeld: IMessage[] = [];
  private batchesSinceCheckpoint = 0;
  private ingressTarget: { target: NotifyTarget; log: Logger } | null = null;
  private ingress: JmsNotifyIngress | null = null;
  private counter = 0;

  private client: Client | null = null;
  private sink: ClusterEventSink | null = null;
  /** Bumped on every connect and disconnect; async work of an older connection stops. */
  private connection = 0;
  private connected = false;
  private caughtUp = false;
  private up = false;
  private stopped = false;
  private readonly pending = new Map<string, Pending>();
  private readonly syncs = new Map<string, SyncWait>();
  /** Batches that arrived while catching up, or after a hole. */
  private buffered: Batch[] = [];
  private recovering: Promise<void> | null = null;
  private syncCurrent: Promise<void> | null = null;
  private syncNext: Promise<void> | null = null;

  /** The connection on which this node is the sequencer, once it took the role. */
  private sequencerOf = -1;
  private inbox: Inbound[] = [];
  /** The connection whose sequencing loop is running (a loop of an older one stops by itself). */
  private sequencingFor = -1;
  private expiryDue = false;
  private lastCheckpointAt = 0;

  private readonly directory = new Map<string, { info: Omit<NodeInfo, 'lastSeen'>; at: number }>();
  private timers: NodeJS.Timeout[] = [];

  constructor(
    url: string,
    private readonly options: BackplaneOptions,
    tuning: StompTuning = {},
  ) {
    this.target = parseStompUrl(url);
    this.dest = stompDestinations(this.target.prefix);
    this.now = options.now ?? Date.now;
    this.replica = new StompReplica(options);
    this.checkpointMs =
      tuning.checkpointMs ?? Math.max(1000, Math.min(60_000, options.retentionMs / 2));
    this.reply = replyDestination(this.target.prefix, this.tag);
  }

  // --- EventFanout -------------------------------------------------------------------------

  start(sink: ClusterEventSink): Promise<void> {
    this.sink = sink;
    const client = stompClient(this.target, {
      reconnectDelayMs: RECONNECT_DELAY_MS,
      ...BACKPLANE_LIVENESS,
    });
    this.client = client;
    const started = new Promise<void>((resolve, reject) => {
      const where = `${this.target.host}:${this.target.port}`;
      const timer = setTimeout(() => {
        reject(new Error(`the STOMP broker at ${where} did not let this node catch up in time`));
      }, START_TIMEOUT_MS);
      this.onFirstUp = () => {
        clearTimeout(timer);
        resolve();
      };
      client.onStompError = (frame) => {
        const reason = frame.headers.message ?? frame.body;
        if (!this.up && this.connection <= 2) {
          clearTimeout(timer);
          void client.deactivate();
          reject(new Error(`the STOMP broker at ${where} refused the connection: ${reason}`));
        }
      };
    });
    client.onConnect = () => {
      this.connection += 1;
      this.connected = true;
      const connection = this.connection;
      void this.onConnected(connection).catch(() => {
        // Could not catch up on this connection (or it died): start over on a new one.
        if (connection === this.connection) this.client?.forceDisconnect();
      });
    };
    client.onWebSocketClose = () => {
      this.onDisconnected();
    };
    client.activate();
    const sweepEvery = Math.min(5000, Math.max(50, Math.floor(this.options.pushIdTtlMs / 10)));
    this.timers.push(
      setInterval(() => {
        this.replica.sweep(this.now());
        if (this.isSequencer()) {
          this.expiryDue = true;
          if (this.now() - this.lastCheckpointAt >= this.checkpointMs) this.checkpointDue = true;
          void this.runSequencer(this.connection);
        }
      }, sweepEvery),
    );
    for (const timer of this.timers) timer.unref();
    return started;
  }

  private onFirstUp: () => void = () => undefined;
  private checkpointDue = false;

  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    const client = this.client;
    this.client = null;
    this.onDisconnected();
    this.sink = null;
    if (client) await client.deactivate();
  }

  isUp(): boolean {
    return this.up;
  }

  async probe(): Promise<void> {
    await this.command({ k: 'probe', c: this.nextId() });
  }

  // --- EventLogStore ------------------------------------------------------------------------

  async publish(draft: NotificationDraft): Promise<NotificationEvent> {
    const entry = await this.command({ k: 'notify', c: draft.id, draft });
    if (entry.k === 'event' && entry.event.type === 'notification') return entry.event;
    // Numbered before (a redelivered command): the same notification, already in the log.
    return { ...draft, seq: entry.k === 'ok' ? (entry.seq ?? 0) : 0 };
  }

  head(): Promise<{ cursor: Cursor; seq: number }> {
    if (!this.up) return Promise.reject(unavailable('the node is not caught up with the broker'));
    return Promise.resolve(this.replica.head());
  }

  async readForListener(
    from: CursorPosition | null,
    pushIds: readonly PushId[],
    limit: number,
  ): Promise<ListenerSnapshot> {
    this.requireUp();
    // A cursor from another node may be ahead of this replica: read after everything committed.
    if (from !== null) await this.barrier();
    return this.replica.readForListener(from, pushIds, limit);
  }

  // --- MembershipStore ----------------------------------------------------------------------

  async register(pushIds: readonly PushId[]): Promise<void> {
    await this.command({ k: 'register', c: this.nextId(), ids: pushIds });
  }

  async touch(pushIds: readonly PushId[]): Promise<PushId[]> {
    const entry = await this.command({ k: 'touch', c: this.nextId(), ids: pushIds });
    return entry.k === 'live' ? [...(entry.expired ?? [])] : [];
  }

  async addMember(group: GroupName, pushId: PushId): Promise<void> {
    await this.command({ k: 'add', c: this.nextId(), group, pushId });
  }

  async removeMember(group: GroupName, pushId: PushId): Promise<void> {
    await this.command({ k: 'remove', c: this.nextId(), group, pushId });
  }

  async members(group: GroupName): Promise<PushId[]> {
    this.requireUp();
    await this.barrier();
    return this.replica.members(group);
  }

  async isLive(pushId: PushId): Promise<boolean> {
    this.requireUp();
    if (this.replica.isLive(pushId, this.now())) return true;
    // Minted through another node a moment ago, perhaps: ask again after everything committed.
    await this.barrier();
    return this.replica.isLive(pushId, this.now());
  }

  // --- ClusterDirectory ---------------------------------------------------------------------

  async heartbeat(node: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    this.directory.set(node.id, { info: node, at: this.now() });
    await this.sendBeat({
      t: 'node',
      id: node.id,
      connections: node.connections,
      startedAt: node.startedAt,
    });
  }

  async nodes(): Promise<NodeInfo[]> {
    this.requireUp();
    await this.barrier();
    const now = this.now();
    const live: NodeInfo[] = [];
    for (const [id, { info, at }] of this.directory) {
      if (now - at > this.options.nodeTimeoutMs) this.directory.delete(id);
      else live.push({ ...info, lastSeen: new Date(at).toISOString() });
    }
    return live;
  }

  async leave(nodeId: string): Promise<void> {
    this.directory.delete(nodeId);
    await this.sendBeat({ t: 'node', id: nodeId, connections: null, startedAt: '' });
  }

  // --- connection lifecycle -----------------------------------------------------------------

  private async onConnected(connection: number): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.caughtUp = false;
    this.buffered = [];
    await subscribeConfirmed(client, this.dest.events, (message) => {
      if (connection === this.connection) this.onEventsMessage(message);
    });
    await subscribeConfirmed(client, this.reply, (message) => {
      if (connection === this.connection) this.onReplyMessage(message);
    });
    await subscribeConfirmed(
      client,
      this.dest.append,
      (message) => {
        this.onAppendMessage(message, connection);
      },
      {
        ack: 'client-individual',
        'activemq.exclusive': 'true',
        'activemq.prefetchSize': '2000',
      },
    );
    // A mark coming back proves a sequencer exists and has stored a checkpoint to start from.
    await this.sync(true);
    await this.recover();
    // Listeners that fail over here bring cursors from before this node's checkpoint.
    await this.fillHistory().catch(() => undefined);
    if (connection !== this.connection) return;
    this.setUp(true);
    this.onFirstUp();
    if (this.ingressTarget) {
      this.ingress?.stop();
      this.ingress = new JmsNotifyIngress({
        client,
        prefix: this.target.prefix,
        target: this.ingressTarget.target,
        log: this.ingressTarget.log,
      });
      await this.ingress.start();
    }
  }

  private onDisconnected(): void {
    this.connection += 1;
    this.connected = false;
    this.caughtUp = false;
    this.sequencerOf = -1;
    this.inbox = [];
    this.buffered = [];
    this.logHeld = [];
    this.ingress?.stop();
    this.ingress = null;
    this.setUp(false);
    const lost = unavailable('the connection to the broker was lost');
    for (const [c, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(lost);
      this.pending.delete(c);
    }
    for (const [c, wait] of this.syncs) {
      clearTimeout(wait.timer);
      wait.reject(lost);
      this.syncs.delete(c);
    }
    for (const [c, history] of this.histories) {
      history.done(lost);
      this.histories.delete(c);
    }
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    this.sink?.onAvailability(up);
  }

  /**
   * Catches the replica up from the log queue, then applies what the events topic delivered
   * meanwhile. Single-flight: the follower and the sequencer paths share it.
   */
  private recover(): Promise<void> {
    this.recovering ??= this.recoverOnce().finally(() => {
      this.recovering = null;
    });
    return this.recovering;
  }

  private async recoverOnce(): Promise<void> {
    const connection = this.connection;
    for (let attempt = 0; attempt < 5; attempt++) {
      const messages = await this.browseLog();
      if (connection !== this.connection) throw unavailable('the connection was lost');
      const result = this.replica.catchUp(messages);
      if (result.kind === 'applied') this.emit(result.events);
      else if (result.kind === 'reloaded') {
        this.needHistory = true;
        this.sink?.onGap(this.replica.headSeq);
      }
      const waiting = this.buffered;
      this.buffered = [];
      let hole = false;
      for (const batch of waiting) {
        if (batch.epoch === this.replica.epoch && batch.bi <= this.replica.bi) continue;
        if (batch.epoch === this.replica.epoch && batch.bi === this.replica.bi + 1) {
          this.applyBatch(batch);
        } else {
          hole = true;
          this.buffered.push(batch);
        }
      }
      if (!hole && this.replica.loaded) {
        this.caughtUp = true;
        this.settleSyncs();
        return;
      }
      if (!this.replica.loaded && this.isSequencer()) return;
    }
    throw unavailable('the log queue did not fill the gap');
  }

  /** Reads the whole log queue without consuming it (a STOMP queue browser). */
  private browseLog(): Promise<LogMessage[]> {
    const client = this.requireClient();
    return new Promise((resolve, reject) => {
      const messages: LogMessage[] = [];
      const timer = setTimeout(() => {
        subscription.unsubscribe();
        reject(unavailable('browsing the log queue timed out'));
      }, START_TIMEOUT_MS);
      const subscription = client.subscribe(
        this.dest.log,
        (message) => {
          if (message.headers.browser === 'end') {
            clearTimeout(timer);
            subscription.unsubscribe();
            resolve(messages);
            return;
          }
          const parsed = parseTagged(message.body, 't') as LogMessage | null;
          if (parsed) messages.push(parsed);
        },
        stompHeaders({ browser: 'true' }),
      );
    });
  }

  private onEventsMessage(message: IMessage): void {
    try {
      this.handleEventsMessage(message);
    } catch {
      // Not ours or malformed (anyone with the broker's credentials can write here): this
      // replica may now miss a batch, so it re-reads the log queue.
      this.buffered = [];
      void this.recover().catch(() => {
        this.client?.forceDisconnect();
      });
    }
  }

  private handleEventsMessage(message: IMessage): void {
    const parsed = parseTagged(message.body, 't') as EventsMessage | null;
    if (!parsed) return;
    switch (parsed.t) {
      case 'batch':
        this.onBatch(parsed);
        break;
      case 'mark':
        this.onMark(parsed);
        break;
      case 'node':
        if (parsed.connections === null) this.directory.delete(parsed.id);
        else {
          this.directory.set(parsed.id, {
            info: { id: parsed.id, connections: parsed.connections, startedAt: parsed.startedAt },
            at: this.now(),
          });
        }
        break;
    }
  }

  private onBatch(batch: Batch): void {
    if (!this.caughtUp || this.recovering) {
      this.buffered.push(batch);
      return;
    }
    if (batch.epoch === this.replica.epoch && batch.bi <= this.replica.bi) return;
    if (batch.epoch === this.replica.epoch && batch.bi === this.replica.bi + 1) {
      this.applyBatch(batch);
      return;
    }
    // A hole (this node missed batches) or another epoch: the log queue has what is missing.
    this.buffered.push(batch);
    void this.recover()
      .then(() => this.fillHistory())
      .catch(() => {
        this.client?.forceDisconnect();
      });
  }

  /** Asks the sequencer for the log window this replica lacks, if any; best effort. */
  private async fillHistory(): Promise<void> {
    if (!this.needHistory || this.isSequencer()) return;
    this.needHistory = false;
    const through = this.replica.oldestResumableSeq;
    if (through <= 0) return;
    const client = this.requireClient();
    const c = this.nextId();
    const parts = await new Promise<(readonly [ClusterEvent, number])[]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.histories.delete(c);
        reject(unavailable('the log history did not arrive in time'));
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
        this.dest.append,
        JSON.stringify({ k: 'history', c, through, reply: this.reply } satisfies Command),
        HISTORY_TIMEOUT_MS,
      );
    });
    this.replica.prependHistory(parts.map(([event, at]) => ({ event, at })));
  }

  private onReplyMessage(message: IMessage): void {
    const part = parseTagged(message.body, 't') as HistoryPart | null;
    if (part?.t !== 'history') return;
    const history = this.histories.get(part.c);
    const events: unknown = part.events;
    if (!history || !Array.isArray(events)) return;
    history.parts.push(...(events as HistoryPart['events']));
    if (part.last) history.done();
  }

  private applyBatch(batch: Batch): void {
    this.emit(this.replica.apply(batch));
    for (const entry of batch.entries) {
      if (entry.c === undefined) continue;
      const pending = this.pending.get(entry.c);
      if (!pending) continue;
      this.pending.delete(entry.c);
      clearTimeout(pending.timer);
      if (entry.k === 'rejected') pending.reject(new EpushError(entry.code, entry.message));
      else pending.resolve(entry);
    }
    this.settleSyncs();
  }

  private emit(events: readonly ClusterEvent[]): void {
    const sink = this.sink;
    if (sink) for (const event of events) sink.onEvent(event);
  }

  // --- commands and barriers ----------------------------------------------------------------

  private nextId(): string {
    this.counter += 1;
    return `${this.tag}.${this.counter.toString(36)}`;
  }

  /** Sends a command to the sequencer; resolves with the entry that answers it. */
  private command(command: Command): Promise<Entry> {
    this.requireUp();
    const client = this.requireClient();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(command.c);
        reject(unavailable('the sequencer did not answer in time'));
      }, COMMAND_TIMEOUT_MS);
      this.pending.set(command.c, { resolve, reject, timer });
      try {
        // Not persistent: nothing is promised before the batch is committed, and a command the
        // broker loses in a restart ends in a 503 for its caller, never in a false 202.
        publishTransient(client, this.dest.append, JSON.stringify(command), COMMAND_EXPIRES_MS);
      } catch {
        clearTimeout(timer);
        this.pending.delete(command.c);
        reject(unavailable('the connection to the broker was lost'));
      }
    });
  }

  /**
   * Resolves once this replica holds everything committed before the call. One sync is in
   * flight at a time; callers that arrive meanwhile share the next one.
   */
  private barrier(): Promise<void> {
    if (this.isSequencer() && this.caughtUp) return Promise.resolve();
    if (!this.syncCurrent) {
      this.syncCurrent = this.sync(false).finally(() => {
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
  private sync(markOnly: boolean): Promise<void> {
    const client = this.requireClient();
    const c = this.nextId();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => {
          this.syncs.delete(c);
          reject(unavailable('the sequencer did not answer in time'));
        },
        markOnly ? START_TIMEOUT_MS : COMMAND_TIMEOUT_MS,
      );
      this.syncs.set(c, {
        targetBi: null,
        timer,
        reject,
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
      });
      if (markOnly) this.markOnly.add(c);
      try {
        publishTransient(
          client,
          this.dest.append,
          JSON.stringify({ k: 'sync', c } satisfies Command),
          COMMAND_TIMEOUT_MS,
        );
      } catch {
        clearTimeout(timer);
        this.syncs.delete(c);
        reject(unavailable('the connection to the broker was lost'));
      }
    });
  }

  private readonly markOnly = new Set<string>();

  private onMark(mark: SyncMark): void {
    for (const c of mark.c) {
      const wait = this.syncs.get(c);
      if (!wait) continue;
      if (this.markOnly.delete(c)) {
        this.syncs.delete(c);
        wait.resolve();
      } else {
        wait.targetBi = mark.epoch === this.replica.epoch ? mark.bi : Number.POSITIVE_INFINITY;
      }
    }
    this.settleSyncs();
  }

  private settleSyncs(): void {
    if (!this.caughtUp) return;
    for (const [c, wait] of this.syncs) {
      if (wait.targetBi !== null && this.replica.bi >= wait.targetBi) {
        this.syncs.delete(c);
        wait.resolve();
      }
    }
  }

  private async sendBeat(beat: EventsMessage): Promise<void> {
    if (!this.connected) throw unavailable('not connected to the broker');
    await withTimeout(
      sendWithReceipt(this.requireClient(), this.dest.events, JSON.stringify(beat), {
        persistent: 'false',
      }),
      COMMAND_TIMEOUT_MS,
    );
  }

  // --- the sequencer ------------------------------------------------------------------------

  attachNotifyIngress(target: NotifyTarget, log: Logger): void {
    this.ingressTarget = { target, log };
  }

  isLeader(): boolean {
    return this.isSequencer() && this.caughtUp;
  }

  private isSequencer(): boolean {
    return this.sequencerOf === this.connection && this.connected;
  }

  private onAppendMessage(message: IMessage, connection: number): void {
    if (connection !== this.connection) return;
    this.inbox.push({ command: parseTagged(message.body, 'k') as Command | null, message });
    void this.runSequencer(connection);
  }

  private async runSequencer(connection: number): Promise<void> {
    if (this.sequencingFor === connection) return;
    this.sequencingFor = connection;
    try {
      if (this.sequencerOf !== connection) await this.takeOver(connection);
      while (
        connection === this.connection &&
        (this.inbox.length > 0 || this.expiryDue || this.checkpointDue)
      ) {
        await this.sequenceOnce(connection);
      }
    } catch {
      // Lost the broker mid-batch: force a new connection, so the broker hands the queue to a
      // sequencer that starts from the log queue (this one or another); nothing was acknowledged.
      if (connection === this.connection) this.client?.forceDisconnect();
    } finally {
      if (this.sequencingFor === connection) this.sequencingFor = -1;
    }
  }

  /** Becomes the sequencer: first catch up on everything the previous one committed. */
  private async takeOver(connection: number): Promise<void> {
    this.sequencerOf = connection;
    this.caughtUp = false;
    await this.recover();
    const client = this.requireClient();
    if (!this.replica.loaded) {
      this.replica.startEpoch(newEpoch());
      this.checkpointDue = true;
    }
    // Nothing could be read (a new or emptied log queue): this replica is the state.
    this.caughtUp = true;
    this.settleSyncs();
    // A checkpoint at once: a node that starts now finds the state without waiting for a timer.
    await this.storeCheckpoint(client, connection);
    await subscribeConfirmed(
      client,
      this.dest.log,
      (message) => {
        this.onLogMessage(message, connection);
      },
      { ack: 'client-individual', 'activemq.prefetchSize': '20000' },
    );
  }

  private async sequenceOnce(connection: number): Promise<void> {
    const client = this.requireClient();
    const taken = this.inbox.splice(0, MAX_BATCH_COMMANDS);
    const commands = taken.flatMap((inbound) => (inbound.command ? [inbound.command] : []));
    const expire = this.expiryDue;
    this.expiryDue = false;
    const batch = this.replica.buildBatch(commands, this.now(), expire);
    if (batch) {
      const body = JSON.stringify(batch);
      await withTimeout(
        sendWithReceipt(client, this.dest.log, body, { persistent: 'true' }),
        COMMAND_TIMEOUT_MS,
      );
      if (connection !== this.connection) throw unavailable('the connection was lost');
      publishTransient(client, this.dest.events, body);
      this.applyBatch(batch);
      this.batchesSinceCheckpoint += 1;
      if (this.batchesSinceCheckpoint >= CHECKPOINT_EVERY_BATCHES) this.checkpointDue = true;
    }
    for (const command of commands) {
      if (command.k === 'history')
        this.sendHistory(client, command.c, command.through, command.reply);
    }
    const syncs = commands.filter((command) => command.k === 'sync').map((command) => command.c);
    if (syncs.length > 0 && this.replica.epoch !== null) {
      const mark: SyncMark = {
        t: 'mark',
        epoch: this.replica.epoch,
        bi: this.replica.bi,
        c: syncs,
      };
      publishTransient(client, this.dest.events, JSON.stringify(mark));
    }
    for (const inbound of taken) inbound.message.ack();
    if (this.checkpointDue) await this.storeCheckpoint(client, connection);
  }

  private async storeCheckpoint(client: Client, connection: number): Promise<void> {
    const at = this.now();
    await withTimeout(
      sendWithReceipt(client, this.dest.log, JSON.stringify(this.replica.checkpoint(at)), {
        persistent: 'true',
      }),
      COMMAND_TIMEOUT_MS,
    );
    if (connection !== this.connection) throw unavailable('the connection was lost');
    this.checkpointDue = false;
    this.lastCheckpointAt = at;
    this.batchesSinceCheckpoint = 0;
  }

  /** Sends the log window through `through` to a node that started from a checkpoint. */
  private sendHistory(client: Client, c: string, through: number, reply: string): void {
    // Only a reply topic of this cluster: the command comes from anyone who can write the queue.
    if (!reply.startsWith(replyDestination(this.target.prefix, ''))) return;
    const entries = this.replica.historyThrough(through);
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
    if (connection !== this.connection) return;
    const parsed = parseTagged(message.body, 't') as LogMessage | null;
    if (parsed?.t === 'checkpoint') {
      for (const held of this.logHeld) held.ack();
      this.logHeld = [];
    }
    this.logHeld.push(message);
  }

  // --- small helpers --------------------------------------------------------------------------

  private requireUp(): void {
    if (!this.up) throw unavailable('the node is not caught up with the broker');
  }

  private requireClient(): Client {
    if (!this.client || !this.connected) throw unavailable('not connected to the broker');
    return this.client;
  }
}

function unavailable(reason: string): EpushError {
  return new EpushError(
    'backplane_unavailable',
    `The STOMP broker is unreachable or failing over (${reason}); try again shortly.`,
    { 'retry-after': '1' },
  );
}

function newEpoch(): string {
  return randomBytes(6).readUIntBE(0, 6).toString(36);
}

/** The broker's messages are untrusted JSON: anything without the right tag is dropped. */
function parseTagged(text: string, tag: 't' | 'k'): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null) return null;
    const record = value as Record<string, unknown>;
    return typeof record[tag] === 'string' ? record : null;
  } catch {
    return null;
  }
}

function withTimeout(promise: Promise<void>, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(unavailable('the broker did not confirm in time'));
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
