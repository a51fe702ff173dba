import {
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type StreamInfo,
} from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import type { EventDraft } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import type { MembershipHistory } from '../../core/membership-history.js';
import type { PushId } from '../../core/push-id.js';
import type { BackplaneGuarantees, BackplaneOptions, NodeInfo } from '../backplane.js';
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
  PresenceWrite,
  StampedDraft,
} from '../driver.js';
import { CALL_TIMEOUT_MS, unavailable } from '../protocol/backplane-call.js';
import { encodeDraft, nodeInfoOf } from '../protocol/event-codec.js';
import { appendOnceToStream } from './nats-append-once.js';
import { connectNats } from './nats-connection.js';
import { ensureLogStream, epochOf, readLog } from './nats-stream.js';
import { NatsMembership } from './nats-membership.js';
import { NatsPresence } from './nats-presence.js';

export const NATS_GUARANTEES: BackplaneGuarantees = {
  multiNode: true,
  survivesNodeLoss: true,
  survivesBackplaneRestart: true,
  exactResume: true,
  summary:
    'cluster-wide ordered log in a JetStream stream (file storage); any node resumes any cursor within retention; a notification answered 202 is on disk in nats-server and survives any epush node and a nats-server restart',
};

/**
 * The NATS JetStream driver (nats-server ≥ 2.9 with JetStream). Layout (prefix `epush`, see
 * docs/backplanes.md): stream `EPUSH_<prefix>` is the log, its stream sequence IS the event's
 * seq; notifications go to `epush.<prefix>.log`, membership events to `epush.<prefix>.m.<pushId>`
 * (see NatsMembership); KV buckets `EPUSH_<prefix>_live` (liveness, max_age = TTL), `_history`,
 * `_members` and `_nodes` (max_age = node timeout); presence in `_presence`, `_pdue` and `_pheld`
 * (see NatsPresence).
 */
export class NatsDriver implements BackplaneDriver, PresenceDriverMethods {
  readonly kind = 'nats';
  readonly vendor = 'NATS JetStream';
  readonly guarantees = NATS_GUARANTEES;

  private readonly servers: string;
  private readonly user: string | undefined;
  private readonly pass: string | undefined;
  private readonly stream: string;
  private readonly logSubject: string;
  private readonly memberPrefix: string;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private jsm: JetStreamManager | null = null;
  private kv: { live: KV; history: KV; members: KV; nodes: KV } | null = null;
  private membership: NatsMembership | null = null;
  private presence: NatsPresence | null = null;
  private link: DriverLink | null = null;
  private epoch = '';
  private messages: ConsumerMessages | null = null;
  private connected = false;
  private stopped = false;

  constructor(
    url: string,
    private readonly options: BackplaneOptions,
  ) {
    const parsed = new URL(url);
    const prefix = parsed.searchParams.get('prefix') ?? 'epush';
    if (!/^[A-Za-z0-9_-]{1,32}$/.test(prefix)) {
      throw new Error(`NATS prefix "${prefix}" must be 1-32 characters of [A-Za-z0-9_-]`);
    }
    this.servers = `${parsed.hostname}:${parsed.port === '' ? '4222' : parsed.port}`;
    this.user = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
    this.pass = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
    this.stream = `EPUSH_${prefix}`;
    this.logSubject = `epush.${prefix}.log`;
    this.memberPrefix = `epush.${prefix}.m.`;
  }

  // --- connection ---------------------------------------------------------------------------

  async connect(link: DriverLink): Promise<void> {
    this.link = link;
    const nc = await connectNats({
      servers: this.servers,
      ...(this.user === undefined ? {} : { user: this.user, pass: this.pass ?? '' }),
      name: `epush ${this.stream}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: CALL_TIMEOUT_MS,
    });
    this.nc = nc;
    const js = jetstream(nc, { timeout: CALL_TIMEOUT_MS });
    const jsm = await jetstreamManager(nc, { timeout: CALL_TIMEOUT_MS });
    this.js = js;
    this.jsm = jsm;
    const info = await this.ensureStream();
    this.epoch = epochOf(info);
    const kv = await this.openBuckets(js);
    this.kv = kv;
    this.presence = await NatsPresence.open(js, jsm, this.stream);
    this.membership = new NatsMembership({
      js,
      jsm,
      stream: this.stream,
      subjectOf: (pushId) => this.memberPrefix + pushId,
      ...kv,
    });
    await this.startTail(info.state.last_seq + 1);
    this.connected = true;
    void this.watchStatus(nc);
  }

  async close(): Promise<void> {
    this.stopped = true;
    this.connected = false;
    this.membership?.stop();
    await this.messages?.close().catch(() => undefined);
    await this.nc?.close().catch(() => undefined);
  }

  isUp(): boolean {
    return this.connected;
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (this.stopped) return;
      if (status.type === 'disconnect' || status.type === 'reconnecting') {
        if (this.connected) {
          this.connected = false;
          this.link?.link(false);
        }
      } else if (status.type === 'reconnect') {
        void this.resync();
      }
    }
  }

  /** After a reconnect: the stream may be a new one (nats-server lost its store). */
  private async resync(): Promise<void> {
    try {
      const info = await this.ensureStream();
      this.kv = await this.openBuckets(this.requireJs());
      this.presence = await NatsPresence.open(this.requireJs(), this.requireJsm(), this.stream);
      if (epochOf(info) !== this.epoch) {
        this.epoch = epochOf(info);
        await this.restartTail(info.state.first_seq);
      }
      this.connected = true;
      this.link?.link(true);
    } catch {
      // JetStream may still be recovering its streams; try again shortly.
      setTimeout(() => {
        if (!this.connected && !this.stopped && this.nc && !this.nc.isClosed()) void this.resync();
      }, 250).unref();
    }
  }

  /**
   * An ordered consumer reads the stream from `fromSeq`: the library recreates it (from there)
   * when it misses heartbeats or nats-server restarts.
   */
  private async startTail(fromSeq: number): Promise<void> {
    const consumer = await this.requireJs().consumers.get(this.stream, {
      deliver_policy: 'by_start_sequence',
      opt_start_seq: Math.max(1, fromSeq),
    });
    const messages = await consumer.consume({ max_messages: 1000 });
    this.messages = messages;
    void (async () => {
      for await (const message of messages) {
        if (this.messages !== messages) break;
        const body = message.string();
        if (message.subject !== this.logSubject) this.membership?.seen(body, message.seq);
        this.link?.entry(this.epoch, { seq: message.seq, body });
      }
    })().catch(() => undefined);
  }

  async restartTail(fromSeq: number): Promise<void> {
    const old = this.messages;
    this.messages = null;
    await old?.close().catch(() => undefined);
    if (!this.stopped) await this.startTail(fromSeq);
  }

  // --- the log ------------------------------------------------------------------------------

  async head(): Promise<LogHead> {
    this.ready();
    const info = await this.requireJsm().streams.info(this.stream);
    return {
      epoch: epochOf(info),
      seq: info.state.last_seq,
      firstSeq: info.state.messages === 0 ? info.state.last_seq + 1 : info.state.first_seq,
    };
  }

  async append(draft: EventDraft): Promise<number> {
    this.ready();
    const ack = await this.requireJs().publish(this.logSubject, encodeDraft(draft), {
      timeout: CALL_TIMEOUT_MS,
    });
    return ack.seq;
  }

  appendOnce(draft: StampedDraft): Promise<AppendOnceOutcome> {
    this.ready();
    return appendOnceToStream(
      this.requireJs(),
      this.requireJsm(),
      this.stream,
      this.logSubject,
      draft,
    );
  }

  read(first: number, last: number): Promise<LogEntry[]> {
    this.ready();
    return readLog(this.requireJsm(), this.stream, first, last);
  }

  /** The stream's max_age trims the log; closed members keys are cleaned here. */
  trim(retentionMs: number): Promise<void> {
    return this.requireMembership().trim(retentionMs);
  }

  // --- membership ---------------------------------------------------------------------------

  change(change: MembershipChange): Promise<ChangeOutcome> {
    return this.requireMembership().change(change);
  }

  histories(pushIds: readonly PushId[]): Promise<Map<PushId, MembershipHistory>> {
    return this.requireMembership().histories(pushIds);
  }

  members(group: GroupName): Promise<PushId[]> {
    return this.requireMembership().members(group);
  }

  dueForExpiry(limit: number): Promise<PushId[]> {
    return this.requireMembership().dueForExpiry(limit);
  }

  // --- presence (nats-presence.ts: buckets `_presence`, `_pdue`, `_pheld`) ------------------
  presenceRead = (ids: readonly PushId[]) => this.requirePresence().read(ids);
  presenceWrite = (id: PushId, v: number, w: PresenceWrite) =>
    this.requirePresence().write(id, v, w);
  presenceDue = (until: number, limit: number) => this.requirePresence().dueUntil(until, limit);
  presenceHeldBy = (node: string, limit: number) => this.requirePresence().heldBy(node, limit);
  presenceHolders = () => this.requirePresence().holders();

  // --- liveness -----------------------------------------------------------------------------

  async register(pushIds: readonly PushId[]): Promise<void> {
    const live = this.buckets().live;
    await Promise.all(pushIds.map((pushId) => live.put(pushId, '')));
  }

  /**
   * The live bucket's max_age is the TTL, so nats-server itself forgets a push ID nobody
   * touched; a touch re-writes the key only if it still exists (compare-and-set on its
   * revision), so an expired push ID never comes back.
   */
  async touch(pushIds: readonly PushId[]): Promise<PushId[]> {
    const live = this.buckets().live;
    const expired = await Promise.all(
      pushIds.map(async (pushId) => {
        const entry = await live.get(pushId);
        if (entry?.operation !== 'PUT') return pushId;
        try {
          await live.update(pushId, '', entry.revision);
          return null;
        } catch {
          // Someone touched it meanwhile (fine), or it just expired (then it stays expired).
          return (await live.get(pushId))?.operation === 'PUT' ? null : pushId;
        }
      }),
    );
    return expired.filter((pushId): pushId is PushId => pushId !== null);
  }

  async isLive(pushId: PushId): Promise<boolean> {
    return (await this.buckets().live.get(pushId))?.operation === 'PUT';
  }

  // --- node directory -----------------------------------------------------------------------

  async beat(info: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    await this.buckets().nodes.put(info.id, JSON.stringify(info));
  }

  async beats(): Promise<Beat[]> {
    const nodes = this.buckets().nodes;
    const ids = new Set<string>(); // a key rewritten during the listing can come twice
    for await (const id of await nodes.keys()) ids.add(id);
    const beats: Beat[] = [];
    for (const entry of await Promise.all([...ids].map((id) => nodes.get(id)))) {
      if (entry?.operation !== 'PUT') continue;
      const info = nodeInfoOf(entry.string());
      const at = entry.created.getTime();
      if (info !== null) beats.push({ info, at, ageMs: Date.now() - at });
    }
    return beats;
  }

  async forget(nodeId: string): Promise<void> {
    await this.buckets().nodes.purge(nodeId);
  }

  // --- internals ----------------------------------------------------------------------------

  private ensureStream(): Promise<StreamInfo> {
    return ensureLogStream(this.requireJsm(), {
      name: this.stream,
      subjects: [this.logSubject, `${this.memberPrefix}*`],
      retentionMs: this.options.retentionMs,
      maxLogBytes: this.options.maxLogBytes,
    });
  }

  private async openBuckets(
    js: JetStreamClient,
  ): Promise<{ live: KV; history: KV; members: KV; nodes: KV }> {
    const kvm = new Kvm(js);
    const bucket = (suffix: string, ttl: number): Promise<KV> =>
      kvm.create(`${this.stream}_${suffix}`, { history: 1, storage: 'file', ttl });
    return {
      live: await bucket('live', this.options.pushIdTtlMs),
      history: await bucket('history', 0),
      members: await bucket('members', 0),
      nodes: await bucket('nodes', this.options.nodeTimeoutMs),
    };
  }

  /**
   * Every call fails fast while the connection is down: the client would buffer it until the
   * reconnect and send it late, after the API had answered 503.
   */
  private ready(): void {
    if (!this.connected) throw unavailable(this.vendor, 'disconnected');
  }

  private buckets(): { live: KV; history: KV; members: KV; nodes: KV } {
    this.ready();
    if (this.kv === null) throw unavailable(this.vendor, 'not started');
    return this.kv;
  }

  private requirePresence(): NatsPresence {
    this.ready();
    if (this.presence === null) throw unavailable(this.vendor, 'not started');
    return this.presence;
  }

  private requireMembership(): NatsMembership {
    this.ready();
    if (this.membership === null) throw unavailable(this.vendor, 'not started');
    return this.membership;
  }

  private requireJs(): JetStreamClient {
    if (this.js === null) throw unavailable(this.vendor, 'not started');
    return this.js;
  }

  private requireJsm(): JetStreamManager {
    if (this.jsm === null) throw unavailable(this.vendor, 'not started');
    return this.jsm;
  }
}
