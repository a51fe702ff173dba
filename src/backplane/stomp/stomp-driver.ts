/**
 * The STOMP driver, for JMS brokers (tested on ActiveMQ Classic 5.17). A JMS broker keeps queues
 * and topics, not a numbered log, so the driver builds one over it (docs/backplanes.md, "STOMP"):
 * every node sends its changes as commands to the queue `<prefix>.append`, consumed by one
 * exclusive consumer, the SEQUENCER (StompSequencer), which numbers them into batches, stores each
 * batch in the persistent queue `<prefix>.log` (the commit point) and fans it out on the topic
 * `<prefix>.events`. Every node applies the batches to its replica of the whole state
 * (StompReplica), and serves reads from it; a node that starts, or missed batches, browses the
 * log queue (the newest checkpoint and the batches after it) and asks the sequencer for the log
 * window before that checkpoint.
 */
import type { Logger } from 'pino';
import type { EventDraft } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import type { MembershipHistory } from '../../core/membership-history.js';
import type { PushId } from '../../core/push-id.js';
import type {
  BackplaneGuarantees,
  BackplaneOptions,
  NodeInfo,
  NotifyTarget,
} from '../backplane.js';
import type {
  AppendOnceOutcome,
  BackplaneDriver,
  Beat,
  ChangeOutcome,
  DriverLink,
  LogEntry,
  LogHead,
  MembershipChange,
  PresenceDriverMethods,
  PresenceEntry,
  PresenceWrite,
  StampedDraft,
} from '../driver.js';
import { unavailable } from '../protocol/backplane-call.js';
import { JmsIngressSlot } from './jms-notify-ingress.js';
import { BACKPLANE_LIVENESS, stompClient, type Client } from './stomp-connection.js';
import { StompDirectory } from './stomp-directory.js';
import { StompFollower } from './stomp-follower.js';
import { membershipCommand, stompDestinations, type StompDestinations } from './stomp-protocol.js';
import { StompReplica } from './stomp-replica.js';
import { StompRequests, VENDOR } from './stomp-requests.js';
import { StompSequencer } from './stomp-sequencer.js';
import { parseStompUrl, type StompTarget } from '../../config/stomp-url.js';

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

const START_TIMEOUT_MS = 20_000;
const RECONNECT_DELAY_MS = 200;

/** Tuning, for tests. */
export interface StompTuning {
  /** How often the sequencer stores a checkpoint (default: min(60 s, retention / 2)). */
  readonly checkpointMs?: number;
}

export class StompDriver implements BackplaneDriver, PresenceDriverMethods {
  readonly kind = 'stomp';
  readonly vendor = VENDOR;
  readonly guarantees = STOMP_GUARANTEES;

  private readonly target: StompTarget;
  private readonly dest: StompDestinations;
  private readonly replica: StompReplica;
  private readonly now: () => number;
  private readonly requests: StompRequests;
  private readonly sequencer: StompSequencer;
  private readonly follower: StompFollower;
  private readonly directory: StompDirectory;
  private readonly ingress: JmsIngressSlot;
  private client: Client | null = null;
  private link: DriverLink | null = null;
  /** Bumped on every connect and disconnect; async work of an older connection stops. */
  private connection = 0;
  private connected = false;
  private up = false;
  private timer: NodeJS.Timeout | null = null;
  private onFirstUp: () => void = () => undefined;

  constructor(
    url: string,
    private readonly options: BackplaneOptions,
    tuning: StompTuning = {},
  ) {
    this.target = parseStompUrl(url);
    this.dest = stompDestinations(this.target.prefix);
    this.ingress = new JmsIngressSlot(this.target.prefix);
    this.now = options.now ?? Date.now;
    this.replica = new StompReplica(options);
    const checkpointMs =
      tuning.checkpointMs ?? Math.max(1000, Math.min(60_000, options.retentionMs / 2));
    const client = (): Client => this.requireClient();
    const connection = (): number => this.connection;
    this.directory = new StompDirectory(client, this.dest.events, this.now);
    this.requests = new StompRequests({
      client,
      appendQueue: this.dest.append,
      position: () => ({ epoch: this.replica.epoch, bi: this.replica.bi }),
      isLeader: () => this.isLeader(),
      caughtUp: () => this.follower.caughtUp,
    });
    this.follower = new StompFollower({
      replica: this.replica,
      dest: this.dest,
      prefix: this.target.prefix,
      requests: this.requests,
      client,
      connection,
      isSequencer: () => this.sequencer.isActive(),
      emit: (events) => {
        const epoch = this.replica.epoch ?? '0';
        for (const event of events) this.link?.entry(epoch, { seq: event.seq, body: event });
      },
      reloaded: () => {
        // The protocol's tail reads the new head and reports what it cannot read as a gap.
        if (this.up) this.link?.link(true);
      },
      onBeat: (beat) => {
        this.directory.heard(beat);
      },
      forceDisconnect: () => this.client?.forceDisconnect(),
    });
    this.sequencer = new StompSequencer(
      {
        replica: this.replica,
        dest: this.dest,
        prefix: this.target.prefix,
        now: this.now,
        connection,
        client,
        recover: () => this.follower.recover(),
        applyBatch: (batch) => {
          this.follower.applyBatch(batch);
        },
        setCaughtUp: (caughtUp) => {
          this.follower.setCaughtUp(caughtUp);
        },
        forceDisconnect: () => this.client?.forceDisconnect(),
      },
      checkpointMs,
    );
  }

  // --- connection ---------------------------------------------------------------------------

  connect(link: DriverLink): Promise<void> {
    this.link = link;
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
      void this.onConnected(client, connection).catch(() => {
        // Could not catch up on this connection (or it died): start over on a new one.
        if (connection === this.connection) this.client?.forceDisconnect();
      });
    };
    client.onWebSocketClose = () => {
      this.onDisconnected();
    };
    client.activate();
    const every = Math.min(5000, Math.max(50, Math.floor(this.options.pushIdTtlMs / 10)));
    this.timer = setInterval(() => {
      this.sequencer.tick();
    }, every);
    this.timer.unref();
    return started;
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const client = this.client;
    this.client = null;
    this.onDisconnected();
    this.link = null;
    if (client) await client.deactivate();
  }

  isUp(): boolean {
    return this.up;
  }

  private async onConnected(client: Client, connection: number): Promise<void> {
    await this.follower.subscribe(connection, (message) => {
      this.sequencer.onAppendMessage(message, connection);
    });
    if (connection !== this.connection) return;
    this.directory.connected();
    this.setUp(true);
    this.onFirstUp();
    await this.ingress.start(client);
  }

  private onDisconnected(): void {
    this.connection += 1;
    this.connected = false;
    this.sequencer.reset();
    this.follower.reset();
    this.ingress.stop();
    this.setUp(false);
    const lost = unavailable(VENDOR, 'the connection to the broker was lost');
    this.requests.failAll(lost);
    this.follower.failHistories(lost);
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    this.link?.link(up);
  }

  // --- the cluster-wide role and the JMS ingress -------------------------------------------

  attachNotifyIngress(target: NotifyTarget, log: Logger): void {
    this.ingress.attach(target, log);
  }

  isLeader(): boolean {
    return this.sequencer.isActive() && this.connected && this.follower.caughtUp;
  }

  // --- the log ------------------------------------------------------------------------------

  async head(fresh = false): Promise<LogHead> {
    this.requireUp();
    // A cursor from another node may be ahead of this replica: read after everything committed.
    if (fresh) await this.requests.barrier();
    return this.replica.logHead();
  }

  async append(draft: EventDraft): Promise<number> {
    if (draft.type !== 'notification') throw new Error('only notifications are appended');
    this.requireUp();
    const entry = await this.requests.command({ k: 'notify', c: draft.id, draft });
    if (entry.k === 'event') return entry.event.seq;
    // Numbered before (a redelivered command): the same notification, already in the log.
    return entry.k === 'ok' ? (entry.seq ?? 0) : 0;
  }

  /** The sequencer checks the key against its replica (see StompReplica.buildBatch). */
  async appendOnce(draft: StampedDraft): Promise<AppendOnceOutcome> {
    const seq = await this.append(draft);
    // Answered after this replica applied the batch: the key's first notification is in it.
    const first = this.replica.idempotencyRecord(draft.idem.key);
    if (first === undefined || first.id === draft.id) return { kind: 'appended', seq };
    return { kind: 'seen', record: { id: first.id, fingerprint: first.fingerprint } };
  }

  read(first: number, last: number): Promise<LogEntry[]> {
    return this.replica.read(first, last);
  }

  trim(): Promise<void> {
    this.replica.sweep(this.now());
    return Promise.resolve();
  }

  async sendProbe(token: string): Promise<void> {
    this.requireUp();
    // Answered once the sequencer numbered it and this replica applied the batch.
    await this.requests.command({ k: 'probe', c: this.requests.nextId() });
    this.link?.probe(token);
  }

  // --- membership ---------------------------------------------------------------------------

  async change(change: MembershipChange): Promise<ChangeOutcome> {
    this.requireUp();
    try {
      const entry = await this.requests.command(membershipCommand(change, this.requests.nextId()));
      return entry.k === 'event'
        ? { kind: 'appended', seq: entry.event.seq }
        : { kind: 'unchanged' };
    } catch (error) {
      if (error instanceof Error && 'code' in error && error.code === 'push_id_not_found') {
        return { kind: 'not-live' };
      }
      throw error;
    }
  }

  histories(pushIds: readonly PushId[]): Promise<Map<PushId, MembershipHistory>> {
    return this.replica.histories(pushIds);
  }

  async members(group: GroupName): Promise<PushId[]> {
    this.requireUp();
    await this.requests.barrier();
    return this.replica.members(group);
  }

  // --- liveness -----------------------------------------------------------------------------

  async register(pushIds: readonly PushId[]): Promise<void> {
    this.requireUp();
    await this.requests.command({ k: 'register', c: this.requests.nextId(), ids: pushIds });
  }

  async touch(pushIds: readonly PushId[]): Promise<PushId[]> {
    this.requireUp();
    const entry = await this.requests.command({
      k: 'touch',
      c: this.requests.nextId(),
      ids: pushIds,
    });
    return entry.k === 'live' ? [...(entry.expired ?? [])] : [];
  }

  async isLive(pushId: PushId): Promise<boolean> {
    this.requireUp();
    if (this.replica.isLive(pushId, this.now())) return true;
    // Minted through another node a moment ago, perhaps: ask again after everything committed.
    await this.requests.barrier();
    return this.replica.isLive(pushId, this.now());
  }

  dueForExpiry(limit: number): Promise<PushId[]> {
    return Promise.resolve(this.replica.due(this.now(), limit));
  }

  // --- presence: every node's replica holds the records; the sequencer judges each write ----

  async presenceRead(pushIds: readonly PushId[]): Promise<Map<PushId, PresenceEntry>> {
    this.requireUp();
    // A write another node made a moment ago is read, as on the backplanes with a server.
    await this.requests.barrier();
    return this.replica.presence.read(pushIds);
  }

  async presenceWrite(
    pushId: PushId,
    expected: number,
    write: PresenceWrite,
  ): Promise<number | null> {
    this.requireUp();
    const c = this.requests.nextId();
    const entry = await this.requests.command({ k: 'presence', c, pushId, expected, write });
    // Answered after this replica applied the batch: a lost race reads the winner's record.
    return entry.k === 'presence' ? entry.version : null;
  }

  presenceDue(until: number, limit: number): Promise<PushId[]> {
    return Promise.resolve(this.replica.presence.dueUntil(until, limit));
  }

  presenceHeldBy(nodeId: string, limit: number): Promise<PushId[]> {
    return Promise.resolve(this.replica.presence.heldByNode(nodeId, limit));
  }

  presenceHolders(): Promise<string[]> {
    return Promise.resolve(this.replica.presence.holders());
  }

  // --- node directory -----------------------------------------------------------------------

  beat(info: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    return this.directory.beat(info);
  }

  async beats(): Promise<Beat[]> {
    this.requireUp();
    await this.requests.barrier();
    return this.directory.beats();
  }

  forget(nodeId: string): Promise<void> {
    return this.directory.forget(nodeId);
  }

  private requireUp(): void {
    if (!this.up) throw unavailable(VENDOR, 'the node is not caught up with the broker');
  }

  private requireClient(): Client {
    if (!this.client || !this.connected) throw unavailable(VENDOR, 'not connected to the broker');
    return this.client;
  }
}
