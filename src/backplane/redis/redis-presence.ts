import type { Redis } from 'ioredis';
import type { PushId } from '../../core/push-id.js';
import type { PresenceEntry, PresenceWrite } from '../driver.js';
import { pushIdsOf } from './redis-replies.js';

/**
 * Compare-and-set of one presence record with its indexes, in one Lua script (atomic).
 * KEYS[1] record hash `pr:<pushId>` (v version, r record, h holders joined by newlines),
 * KEYS[2] due zset, KEYS[3] set of nodes holding anything; ARGV[1] key prefix, ARGV[2] push ID,
 * ARGV[3] expected version, ARGV[4] record, ARGV[5] due ms or '', ARGV[6] holders, ARGV[7] keep
 * ms or '' → the new version, or 0 when the version was not the expected one.
 * Per holder node, `ph:<node>` is the set of push IDs it holds (how a dead node's are found).
 */
const PRESENCE_WRITE = `
local v = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if v ~= tonumber(ARGV[3]) then return 0 end
local new = {}
for n in string.gmatch(ARGV[6], '[^\\n]+') do new[n] = true end
local old = redis.call('HGET', KEYS[1], 'h') or ''
for n in string.gmatch(old, '[^\\n]+') do
  if not new[n] then
    local k = ARGV[1] .. 'ph:' .. n
    redis.call('SREM', k, ARGV[2])
    if redis.call('SCARD', k) == 0 then redis.call('SREM', KEYS[3], n) end
  end
end
for n, _ in pairs(new) do
  redis.call('SADD', ARGV[1] .. 'ph:' .. n, ARGV[2])
  redis.call('SADD', KEYS[3], n)
end
redis.call('HSET', KEYS[1], 'v', v + 1, 'r', ARGV[4], 'h', ARGV[6])
if ARGV[5] == '' then redis.call('ZREM', KEYS[2], ARGV[2])
else redis.call('ZADD', KEYS[2], tonumber(ARGV[5]), ARGV[2]) end
if ARGV[7] == '' then redis.call('PERSIST', KEYS[1])
else redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[7])) end
return v + 1
`;

type PresenceRedis = Redis & {
  epPresenceWrite(...args: (string | number)[]): Promise<unknown>;
};

/** The Redis driver's presence primitives (see PresenceDriverMethods in driver.ts). */
export class RedisPresence {
  private readonly redis: PresenceRedis;

  constructor(
    redis: Redis,
    private readonly prefix: string,
  ) {
    redis.defineCommand('epPresenceWrite', { lua: PRESENCE_WRITE, numberOfKeys: 3 });
    this.redis = redis as PresenceRedis;
  }

  async read(pushIds: readonly PushId[]): Promise<Map<PushId, PresenceEntry>> {
    const pipeline = this.redis.pipeline();
    for (const pushId of pushIds) pipeline.hmget(this.prefix + `pr:${pushId}`, 'v', 'r');
    const replies = (await pipeline.exec()) ?? [];
    const out = new Map<PushId, PresenceEntry>();
    pushIds.forEach((pushId, i) => {
      const [error, value] = replies[i] ?? [null, null];
      if (error) throw error;
      if (!Array.isArray(value)) return;
      const [version, record] = value as unknown[];
      if (typeof version === 'string' && typeof record === 'string') {
        out.set(pushId, { version: Number(version), record });
      }
    });
    return out;
  }

  async write(pushId: PushId, expected: number, write: PresenceWrite): Promise<number | null> {
    const reply = await this.redis.epPresenceWrite(
      this.prefix + `pr:${pushId}`,
      this.prefix + 'pr-due',
      this.prefix + 'pr-nodes',
      this.prefix,
      pushId,
      expected,
      write.record,
      write.due === null ? '' : Math.ceil(write.due),
      write.holders.join('\n'),
      write.keepMs === null ? '' : write.keepMs,
    );
    const version = Number(reply);
    return version > 0 ? version : null;
  }

  async due(until: number, limit: number): Promise<PushId[]> {
    const reply = await this.redis.zrangebyscore(
      this.prefix + 'pr-due',
      '-inf',
      Math.floor(until),
      'LIMIT',
      0,
      limit,
    );
    return pushIdsOf(reply);
  }

  async heldBy(nodeId: string, limit: number): Promise<PushId[]> {
    // Any `limit` of them: the sweep takes them out of the set and comes back for the rest.
    return pushIdsOf(await this.redis.srandmember(this.prefix + `ph:${nodeId}`, limit));
  }

  holders(): Promise<string[]> {
    return this.redis.smembers(this.prefix + 'pr-nodes');
  }
}
