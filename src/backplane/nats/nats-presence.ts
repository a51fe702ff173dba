import { parseJsonObject } from '../../core/json-object.js';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvEntry } from '@nats-io/kv';
import { isPushId, type PushId } from '../../core/push-id.js';
import type { PresenceEntry, PresenceWrite } from '../driver.js';

/** Index keys checked against their records at once. */
const CHECK_BATCH = 200;
/**
 * An index key newer than its record belongs to a write in progress (keys go in before the
 * record's compare-and-set) or to a writer that died: it is removed once it is this old.
 */
const PENDING_MS = 5 * 60_000;

/** A record as the `_presence` bucket stores it. */
interface Stored {
  /** The version (the contract's, not the KV revision). */
  readonly v: number;
  /** The record's text. */
  readonly r: string;
  /** The protocol's due time, or null. */
  readonly d: number | null;
  /** The holder nodes. */
  readonly h: readonly string[];
  /** When the record is forgotten (ms), or null. */
  readonly f: number | null;
}

interface Loaded {
  readonly entry: KvEntry | null;
  /** The stored record, also when its keep time ran out (null: none, or not ours). */
  readonly stored: Stored | null;
}

/** An index key: `<due ms>.<pushId>.<version>` (due) or `n<node b64>.<pushId>.<version>` (held). */
interface IndexKey {
  readonly key: string;
  readonly head: string;
  readonly pushId: PushId;
  readonly version: number;
}

/**
 * Presence on NATS JetStream (see PresenceDriverMethods in driver.ts). nats-server 2.9 writes
 * one KV key atomically, not three, so the record is the truth and the indexes are hints:
 * - the record (`_presence`, key = push ID) carries its own version, due time and holders, and
 *   is written by a compare-and-set on its KV revision;
 * - index keys name the record VERSION they were written for, and go in BEFORE the record's
 *   compare-and-set: a stored record always has its index keys (no state change is missed);
 * - after the write, the previous version's keys are purged; keys left by a lost race or a
 *   writer that died are recognised by comparing them with the record, and purged when read.
 * A key name is never valid for two different records, so a purge never removes a needed key.
 */
export class NatsPresence {
  private constructor(
    private readonly jsm: JetStreamManager,
    private readonly records: KV,
    private readonly due: KV,
    private readonly held: KV,
    private readonly names: {
      readonly records: string;
      readonly due: string;
      readonly held: string;
    },
    private readonly now: () => number,
  ) {}

  /** Opens (creating them if needed) the buckets `<stream>_presence`, `_pdue` and `_pheld`. */
  static async open(
    js: JetStreamClient,
    jsm: JetStreamManager,
    stream: string,
    now: () => number = Date.now,
  ): Promise<NatsPresence> {
    const kvm = new Kvm(js);
    const bucket = (name: string): Promise<KV> => kvm.create(name, { history: 1, storage: 'file' });
    const names = {
      records: `${stream}_presence`,
      due: `${stream}_pdue`,
      held: `${stream}_pheld`,
    };
    const [records, due, held] = await Promise.all([
      bucket(names.records),
      bucket(names.due),
      bucket(names.held),
    ]);
    return new NatsPresence(jsm, records, due, held, names, now);
  }

  async read(pushIds: readonly PushId[]): Promise<Map<PushId, PresenceEntry>> {
    const now = this.now();
    const out = new Map<PushId, PresenceEntry>();
    const loaded = await Promise.all(pushIds.map((pushId) => this.load(pushId)));
    pushIds.forEach((pushId, i) => {
      const stored = loaded[i]?.stored ?? null;
      if (isKept(stored, now)) out.set(pushId, { version: stored.v, record: stored.r });
    });
    return out;
  }

  async write(pushId: PushId, expected: number, write: PresenceWrite): Promise<number | null> {
    const now = this.now();
    const { entry, stored } = await this.load(pushId);
    if ((isKept(stored, now) ? stored.v : 0) !== expected) return null;
    // Past a forgotten record the version goes on: a key name never serves two records.
    const next: Stored = {
      v: Math.max(expected, stored?.v ?? 0) + 1,
      r: write.record,
      d: write.due === null ? null : Math.ceil(write.due),
      h: [...new Set(write.holders)],
      f: write.keepMs === null ? null : now + write.keepMs,
    };
    const keys = this.keysOf(pushId, next);
    await Promise.all([
      ...keys.due.map((key) => this.due.put(key, '')),
      ...keys.held.map((key) => this.held.put(key, '')),
    ]);
    try {
      const value = JSON.stringify(next);
      if (entry === null) await this.records.create(pushId, value);
      else await this.records.update(pushId, value, entry.revision);
    } catch (error) {
      // Another node wrote first: the keys put above are left for the readers to recognise.
      if (error instanceof Error && /wrong last sequence/i.test(error.message)) return null;
      throw error;
    }
    if (stored !== null) await this.purgeKeys(pushId, stored, keys);
    return next.v;
  }

  /** Due keys up to `until`, earliest first, checked against their records. */
  async dueUntil(until: number, limit: number): Promise<PushId[]> {
    const candidates: (IndexKey & { due: number })[] = [];
    for (const key of await listKeys(this.due, '>')) {
      const parsed = parseIndexKey(key);
      const due = Number(parsed?.head);
      if (parsed !== null && Number.isSafeInteger(due) && due <= until) {
        candidates.push({ ...parsed, due });
      }
    }
    candidates.sort((a, b) => a.due - b.due);
    return this.check(candidates, limit, this.due, this.names.due, (key, stored) =>
      indexDue(stored) === Number(key.head) ? (stored.d === null ? 'hidden' : 'valid') : 'stale',
    );
  }

  async heldBy(nodeId: string, limit: number): Promise<PushId[]> {
    const token = nodeToken(nodeId);
    const keys: IndexKey[] = [];
    for (const key of await listKeys(this.held, `${token}.>`)) {
      const parsed = parseIndexKey(key);
      if (parsed !== null) keys.push(parsed);
    }
    return this.check(keys, limit, this.held, this.names.held, (_key, stored) =>
      stored.h.includes(nodeId) ? 'valid' : 'stale',
    );
  }

  async holders(): Promise<string[]> {
    const nodes = new Set<string>();
    for (const key of await listKeys(this.held, '>')) {
      const node = nodeOf(key.slice(0, key.indexOf('.')));
      if (node !== null) nodes.add(node);
    }
    return [...nodes];
  }

  /**
   * Returns the push IDs whose index key matches their record, up to `limit`; purges keys a
   * newer record replaced, and forgets records whose keep time ran out.
   */
  private async check(
    keys: readonly IndexKey[],
    limit: number,
    bucket: KV,
    bucketName: string,
    judge: (key: IndexKey, stored: Stored) => 'valid' | 'stale' | 'hidden',
  ): Promise<PushId[]> {
    const now = this.now();
    const out = new Set<PushId>();
    for (let i = 0; i < keys.length && out.size < limit; i += CHECK_BATCH) {
      const chunk = keys.slice(i, i + CHECK_BATCH);
      const loaded = await Promise.all(chunk.map((key) => this.load(key.pushId)));
      // The answer in key order (earliest first for the due index); the clean-up after it.
      const chores: Promise<void>[] = [];
      chunk.forEach((key, j) => {
        const { entry, stored } = loaded[j] ?? { entry: null, stored: null };
        if (stored === null || key.version > stored.v) {
          // Written for a version not stored (yet): a write in progress, or a dead writer's.
          chores.push(this.purgeIfOld(bucket, bucketName, key.key, now));
        } else if (key.version < stored.v || judge(key, stored) === 'stale') {
          chores.push(this.purge(bucketName, key.key));
        } else if (!isKept(stored, now)) {
          if (entry !== null) chores.push(this.forget(key.pushId, entry, stored));
        } else if (judge(key, stored) === 'valid' && out.size < limit) {
          out.add(key.pushId);
        }
      });
      await Promise.all(chores);
    }
    return [...out];
  }

  private async purgeIfOld(bucket: KV, bucketName: string, key: string, now: number) {
    const entry = await bucket.get(key);
    if (entry !== null && now - entry.created.getTime() > PENDING_MS) {
      await this.purge(bucketName, key);
    }
  }

  /** Drops a record whose keep time ran out, unless it was rewritten meanwhile, and its keys. */
  private async forget(pushId: PushId, entry: KvEntry, stored: Stored): Promise<void> {
    try {
      await this.records.delete(pushId, { previousSeq: entry.revision });
    } catch {
      return; // rewritten meanwhile: the writer purges the old keys
    }
    await this.purgeKeys(pushId, stored, { due: [], held: [] });
    // The delete left a marker; purge up to it (a record written after it stays).
    const marker = await this.records.get(pushId);
    if (marker !== null && marker.operation !== 'PUT') {
      const bucket = this.names.records;
      await this.jsm.streams
        .purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${pushId}`, seq: marker.revision + 1 })
        .catch(() => undefined);
    }
  }

  private async load(pushId: PushId): Promise<Loaded> {
    const entry = await this.records.get(pushId);
    if (entry === null) return { entry, stored: null };
    return { entry, stored: entry.operation === 'PUT' ? decodeStored(entry.string()) : null };
  }

  /** The index keys of a record (the due index also holds when a kept record is forgotten). */
  private keysOf(pushId: PushId, stored: Stored): { due: string[]; held: string[] } {
    const due = indexDue(stored);
    return {
      due: due === null ? [] : [`${due}.${pushId}.${stored.v}`],
      held: stored.h.map((node) => `${nodeToken(node)}.${pushId}.${stored.v}`),
    };
  }

  /** Purges the keys of `old` that are not among `keep`. */
  private async purgeKeys(
    pushId: PushId,
    old: Stored,
    keep: { due: readonly string[]; held: readonly string[] },
  ): Promise<void> {
    const keys = this.keysOf(pushId, old);
    await Promise.all([
      ...keys.due.filter((k) => !keep.due.includes(k)).map((k) => this.purge(this.names.due, k)),
      ...keys.held.filter((k) => !keep.held.includes(k)).map((k) => this.purge(this.names.held, k)),
    ]);
  }

  /** Removes an index key without leaving a delete marker (markers would pile up, one a key). */
  private async purge(bucket: string, key: string): Promise<void> {
    await this.jsm.streams.purge(`KV_${bucket}`, { filter: `$KV.${bucket}.${key}` });
  }
}

function isKept(stored: Stored | null, now: number): stored is Stored {
  return stored !== null && (stored.f === null || stored.f > now);
}

function indexDue(stored: Stored): number | null {
  return stored.d ?? stored.f;
}

async function listKeys(kv: KV, filter: string): Promise<Set<string>> {
  // A key rewritten while the listing runs can be listed twice.
  const keys = new Set<string>();
  for await (const key of await kv.keys(filter)) keys.add(key);
  return keys;
}

function parseIndexKey(key: string): IndexKey | null {
  const [head, pushId, version, extra] = key.split('.');
  if (head === undefined || pushId === undefined || version === undefined) return null;
  if (extra !== undefined || !isPushId(pushId) || !/^[1-9][0-9]*$/.test(version)) return null;
  return { key, head, pushId, version: Number(version) };
}

/** Node ids may hold any character; KV keys allow `[-/_=.A-Za-z0-9]` and `.` splits tokens. */
function nodeToken(nodeId: string): string {
  return `n${Buffer.from(nodeId).toString('base64url')}`;
}

function nodeOf(token: string): string | null {
  return token.startsWith('n') ? Buffer.from(token.slice(1), 'base64url').toString() : null;
}

/** The stored value read back; null when it is not one of ours. */
function decodeStored(text: string): Stored | null {
  const value = parseJsonObject(text);
  if (value === null) return null;
  const { v, r, d, h, f } = value;
  const isTime = (x: unknown): x is number | null => x === null || typeof x === 'number';
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1 || typeof r !== 'string') {
    return null;
  }
  if (!isTime(d) || !isTime(f) || !Array.isArray(h)) return null;
  if (!h.every((node): node is string => typeof node === 'string')) return null;
  return { v, r, d, h, f };
}
