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
import { encodeCursor, type Cursor, type CursorPosition } from '../core/cursor.js';
import { deliveriesOf, type MembershipAt } from '../core/delivery-matching.js';
import { EpushError } from '../core/errors.js';
import {
  assertNever,
  type ClusterEvent,
  type EventDraft,
  type NotificationDraft,
  type NotificationEvent,
} from '../core/events.js';
import type { GroupName } from '../core/group-name.js';
import type { Delivery } from '../core/listen-answer.js';
import type { PushId } from '../core/push-id.js';
import type {
  Backplane,
  BackplaneGuarantees,
  BackplaneOptions,
  ClusterEventSink,
  ListenerSnapshot,
  NodeInfo,
} from './backplane.js';
import { connectNats } from './nats-connection.js';
import { StayRecord, stayEntryOf } from './nats-stays.js';

const COMMAND_TIMEOUT_MS = 5000;
/** Log entries fetched at once (in parallel) by a listener's read. */
const READ_PAGE = 128;
/** A probe that waits this long for the fan-out to catch up restarts the fan-out consumer. */
const PROBE_STALL_MS = 2000;
const CAS_ATTEMPTS = 20;

/**
 * The NATS JetStream backplane (nats-server ≥ 2.9 with JetStream). Layout (prefix `epush`, see
 * docs/backplanes.md): stream `EPUSH_<prefix>` on the one subject `epush.<prefix>.log` is the
 * event log, and its stream sequence IS the event's seq; KV buckets `EPUSH_<prefix>_live`
 * (push ID liveness, bucket max_age = TTL), `_stays` (push ID → its membership events),
 * `_members` (`<group b64>.<pushId>` → `<version>|<0|1>`), `_nodes` (max_age = node timeout).
 * The log is the truth; the KV buckets are views of it that every node keeps up to date.
 */
export class NatsBackplane implements Backplane {
  readonly kind = 'nats';
  readonly guarantees: BackplaneGuarantees = {
    multiNode: true,
    survivesNodeLoss: true,
    survivesBackplaneRestart: true,
    exactResume: true,
    summary:
      'cluster-wide ordered log in a JetStream stream (file storage); any node resumes any cursor within retention; a notification answered 202 is on disk in nats-server and survives any epush node and a nats-server restart',
  };

  private readonly servers: string;
  private readonly user: string | undefined;
  private readonly pass: string | undefined;
  private readonly stream: string;
  private readonly subject: string;
  private nc: NatsConnection | null = null;
  private js: JetStreamClient | null = null;
  private jsm: JetStreamManager | null = null;
  private live: KV | null = null;
  private staysKv: KV | null = null;
  private membersKv: KV | null = null;
  private nodesKv: KV | null = null;
  private sink: ClusterEventSink | null = null;
  private epoch = '';
  /** The last seq delivered to the sink. */
  private lastSeq = 0;
  private up = false;
  private stopped = false;
  private messages: ConsumerMessages | null = null;
  private readonly seqWaiters = new Set<{ seq: number; resolve: () => void }>();
  private sweeper: NodeJS.Timeout | null = null;
  private sweeping = false;

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
    this.subject = `epush.${prefix}.log`;
  }

  // --- EventFanout -------------------------------------------------------------------------

  async start(sink: ClusterEventSink): Promise<void> {
    this.sink = sink;
    const nc = await connectNats({
      servers: this.servers,
      ...(this.user === undefined ? {} : { user: this.user, pass: this.pass ?? '' }),
      name: `epush ${this.stream}`,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 250,
      timeout: COMMAND_TIMEOUT_MS,
    });
    this.nc = nc;
    this.js = jetstream(nc, { timeout: COMMAND_TIMEOUT_MS });
    this.jsm = await jetstreamManager(nc, { timeout: COMMAND_TIMEOUT_MS });
    const info = await this.ensureStream();
    this.epoch = epochOf(info);
    this.lastSeq = info.state.last_seq;
    await this.openBuckets();
    await this.startConsumer();
    void this.watchStatus(nc);
    this.setUp(true);
    // Expiry is checked a few times per TTL, at most every 5 s (each sweep reads the members).
    const every = Math.min(5000, Math.max(50, this.options.pushIdTtlMs / 8));
    this.sweeper = setInterval(() => {
      void this.sweep().catch(() => undefined);
    }, every);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.sink = null;
    this.up = false;
    await this.messages?.close().catch(() => undefined);
    await this.nc?.close().catch(() => undefined);
  }

  isUp(): boolean {
    return this.up;
  }

  /**
   * The probe asks JetStream for the log's head (through the same connection and stream as
   * every append) and resolves once this node's fan-out consumer has delivered up to it. A
   * consumer that died silently therefore fails the probe as soon as the log moves past it, and
   * is restarted from the last seq it delivered. The probe does not append to the log: the
   * stream sequence is the events' gap-free seq, which a probe message would punch holes in.
   */
  async probe(): Promise<void> {
    const info = await this.run(() => this.streamInfo());
    if (epochOf(info) !== this.epoch) {
      await this.resync();
      return;
    }
    const target = info.state.last_seq;
    if (this.lastSeq >= target) return;
    let timer: NodeJS.Timeout | undefined;
    const waiter = { seq: target, resolve: (): void => undefined };
    try {
      await new Promise<void>((resolve, reject) => {
        waiter.resolve = resolve;
        this.seqWaiters.add(waiter);
        timer = setTimeout(() => {
          reject(new Error(`the fan-out is stuck at seq ${this.lastSeq} (log head ${target})`));
          void this.restartConsumer();
        }, PROBE_STALL_MS);
      });
    } finally {
      clearTimeout(timer);
      this.seqWaiters.delete(waiter);
    }
  }

  private setUp(up: boolean): void {
    if (up === this.up || this.stopped) return;
    this.up = up;
    this.sink?.onAvailability(up);
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const status of nc.status()) {
      if (this.stopped) return;
      if (status.type === 'disconnect' || status.type === 'reconnecting') this.setUp(false);
      else if (status.type === 'reconnect') void this.resync();
    }
  }

  /** After a reconnect: checks the log is the same incarnation before serving again. */
  private async resync(): Promise<void> {
    try {
      const info = await this.ensureStream();
      const epoch = epochOf(info);
      if (epoch !== this.epoch) {
        // nats-server lost its store: a new log begins and every old cursor resets.
        this.epoch = epoch;
        this.lastSeq = info.state.last_seq;
        await this.restartConsumer();
        this.sink?.onGap(this.lastSeq);
      }
      await this.openBuckets();
      this.setUp(true);
    } catch {
      // JetStream may still be recovering its streams; the canary's next probe tries again.
      setTimeout(() => void this.resyncIfDown(), 250).unref();
    }
  }

  private async resyncIfDown(): Promise<void> {
    if (!this.up && !this.stopped && this.nc && !this.nc.isClosed()) await this.resync();
  }

  /**
   * An ordered consumer reads the log from the seq after the last one delivered: the library
   * recreates it (from there) when it misses heartbeats or nats-server restarts.
   */
  private async startConsumer(): Promise<void> {
    const js = this.requireJs();
    const consumer = await js.consumers.get(this.stream, {
      deliver_policy: 'by_start_sequence',
      opt_start_seq: this.lastSeq + 1,
    });
    const messages = await consumer.consume({ max_messages: 1000 });
    this.messages = messages;
    void (async () => {
      for await (const message of messages) {
        if (this.messages !== messages) break;
        this.onLogEntry(message.seq, message.data);
      }
    })().catch(() => undefined);
  }

  private async restartConsumer(): Promise<void> {
    const old = this.messages;
    this.messages = null;
    await old?.close().catch(() => undefined);
    if (!this.stopped) await this.startConsumer().catch(() => undefined);
  }

  private onLogEntry(seq: number, data: Uint8Array): void {
    if (seq <= this.lastSeq) return;
    if (seq !== this.lastSeq + 1) {
      // Removed by retention before this node read it: listeners re-read with their cursors.
      this.sink?.onGap(seq - 1);
    }
    const event = decodeEvent(seq, data);
    this.lastSeq = seq;
    this.sink?.onEvent(event);
    // Every node applies membership events to the KV views; applying is idempotent, so this
    // only writes when the appending node died before it could.
    if (event.type !== 'notification') void this.applyMembership(event).catch(() => undefined);
    for (const waiter of this.seqWaiters) if (waiter.seq <= seq) waiter.resolve();
  }

  // --- EventLogStore ------------------------------------------------------------------------

  async publish(draft: NotificationDraft): Promise<NotificationEvent> {
    const seq = await this.append(draft);
    return { ...draft, seq };
  }

  async head(): Promise<{ cursor: Cursor; seq: number }> {
    const info = await this.run(() => this.streamInfo());
    return { cursor: encodeCursor(epochOf(info), info.state.last_seq), seq: info.state.last_seq };
  }

  async readForListener(
    from: CursorPosition | null,
    pushIds: readonly PushId[],
    limit: number,
  ): Promise<ListenerSnapshot> {
    const info = await this.run(() => this.streamInfo());
    const epoch = epochOf(info);
    const head = info.state.last_seq;
    const reset = (): ListenerSnapshot => ({
      kind: 'reset',
      cursor: encodeCursor(epoch, head),
      cursorSeq: head,
    });
    if (
      from !== null &&
      (from.epoch !== epoch || from.seq < info.state.first_seq - 1 || from.seq > head)
    )
      return reset();
    // Read after the head: every membership event up to it is in the records (or in the
    // log we are about to read, whose membership events are merged in as we go).
    const records = new Map<PushId, StayRecord>();
    await this.run(() =>
      Promise.all(
        pushIds.map(async (pushId) => {
          records.set(
            pushId,
            StayRecord.parse((await this.kv('stays').get(pushId))?.string() ?? null),
          );
        }),
      ),
    );
    const wanted = new Set(pushIds);
    const wasMemberAt: MembershipAt = (group, pushId, seq) =>
      records.get(pushId)?.wasMemberAt(group, seq) ?? false;
    const deliveries: Delivery[] = [];
    let cursorSeq = from === null ? head : from.seq;
    scan: while (cursorSeq < head) {
      const events = await this.readLog(cursorSeq + 1, Math.min(head, cursorSeq + READ_PAGE));
      if (events === null) return reset();
      for (const event of events) {
        if (deliveries.length >= limit) break scan;
        cursorSeq = event.seq;
        const entry = stayEntryOf(event);
        if (entry !== null && event.type !== 'notification' && wanted.has(event.pushId))
          records.get(event.pushId)?.add(entry);
        deliveries.push(...deliveriesOf(event, pushIds, wanted, wasMemberAt));
      }
    }
    const groups = new Map<PushId, GroupName[]>();
    for (const pushId of pushIds)
      groups.set(pushId, records.get(pushId)?.groupsAt(cursorSeq) ?? []);
    return { kind: 'read', deliveries, cursor: encodeCursor(epoch, cursorSeq), cursorSeq, groups };
  }

  /** Entries `first..last` of the log, or null if one of them is gone (trimmed). */
  private async readLog(first: number, last: number): Promise<ClusterEvent[] | null> {
    const jsm = this.requireJsm();
    const seqs: number[] = [];
    for (let seq = first; seq <= last; seq++) seqs.push(seq);
    const stored = await this.run(() =>
      Promise.all(seqs.map((seq) => jsm.direct.getMessage(this.stream, { seq }))),
    );
    const events: ClusterEvent[] = [];
    for (const [i, message] of stored.entries()) {
      if (message === null || message.seq !== seqs[i]) return null;
      events.push(decodeEvent(message.seq, message.data));
    }
    return events;
  }

  // --- MembershipStore ----------------------------------------------------------------------

  async register(pushIds: readonly PushId[]): Promise<void> {
    const live = this.kv('live');
    await this.run(() => Promise.all(pushIds.map((pushId) => live.put(pushId, ''))));
  }

  /**
   * The live bucket's max_age is the TTL, so nats-server itself forgets a push ID nobody
   * touched; a touch re-writes the key only if it still exists (compare-and-set on its
   * revision), so an expired push ID never comes back.
   */
  async touch(pushIds: readonly PushId[]): Promise<PushId[]> {
    const live = this.kv('live');
    const expired = await this.run(() =>
      Promise.all(
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
      ),
    );
    return expired.filter((pushId): pushId is PushId => pushId !== null);
  }

  async addMember(group: GroupName, pushId: PushId): Promise<void> {
    if (!(await this.isLive(pushId))) {
      throw new EpushError(
        'push_id_not_found',
        `Push ID ${pushId} is unknown or expired; mint a new one with POST /api/push-ids.`,
      );
    }
    if ((await this.record(pushId)).isOpen(group)) return;
    const seq = await this.append({ type: 'member-added', group, pushId });
    await this.run(() => this.applyMembership({ type: 'member-added', group, pushId, seq }));
  }

  async removeMember(group: GroupName, pushId: PushId): Promise<void> {
    if (!(await this.record(pushId)).isOpen(group)) return;
    const seq = await this.append({ type: 'member-removed', group, pushId });
    await this.run(() => this.applyMembership({ type: 'member-removed', group, pushId, seq }));
  }

  async members(group: GroupName): Promise<PushId[]> {
    const entries = await this.run(() => this.scanMembers(`${groupKey(group)}.*`));
    return entries.filter((m) => m.open).map((m) => m.pushId);
  }

  async isLive(pushId: PushId): Promise<boolean> {
    return (await this.run(() => this.kv('live').get(pushId)))?.operation === 'PUT';
  }

  // --- ClusterDirectory ---------------------------------------------------------------------

  async heartbeat(node: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    await this.run(() => this.kv('nodes').put(node.id, JSON.stringify(node)));
  }

  async nodes(): Promise<NodeInfo[]> {
    const nodesKv = this.kv('nodes');
    return this.run(async () => {
      const ids = new Set<string>(); // a key rewritten during the listing can come twice
      for await (const id of await nodesKv.keys()) ids.add(id);
      const nodes: NodeInfo[] = [];
      for (const entry of await Promise.all([...ids].map((id) => nodesKv.get(id)))) {
        // The bucket's max_age drops a silent node; the age check covers the server's timer lag.
        if (entry?.operation !== 'PUT') continue;
        if (Date.now() - entry.created.getTime() > this.options.nodeTimeoutMs) continue;
        const info = entry.json<Omit<NodeInfo, 'lastSeen'>>();
        nodes.push({ ...info, lastSeen: entry.created.toISOString() });
      }
      return nodes;
    });
  }

  async leave(nodeId: string): Promise<void> {
    await this.run(() => this.kv('nodes').purge(nodeId));
  }

  // --- internals ----------------------------------------------------------------------------

  /** Appends one event to the log; the stream sequence JetStream assigns is its seq. */
  private async append(draft: EventDraft): Promise<number> {
    const js = this.requireJs();
    const ack = await this.run(() =>
      js.publish(this.subject, JSON.stringify(draft), { timeout: COMMAND_TIMEOUT_MS }),
    );
    return ack.seq;
  }

  private async record(pushId: PushId): Promise<StayRecord> {
    const entry = await this.run(() => this.kv('stays').get(pushId));
    return StayRecord.parse(entry?.string() ?? null);
  }

  /**
   * Merges one membership event into the `stays` record of its push ID (a set union, retried on
   * a concurrent write) and, when it was new there, brings the `members` keys of the groups it
   * touches up to the record's state.
   */
  private async applyMembership(event: ClusterEvent): Promise<void> {
    if (event.type === 'notification') return;
    const entry = stayEntryOf(event);
    if (entry === null) return;
    const stays = this.kv('stays');
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await stays.get(event.pushId);
      const record = StayRecord.parse(current?.operation === 'PUT' ? current.string() : null);
      if (!record.add(entry)) return;
      try {
        if (current === null) await stays.create(event.pushId, record.toJson());
        else await stays.update(event.pushId, record.toJson(), current.revision);
      } catch {
        continue; // another node wrote first: merge again
      }
      const groups = event.type === 'push-id-expired' ? record.groups() : [event.group];
      for (const group of groups) await this.writeMember(group, event.pushId, record);
      return;
    }
    throw new Error(`could not record ${event.type} ${event.seq} for ${event.pushId}`);
  }

  /** A members key only moves forward: a lower version never overwrites a higher one. */
  private async writeMember(group: GroupName, pushId: PushId, record: StayRecord): Promise<void> {
    const members = this.kv('members');
    const key = `${groupKey(group)}.${pushId}`;
    const { open, version } = record.memberState(group);
    const value = `${version}|${open ? 1 : 0}`;
    for (let attempt = 0; attempt < CAS_ATTEMPTS; attempt++) {
      const current = await members.get(key);
      try {
        if (current === null) await members.create(key, value);
        else if (Number(current.string().split('|')[0]) >= version) return;
        else await members.update(key, value, current.revision);
        return;
      } catch {
        continue;
      }
    }
  }

  private async scanMembers(
    filter: string,
  ): Promise<{ key: string; pushId: PushId; open: boolean; created: Date; revision: number }[]> {
    const members = this.kv('members');
    const out: { key: string; pushId: PushId; open: boolean; created: Date; revision: number }[] =
      [];
    // A key written while the listing runs (every node applies membership events) can be
    // listed twice.
    const keys = new Set<string>();
    for await (const key of await members.keys(filter)) keys.add(key);
    await Promise.all(
      [...keys].map(async (key) => {
        const entry = await members.get(key);
        if (entry?.operation !== 'PUT') return;
        out.push({
          key,
          pushId: key.slice(key.indexOf('.') + 1) as PushId,
          open: entry.string().endsWith('|1'),
          created: entry.created,
          revision: entry.revision,
        });
      }),
    );
    return out;
  }

  /**
   * Expiry: a push ID in a group whose live key nats-server has dropped leaves every group
   * (one push-id-expired event). Every node sweeps; the stays record's expiry mark makes a
   * repeat rare, and applying a repeat changes nothing. Closed members keys older than the
   * retention window are deleted.
   */
  private async sweep(): Promise<void> {
    if (!this.up || this.sweeping) return;
    this.sweeping = true;
    try {
      const entries = await this.scanMembers('>');
      const candidates = new Set<PushId>();
      for (const member of entries) {
        if (member.open) candidates.add(member.pushId);
        else if (Date.now() - member.created.getTime() > this.options.retentionMs)
          await this.kv('members')
            .delete(member.key, { previousSeq: member.revision })
            .catch(() => undefined);
      }
      for (const pushId of candidates) {
        if (await this.isLive(pushId)) continue;
        const record = await this.record(pushId);
        if (record.expired || record.openGroups().length === 0) continue;
        const seq = await this.append({ type: 'push-id-expired', pushId });
        await this.applyMembership({ type: 'push-id-expired', pushId, seq });
      }
    } finally {
      this.sweeping = false;
    }
  }

  private async ensureStream(): Promise<StreamInfo> {
    const jsm = this.requireJsm();
    try {
      return await jsm.streams.info(this.stream);
    } catch (error) {
      if (!/stream not found/i.test((error as Error).message)) throw error;
    }
    const maxAgeNs = this.options.retentionMs * 1_000_000;
    return jsm.streams.add({
      name: this.stream,
      subjects: [this.subject],
      storage: 'file',
      retention: 'limits',
      discard: 'old',
      max_age: maxAgeNs,
      max_bytes: this.options.maxLogBytes,
      // The dedup window may not exceed max_age (we use no message ids anyway).
      duplicate_window: Math.min(maxAgeNs, 120_000_000_000),
      allow_direct: true,
      num_replicas: 1,
    });
  }

  private streamInfo(): Promise<StreamInfo> {
    return this.requireJsm().streams.info(this.stream);
  }

  private async openBuckets(): Promise<void> {
    const kvm = new Kvm(this.requireJs());
    const bucket = (suffix: string, ttl: number): Promise<KV> =>
      kvm.create(`${this.stream}_${suffix}`, { history: 1, storage: 'file', ttl });
    this.live = await bucket('live', this.options.pushIdTtlMs);
    this.staysKv = await bucket('stays', 0);
    this.membersKv = await bucket('members', 0);
    this.nodesKv = await bucket('nodes', this.options.nodeTimeoutMs);
  }

  private kv(name: 'live' | 'stays' | 'members' | 'nodes'): KV {
    const kv = {
      live: this.live,
      stays: this.staysKv,
      members: this.membersKv,
      nodes: this.nodesKv,
    }[name];
    if (kv === null) throw unavailable('not started');
    return kv;
  }

  private requireJs(): JetStreamClient {
    if (this.js === null) throw unavailable('not started');
    return this.js;
  }

  private requireJsm(): JetStreamManager {
    if (this.jsm === null) throw unavailable('not started');
    return this.jsm;
  }

  /**
   * Runs a command, failing fast while NATS is away (the client would otherwise buffer it until
   * the reconnect and answer late): the API answers 503, never a late 202.
   */
  private async run<T>(command: () => Promise<T>): Promise<T> {
    if (!this.up) throw unavailable('disconnected');
    try {
      return await command();
    } catch (error) {
      if (error instanceof EpushError) throw error;
      throw unavailable((error as Error).message);
    }
  }
}

function unavailable(reason: string): EpushError {
  return new EpushError(
    'backplane_unavailable',
    `NATS JetStream is unreachable (${reason}); try again shortly.`,
    { 'retry-after': '1' },
  );
}

/**
 * The log's incarnation: the stream's creation time in nanoseconds, base 36. A stream that
 * nats-server lost and we recreated has another, so old cursors are answered with reset.
 */
function epochOf(info: StreamInfo): string {
  const match = /^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?(.*)$/.exec(info.created);
  const seconds = BigInt(
    Math.floor(Date.parse(`${match?.[1] ?? info.created}${match?.[3] ?? ''}`) / 1000),
  );
  const nanos = BigInt((match?.[2] ?? '').padEnd(9, '0').slice(0, 9));
  return (seconds * 1_000_000_000n + nanos).toString(36);
}

/** Group names may hold `:`, `~` and `.`, which KV keys cannot (`.` separates tokens). */
function groupKey(group: GroupName): string {
  return Buffer.from(group).toString('base64url');
}

function decodeEvent(seq: number, data: Uint8Array): ClusterEvent {
  const event = {
    ...(JSON.parse(new TextDecoder().decode(data)) as EventDraft),
    seq,
  } as ClusterEvent;
  switch (event.type) {
    case 'notification':
    case 'member-added':
    case 'member-removed':
    case 'push-id-expired':
      return event;
    default:
      return assertNever(event);
  }
}
