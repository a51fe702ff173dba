import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
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
import { RedisLiveness } from './redis-liveness.js';
import * as scripts from './redis-scripts.js';

const EXPIRE_BATCH = 500;
const COMMAND_TIMEOUT_MS = 5000;
/** Canary messages share the events channel (so they take the events' path) but not its format. */
const PROBE_PREFIX = 'probe|';
const READ_PAGE = 1000;

type ScriptName =
  | 'epPublish'
  | 'epAddMember'
  | 'epRemoveMember'
  | 'epExpire'
  | 'epTouch'
  | 'epRegister'
  | 'epSnapshot'
  | 'epTrim'
  | 'epHeartbeat'
  | 'epNodes';

/** Commands defined from the Lua scripts (ioredis `defineCommand` adds them at run time). */
type ScriptedRedis = Redis & Record<ScriptName, (...args: (string | number)[]) => Promise<unknown>>;

/** One stay of a push ID in a group, parsed from "joined,left" ("joined," while open). */
interface Stay {
  readonly joined: number;
  readonly left: number;
}

/**
 * The Redis backplane (standalone Redis ≥ 6.2; Redis Cluster works too since every key shares
 * the `{epush}` hash tag). Layout (prefix `{epush}:` by default, see docs/backplanes.md):
 * `epoch`, `seq` (INCR), `log` (a stream of events with ids `<seq>-0`), channel `events`
 * (PUBLISH of every event), `live` (zset push ID → expiry ms), `g:<group>` (set of members),
 * `s:<pushId>` (hash group → stays), `nodes` (hash node id → "at|json").
 */
export class RedisBackplane implements Backplane {
  readonly kind = 'redis';
  readonly guarantees: BackplaneGuarantees = {
    multiNode: true,
    survivesNodeLoss: true,
    survivesBackplaneRestart: false,
    exactResume: true,
    summary:
      'cluster-wide ordered log in a Redis stream; any node resumes any cursor within retention; a notification answered 202 survives any epush node; it survives a Redis restart only if Redis persists (appendonly yes, appendfsync always)',
  };

  private readonly commands: ScriptedRedis;
  private readonly subscriber: Redis;
  /** Drops a connection that stopped answering without closing (see redis-liveness.ts). */
  private readonly liveness: RedisLiveness[];
  private readonly prefix: string;
  private readonly epochCandidate = randomBytes(6).readUIntBE(0, 6).toString(36);
  private readonly maxLen: number;
  private sink: ClusterEventSink | null = null;
  private epoch = '';
  private lastSeq = 0;
  private up = false;
  private commandsReady = false;
  private subscriberReady = false;
  /** Messages that arrived while a catch-up read was in flight, applied after it. */
  private pending: { epoch: string; event: ClusterEvent }[] | null = null;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly probes = new Map<string, () => void>();
  private probeCounter = 0;

  constructor(
    url: string,
    private readonly options: BackplaneOptions,
  ) {
    const parsed = new URL(url);
    this.prefix = parsed.searchParams.get('prefix') ?? '{epush}:';
    parsed.searchParams.delete('prefix');
    const redisOptions: RedisOptions = {
      // Fail fast instead of queueing while Redis is away: the API answers 503, never a late 202.
      enableOfflineQueue: false,
      // A command cut off by a lost connection fails (503) and is never sent again by ioredis:
      // an append that Redis had already executed, sent twice, was stored twice and delivered
      // twice (seen in the failover test during a Redis restart).
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // A connection that stays open but stops answering must not hold requests forever.
      commandTimeout: COMMAND_TIMEOUT_MS,
      // Reconnect soon: every listener and publisher of this node waits for it.
      retryStrategy: (times) => Math.min(50 * times, 500),
      // A Redis still loading its AOF answers ioredis's ready check with an ETA rounded up to
      // a whole second; ask again every 100 ms instead (this alone made a node's recovery after
      // a Redis restart vary from 18 ms to 1 s).
      maxLoadingRetryTime: 100,
      lazyConnect: true,
    };
    this.commands = new Redis(parsed.toString(), redisOptions) as ScriptedRedis;
    this.subscriber = new Redis(parsed.toString(), { ...redisOptions, enableOfflineQueue: true });
    this.liveness = [new RedisLiveness(this.commands), new RedisLiveness(this.subscriber)];
    for (const [name, lua, keys] of [
      ['epPublish', scripts.PUBLISH, 4],
      ['epAddMember', scripts.ADD_MEMBER, 7],
      ['epRemoveMember', scripts.REMOVE_MEMBER, 6],
      ['epExpire', scripts.EXPIRE, 5],
      ['epTouch', scripts.TOUCH, 1],
      ['epRegister', scripts.REGISTER, 1],
      ['epSnapshot', scripts.SNAPSHOT, 3],
      ['epTrim', scripts.TRIM, 1],
      ['epHeartbeat', scripts.HEARTBEAT, 1],
      ['epNodes', scripts.NODES, 1],
    ] as const) {
      this.commands.defineCommand(name, { lua, numberOfKeys: keys });
    }
    // Roughly bytes → entries; the time window (TRIM) is the real bound in normal operation.
    this.maxLen = Math.max(10_000, Math.floor(options.maxLogBytes / 256));
  }

  private key(name: string): string {
    return this.prefix + name;
  }

  private get appendKeys(): string[] {
    return [this.key('epoch'), this.key('seq'), this.key('log'), this.key('events')];
  }

  private get appendArgs(): (string | number)[] {
    return [this.epochCandidate, this.maxLen];
  }

  // --- EventFanout -------------------------------------------------------------------------

  async start(sink: ClusterEventSink): Promise<void> {
    this.sink = sink;
    this.commands.on('ready', () => {
      this.commandsReady = true;
      this.updateAvailability();
    });
    this.commands.on('close', () => {
      this.commandsReady = false;
      this.updateAvailability();
    });
    this.subscriber.on('ready', () => {
      this.subscriberReady = true;
      // Whatever was published while this node was cut off is read back from the log.
      void this.catchUp();
      this.updateAvailability();
    });
    this.subscriber.on('close', () => {
      this.subscriberReady = false;
      this.updateAvailability();
    });
    this.subscriber.on('message', (_channel: string, message: string) => {
      this.onMessage(message);
    });
    this.commands.on('error', () => undefined); // reported through availability
    this.subscriber.on('error', () => undefined);
    await this.commands.connect();
    const head = await this.head();
    this.epoch = head.cursor.slice(0, head.cursor.indexOf('-'));
    this.lastSeq = head.seq;
    await this.subscriber.connect();
    await this.subscriber.subscribe(this.key('events'));
    for (const watch of this.liveness) watch.start();
    // Expiry and retention are checked a few times per TTL or window, at most once a second.
    const every = Math.min(
      1000,
      Math.max(50, Math.min(this.options.pushIdTtlMs, this.options.retentionMs) / 8),
    );
    this.sweeper = setInterval(() => {
      void this.sweep().catch(() => undefined);
    }, every);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    this.sink = null;
    for (const watch of this.liveness) watch.stop();
    this.subscriber.disconnect();
    this.commands.disconnect();
    return Promise.resolve();
  }

  isUp(): boolean {
    return this.up;
  }

  private updateAvailability(): void {
    const up = this.commandsReady && this.subscriberReady;
    if (up === this.up) return;
    this.up = up;
    this.sink?.onAvailability(up);
  }

  async probe(): Promise<void> {
    const token = `${this.epochCandidate}.${++this.probeCounter}`;
    const returned = new Promise<void>((resolve) => this.probes.set(token, resolve));
    try {
      await this.run(() => this.commands.publish(this.key('events'), `${PROBE_PREFIX}${token}`));
      await returned;
    } finally {
      this.probes.delete(token);
    }
  }

  private onMessage(message: string): void {
    if (message.startsWith(PROBE_PREFIX)) {
      // Every node sees every probe; only the sender waits for its own.
      this.probes.get(message.slice(PROBE_PREFIX.length))?.();
      return;
    }
    const bar = message.indexOf('|');
    const epoch = message.slice(0, bar);
    const event = decodeEvent(message.slice(bar + 1));
    if (this.pending) {
      this.pending.push({ epoch, event });
      return;
    }
    this.deliver(epoch, event);
  }

  private deliver(epoch: string, event: ClusterEvent): void {
    if (epoch !== this.epoch) {
      // Redis lost its log (restart without persistence): a new epoch begins. Old cursors reset.
      this.epoch = epoch;
      this.lastSeq = event.seq - 1;
      this.sink?.onGap(event.seq - 1);
    }
    if (event.seq <= this.lastSeq) return;
    if (event.seq !== this.lastSeq + 1) {
      this.pending = [{ epoch, event }];
      void this.catchUp();
      return;
    }
    this.lastSeq = event.seq;
    this.sink?.onEvent(event);
  }

  /** Reads events after `lastSeq` from the stream, in order, then what arrived meanwhile. */
  private async catchUp(): Promise<void> {
    this.pending ??= [];
    try {
      const head = await this.head();
      const epoch = head.cursor.slice(0, head.cursor.indexOf('-'));
      if (epoch !== this.epoch) {
        this.epoch = epoch;
        this.lastSeq = head.seq;
        this.sink?.onGap(head.seq);
      } else if (head.seq > this.lastSeq) {
        let after = this.lastSeq;
        while (after < head.seq) {
          const entries = await this.readLog(after, head.seq, READ_PAGE);
          if (entries.length === 0 || entries[0]?.seq !== after + 1) {
            // Trimmed before we could read it: listeners go back to the log with their cursors.
            this.lastSeq = head.seq;
            this.sink?.onGap(head.seq);
            break;
          }
          for (const event of entries) {
            this.lastSeq = event.seq;
            this.sink?.onEvent(event);
          }
          after = this.lastSeq;
        }
      }
    } catch {
      // Redis went away again; the next 'ready' retries.
    } finally {
      const queued = this.pending;
      this.pending = null;
      for (const { epoch, event } of queued) this.deliver(epoch, event);
    }
  }

  private async readLog(
    afterSeq: number,
    untilSeq: number,
    count: number,
  ): Promise<ClusterEvent[]> {
    // A timeout or a lost connection here is the backplane's (503), not the node's (500).
    const entries = (await this.run(() =>
      this.commands.xrange(this.key('log'), `${afterSeq + 1}-0`, `${untilSeq}-0`, 'COUNT', count),
    )) as [string, string[]][];
    return entries.map(([, fields]) => decodeEvent(fields[1] ?? '{}'));
  }

  // --- EventLogStore ------------------------------------------------------------------------

  async publish(draft: NotificationDraft): Promise<NotificationEvent> {
    const seq = await this.run(() =>
      this.commands.epPublish(...this.appendKeys, ...this.appendArgs, encodeDraft(draft)),
    );
    return { ...draft, seq: Number(seq) };
  }

  async head(): Promise<{ cursor: Cursor; seq: number }> {
    const [epoch, head] = await this.snapshot([]);
    return { cursor: encodeCursor(epoch, head), seq: head };
  }

  private async snapshot(
    pushIds: readonly PushId[],
  ): Promise<[string, number, number, string[][]]> {
    const result = (await this.run(() =>
      this.commands.epSnapshot(
        this.key('epoch'),
        this.key('seq'),
        this.key('log'),
        this.epochCandidate,
        this.prefix,
        ...pushIds,
      ),
    )) as [string, number, number, string[][]];
    return result;
  }

  async readForListener(
    from: CursorPosition | null,
    pushIds: readonly PushId[],
    limit: number,
  ): Promise<ListenerSnapshot> {
    const [epoch, head, firstSeq, rawStays] = await this.snapshot(pushIds);
    const stays = new Map<PushId, Map<GroupName, Stay[]>>();
    pushIds.forEach((pushId, i) => stays.set(pushId, parseStays(rawStays[i] ?? [])));
    const reset = (): ListenerSnapshot => ({
      kind: 'reset',
      cursor: encodeCursor(epoch, head),
      cursorSeq: head,
    });
    if (from !== null && (from.epoch !== epoch || from.seq < firstSeq - 1 || from.seq > head))
      return reset();
    const deliveries: Delivery[] = [];
    let cursorSeq = from === null ? head : from.seq;
    const wanted = new Set(pushIds);
    const wasMemberAt: MembershipAt = (group, pushId, seq) =>
      stays
        .get(pushId)
        ?.get(group)
        ?.some((stay) => stay.joined < seq && seq < stay.left) ?? false;
    scan: while (cursorSeq < head) {
      const events = await this.readLog(cursorSeq, head, READ_PAGE);
      if (events.length === 0 || events[0]?.seq !== cursorSeq + 1) return reset();
      for (const event of events) {
        if (deliveries.length >= limit) break scan;
        cursorSeq = event.seq;
        deliveries.push(...deliveriesOf(event, pushIds, wanted, wasMemberAt));
      }
    }
    const groups = new Map<PushId, GroupName[]>();
    for (const pushId of pushIds) {
      const current: GroupName[] = [];
      for (const [group, list] of stays.get(pushId) ?? []) {
        if (list.some((s) => s.joined <= cursorSeq && cursorSeq < s.left)) current.push(group);
      }
      groups.set(pushId, current);
    }
    return { kind: 'read', deliveries, cursor: encodeCursor(epoch, cursorSeq), cursorSeq, groups };
  }

  // --- MembershipStore ----------------------------------------------------------------------

  async register(pushIds: readonly PushId[]): Promise<void> {
    await this.run(() =>
      this.commands.epRegister(this.key('live'), this.options.pushIdTtlMs, ...pushIds),
    );
  }

  async touch(pushIds: readonly PushId[]): Promise<PushId[]> {
    if (pushIds.length === 0) return [];
    return (await this.run(() =>
      this.commands.epTouch(this.key('live'), this.options.pushIdTtlMs, ...pushIds),
    )) as PushId[];
  }

  async addMember(group: GroupName, pushId: PushId): Promise<void> {
    const result = await this.run(() =>
      this.commands.epAddMember(
        ...this.appendKeys,
        this.key('live'),
        this.key(`g:${group}`),
        this.key(`s:${pushId}`),
        ...this.appendArgs,
        pushId,
        group,
        encodeDraft({ type: 'member-added', group, pushId }),
      ),
    );
    if (Number(result) === -1) {
      throw new EpushError(
        'push_id_not_found',
        `Push ID ${pushId} is unknown or expired; mint a new one with POST /api/push-ids.`,
      );
    }
  }

  async removeMember(group: GroupName, pushId: PushId): Promise<void> {
    await this.run(() =>
      this.commands.epRemoveMember(
        ...this.appendKeys,
        this.key(`g:${group}`),
        this.key(`s:${pushId}`),
        ...this.appendArgs,
        pushId,
        group,
        encodeDraft({ type: 'member-removed', group, pushId }),
      ),
    );
  }

  async members(group: GroupName): Promise<PushId[]> {
    return (await this.run(() => this.commands.smembers(this.key(`g:${group}`)))) as PushId[];
  }

  async isLive(pushId: PushId): Promise<boolean> {
    const [expires, time] = (await this.run(() =>
      this.commands.multi().zscore(this.key('live'), pushId).time().exec(),
    )) as [[Error | null, string | null], [Error | null, [string, string]]];
    if (expires[1] === null) return false;
    const [seconds, micros] = time[1];
    return Number(expires[1]) > Number(seconds) * 1000 + Math.floor(Number(micros) / 1000);
  }

  // --- ClusterDirectory ---------------------------------------------------------------------

  async heartbeat(node: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    await this.run(() =>
      this.commands.epHeartbeat(this.key('nodes'), node.id, JSON.stringify(node)),
    );
  }

  async nodes(): Promise<NodeInfo[]> {
    const flat = (await this.run(() =>
      this.commands.epNodes(this.key('nodes'), this.options.nodeTimeoutMs),
    )) as string[];
    const nodes: NodeInfo[] = [];
    for (let i = 0; i < flat.length; i += 2) {
      const value = flat[i + 1] ?? '';
      const bar = value.indexOf('|');
      const info = JSON.parse(value.slice(bar + 1)) as Omit<NodeInfo, 'lastSeen'>;
      nodes.push({ ...info, lastSeen: new Date(Number(value.slice(0, bar))).toISOString() });
    }
    return nodes;
  }

  async leave(nodeId: string): Promise<void> {
    await this.run(() => this.commands.hdel(this.key('nodes'), nodeId));
  }

  // --- internals ----------------------------------------------------------------------------

  /** Expiry and retention; every node runs it, the scripts make repeats harmless. */
  private async sweep(): Promise<void> {
    if (!this.up) return;
    let expired = EXPIRE_BATCH;
    while (expired === EXPIRE_BATCH) {
      expired = Number(
        await this.commands.epExpire(
          ...this.appendKeys,
          this.key('live'),
          ...this.appendArgs,
          this.prefix,
          EXPIRE_BATCH,
          this.options.retentionMs,
        ),
      );
    }
    await this.commands.epTrim(this.key('log'), this.options.retentionMs);
  }

  /** Runs a command; a connection failure becomes `backplane_unavailable` (503). */
  private async run<T>(command: () => Promise<T>): Promise<T> {
    try {
      return await command();
    } catch (error) {
      if (error instanceof EpushError) throw error;
      throw new EpushError(
        'backplane_unavailable',
        `Redis is unreachable (${(error as Error).message}); try again shortly.`,
        {
          'retry-after': '1',
        },
      );
    }
  }
}

function encodeDraft(draft: EventDraft): string {
  return JSON.stringify(draft);
}

function decodeEvent(json: string): ClusterEvent {
  const event = JSON.parse(json) as ClusterEvent;
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

/** HGETALL of `s:<pushId>` (flat [group, stays, …]) → group → stays. */
function parseStays(flat: string[]): Map<GroupName, Stay[]> {
  const out = new Map<GroupName, Stay[]>();
  for (let i = 0; i < flat.length; i += 2) {
    const list: Stay[] = [];
    for (const stay of (flat[i + 1] ?? '').split(';')) {
      if (stay === '') continue;
      const [joined, left] = stay.split(',');
      list.push({
        joined: Number(joined),
        left: left === undefined || left === '' ? Infinity : Number(left),
      });
    }
    out.set(flat[i] as GroupName, list);
  }
  return out;
}
