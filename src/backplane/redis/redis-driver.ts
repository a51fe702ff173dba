import { randomBytes } from 'node:crypto';
import { Redis, type RedisOptions } from 'ioredis';
import type { EventDraft, NotificationId } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import { MembershipHistory } from '../../core/membership-history.js';
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
  PresenceEntry,
  PresenceWrite,
  StampedDraft,
} from '../driver.js';
import { CALL_TIMEOUT_MS } from '../protocol/backplane-call.js';
import { encodeDraft } from '../protocol/event-codec.js';
import { RedisPresence } from './redis-presence.js';
import * as scripts from './redis-scripts.js';
import { RedisLiveness } from './redis-liveness.js';
import { pushIdsOf, readBeats, readHead } from './redis-replies.js';

/** Probes share the events channel (so they take the events' path) but not its format. */
const PROBE_PREFIX = 'probe|';
/** The seq at the start of an event as the PUBLISH script writes it: `{"seq":N,…`. */
const EVENT_SEQ = /^\{"seq":(\d{1,15}),/;

const SCRIPTS = {
  epPublish: [scripts.PUBLISH, 4],
  epAppendOnce: [scripts.APPEND_ONCE, 5],
  epAddMember: [scripts.ADD_MEMBER, 7],
  epRemoveMember: [scripts.REMOVE_MEMBER, 6],
  epExpire: [scripts.EXPIRE, 5],
  epDue: [scripts.DUE, 1],
  epTouch: [scripts.TOUCH, 1],
  epRegister: [scripts.REGISTER, 1],
  epLive: [scripts.LIVE, 1],
  epHead: [scripts.HEAD, 3],
  epTrim: [scripts.TRIM, 1],
  epHeartbeat: [scripts.HEARTBEAT, 1],
  epBeats: [scripts.BEATS, 1],
} as const;

/** Commands defined from the Lua scripts (ioredis `defineCommand` adds them at run time). */
type ScriptedRedis = Redis &
  Record<keyof typeof SCRIPTS, (...args: (string | number)[]) => Promise<unknown>>;

export const REDIS_GUARANTEES: BackplaneGuarantees = {
  multiNode: true,
  survivesNodeLoss: true,
  survivesBackplaneRestart: false,
  exactResume: true,
  summary:
    'cluster-wide ordered log in a Redis stream; any node resumes any cursor within retention; a notification answered 202 survives any epush node; it survives a Redis restart only if Redis persists (appendonly yes, appendfsync always)',
};

/**
 * The Redis driver (standalone Redis ≥ 6.2; Redis Cluster works too since every key shares the
 * `{epush}` hash tag). Every change is one Lua script, so an event's seq, its place in the log
 * stream, its publication and the membership it changes are one atomic step. Layout (prefix
 * `{epush}:` by default, see docs/backplanes.md): `epoch`, `seq` (INCR), `log` (a stream of
 * events with ids `<seq>-0`), channel `events` (PUBLISH of every event), `live` (zset push ID →
 * expiry ms), `g:<group>` (set of members), `s:<pushId>` (hash group → stays), `nodes`.
 */
export class RedisDriver implements BackplaneDriver {
  readonly kind = 'redis';
  readonly vendor = 'Redis';
  readonly guarantees = REDIS_GUARANTEES;

  private readonly commands: ScriptedRedis;
  private readonly subscriber: Redis;
  /** Drops a connection that stopped answering without closing (see redis-liveness.ts). */
  private readonly liveness: RedisLiveness[];
  private readonly prefix: string;
  private readonly epochCandidate = randomBytes(6).readUIntBE(0, 6).toString(36);
  private readonly maxLen: number;
  private commandsReady = false;
  private subscriberReady = false;
  private link: DriverLink | null = null;
  private readonly presence: RedisPresence;

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
      // The protocol answers 503 after CALL_TIMEOUT_MS; this frees ioredis's side of it too.
      commandTimeout: CALL_TIMEOUT_MS,
      // Reconnect soon: every listener and publisher of this node waits for it.
      retryStrategy: (times) => Math.min(50 * times, 500),
      // A Redis still loading its AOF answers ioredis's ready check with an ETA rounded up to
      // a whole second; ask again every 100 ms instead.
      maxLoadingRetryTime: 100,
      lazyConnect: true,
    };
    this.commands = new Redis(parsed.toString(), redisOptions) as ScriptedRedis;
    this.subscriber = new Redis(parsed.toString(), { ...redisOptions, enableOfflineQueue: true });
    this.liveness = [new RedisLiveness(this.commands), new RedisLiveness(this.subscriber)];
    for (const [name, [lua, keys]] of Object.entries(SCRIPTS)) {
      this.commands.defineCommand(name, { lua, numberOfKeys: keys });
    }
    this.presence = new RedisPresence(this.commands, this.prefix);
    // Roughly bytes → entries; the time window (TRIM) is the real bound in normal operation.
    this.maxLen = Math.max(10_000, Math.floor(options.maxLogBytes / 256));
  }

  private key(name: string): string {
    return this.prefix + name;
  }

  private appendKeys(): string[] {
    return [this.key('epoch'), this.key('seq'), this.key('log'), this.key('events')];
  }

  private appendArgs(): (string | number)[] {
    return [this.epochCandidate, this.maxLen];
  }

  // --- connection ---------------------------------------------------------------------------

  async connect(link: DriverLink): Promise<void> {
    this.link = link;
    const update = (): void => {
      link.link(this.isUp());
    };
    this.commands.on('ready', () => {
      this.commandsReady = true;
      update();
    });
    this.commands.on('close', () => {
      this.commandsReady = false;
      update();
    });
    this.subscriber.on('ready', () => {
      this.subscriberReady = true;
      update();
    });
    this.subscriber.on('close', () => {
      this.subscriberReady = false;
      update();
    });
    this.subscriber.on('message', (_channel: string, message: string) => {
      this.onMessage(message);
    });
    this.commands.on('error', () => undefined); // reported through the link
    this.subscriber.on('error', () => undefined);
    await this.commands.connect();
    await this.subscriber.connect();
    await this.subscriber.subscribe(this.key('events'));
    for (const watch of this.liveness) watch.start();
  }

  close(): Promise<void> {
    this.link = null;
    for (const watch of this.liveness) watch.stop();
    this.subscriber.disconnect();
    this.commands.disconnect();
    return Promise.resolve();
  }

  isUp(): boolean {
    return this.commandsReady && this.subscriberReady;
  }

  private onMessage(message: string): void {
    if (message.startsWith(PROBE_PREFIX)) {
      this.link?.probe(message.slice(PROBE_PREFIX.length));
      return;
    }
    const bar = message.indexOf('|');
    const body = message.slice(bar + 1);
    const seq = EVENT_SEQ.exec(body)?.[1];
    if (bar < 1 || seq === undefined) return; // not ours
    this.link?.entry(message.slice(0, bar), { seq: Number(seq), body });
  }

  async sendProbe(token: string): Promise<void> {
    await this.commands.publish(this.key('events'), `${PROBE_PREFIX}${token}`);
  }

  // --- the log ------------------------------------------------------------------------------

  async head(): Promise<LogHead> {
    const reply = await this.commands.epHead(
      this.key('epoch'),
      this.key('seq'),
      this.key('log'),
      this.epochCandidate,
    );
    return readHead(reply);
  }

  async append(draft: EventDraft): Promise<number> {
    return Number(
      await this.commands.epPublish(...this.appendKeys(), ...this.appendArgs(), encodeDraft(draft)),
    );
  }

  /** One script: the key's check, the append and the key's record (TTL = retention). */
  async appendOnce(draft: StampedDraft, retentionMs: number): Promise<AppendOnceOutcome> {
    const reply = await this.commands.epAppendOnce(
      ...this.appendKeys(),
      this.key(`i:${draft.idem.key}`),
      ...this.appendArgs(),
      encodeDraft(draft),
      Math.max(1, Math.ceil(retentionMs)),
      `${draft.id} ${draft.idem.fingerprint}`,
    );
    const [seq, record] = Array.isArray(reply) ? (reply as unknown[]) : [];
    if (Number(seq) > 0) return { kind: 'appended', seq: Number(seq) };
    const [id = '', fingerprint = ''] = typeof record === 'string' ? record.split(' ') : [];
    return { kind: 'seen', record: { id: id as NotificationId, fingerprint } };
  }

  async read(first: number, last: number): Promise<LogEntry[]> {
    const entries = await this.commands.xrange(
      this.key('log'),
      `${first}-0`,
      `${last}-0`,
      'COUNT',
      last - first + 1,
    );
    const out: LogEntry[] = [];
    for (const [id, fields] of entries) {
      const at = fields.indexOf('e');
      const body = at >= 0 ? fields[at + 1] : undefined;
      if (body !== undefined) out.push({ seq: parseInt(id, 10), body });
    }
    return out;
  }

  async trim(retentionMs: number): Promise<void> {
    await this.commands.epTrim(this.key('log'), retentionMs);
  }

  // --- membership ---------------------------------------------------------------------------

  async change(change: MembershipChange): Promise<ChangeOutcome> {
    const { pushId } = change;
    let result: unknown;
    switch (change.type) {
      case 'member-added':
        result = await this.commands.epAddMember(
          ...this.appendKeys(),
          this.key('live'),
          this.key(`g:${change.group}`),
          this.key(`s:${pushId}`),
          ...this.appendArgs(),
          pushId,
          change.group,
          encodeDraft(change),
        );
        break;
      case 'member-removed':
        result = await this.commands.epRemoveMember(
          ...this.appendKeys(),
          this.key(`g:${change.group}`),
          this.key(`s:${pushId}`),
          ...this.appendArgs(),
          pushId,
          change.group,
          encodeDraft(change),
        );
        break;
      case 'push-id-expired':
        result = await this.commands.epExpire(
          ...this.appendKeys(),
          this.key('live'),
          ...this.appendArgs(),
          this.prefix,
          pushId,
          this.options.retentionMs,
        );
        break;
    }
    const seq = Number(result);
    if (seq === -1) return { kind: 'not-live' };
    return seq > 0 ? { kind: 'appended', seq } : { kind: 'unchanged' };
  }

  async histories(pushIds: readonly PushId[]): Promise<Map<PushId, MembershipHistory>> {
    const pipeline = this.commands.pipeline();
    for (const pushId of pushIds) pipeline.hgetall(this.key(`s:${pushId}`));
    const replies = (await pipeline.exec()) ?? [];
    const out = new Map<PushId, MembershipHistory>();
    pushIds.forEach((pushId, i) => {
      const [error, value] = replies[i] ?? [null, null];
      if (error) throw error;
      if (typeof value !== 'object' || value === null) return;
      const pairs = Object.entries(value).filter(
        (pair): pair is [GroupName, string] => typeof pair[1] === 'string',
      );
      if (pairs.length > 0) out.set(pushId, MembershipHistory.decode(pairs));
    });
    return out;
  }

  async members(group: GroupName): Promise<PushId[]> {
    return pushIdsOf(await this.commands.smembers(this.key(`g:${group}`)));
  }

  // --- liveness -----------------------------------------------------------------------------

  async register(pushIds: readonly PushId[]): Promise<void> {
    await this.commands.epRegister(this.key('live'), this.options.pushIdTtlMs, ...pushIds);
  }

  async touch(pushIds: readonly PushId[]): Promise<PushId[]> {
    const reply = await this.commands.epTouch(
      this.key('live'),
      this.options.pushIdTtlMs,
      ...pushIds,
    );
    return pushIdsOf(reply);
  }

  async isLive(pushId: PushId): Promise<boolean> {
    return Number(await this.commands.epLive(this.key('live'), pushId)) === 1;
  }

  async dueForExpiry(limit: number): Promise<PushId[]> {
    const reply = await this.commands.epDue(this.key('live'), limit);
    return pushIdsOf(reply);
  }

  // --- node directory -----------------------------------------------------------------------

  async beat(info: Omit<NodeInfo, 'lastSeen'>): Promise<void> {
    await this.commands.epHeartbeat(this.key('nodes'), info.id, JSON.stringify(info));
  }

  async beats(): Promise<Beat[]> {
    return readBeats(await this.commands.epBeats(this.key('nodes')));
  }

  async forget(nodeId: string): Promise<void> {
    await this.commands.hdel(this.key('nodes'), nodeId);
  }

  // --- presence (redis-presence.ts; keys pr:<pushId>, pr-due, pr-nodes, ph:<node>) -----------

  presenceRead = (pushIds: readonly PushId[]): Promise<Map<PushId, PresenceEntry>> =>
    this.presence.read(pushIds);
  presenceWrite = (
    pushId: PushId,
    expected: number,
    write: PresenceWrite,
  ): Promise<number | null> => this.presence.write(pushId, expected, write);
  presenceDue = (until: number, limit: number): Promise<PushId[]> =>
    this.presence.due(until, limit);
  presenceHeldBy = (nodeId: string, limit: number): Promise<PushId[]> =>
    this.presence.heldBy(nodeId, limit);
  presenceHolders = (): Promise<string[]> => this.presence.holders();
}
