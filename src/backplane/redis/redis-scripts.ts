/**
 * Lua scripts of the Redis backplane. Each runs atomically, so an event's seq, its place in the
 * log stream and its publication to every node happen as one step, in one order for everybody.
 *
 * Every script that appends takes the same first keys and arguments:
 *   KEYS[1] epoch, KEYS[2] seq, KEYS[3] log stream, KEYS[4] fan-out channel
 *   ARGV[1] epoch candidate (used if the epoch key is missing: an empty Redis starts a new epoch)
 *   ARGV[2] approximate MAXLEN of the stream
 * and the clock is Redis's own TIME, so TTLs do not depend on the nodes' clocks.
 */

import { STAYS_PER_GROUP } from '../../core/membership-history.js';

const PRELUDE = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function current_epoch()
  local epoch = redis.call('GET', KEYS[1])
  if not epoch then
    epoch = ARGV[1]
    redis.call('SET', KEYS[1], epoch)
  end
  return epoch
end
local function append(body)
  local epoch = current_epoch()
  local seq = redis.call('INCR', KEYS[2])
  local event = '{"seq":' .. seq .. ',' .. string.sub(body, 2)
  redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[2], seq .. '-0', 'e', event, 't', now_ms())
  redis.call('PUBLISH', KEYS[4], epoch .. '|' .. event)
  return seq
end
`;

/** ARGV[3] event body (JSON object without seq) → seq. */
export const PUBLISH = `${PRELUDE}
return append(ARGV[3])
`;

/**
 * An idempotent notify: appends unless the key was used within retention. KEYS[5] the key's
 * record; ARGV[3] event body, ARGV[4] retention ms, ARGV[5] the record to keep ("id fingerprint")
 * → {seq} when appended, {0, the first call's record} when the key was seen.
 */
export const APPEND_ONCE = `${PRELUDE}
local seen = redis.call('GET', KEYS[5])
if seen then return {0, seen} end
local seq = append(ARGV[3])
redis.call('SET', KEYS[5], ARGV[5], 'PX', ARGV[4])
return {seq}
`;

/**
 * KEYS[5] liveness zset, KEYS[6] group set, KEYS[7] stays hash of the push ID;
 * ARGV[3] push ID, ARGV[4] group, ARGV[5] event body → -1 not live, 0 already a member, else seq.
 * Stays are the MembershipHistory text form (core/membership-history.ts): "joined,left;joined,"
 * (the last one open); only the last STAYS_PER_GROUP (8) are kept.
 */
export const ADD_MEMBER = `${PRELUDE}
local expires = redis.call('ZSCORE', KEYS[5], ARGV[3])
if (not expires) or tonumber(expires) <= now_ms() then return -1 end
if redis.call('SADD', KEYS[6], ARGV[3]) == 0 then return 0 end
local seq = append(ARGV[5])
local stays = redis.call('HGET', KEYS[7], ARGV[4])
local kept = {}
if stays then
  for stay in string.gmatch(stays, '[^;]+') do table.insert(kept, stay) end
end
table.insert(kept, seq .. ',')
while #kept > ${STAYS_PER_GROUP} do table.remove(kept, 1) end
redis.call('HSET', KEYS[7], ARGV[4], table.concat(kept, ';'))
redis.call('PERSIST', KEYS[7])
return seq
`;

/** KEYS[5] group set, KEYS[6] stays hash; ARGV[3] push ID, ARGV[4] group, ARGV[5] body → 0 or seq. */
export const REMOVE_MEMBER = `${PRELUDE}
if redis.call('SREM', KEYS[5], ARGV[3]) == 0 then return 0 end
local seq = append(ARGV[5])
local stays = redis.call('HGET', KEYS[6], ARGV[4]) or ''
stays = (string.gsub(stays, ',$', ',' .. seq))
redis.call('HSET', KEYS[6], ARGV[4], stays)
return seq
`;

/**
 * Expires one push ID if its time ran out (a touch since makes it a no-op): it leaves the
 * liveness set and every group, with one push-id-expired event when it was in any.
 * KEYS[5] liveness zset; ARGV[3] key prefix, ARGV[4] push ID, ARGV[5] ms to keep its stays
 * → the event's seq, or 0 when nothing was appended.
 */
export const EXPIRE = `${PRELUDE}
local pid = ARGV[4]
local expires = redis.call('ZSCORE', KEYS[5], pid)
if expires and tonumber(expires) > now_ms() then return 0 end
redis.call('ZREM', KEYS[5], pid)
local stays_key = ARGV[3] .. 's:' .. pid
local stays = redis.call('HGETALL', stays_key)
local open = {}
for i = 1, #stays, 2 do
  if string.sub(stays[i + 1], -1) == ',' then
    redis.call('SREM', ARGV[3] .. 'g:' .. stays[i], pid)
    table.insert(open, i)
  end
end
local seq = 0
if #open > 0 then
  seq = append('{"type":"push-id-expired","pushId":"' .. pid .. '"}')
  for _, i in ipairs(open) do redis.call('HSET', stays_key, stays[i], stays[i + 1] .. seq) end
end
if #stays > 0 then redis.call('PEXPIRE', stays_key, ARGV[5]) end
return seq
`;

/** KEYS[1] liveness zset; ARGV[1] limit → push IDs whose time ran out (on Redis's clock). */
export const DUE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
`;

/** KEYS[1] liveness zset; ARGV[1] ttl ms, ARGV[2..] push IDs → the ones unknown or expired. */
export const TOUCH = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expired = {}
for i = 2, #ARGV do
  local expires = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if (not expires) or tonumber(expires) <= now then
    table.insert(expired, ARGV[i])
  else
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i])
  end
end
return expired
`;

/** KEYS[1] liveness zset; ARGV[1] push ID → 1 when known and not expired, else 0. */
export const LIVE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local expires = redis.call('ZSCORE', KEYS[1], ARGV[1])
if expires and tonumber(expires) > now then return 1 end
return 0
`;

/** KEYS[1] liveness zset; ARGV[1] ttl ms, ARGV[2..] push IDs. */
export const REGISTER = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) end
return #ARGV - 1
`;

/**
 * The log's head at one instant: epoch (set from the candidate when Redis has none: a new
 * epoch), last seq and first retained seq. KEYS[1..3] epoch, seq, log; ARGV[1] epoch candidate.
 */
export const HEAD = `
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', 1)
local first_seq = head + 1
if #first > 0 then first_seq = tonumber(string.match(first[1][1], '^(%d+)')) end
return {epoch, head, first_seq}
`;

/**
 * Trims the log to the retention window. KEYS[1] log; ARGV[1] retention ms → entries trimmed.
 * Walks at most 20 pages of 500 per call; the next call continues.
 */
export const TRIM = `
local t = redis.call('TIME')
local cutoff = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[1])
local start = '-'
local keep_from = nil
for page = 1, 20 do
  local entries = redis.call('XRANGE', KEYS[1], start, '+', 'COUNT', 500)
  if #entries == 0 then break end
  for _, entry in ipairs(entries) do
    local fields = entry[2]
    local at = 0
    for i = 1, #fields, 2 do if fields[i] == 't' then at = tonumber(fields[i + 1]) end end
    if at >= cutoff then keep_from = entry[1] break end
  end
  if keep_from then break end
  start = '(' .. entries[#entries][1]
end
if keep_from then return redis.call('XTRIM', KEYS[1], 'MINID', keep_from) end
if start ~= '-' then
  -- every entry walked is older than the cutoff
  local last = string.sub(start, 2)
  local seq = tonumber(string.match(last, '^(%d+)'))
  return redis.call('XTRIM', KEYS[1], 'MINID', (seq + 1) .. '-0')
end
return 0
`;

/** KEYS[1] nodes hash; ARGV[1] node id, ARGV[2] node JSON (without lastSeen). */
export const HEARTBEAT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], ARGV[1], now .. '|' .. ARGV[2])
return now
`;

/** KEYS[1] nodes hash → flat [id, "at|json", age ms, …], ages on Redis's clock. */
export const BEATS = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local all = redis.call('HGETALL', KEYS[1])
local out = {}
for i = 1, #all, 2 do
  local at = tonumber(string.match(all[i + 1], '^(%d+)|')) or 0
  table.insert(out, all[i])
  table.insert(out, all[i + 1])
  table.insert(out, now - at)
end
return out
`;
