import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeCursor, type CursorPosition } from '../../core/cursor.js';
import type { ClusterEvent, NotificationDraft, NotificationId } from '../../core/events.js';
import type { GroupName } from '../../core/group-name.js';
import { mintPushIds, type PushId } from '../../core/push-id.js';
import type { ListenerSnapshot } from '../backplane.js';
import { readForListener } from '../protocol/listener-read.js';
import type { Batch, Command, Entry, LogMessage } from './stomp-protocol.js';
import { StompReplica, type ReplicaOptions } from './stomp-replica.js';

const TTL = 60_000;
const T0 = 1_700_000_000_000;
const OPTIONS: ReplicaOptions = { retentionMs: 600_000, maxLogBytes: 1 << 30, pushIdTtlMs: TTL };

let counter = 0;

function group(name: string): GroupName {
  return `${name}.${++counter}` as GroupName;
}

function draft(group: GroupName | null, pushId: PushId | null, payload: unknown = null) {
  counter += 1;
  return {
    type: 'notification',
    id: `n${counter}` as NotificationId,
    group,
    pushId,
    payloadJson: JSON.stringify(payload),
    publishedAt: T0,
  } satisfies NotificationDraft;
}

// Command builders: `c` is unique unless the test passes one (a redelivery).
const cmd = {
  notify: (d: NotificationDraft): Command => ({ k: 'notify', c: d.id, draft: d }),
  register: (ids: readonly PushId[], c = `r${++counter}`): Command => ({ k: 'register', c, ids }),
  touch: (ids: readonly PushId[], c = `t${++counter}`): Command => ({ k: 'touch', c, ids }),
  add: (g: GroupName, pushId: PushId, c = `a${++counter}`): Command => ({
    k: 'add',
    c,
    group: g,
    pushId,
  }),
  remove: (g: GroupName, pushId: PushId, c = `d${++counter}`): Command => ({
    k: 'remove',
    c,
    group: g,
    pushId,
  }),
  probe: (c = `p${++counter}`): Command => ({ k: 'probe', c }),
  sync: (c = `s${++counter}`): Command => ({ k: 'sync', c }),
  expire: (pushId: PushId, c = `x${++counter}`): Command => ({ k: 'expire', c, pushId }),
};

function started(epoch = 'e1', options: ReplicaOptions = OPTIONS): StompReplica {
  const replica = new StompReplica(options);
  replica.startEpoch(epoch);
  return replica;
}

/** What a message looks like after a trip through the broker (JSON bodies). */
function wire<T>(message: T): T {
  return JSON.parse(JSON.stringify(message)) as T;
}

/** Builds the next batch on the sequencer, applies it there and (as received) on followers. */
function step(
  sequencer: StompReplica,
  commands: readonly Command[],
  now: number,
  followers: readonly StompReplica[] = [],
): Batch {
  const batch = sequencer.buildBatch(commands, now);
  assert.ok(batch, 'expected a batch');
  sequencer.apply(batch);
  for (const follower of followers) follower.apply(wire(batch));
  return wire(batch);
}

function eventsOf(batch: Batch): ClusterEvent[] {
  return batch.entries.flatMap((e) => (e.k === 'event' ? [e.event] : []));
}

function entryFor(batch: Batch, c: string): Entry[] {
  return batch.entries.filter((e) => e.c === c);
}

/** Every read from every cursor in [0, head], for comparing two replicas. */
async function allReads(
  replica: StompReplica,
  pushIds: readonly PushId[],
): Promise<ListenerSnapshot[]> {
  const reads: ListenerSnapshot[] = [];
  for (let seq = 0; seq <= replica.headSeq; seq++) {
    reads.push(await readAt(replica, { epoch: replica.epoch ?? '0', seq }, pushIds, 1000));
  }
  return reads;
}

/** A listener's read of a replica, as the cluster protocol makes it. */
function readAt(
  replica: StompReplica,
  from: CursorPosition | null,
  pushIds: readonly PushId[],
  limit: number,
): Promise<ListenerSnapshot> {
  return readForListener(replica, from, pushIds, limit);
}

function deliveredIds(snapshot: ListenerSnapshot): string[] {
  assert.equal(snapshot.kind, 'read');
  return snapshot.kind === 'read'
    ? snapshot.deliveries.map((d) => `${d.event.id}>${d.pushId}`)
    : [];
}

describe('StompReplica.buildBatch', () => {
  test('numbers events consecutively after the head, at the given clock, as the next batch', () => {
    const r = started();
    const [p] = mintPushIds(1);
    const g = group('g');
    const first = step(r, [cmd.register([p!])], T0);
    assert.equal(first.bi, 1);
    assert.equal(first.at, T0);
    assert.equal(first.epoch, 'e1');
    assert.equal(eventsOf(first).length, 0);
    assert.equal(r.headSeq, 0);

    const n1 = draft(g, null);
    const second = step(r, [cmd.notify(n1), cmd.add(g, p!), cmd.notify(draft(null, p!))], T0 + 7);
    assert.equal(second.bi, 2);
    assert.equal(second.at, T0 + 7);
    assert.deepEqual(
      eventsOf(second).map((e) => [e.seq, e.type]),
      [
        [1, 'notification'],
        [2, 'member-added'],
        [3, 'notification'],
      ],
    );
    assert.equal(r.headSeq, 3);
    assert.equal(r.bi, 2);

    const third = r.buildBatch([cmd.notify(draft(g, null))], T0 + 9);
    assert.equal(third?.bi, 3);
    assert.deepEqual(third && eventsOf(third).map((e) => e.seq), [4]);
  });

  test('is pure: building does not change the replica, building twice gives the same batch', () => {
    const r = started();
    const g = group('g');
    const commands = [cmd.notify(draft(g, null)), cmd.probe()];
    const a = r.buildBatch(commands, T0);
    const b = r.buildBatch(commands, T0);
    assert.deepEqual(a, b);
    assert.equal(r.bi, 0);
    assert.equal(r.headSeq, 0);
  });

  test('returns null when nothing needs storing (no commands, only syncs, nothing to expire)', () => {
    const r = started();
    assert.equal(r.buildBatch([], T0), null);
    assert.equal(r.buildBatch([cmd.sync(), cmd.sync()], T0), null);
    // A probe is answered, so it is stored.
    const probe = cmd.probe();
    assert.deepEqual(r.buildBatch([cmd.sync(), probe], T0)?.entries, [{ k: 'ok', c: probe.c }]);
  });

  test('refuses to build without an epoch', () => {
    const r = new StompReplica(OPTIONS);
    assert.throws(() => r.buildBatch([cmd.probe()], T0), /no state/);
  });
});

describe('StompReplica.buildBatch: commands within one batch', () => {
  test('a push ID registered earlier in the batch can join a group later in it', () => {
    const r = started();
    const [p] = mintPushIds(1);
    const g = group('g');
    const reg = cmd.register([p!]);
    const add = cmd.add(g, p!);
    const batch = step(r, [reg, add], T0);
    assert.deepEqual(batch.entries, [
      { k: 'live', c: reg.c, ids: [p] },
      { k: 'event', c: add.c, event: { type: 'member-added', group: g, pushId: p, seq: 1 } },
    ]);
    assert.deepEqual(r.members(g), [p]);
  });

  test('adding an unknown push ID is rejected with push_id_not_found', () => {
    const r = started();
    const [stranger] = mintPushIds(1);
    const g = group('g');
    const add = cmd.add(g, stranger!);
    const batch = r.buildBatch([add], T0);
    assert.equal(batch?.entries.length, 1);
    const entry = batch?.entries[0];
    assert.equal(entry?.k, 'rejected');
    assert.equal(entry?.c, add.c);
    assert.equal(entry?.k === 'rejected' ? entry.code : null, 'push_id_not_found');
    r.apply(batch);
    assert.deepEqual(r.members(g), []);
    assert.equal(r.headSeq, 0);
  });

  test('adding twice in one batch makes one member-added event, then ok', () => {
    const r = started();
    const [p] = mintPushIds(1);
    const g = group('g');
    step(r, [cmd.register([p!])], T0);
    const first = cmd.add(g, p!);
    const again = cmd.add(g, p!);
    const batch = step(r, [first, again], T0 + 1);
    assert.deepEqual(
      batch.entries.map((e) => [e.k, e.c]),
      [
        ['event', first.c],
        ['ok', again.c],
      ],
    );
    assert.equal(eventsOf(batch).length, 1);
    assert.deepEqual(r.members(g), [p]);
    // And against the applied state: an add of a member is ok, with no event.
    const later = cmd.add(g, p!);
    assert.deepEqual(r.buildBatch([later], T0 + 2)?.entries, [{ k: 'ok', c: later.c }]);
  });

  test('add then remove in one batch makes both events, and the push ID ends outside', () => {
    const r = started();
    const [p] = mintPushIds(1);
    const g = group('g');
    step(r, [cmd.register([p!])], T0);
    const batch = step(r, [cmd.add(g, p!), cmd.remove(g, p!)], T0 + 1);
    assert.deepEqual(
      eventsOf(batch).map((e) => [e.type, e.seq]),
      [
        ['member-added', 1],
        ['member-removed', 2],
      ],
    );
    assert.deepEqual(r.members(g), []);
  });

  test('remove then add of a member in one batch makes both events, and it ends inside', () => {
    const r = started();
    const [p] = mintPushIds(1);
    const g = group('g');
    step(r, [cmd.register([p!]), cmd.add(g, p!)], T0);
    const batch = step(r, [cmd.remove(g, p!), cmd.add(g, p!)], T0 + 1);
    assert.deepEqual(
      eventsOf(batch).map((e) => e.type),
      ['member-removed', 'member-added'],
    );
    assert.deepEqual(r.members(g), [p]);
  });

  test('removing a non-member is ok, with no event', () => {
    const r = started();
    const [p, stranger] = mintPushIds(2);
    const g = group('g');
    step(r, [cmd.register([p!])], T0);
    const live = cmd.remove(g, p!);
    const unknown = cmd.remove(g, stranger!);
    const batch = r.buildBatch([live, unknown], T0 + 1);
    assert.deepEqual(batch?.entries, [
      { k: 'ok', c: live.c },
      { k: 'ok', c: unknown.c },
    ]);
  });
});

describe('StompReplica: touch and liveness', () => {
  test('touch extends live push IDs and lists unknown or expired ones; followers agree', () => {
    const a = started();
    const b = started();
    const [p1, p2, stranger] = mintPushIds(3);
    step(a, [cmd.register([p1!, p2!])], T0, [b]);
    step(a, [cmd.touch([p1!])], T0 + TTL / 2, [b]);
    // p2 was last extended at T0: it runs out at T0 + TTL exactly.
    const t = cmd.touch([p1!, p2!, stranger!]);
    const at = T0 + TTL;
    const batch = step(a, [t], at, [b]);
    assert.deepEqual(entryFor(batch, t.c), [
      { k: 'live', c: t.c, ids: [p1], expired: [p2, stranger] },
    ]);
    for (const replica of [a, b]) {
      assert.equal(replica.isLive(p1!, at + TTL - 1), true);
      assert.equal(replica.isLive(p1!, at + TTL), false);
      assert.equal(replica.isLive(p2!, at), false);
      assert.equal(replica.isLive(stranger!, at), false);
    }
    // Expired stays expired: a later touch does not bring it back.
    const again = cmd.touch([p2!]);
    const later = a.buildBatch([again], at + 1);
    assert.deepEqual(later?.entries, [{ k: 'live', c: again.c, ids: [], expired: [p2] }]);
  });

  test('a register lives one TTL from the batch clock on every replica', () => {
    const a = started();
    const b = started();
    const [p] = mintPushIds(1);
    step(a, [cmd.register([p!])], T0, [b]);
    for (const replica of [a, b]) {
      assert.equal(replica.isLive(p!, T0 + TTL - 1), true);
      assert.equal(replica.isLive(p!, T0 + TTL), false);
    }
  });

  test('a push ID registered earlier in the batch counts as live for a touch later in it', () => {
    const r = started();
    const [p] = mintPushIds(1);
    const t = cmd.touch([p!]);
    const batch = r.buildBatch([cmd.register([p!]), t], T0);
    assert.deepEqual(entryFor(batch!, t.c), [{ k: 'live', c: t.c, ids: [p], expired: [] }]);
  });
});

describe('StompReplica: commands redelivered to a new sequencer', () => {
  test('a notify numbered before is answered ok with its original seq, not numbered again', () => {
    const a = started();
    const b = started();
    const g = group('g');
    step(a, [cmd.notify(draft(g, null))], T0, [b]);
    const n = cmd.notify(draft(g, null));
    const original = step(a, [n], T0 + 1, [b]);
    const seq = eventsOf(original)[0]?.seq;
    assert.equal(seq, 2);
    // A dies before acknowledging; the broker hands the command to B, the new sequencer.
    const fresh = cmd.notify(draft(g, null));
    const batch = b.buildBatch([n, fresh], T0 + 2);
    assert.ok(batch, 'expected a batch');
    assert.deepEqual(batch.entries[0], { k: 'ok', c: n.c, seq: 2 });
    assert.deepEqual(
      eventsOf(batch).map((e) => [e.seq, e.type === 'notification' ? e.id : null]),
      [[3, fresh.c]],
    );
    b.apply(batch);
    assert.equal(b.headSeq, 3);
  });

  test('a redelivered add of a member is ok and changes nothing', () => {
    const a = started();
    const b = started();
    const [p] = mintPushIds(1);
    const g = group('g');
    step(a, [cmd.register([p!])], T0, [b]);
    const add = cmd.add(g, p!);
    step(a, [add], T0 + 1, [b]);
    const remove = cmd.remove(g, p!);
    step(b, [remove], T0 + 2);
    // The add again, after the push ID left: it was done before, so it must not re-join.
    const batch = b.buildBatch([add], T0 + 3);
    assert.deepEqual(batch?.entries, [{ k: 'ok', c: add.c, seq: 1 }]);
    b.apply(batch);
    assert.deepEqual(b.members(g), []);
  });

  test('a command id repeated within one buildBatch call is answered once', () => {
    const r = started();
    const g = group('g');
    const n = cmd.notify(draft(g, null));
    const batch = r.buildBatch([n, n, n], T0);
    assert.equal(batch?.entries.length, 1);
    assert.equal(batch?.entries[0]?.c, n.c);
    assert.equal(eventsOf(batch).length, 1);
  });

  // A regression test: rejections were once remembered as done, so a redelivered rejected add
  // was answered `ok` and the waiting node's addMember resolved.
  test('a redelivered add that was rejected is still not answered ok', () => {
    const a = started();
    const b = started();
    const [stranger] = mintPushIds(1);
    const g = group('g');
    const add = cmd.add(g, stranger!);
    const first = step(a, [add], T0, [b]);
    assert.equal(first.entries[0]?.k, 'rejected');
    const again = b.buildBatch([add], T0 + 1);
    assert.equal(again?.entries[0]?.k, 'rejected');
  });
});

describe('StompReplica: expiry', () => {
  test('an expire command: a member whose time ran out leaves every group, once', async () => {
    const r = started();
    const follower = started();
    const [p, q] = mintPushIds(2);
    const g1 = group('g');
    const g2 = group('g');
    step(r, [cmd.register([p!]), cmd.add(g1, p!), cmd.add(g2, p!)], T0, [follower]);
    step(r, [cmd.register([q!]), cmd.add(g1, q!)], T0 + TTL / 2, [follower]);
    const at = T0 + TTL;
    assert.deepEqual(r.due(at - 1, 10), [], 'p is live until T0 + TTL');
    assert.deepEqual(r.due(at, 10), [p]);
    const early = cmd.expire(p!);
    assert.deepEqual(r.buildBatch([early], at - 1)?.entries, [{ k: 'ok', c: early.c }]);
    const expire = cmd.expire(p!);
    const twice = cmd.expire(p!);
    const batch = step(r, [expire, twice, cmd.expire(q!)], at, [follower]);
    assert.deepEqual(eventsOf(batch), [{ type: 'push-id-expired', pushId: p, seq: 4 }]);
    assert.equal(batch.entries[0]?.c, expire.c);
    assert.equal(batch.entries[1]?.k, 'ok', 'the second expire in one batch changes nothing');
    for (const replica of [r, follower]) {
      assert.deepEqual(replica.members(g1), [q]);
      assert.deepEqual(replica.members(g2), []);
      const read = await readAt(replica, { epoch: 'e1', seq: 4 }, [p!, q!], 10);
      assert.equal(read.kind, 'read');
      assert.deepEqual(read.kind === 'read' ? read.groups.get(p!) : null, []);
      assert.deepEqual(read.kind === 'read' ? read.groups.get(q!) : null, [g1]);
    }
    // Nothing left to expire.
    assert.deepEqual(r.due(at + 1, 10), []);
    // A group notification after the expiry reaches q only.
    step(r, [cmd.notify(draft(g1, null))], at + 2, [follower]);
    const read = await readAt(r, { epoch: 'e1', seq: 4 }, [p!, q!], 10);
    assert.deepEqual(read.kind === 'read' ? read.deliveries.map((d) => d.pushId) : null, [q]);
  });

  test('a member touched in the same batch is not expired', () => {
    const r = started();
    const [p] = mintPushIds(1);
    const g = group('g');
    step(r, [cmd.register([p!]), cmd.add(g, p!)], T0);
    const batch = r.buildBatch([cmd.touch([p!]), cmd.expire(p!)], T0 + TTL - 1);
    assert.ok(batch, 'the touch is stored');
    assert.deepEqual(eventsOf(batch), []);
  });
});

describe('StompReplica: replicas applying the same batches', () => {
  test('answer every read, from every cursor, the same way', async () => {
    const a = started();
    const b = started();
    const [p, q, r] = mintPushIds(3);
    const g = group('g');
    const h = group('h');
    const n1 = draft(g, null, { n: 1 });
    const n2 = draft(g, null, { n: 2 });
    const n3 = draft(null, q!, { n: 3 });
    const n4 = draft(h, null, { n: 4 });
    const n5 = draft(g, null, { n: 5 });
    step(a, [cmd.register([p!, q!, r!]), cmd.add(g, p!)], T0, [b]); // 1
    step(a, [cmd.notify(n1), cmd.add(g, q!), cmd.add(h, r!)], T0 + 10, [b]); // 2 3 4
    step(a, [cmd.notify(n2), cmd.remove(g, p!), cmd.notify(n3)], T0 + 20, [b]); // 5 6 7
    step(a, [cmd.touch([q!, r!])], T0 + TTL / 2, [b]);
    step(a, [cmd.notify(n4), cmd.expire(p!)], T0 + TTL, [b]); // 8, then p: not a member, ok
    step(a, [cmd.add(g, r!), cmd.notify(n5)], T0 + TTL + 1, [b]); // 9 10
    assert.equal(a.headSeq, 10);
    assert.equal(b.headSeq, 10);
    assert.equal(b.bi, a.bi);

    const ids = [p!, q!, r!];
    assert.deepEqual(deliveredIds(await readAt(a, { epoch: 'e1', seq: 0 }, ids, 100)), [
      `${n1.id}>${p}`,
      `${n2.id}>${p}`,
      `${n2.id}>${q}`,
      `${n3.id}>${q}`,
      `${n4.id}>${r}`,
      `${n5.id}>${q}`,
      `${n5.id}>${r}`,
    ]);
    // A limited read stops early and gives the groups as of where it stopped, not today's.
    const limited = await readAt(a, { epoch: 'e1', seq: 0 }, ids, 1);
    assert.deepEqual(deliveredIds(limited), [`${n1.id}>${p}`]);
    assert.equal(limited.cursorSeq, 2);
    assert.deepEqual(limited.kind === 'read' ? [...limited.groups] : null, [
      [p, [g]],
      [q, []],
      [r, []],
    ]);
    assert.deepEqual(await readAt(b, { epoch: 'e1', seq: 0 }, ids, 1), limited);
    assert.deepEqual(await allReads(b, ids), await allReads(a, ids));
    assert.deepEqual(await readAt(b, null, ids, 100), await readAt(a, null, ids, 100));
    for (const name of [g, h]) assert.deepEqual(b.members(name), a.members(name));
    assert.deepEqual(b.checkpoint(T0), a.checkpoint(T0));
  });
});

describe('StompReplica.apply', () => {
  test('refuses a batch that does not follow and leaves the state unchanged', async () => {
    const a = started();
    const b = started();
    const [p] = mintPushIds(1);
    const g = group('g');
    step(a, [cmd.register([p!]), cmd.add(g, p!)], T0, [b]);
    const second = step(a, [cmd.notify(draft(g, null))], T0 + 1);
    const third = step(a, [cmd.remove(g, p!)], T0 + 2);
    const before = {
      bi: b.bi,
      head: b.headSeq,
      checkpoint: b.checkpoint(T0),
      reads: await allReads(b, [p!]),
    };

    assert.throws(() => b.apply(third), /does not follow/); // skips bi 2
    assert.throws(() => b.apply({ ...second, epoch: 'e2' }), /does not follow/);
    assert.throws(() => b.apply({ ...second, bi: 1 }), /does not follow/); // a repeat
    assert.deepEqual(
      { bi: b.bi, head: b.headSeq, checkpoint: b.checkpoint(T0), reads: await allReads(b, [p!]) },
      before,
    );
    assert.deepEqual(b.members(g), [p]);
    // It still takes the right one.
    b.apply(second);
    assert.equal(b.bi, 2);
    assert.throws(() => new StompReplica(OPTIONS).apply(second), /does not follow/);
  });
});

/** A history with membership changes and notifications, checkpointed in the middle. */
function history() {
  const a = started();
  const [p, q, r] = mintPushIds(3);
  const g = group('g');
  const h = group('h');
  const ids = [p!, q!, r!];
  const notes = Array.from({ length: 8 }, (_, i) => draft(i % 3 === 2 ? h : g, null, i));
  const direct = draft(null, r!, 'direct');
  const before: Batch[] = [
    step(a, [cmd.register(ids), cmd.add(g, p!)], T0),
    step(a, [cmd.notify(notes[0]!), cmd.add(g, q!), cmd.add(h, p!)], T0 + 10),
    step(a, [cmd.notify(notes[1]!), cmd.remove(g, p!), cmd.notify(notes[2]!)], T0 + 20),
    step(a, [cmd.add(g, p!), cmd.notify(notes[3]!), cmd.add(h, r!), cmd.notify(direct)], T0 + 30),
  ];
  const checkpoint = wire(a.checkpoint(T0 + 35));
  const after: Batch[] = [
    step(a, [cmd.notify(notes[4]!), cmd.remove(h, p!), cmd.notify(notes[5]!)], T0 + 40),
    step(a, [cmd.remove(g, q!), cmd.notify(notes[6]!), cmd.notify(notes[7]!)], T0 + 50),
  ];
  return { a, ids, g, h, before, checkpoint, after, notes };
}

describe('StompReplica.checkpoint and catchUp from a checkpoint', () => {
  test('the checkpoint records the state as of the last applied batch', () => {
    const { checkpoint, before } = history();
    assert.equal(checkpoint.t, 'checkpoint');
    assert.equal(checkpoint.epoch, 'e1');
    assert.equal(checkpoint.bi, before.length);
    assert.equal(checkpoint.seq, Math.max(...before.flatMap(eventsOf).map((e) => e.seq)));
    assert.equal(checkpoint.at, T0 + 35);
    assert.throws(() => new StompReplica(OPTIONS).checkpoint(T0), /empty replica/);
  });

  test('a fresh replica reloads history, checkpoint and later batches, and reads old cursors', async () => {
    const { a, ids, g, h, before, checkpoint, after, notes } = history();
    const c = new StompReplica(OPTIONS);
    assert.equal(c.loaded, false);
    const messages: LogMessage[] = [...before, checkpoint, ...after];
    assert.deepEqual(c.catchUp(messages), { kind: 'reloaded' });
    assert.equal(c.loaded, true);
    assert.equal(c.epoch, a.epoch);
    assert.equal(c.bi, a.bi);
    assert.equal(c.headSeq, a.headSeq);
    // Every cursor, including those before the checkpoint, reads as on A: the membership
    // history came back with the checkpoint.
    assert.ok(checkpoint.seq > 3, 'the history has cursors before the checkpoint');
    assert.deepEqual(await allReads(c, ids), await allReads(a, ids));
    const old = await readAt(c, { epoch: 'e1', seq: 1 }, ids, 100);
    assert.deepEqual(deliveredIds(old).slice(0, 1), [`${notes[0]!.id}>${ids[0]!}`]);
    for (const name of [g, h]) assert.deepEqual(c.members(name), a.members(name));
    for (const id of ids) assert.equal(c.isLive(id, T0 + TTL - 1), a.isLive(id, T0 + TTL - 1));
    assert.deepEqual(c.checkpoint(T0), a.checkpoint(T0));
  });

  test('after a reload, commands numbered before or after the checkpoint are not renumbered', () => {
    const { before, checkpoint, after, notes } = history();
    const c = new StompReplica(OPTIONS);
    c.catchUp([...before, checkpoint, ...after]);
    const early = cmd.notify(notes[0]!);
    const late = cmd.notify(notes[7]!);
    const batch = c.buildBatch([early, late], T0 + 60);
    const seqOf = (id: string) =>
      [...before, ...after].flatMap(eventsOf).find((e) => e.type === 'notification' && e.id === id)
        ?.seq;
    assert.deepEqual(batch?.entries, [
      { k: 'ok', c: early.c, seq: seqOf(notes[0]!.id) },
      { k: 'ok', c: late.c, seq: seqOf(notes[7]!.id) },
    ]);
  });

  test('without the batches before the checkpoint, older cursors are reset', async () => {
    const { a, ids, g, checkpoint, after } = history();
    const c = new StompReplica(OPTIONS);
    assert.deepEqual(c.catchUp([checkpoint, ...after]), { kind: 'reloaded' });
    assert.equal(c.bi, a.bi);
    assert.equal(c.headSeq, a.headSeq);
    const older = await readAt(c, { epoch: 'e1', seq: checkpoint.seq - 1 }, ids, 100);
    assert.deepEqual(older, {
      kind: 'reset',
      cursor: encodeCursor('e1', a.headSeq),
      cursorSeq: a.headSeq,
    });
    const from = { epoch: 'e1', seq: checkpoint.seq };
    assert.deepEqual(await readAt(c, from, ids, 100), await readAt(a, from, ids, 100));
    assert.deepEqual(c.members(g), a.members(g));
  });
});

describe('StompReplica.catchUp on a loaded replica', () => {
  test('applies only the missing batches and returns their events in order', () => {
    const { a, before, checkpoint, after } = history();
    const b = started();
    b.apply(before[0]!);
    b.apply(before[1]!);
    const result = b.catchUp([...before, checkpoint, ...after]);
    assert.equal(result.kind, 'applied');
    const missing = [...before.slice(2), ...after].flatMap(eventsOf);
    assert.deepEqual(result.kind === 'applied' ? result.events : null, missing);
    assert.equal(b.bi, a.bi);
    assert.equal(b.headSeq, a.headSeq);
    assert.deepEqual(b.checkpoint(T0), a.checkpoint(T0));
  });

  test('stops at a hole in the middle of the browse', () => {
    const { before, checkpoint, after } = history();
    const b = started();
    b.apply(before[0]!);
    const result = b.catchUp([before[1]!, before[2]!, checkpoint, after[1]!]);
    assert.equal(result.kind, 'applied');
    assert.deepEqual(
      result.kind === 'applied' ? result.events : null,
      [before[1]!, before[2]!].flatMap(eventsOf),
    );
    assert.equal(b.bi, 3);
  });

  test('a browse with nothing new applies nothing', () => {
    const { a, before, checkpoint, after } = history();
    const b = started();
    for (const batch of [...before, ...after]) b.apply(batch);
    assert.deepEqual(b.catchUp([...before, checkpoint, ...after]), {
      kind: 'applied',
      events: [],
    });
    assert.deepEqual(b.catchUp([]), { kind: 'applied', events: [] });
    assert.equal(b.bi, a.bi);
  });

  test('batches starting beyond bi + 1 (a hole) reload from the checkpoint', async () => {
    const { a, ids, before, checkpoint, after } = history();
    const b = started();
    b.apply(before[0]!);
    // The batches b missed expired from the log queue; the checkpoint and later batches remain.
    assert.deepEqual(b.catchUp([checkpoint, ...after]), { kind: 'reloaded' });
    assert.equal(b.bi, a.bi);
    assert.equal(b.headSeq, a.headSeq);
    const from = { epoch: 'e1', seq: checkpoint.seq };
    assert.deepEqual(await readAt(b, from, ids, 100), await readAt(a, from, ids, 100));
  });

  test('a hole with no checkpoint to load leaves the replica as it was', () => {
    const { before, after } = history();
    const b = started();
    b.apply(before[0]!);
    const kept = b.checkpoint(T0);
    assert.deepEqual(b.catchUp(after), { kind: 'empty' });
    assert.deepEqual(b.checkpoint(T0), kept);
  });

  // A regression test: with no batch after `bi` in the browse, catchUp once answered 'applied'
  // although a checkpoint of the same epoch was ahead (its batches deleted from the queue).
  test('a replica behind a checkpoint whose batches were deleted reloads from it', () => {
    const { a, before, checkpoint } = history();
    const b = started();
    b.apply(before[0]!);
    const result = b.catchUp([checkpoint]);
    assert.deepEqual(result, { kind: 'reloaded' });
    assert.equal(b.bi, checkpoint.bi);
    assert.equal(b.headSeq, checkpoint.seq);
    assert.ok(a.bi > checkpoint.bi, 'the cluster went on after the checkpoint');
  });

  test('a checkpoint of another epoch reloads into that epoch', async () => {
    const old = started('e1');
    const [p] = mintPushIds(1);
    const g = group('g');
    const oldBatches = [
      step(old, [cmd.register([p!]), cmd.add(g, p!)], T0),
      step(old, [cmd.notify(draft(g, null))], T0 + 1),
    ];
    const next = started('e2');
    const [q] = mintPushIds(1);
    const nextBefore = step(next, [cmd.register([q!]), cmd.add(g, q!)], T0 + 2);
    const nextCheckpoint = wire(next.checkpoint(T0 + 3));
    const nextAfter = step(next, [cmd.notify(draft(g, null))], T0 + 4);

    const result = old.catchUp([...oldBatches, nextBefore, nextCheckpoint, nextAfter]);
    assert.deepEqual(result, { kind: 'reloaded' });
    assert.equal(old.epoch, 'e2');
    assert.equal(old.bi, next.bi);
    assert.equal(old.headSeq, next.headSeq);
    assert.deepEqual(old.members(g), [q]);
    assert.equal((await readAt(old, { epoch: 'e1', seq: 2 }, [p!], 10)).kind, 'reset');
    assert.deepEqual(
      await readAt(old, { epoch: 'e2', seq: 0 }, [q!], 10),
      await readAt(next, { epoch: 'e2', seq: 0 }, [q!], 10),
    );
  });
});

describe('StompReplica.catchUp on an empty replica', () => {
  test('an empty browse, or batches with no checkpoint, is empty', () => {
    const c = new StompReplica(OPTIONS);
    assert.deepEqual(c.catchUp([]), { kind: 'empty' });
    assert.equal(c.loaded, false);
    const { before } = history();
    assert.deepEqual(c.catchUp(before), { kind: 'empty' });
    assert.equal(c.loaded, false);
    assert.equal(c.epoch, null);
  });

  test('loads the newest of several checkpoints', () => {
    const { a, before, checkpoint, after } = history();
    const newer = wire(a.checkpoint(T0 + 55));
    const c = new StompReplica(OPTIONS);
    assert.deepEqual(c.catchUp([...before, checkpoint, ...after, newer]), { kind: 'reloaded' });
    assert.equal(c.bi, a.bi);
    assert.deepEqual(c.checkpoint(T0), a.checkpoint(T0));
    // The batches in between expired: only the newer checkpoint has the whole state.
    const d = new StompReplica(OPTIONS);
    assert.deepEqual(d.catchUp([checkpoint, newer]), { kind: 'reloaded' });
    assert.equal(d.bi, a.bi);
    assert.equal(d.headSeq, a.headSeq);
  });
});

describe('StompReplica: log retention', () => {
  test('apply trims events older than retention by batch clock; older cursors are reset', async () => {
    const r = started('e1', { ...OPTIONS, retentionMs: 10_000 });
    const [p] = mintPushIds(1);
    const g = group('g');
    const n1 = draft(g, null);
    const n2 = draft(g, null);
    step(r, [cmd.register([p!]), cmd.add(g, p!), cmd.notify(n1)], T0); // 1 2
    step(r, [cmd.notify(n2)], T0 + 5_000); // 3
    // Exactly at the edge of retention nothing is dropped yet.
    step(r, [cmd.probe()], T0 + 10_000);
    assert.deepEqual(deliveredIds(await readAt(r, { epoch: 'e1', seq: 0 }, [p!], 10)), [
      `${n1.id}>${p}`,
      `${n2.id}>${p}`,
    ]);
    // A batch with no events still moves the clock: seqs 1 and 2 (at T0) are dropped.
    step(r, [cmd.touch([p!])], T0 + 10_001);
    const reset = { kind: 'reset', cursor: encodeCursor('e1', 3), cursorSeq: 3 };
    assert.deepEqual(await readAt(r, { epoch: 'e1', seq: 0 }, [p!], 10), reset);
    assert.deepEqual(await readAt(r, { epoch: 'e1', seq: 1 }, [p!], 10), reset);
    assert.deepEqual(deliveredIds(await readAt(r, { epoch: 'e1', seq: 2 }, [p!], 10)), [
      `${n2.id}>${p}`,
    ]);
  });

  test('a cursor of another epoch, or beyond the head, is reset', async () => {
    const r = started();
    step(r, [cmd.notify(draft(group('g'), null))], T0);
    const reset = { kind: 'reset', cursor: encodeCursor('e1', 1), cursorSeq: 1 };
    assert.deepEqual(await readAt(r, { epoch: 'e0', seq: 1 }, [], 10), reset);
    assert.deepEqual(await readAt(r, { epoch: 'e1', seq: 2 }, [], 10), reset);
    const head = await readAt(r, null, [], 10);
    assert.equal(head.kind, 'read');
    assert.equal(head.cursorSeq, 1);
  });
});
