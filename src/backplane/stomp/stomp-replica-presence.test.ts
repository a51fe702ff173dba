import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mintPushIds } from '../../core/push-id.js';
import type { PresenceWrite } from '../driver.js';
import { parseCommand, parseLogMessage } from './stomp-messages.js';
import type { Batch, Checkpoint, Command, Entry, LogMessage } from './stomp-protocol.js';
import { StompReplica, type ReplicaOptions } from './stomp-replica.js';

const T0 = 1_700_000_000_000;
const KEEP_MS = 60_000;

/** A replica whose clock the test moves. */
function replica(clock: { now: number }): StompReplica {
  const options: ReplicaOptions = {
    retentionMs: 600_000,
    maxLogBytes: 1 << 30,
    pushIdTtlMs: 60_000,
    now: () => clock.now,
  };
  return new StompReplica(options);
}

const write = (record: string, extra: Partial<PresenceWrite> = {}): PresenceWrite => ({
  record,
  due: null,
  holders: [],
  keepMs: null,
  ...extra,
});

let counter = 0;
const cas = (pushId: string, expected: number, w: PresenceWrite): Command =>
  parseCommand(JSON.stringify({ k: 'presence', c: `w${++counter}`, pushId, expected, write: w }))!;

/** Builds and applies the next batch; returns it as the broker carries it (parsed back). */
function step(sequencer: StompReplica, commands: readonly Command[], now: number): Batch {
  const batch = sequencer.buildBatch(commands, now);
  assert.ok(batch);
  sequencer.apply(batch);
  return parseLogMessage(JSON.stringify(batch)) as Batch;
}

const kinds = (entries: readonly Entry[]): string[] =>
  entries.map((e) => (e.k === 'presence' ? `presence v${e.version}` : e.k));

test('presence compare-and-set: judged against the replica and the batch itself; followers agree', () => {
  const clock = { now: T0 };
  const sequencer = replica(clock);
  const follower = replica(clock);
  sequencer.startEpoch('e1');
  follower.catchUp([sequencer.checkpoint(T0)]);
  const [p] = mintPushIds(1);
  // Two writers start from "no record": the first wins, the second (same batch) loses; a third
  // that read the first's version wins next.
  const first = step(
    sequencer,
    [cas(p!, 0, write('a')), cas(p!, 0, write('b')), cas(p!, 1, write('c'))],
    T0,
  );
  assert.deepEqual(kinds(first.entries), ['presence v1', 'ok', 'presence v2']);
  follower.apply(first);
  for (const r of [sequencer, follower]) {
    assert.deepEqual(r.presence.read([p!]).get(p!), { version: 2, record: 'c' });
  }
  // A stale version in a later batch is refused and changes nothing.
  const second = step(sequencer, [cas(p!, 1, write('stale'))], T0 + 1);
  assert.deepEqual(kinds(second.entries), ['ok']);
  follower.apply(second);
  assert.equal(follower.presence.read([p!]).get(p!)?.record, 'c');
});

test('presence indexes and keep time follow the batch clock on every replica, and a checkpoint carries them', () => {
  const clock = { now: T0 };
  const sequencer = replica(clock);
  sequencer.startEpoch('e1');
  const [held, expired] = mintPushIds(2);
  const batch = step(
    sequencer,
    [
      cas(held!, 0, write('held', { due: T0 + 500, holders: ['node-a', 'node-b'] })),
      cas(expired!, 0, write('expired', { keepMs: KEEP_MS })),
    ],
    T0,
  );
  const checkpoint = parseLogMessage(JSON.stringify(sequencer.checkpoint(T0 + 1))) as LogMessage;
  // A node that starts later, long after the batch: it loads the checkpoint only.
  clock.now = T0 + 10_000;
  const late = replica(clock);
  assert.deepEqual(late.catchUp([batch, checkpoint]), { kind: 'reloaded' });
  for (const r of [sequencer, late]) {
    assert.deepEqual(r.presence.dueUntil(T0 + 500, 10), [held]);
    assert.deepEqual(r.presence.dueUntil(T0 + 499, 10), []);
    assert.deepEqual(r.presence.heldByNode('node-b', 10), [held]);
    assert.deepEqual(new Set(r.presence.holders()), new Set(['node-a', 'node-b']));
    assert.equal(r.presence.read([expired!]).get(expired!)?.record, 'expired');
  }
  // Kept KEEP_MS from the batch's clock, not from when a replica loaded it.
  clock.now = T0 + KEEP_MS + 1;
  for (const r of [sequencer, late]) {
    r.sweep(clock.now);
    assert.equal(r.presence.read([expired!]).size, 0);
    assert.equal(r.presence.read([held!]).size, 1);
  }
  // Forgotten means version 0 again: a new record starts over.
  const again = step(sequencer, [cas(expired!, 0, write('minted again'))], clock.now);
  assert.deepEqual(kinds(again.entries), ['presence v1']);
});

test('malformed presence commands and entries are refused whole', () => {
  const [p] = mintPushIds(1);
  const good = { k: 'presence', c: 'x', pushId: p, expected: 0, write: write('r') };
  assert.ok(parseCommand(JSON.stringify(good)));
  for (const bad of [
    { ...good, pushId: 'not a push id' },
    { ...good, expected: -1 },
    { ...good, write: { ...write('r'), holders: [1] } },
    { ...good, write: { ...write('r'), due: 'soon' } },
    { ...good, write: { record: 'r' } },
  ]) {
    assert.equal(parseCommand(JSON.stringify(bad)), null, JSON.stringify(bad));
  }
  const batch = {
    t: 'batch',
    epoch: 'e',
    bi: 1,
    at: T0,
    entries: [{ k: 'presence', c: 'x', pushId: p, version: 'one', write: write('r') }],
  };
  assert.equal(parseLogMessage(JSON.stringify(batch)), null);
  const checkpoint = {
    t: 'checkpoint',
    epoch: 'e',
    bi: 1,
    seq: 0,
    at: T0,
    stays: [],
    live: [],
    presence: [[p, 1, 'r', null, ['n'], 'never']],
  };
  assert.equal(parseLogMessage(JSON.stringify(checkpoint)), null);
  // A checkpoint of a version without presence still loads (no records).
  const older: Partial<typeof checkpoint> = { ...checkpoint };
  delete older.presence;
  assert.deepEqual((parseLogMessage(JSON.stringify(older)) as Checkpoint | null)?.presence, []);
});
