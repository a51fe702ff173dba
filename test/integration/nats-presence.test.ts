/**
 * The NATS presence index design (src/backplane/nats/nats-presence.ts) against a private
 * nats-server: index keys are hints checked against the record, stale ones are purged, a key
 * written for a version that never got stored is kept while its writer may still be running
 * and purged after, a kept record is forgotten on time, odd node ids and shared servers work.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { NatsPresence } from '../../src/backplane/nats/nats-presence.js';
import { NatsDriver } from '../../src/backplane/nats/nats-driver.js';
import { mintPushIds, type PushId } from '../../src/core/push-id.js';
import { PrivateNats } from '../../testbed/brokers/nats.js';

let nats: PrivateNats;
let nc: NatsConnection;
let streamCounter = 0;

before(async () => {
  nats = await PrivateNats.start();
  nc = await connect({ servers: `127.0.0.1:${nats.port}` });
});

after(async () => {
  await nc.close();
  await nats.stop();
});

/** A fresh presence store, its clock, and its index buckets opened beside it. */
async function open(): Promise<{
  presence: NatsPresence;
  clock: { now: number };
  due: KV;
  held: KV;
  records: KV;
  dropHeldIndex: () => Promise<void>;
}> {
  streamCounter += 1;
  const stream = `EPUSH_np${streamCounter}`;
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const clock = { now: Date.now() };
  const presence = await NatsPresence.open(js, jsm, stream, () => clock.now);
  const kvm = new Kvm(js);
  return {
    presence,
    clock,
    due: await kvm.open(`${stream}_pdue`),
    held: await kvm.open(`${stream}_pheld`),
    records: await kvm.open(`${stream}_presence`),
    dropHeldIndex: async () => {
      await jsm.streams.delete(`KV_${stream}_pheld`);
    },
  };
}

async function keysOf(kv: KV): Promise<string[]> {
  const keys = new Set<string>();
  for await (const key of await kv.keys()) keys.add(key);
  return [...keys].sort();
}

const write = (due: number | null, holders: string[], keepMs: number | null = null) => ({
  record: '{}',
  due,
  holders,
  keepMs,
});

describe('nats presence indexes', () => {
  test('a lost race leaves index keys that are never returned and are purged when read', async () => {
    const { presence, due, held } = await open();
    const [pushId] = mintPushIds(1) as [PushId];
    assert.equal(await presence.write(pushId, 0, write(1000, ['winner'])), 1);
    // A writer that read version 0 too put its keys, then lost the compare-and-set.
    assert.equal(await presence.write(pushId, 0, write(2000, ['loser'])), null);
    await due.put(`2000.${pushId}.1`, '');
    await held.put(`n${Buffer.from('loser').toString('base64url')}.${pushId}.1`, '');
    assert.equal((await keysOf(due)).length, 2);
    assert.equal((await keysOf(held)).length, 2);
    assert.deepEqual(await presence.dueUntil(10_000, 10), [pushId]);
    assert.deepEqual(await presence.heldBy('loser', 10), []);
    assert.deepEqual(await presence.heldBy('winner', 10), [pushId]);
    assert.deepEqual(await keysOf(due), [`1000.${pushId}.1`]);
    assert.equal((await keysOf(held)).length, 1);
    assert.deepEqual(await presence.holders(), ['winner']);
  });

  test('the due index answers the earliest first, up to the limit', async () => {
    const { presence } = await open();
    const pushIds = mintPushIds(6);
    const dues = [6000, 1000, 5000, 2000, 4000, 3000];
    await Promise.all(pushIds.map((p, i) => presence.write(p, 0, write(dues[i] ?? 0, ['n']))));
    const order = [1, 3, 5, 4].map((i) => pushIds[i]);
    assert.deepEqual(await presence.dueUntil(5500, 4), order);
  });

  test('every write of a racing crowd leaves the final record with its index keys', async () => {
    const { presence } = await open();
    const [pushId] = mintPushIds(1) as [PushId];
    for (let round = 0; round < 15; round++) {
      const version = (await presence.read([pushId])).get(pushId)?.version ?? 0;
      await Promise.all(
        [0, 1, 2].map((i) => presence.write(pushId, version, write(100 + i, [`node-${i}`]))),
      );
    }
    const final = (await presence.read([pushId])).get(pushId);
    assert.equal(final?.version, 15);
    assert.deepEqual(await presence.dueUntil(1000, 10), [pushId]);
    // Losers' holder keys may still name their nodes (a hint): asking for them cleans them.
    const listed = await presence.holders();
    const held = await Promise.all(listed.map((node) => presence.heldBy(node, 10)));
    assert.deepEqual(held.flat(), [pushId]);
    assert.equal((await presence.holders()).length, 1);
  });

  test('a write whose index keys cannot be put stores no record', async () => {
    const { presence, dropHeldIndex } = await open();
    const [pushId] = mintPushIds(1) as [PushId];
    await dropHeldIndex();
    await assert.rejects(presence.write(pushId, 0, write(10, ['n'])));
    assert.equal((await presence.read([pushId])).size, 0);
  });

  test('a key for a version not stored is kept while its writer may run, purged after', async () => {
    const { presence, clock, due, held } = await open();
    const [stored, orphan] = mintPushIds(2) as [PushId, PushId];
    await presence.write(stored, 0, write(500, ['n']));
    // A writer that died between its index puts and its compare-and-set.
    await due.put(`400.${stored}.2`, '');
    await held.put(`n${Buffer.from('n').toString('base64url')}.${stored}.2`, '');
    await due.put(`300.${orphan}.1`, '');
    assert.deepEqual(await presence.dueUntil(1000, 10), [stored]);
    assert.deepEqual(await presence.heldBy('n', 10), [stored]);
    assert.equal((await keysOf(due)).length, 3, 'young pending keys are left alone');
    clock.now += 6 * 60_000;
    assert.deepEqual(await presence.dueUntil(1000, 10), [stored]);
    assert.deepEqual(await presence.heldBy('n', 10), [stored]);
    assert.deepEqual(await keysOf(due), [`500.${stored}.1`]);
    assert.equal((await keysOf(held)).length, 1);
  });

  test('a kept record reads absent after its keep time and is forgotten with its keys', async () => {
    const { presence, clock, due, records } = await open();
    const [pushId] = mintPushIds(1) as [PushId];
    assert.equal(await presence.write(pushId, 0, write(null, [], 60_000)), 1);
    assert.equal((await presence.read([pushId])).get(pushId)?.version, 1);
    // Kept, not due: the protocol never sees it in the due index.
    assert.deepEqual(await presence.dueUntil(clock.now + 120_000, 10), []);
    clock.now += 61_000;
    assert.equal((await presence.read([pushId])).size, 0);
    assert.equal(await presence.write(pushId, 1, write(null, [])), null, 'absent is version 0');
    assert.deepEqual(await presence.dueUntil(clock.now, 10), []);
    assert.equal(await records.get(pushId), null, 'the record and its delete marker are gone');
    assert.deepEqual(await keysOf(due), []);
    assert.equal(await presence.write(pushId, 0, write(null, ['n'])), 1);
  });

  test('a record rewritten after its keep time ran out goes on from its version', async () => {
    const { presence, clock } = await open();
    const [pushId] = mintPushIds(1) as [PushId];
    await presence.write(pushId, 0, write(null, [], 1000));
    await presence.write(pushId, 1, write(null, [], 1000));
    clock.now += 2000;
    assert.equal(await presence.write(pushId, 0, write(5, ['n'])), 3);
    assert.deepEqual(await presence.dueUntil(clock.now, 10), [pushId]);
  });

  test('node ids with any characters are indexed and listed back', async () => {
    const { presence } = await open();
    const [pushId] = mintPushIds(1) as [PushId];
    const nodes = ['host:8080', 'a.b.c', 'with space', 'ünï/côdé*>'];
    await presence.write(pushId, 0, write(null, nodes));
    assert.deepEqual(new Set(await presence.holders()), new Set(nodes));
    for (const node of nodes) assert.deepEqual(await presence.heldBy(node, 10), [pushId]);
  });

  test('two prefixes on one nats-server keep their presence apart', async () => {
    const options = {
      retentionMs: 60_000,
      pushIdTtlMs: 60_000,
      maxLogBytes: 1 << 20,
      nodeTimeoutMs: 15_000,
    };
    const link = { entry: () => undefined, probe: () => undefined, link: () => undefined };
    const one = new NatsDriver(`${nats.url}/?prefix=presA`, options);
    const two = new NatsDriver(`${nats.url}/?prefix=presB`, options);
    await one.connect(link);
    await two.connect(link);
    try {
      const [pushId] = mintPushIds(1) as [PushId];
      assert.equal(await one.presenceWrite(pushId, 0, write(10, ['n'])), 1);
      assert.equal((await two.presenceRead([pushId])).size, 0);
      assert.deepEqual(await two.presenceDue(1000, 10), []);
      assert.deepEqual(await two.presenceHolders(), []);
      assert.equal(await two.presenceWrite(pushId, 0, write(10, ['n'])), 1);
    } finally {
      await one.close();
      await two.close();
    }
  });
});
