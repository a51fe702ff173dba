import { isPushId, type PushId } from '../../core/push-id.js';
import type { Beat, LogHead } from '../driver.js';
import { nodeInfoOf } from '../protocol/event-codec.js';

/** Replies of the Redis scripts, checked before use: what Redis returns is not trusted by a cast. */

export function readHead(reply: unknown): LogHead {
  if (!Array.isArray(reply)) throw new Error('unexpected reply to the head script');
  const [epoch, seq, firstSeq] = reply as unknown[];
  if (typeof epoch !== 'string' || typeof seq !== 'number' || typeof firstSeq !== 'number') {
    throw new Error('unexpected reply to the head script');
  }
  return { epoch, seq, firstSeq };
}

export function pushIdsOf(reply: unknown): PushId[] {
  return Array.isArray(reply) ? reply.filter(isPushId) : [];
}

/** `[id, "at|json", age, …]` → beats; an entry that does not parse is left out. */
export function readBeats(reply: unknown): Beat[] {
  if (!Array.isArray(reply)) return [];
  const flat = reply as unknown[];
  const beats: Beat[] = [];
  for (let i = 0; i + 2 < flat.length; i += 3) {
    const value = flat[i + 1];
    const ageMs = flat[i + 2];
    if (typeof value !== 'string' || typeof ageMs !== 'number') continue;
    const bar = value.indexOf('|');
    const info = nodeInfoOf(value.slice(bar + 1));
    if (info !== null) beats.push({ info, at: Number(value.slice(0, bar)), ageMs });
  }
  return beats;
}
