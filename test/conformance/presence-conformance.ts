/**
 * Presence conformance: the presence primitives of a driver (a per-push-ID compare-and-set
 * with its due and holder indexes), exercised through the one protocol on two nodes `a` and
 * `b` of one cluster. Every driver that keeps presence must pass it unchanged.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { BackplaneOptions, ClusterEventSink } from '../../src/backplane/backplane.js';
import { ReplicatedBackplane } from '../../src/backplane/protocol/replicated-backplane.js';
import { mintPushIds, type PushId } from '../../src/core/push-id.js';
import type { GroupName } from '../../src/core/group-name.js';
import type { DriverFactory } from './backplane-conformance.js';
import { TappedDriver } from './tapped-driver.js';

const GRACE_MS = 300;
/** The node timeout of the dead-node test (longer than the grace). */
const NODE_TIMEOUT_MS = 1000;
const TTL_MS = 1500;

const quietSink: ClusterEventSink = {
  onEvent: () => undefined,
  onGap: () => undefined,
  onAvailability: () => undefined,
};

type Changes = { pushId: PushId; state: string }[];

async function open(factory: DriverFactory, nodeTimeoutMs = 15_000) {
  const changes: Changes = [];
  const options: BackplaneOptions = {
    retentionMs: 60_000,
    pushIdTtlMs: TTL_MS,
    maxLogBytes: 64 << 20,
    nodeTimeoutMs,
    presenceGraceMs: GRACE_MS,
    onPresenceChanges: (pushId, list) => {
      for (const change of list) changes.push({ pushId, state: change.state });
    },
  };
  const drivers = await factory(options);
  const a = new ReplicatedBackplane(drivers.a, options);
  const b = new ReplicatedBackplane(new TappedDriver(drivers.b).asDriver(), options);
  await a.start(quietSink);
  await b.start(quietSink);
  const startedAt = new Date().toISOString();
  await a.heartbeat({ id: 'node-a', connections: 0, startedAt });
  await b.heartbeat({ id: 'node-b', connections: 0, startedAt });
  return {
    a,
    b,
    drivers,
    changes,
    close: async () => {
      await a.stop();
      await b.stop();
      await drivers.close?.();
    },
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Sweeps on both nodes until `done` holds (a background sweep may be running meanwhile). */
async function sweepUntil(
  nodes: readonly ReplicatedBackplane[],
  done: () => boolean,
  ms = 5000,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) {
    await Promise.all(nodes.map((node) => node.sweepPresence()));
    await sleep(50);
  }
}

const count = (changes: Changes, pushId: PushId, state: string): number =>
  changes.filter((c) => c.pushId === pushId && c.state === state).length;

export function runPresenceConformance(name: string, factory: DriverFactory): void {
  describe(`presence conformance: ${name}`, () => {
    test('a write with a stale version is refused, and only one of two racing writes wins', async () => {
      const c = await open(factory);
      try {
        const [pushId] = mintPushIds(1) as [PushId];
        const write = { record: '{}', due: null, holders: [], keepMs: null };
        const { a, b } = c.drivers;
        assert.equal(await a.presenceWrite?.(pushId, 0, write), 1);
        assert.equal(await b.presenceWrite?.(pushId, 0, write), null);
        const results = await Promise.all([
          a.presenceWrite?.(pushId, 1, write),
          b.presenceWrite?.(pushId, 1, write),
        ]);
        assert.deepEqual(
          results.filter((r) => r === 2),
          [2],
        );
        assert.equal((await a.presenceRead?.([pushId]))?.get(pushId)?.version, 2);
      } finally {
        await c.close();
      }
    });

    test('the due and holder indexes follow the writes', async () => {
      const c = await open(factory);
      try {
        const [p1, p2] = mintPushIds(2) as [PushId, PushId];
        const { a } = c.drivers;
        await a.presenceWrite?.(p1, 0, { record: '{}', due: 1000, holders: ['n1'], keepMs: null });
        await a.presenceWrite?.(p2, 0, {
          record: '{}',
          due: 5000,
          holders: ['n1', 'n2'],
          keepMs: null,
        });
        assert.deepEqual(await a.presenceDue?.(2000, 10), [p1]);
        assert.deepEqual(new Set(await a.presenceHeldBy?.('n1', 10)), new Set([p1, p2]));
        assert.deepEqual(new Set(await a.presenceHolders?.()), new Set(['n1', 'n2']));
        await a.presenceWrite?.(p2, 1, { record: '{}', due: null, holders: ['n1'], keepMs: null });
        assert.deepEqual(await a.presenceHeldBy?.('n2', 10), []);
        assert.deepEqual(await a.presenceHolders?.(), ['n1']);
        assert.deepEqual(await a.presenceDue?.(10_000, 10), [p1]);
      } finally {
        await c.close();
      }
    });

    test('a hold on one node reads listening on the other, stays so through the grace, then idle', async () => {
      const c = await open(factory);
      try {
        const [pushId] = mintPushIds(1) as [PushId];
        await c.a.register([pushId]);
        assert.equal((await c.b.presenceOf(pushId))?.state, 'idle');
        await c.a.presenceHolds('node-a', [pushId], []);
        assert.equal((await c.b.presenceOf(pushId))?.state, 'listening');
        const released = Date.now();
        await c.a.presenceHolds('node-a', [], [{ pushId, at: released }]);
        assert.equal((await c.b.presenceOf(pushId))?.state, 'listening');
        await sleep(GRACE_MS + 100);
        const view = await c.b.presenceOf(pushId);
        assert.equal(view?.state, 'idle');
        assert.equal(view.since, released + GRACE_MS);
      } finally {
        await c.close();
      }
    });

    test('a move to another node within the grace never reads idle and reports no change', async () => {
      const c = await open(factory);
      try {
        const [pushId] = mintPushIds(1) as [PushId];
        await c.a.register([pushId]);
        await c.a.presenceHolds('node-a', [pushId], []);
        await c.a.presenceHolds('node-a', [], [{ pushId, at: Date.now() }]);
        await sleep(GRACE_MS / 2);
        await c.b.presenceHolds('node-b', [pushId], []);
        await sleep(GRACE_MS * 2);
        await Promise.all([c.a.sweepPresence(), c.b.sweepPresence()]);
        assert.equal((await c.a.presenceOf(pushId))?.state, 'listening');
        assert.equal(count(c.changes, pushId, 'listening'), 1);
        assert.equal(count(c.changes, pushId, 'idle'), 0);
      } finally {
        await c.close();
      }
    });

    test('each state change is decided once when both nodes race for it', async () => {
      const c = await open(factory);
      try {
        const pushIds = mintPushIds(20);
        await c.a.register(pushIds);
        await Promise.all([
          c.a.presenceHolds('node-a', pushIds, []),
          c.b.presenceHolds('node-b', pushIds, []),
        ]);
        const at = Date.now();
        const releases = pushIds.map((pushId) => ({ pushId, at }));
        await Promise.all([
          c.a.presenceHolds('node-a', [], releases),
          c.b.presenceHolds('node-b', [], releases),
        ]);
        await sleep(GRACE_MS + 100);
        await sweepUntil([c.a, c.b], () => pushIds.every((p) => count(c.changes, p, 'idle') > 0));
        await Promise.all([c.a.sweepPresence(), c.b.sweepPresence()]);
        for (const pushId of pushIds) {
          assert.equal(count(c.changes, pushId, 'listening'), 1, 'listening once');
          assert.equal(count(c.changes, pushId, 'idle'), 1, 'idle once');
          assert.equal((await c.b.presenceOf(pushId))?.state, 'idle');
        }
      } finally {
        await c.close();
      }
    });

    test("a dead node's holds end at its death", async () => {
      const c = await open(factory, NODE_TIMEOUT_MS);
      try {
        const [pushId] = mintPushIds(1) as [PushId];
        await c.a.register([pushId]);
        // A node that started less than a node timeout ago does not yet judge a node missing
        // from its directory (it may not have heard all beats yet): it reads it as alive.
        await c.a.presenceHolds('ghost', [pushId], []);
        assert.equal((await c.a.presenceOf(pushId))?.state, 'listening');
        await sleep(NODE_TIMEOUT_MS + 100);
        await c.a.register([pushId]); // live for another TTL
        // Now `ghost`, in no directory, is dead for at least a node timeout (past the grace).
        assert.equal((await c.a.presenceOf(pushId))?.state, 'idle');
        await sweepUntil([c.b], () => count(c.changes, pushId, 'idle') > 0);
        assert.deepEqual(await c.drivers.a.presenceHeldBy?.('ghost', 10), []);
        assert.equal(count(c.changes, pushId, 'idle'), 1);
      } finally {
        await c.close();
      }
    });

    test('a push ID past its TTL reads expired and its expiry is reported once', async () => {
      const c = await open(factory);
      try {
        const [pushId] = mintPushIds(1) as [PushId];
        await c.a.register([pushId]);
        await c.a.addMember('g' as GroupName, pushId);
        await sleep(TTL_MS + 1300);
        await Promise.all([c.a.sweep(), c.b.sweep()]);
        await sweepUntil([c.a, c.b], () => count(c.changes, pushId, 'expired') > 0);
        const view = await c.b.presenceOf(pushId);
        assert.equal(view?.state, 'expired');
        assert.deepEqual(view.groups, []);
        assert.equal(count(c.changes, pushId, 'expired'), 1);
      } finally {
        await c.close();
      }
    });

    test('a group reports its member count and the members listening', async () => {
      const c = await open(factory);
      try {
        const group = 'room' as GroupName;
        const [p1, p2, p3] = mintPushIds(3) as [PushId, PushId, PushId];
        await c.a.register([p1, p2, p3]);
        for (const pushId of [p1, p2, p3]) await c.a.addMember(group, pushId);
        await c.a.presenceHolds('node-a', [p1], []);
        await c.b.presenceHolds('node-b', [p3], []);
        const answer = await c.b.groupPresence(group);
        assert.equal(answer.members, 3);
        assert.deepEqual(new Set(answer.listening), new Set([p1, p3]));
      } finally {
        await c.close();
      }
    });

    test("a push ID's groups read on one node include the changes another node just made", async () => {
      const c = await open(factory);
      try {
        const [pushId] = mintPushIds(1) as [PushId];
        await c.a.register([pushId]);
        // Each read follows its change at once: a replica that lags shows in one of the rounds.
        for (let i = 0; i < 10; i++) {
          const group = `room-${i}` as GroupName;
          await c.a.addMember(group, pushId);
          assert.deepEqual((await c.b.presenceOf(pushId))?.groups, [group], `round ${i}: joined`);
          await c.a.removeMember(group, pushId);
          assert.deepEqual((await c.b.presenceOf(pushId))?.groups, [], `round ${i}: left`);
        }
      } finally {
        await c.close();
      }
    });

    test('a push ID never minted reads as absent', async () => {
      const c = await open(factory);
      try {
        const [pushId] = mintPushIds(1) as [PushId];
        assert.equal(await c.a.presenceOf(pushId), null);
      } finally {
        await c.close();
      }
    });
  });
}
