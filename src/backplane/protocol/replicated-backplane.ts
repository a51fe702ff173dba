import { randomBytes } from 'node:crypto';
import { encodeCursor, type Cursor, type CursorPosition } from '../../core/cursor.js';
import { EpushError } from '../../core/errors.js';
import type { NotificationDraft, NotificationEvent } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import type { PushId } from '../../core/push-id.js';
import type {
  Backplane,
  BackplaneGuarantees,
  BackplaneOptions,
  ClusterEventSink,
  ListenerSnapshot,
  NodeInfo,
  PresenceAck,
  PresenceOutboxSink,
  PushIdPresenceView,
  PublishOnceOutcome,
} from '../backplane.js';
import type { BackplaneDriver, DriverLink, LogEntry, StampedDraft } from '../driver.js';
import { backplaneCall } from './backplane-call.js';
import type { HistoryPage, HistoryTarget } from '../../core/history.js';
import { readHistory } from './history-read.js';
import { publishOnce } from './idempotent-publish.js';
import { readForListener } from './listener-read.js';
import { OrderedTail } from './ordered-tail.js';
import { PresenceProtocol, type Release } from './presence-protocol.js';

/** Presence grace when the options name none. */
const DEFAULT_PRESENCE_GRACE_MS = 5000;

/** Push IDs expired per batch of driver calls. */
const EXPIRE_BATCH = 200;
/** A probe waits this long for the tail to reach the log's head before it restarts the tail. */
const TAIL_STALL_MS = 2000;

/**
 * THE cluster protocol, written once: turns a driver's primitives into the `Backplane` a node
 * uses. It orders the live tail and repairs gaps and epochs (OrderedTail), serves listener reads
 * (readForListener), runs the expiry sweep and the log trim, keeps the node directory, proves
 * delivery with probes, and bounds every vendor call in time (backplaneCall: 503 on failure).
 */
export class ReplicatedBackplane implements Backplane {
  readonly kind: string;
  readonly guarantees: BackplaneGuarantees;

  private readonly tail: OrderedTail;
  private readonly probes = new Map<string, () => void>();
  private readonly probeTag = randomBytes(6).toString('hex');
  private probeCounter = 0;
  private sink: ClusterEventSink | null = null;
  private up = false;
  private started = false;
  private sweeper: NodeJS.Timeout | null = null;
  private sweeping = false;
  private readonly presence: PresenceProtocol;
  private presenceSweeper: NodeJS.Timeout | null = null;
  private presenceSweeping = false;
  private outboxSink: PresenceOutboxSink | null = null;

  constructor(
    protected readonly driver: BackplaneDriver,
    private readonly options: BackplaneOptions,
  ) {
    this.kind = driver.kind;
    this.guarantees = driver.guarantees;
    this.tail = new OrderedTail(
      driver,
      () => this.sink,
      () => undefined,
    );
    this.presence = new PresenceProtocol(driver, {
      graceMs: options.presenceGraceMs ?? DEFAULT_PRESENCE_GRACE_MS,
      ttlMs: options.pushIdTtlMs,
      nodeTimeoutMs: options.nodeTimeoutMs,
      now: options.now ?? Date.now,
      ...(options.onPresenceChanges ? { onChanges: options.onPresenceChanges } : {}),
      ...(options.presenceWebhookNode === undefined
        ? {}
        : {
            webhooks: {
              nodeId: options.presenceWebhookNode,
              onOwned: (pushId, events) => {
                this.outboxSink?.owned(pushId, events);
              },
              onDropped: (count) => {
                this.outboxSink?.dropped(count);
              },
            },
          }),
    });
  }

  get presenceSupported(): boolean {
    return this.presence.supported;
  }

  /** What the driver reports. */
  private readonly link: DriverLink = {
    entry: (epoch: string, entry: LogEntry): void => {
      this.tail.receive(epoch, entry);
    },
    probe: (token: string): void => {
      // Every node sees every probe; only the sender waits for its own.
      this.probes.get(token)?.();
    },
    link: (up: boolean): void => {
      if (!this.started) return;
      // After a reconnect, whatever was appended meanwhile is read back from the log.
      if (up) void this.tail.catchUp();
      this.setUp(up);
    },
  };

  // --- EventFanout --------------------------------------------------------------------------

  async start(sink: ClusterEventSink): Promise<void> {
    this.sink = sink;
    await this.driver.connect(this.link);
    const head = await backplaneCall(this.driver.vendor, () => this.driver.head());
    this.tail.startAt(head.epoch, head.seq);
    this.started = true;
    // Entries that arrived between the connect and the head are read again, in order.
    void this.tail.catchUp();
    this.setUp(this.driver.isUp());
    // Expiry and retention are checked a few times per TTL or window, at most once a second.
    const every = Math.min(
      1000,
      Math.max(50, Math.min(this.options.pushIdTtlMs, this.options.retentionMs) / 8),
    );
    this.sweeper = setInterval(() => {
      void this.sweep().catch(() => undefined);
    }, every);
    this.sweeper.unref();
    if (this.presence.supported) {
      // Grace ends and dead holders are written a few times per grace, at most every second.
      const grace = this.options.presenceGraceMs ?? DEFAULT_PRESENCE_GRACE_MS;
      this.presenceSweeper = setInterval(
        () => {
          void this.sweepPresence();
        },
        Math.min(1000, Math.max(100, grace / 5)),
      );
      this.presenceSweeper.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    if (this.presenceSweeper) clearInterval(this.presenceSweeper);
    this.presenceSweeper = null;
    this.tail.stop();
    this.sink = null;
    this.started = false;
    await this.driver.close();
  }

  isUp(): boolean {
    return this.up;
  }

  private setUp(up: boolean): void {
    if (up === this.up) return;
    this.up = up;
    this.sink?.onAvailability(up);
  }

  /**
   * Proves delivery end to end: a token sent along the tail's path comes back (where the driver
   * has such a path), and the tail reaches the log's head as it is now. A tail that stopped
   * silently fails the probe, is restarted, and the gap is read back from the log.
   */
  async probe(): Promise<void> {
    const send = this.driver.sendProbe?.bind(this.driver);
    if (send) {
      const token = `${this.probeTag}.${++this.probeCounter}`;
      const returned = new Promise<void>((resolve) => this.probes.set(token, resolve));
      try {
        await this.call(() => send(token));
        await returned;
      } finally {
        this.probes.delete(token);
      }
    }
    const head = await this.call(() => this.driver.head());
    const at = this.tail.position;
    if (head.epoch === at.epoch && at.seq >= head.seq) return;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.tail.reached(head.seq),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            reject(new Error(`the tail is stuck at seq ${at.seq} (log head ${head.seq})`));
          }, TAIL_STALL_MS);
        }),
      ]);
    } catch (error) {
      this.tail.abandon(head.seq);
      await this.driver.restartTail?.(this.tail.position.seq + 1).catch(() => undefined);
      void this.tail.catchUp();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  // --- EventLogStore ------------------------------------------------------------------------

  async publish(draft: NotificationDraft): Promise<NotificationEvent> {
    const seq = await this.call(() => this.driver.append(draft));
    return { ...draft, seq };
  }

  publishOnce(draft: StampedDraft): Promise<PublishOnceOutcome> {
    return this.call(() => publishOnce(this.driver, draft, this.options.retentionMs));
  }

  async head(): Promise<{ cursor: Cursor; seq: number }> {
    const head = await this.call(() => this.driver.head());
    return { cursor: encodeCursor(head.epoch, head.seq), seq: head.seq };
  }

  readForListener(
    from: CursorPosition | null,
    pushIds: readonly PushId[],
    limit: number,
  ): Promise<ListenerSnapshot> {
    return this.call(() => readForListener(this.driver, from, pushIds, limit));
  }

  history(
    target: HistoryTarget,
    since: CursorPosition | null,
    limit: number,
  ): Promise<HistoryPage> {
    return this.call(() => readHistory(this.driver, target, since, limit));
  }

  // --- MembershipStore ----------------------------------------------------------------------

  async register(pushIds: readonly PushId[]): Promise<void> {
    await this.call(() => this.driver.register(pushIds));
    await this.call(() => this.presence.minted(pushIds));
  }

  touch(pushIds: readonly PushId[]): Promise<PushId[]> {
    if (pushIds.length === 0) return Promise.resolve([]);
    return this.call(() => this.driver.touch(pushIds));
  }

  async addMember(group: GroupName, pushId: PushId): Promise<void> {
    const outcome = await this.call(() =>
      this.driver.change({ type: 'member-added', group, pushId }),
    );
    if (outcome.kind === 'not-live') {
      throw new EpushError(
        'push_id_not_found',
        `Push ID ${pushId} is unknown or expired; mint a new one with POST /api/push-ids.`,
      );
    }
  }

  async removeMember(group: GroupName, pushId: PushId): Promise<void> {
    await this.call(() => this.driver.change({ type: 'member-removed', group, pushId }));
  }

  members(group: GroupName): Promise<PushId[]> {
    return this.call(() => this.driver.members(group));
  }

  isLive(pushId: PushId): Promise<boolean> {
    return this.call(() => this.driver.isLive(pushId));
  }

  // --- ClusterDirectory ---------------------------------------------------------------------

  heartbeat(node: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    return this.call(() => this.driver.beat(node));
  }

  async nodes(): Promise<NodeInfo[]> {
    const beats = await this.call(() => this.driver.beats());
    const live: NodeInfo[] = [];
    for (const { info, at, ageMs } of beats) {
      if (ageMs > this.options.nodeTimeoutMs) {
        void this.driver.forget(info.id).catch(() => undefined);
        continue;
      }
      live.push({ ...info, lastSeen: new Date(at).toISOString() });
    }
    return live;
  }

  leave(nodeId: string): Promise<void> {
    return this.call(() => this.driver.forget(nodeId));
  }

  // --- PresenceStore ------------------------------------------------------------------------

  presenceHolds(
    nodeId: string,
    started: readonly PushId[],
    stopped: readonly Release[],
  ): Promise<void> {
    return this.call(() => this.presence.holds(nodeId, started, stopped));
  }

  presenceOf(pushId: PushId): Promise<PushIdPresenceView | null> {
    return this.call(() => this.presence.of(pushId));
  }

  groupPresence(group: GroupName): Promise<{ members: number; listening: PushId[] }> {
    return this.call(() => this.presence.ofGroup(group));
  }

  presenceOutbox(sink: PresenceOutboxSink): void {
    this.outboxSink = sink;
  }

  presenceAck(acks: readonly PresenceAck[]): Promise<void> {
    return this.call(() => this.presence.ack(acks));
  }

  /** Writes grace ends, expiries and dead nodes' holds (see PresenceProtocol.sweep). */
  async sweepPresence(): Promise<void> {
    if (!this.up || this.presenceSweeping) return;
    this.presenceSweeping = true;
    try {
      await this.call(() => this.presence.sweep());
    } catch {
      // The next round retries; availability is reported by the tail and the canary.
    } finally {
      this.presenceSweeping = false;
    }
  }

  // --- upkeep -------------------------------------------------------------------------------

  /**
   * Expires push IDs past their TTL (each leaves every group with one event) and trims the log.
   * Every node sweeps; a driver's change makes a repeat by another node append nothing.
   */
  async sweep(): Promise<void> {
    if (!this.up || this.sweeping) return;
    this.sweeping = true;
    try {
      // Bounded: a driver that keeps returning the same push IDs cannot hold the sweep forever.
      for (let round = 0; round < 20; round++) {
        const due = await this.call(() => this.driver.dueForExpiry(EXPIRE_BATCH));
        await this.call(() =>
          Promise.all(due.map((pushId) => this.driver.change({ type: 'push-id-expired', pushId }))),
        );
        if (due.length < EXPIRE_BATCH) break;
      }
      await this.call(() => this.driver.trim(this.options.retentionMs));
    } finally {
      this.sweeping = false;
    }
  }

  private call<T>(call: () => Promise<T>): Promise<T> {
    return backplaneCall(this.driver.vendor, call);
  }
}
