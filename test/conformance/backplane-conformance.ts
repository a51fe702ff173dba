/**
 * The backplane conformance suite: every driver (memory, IPC, redis, nats, stomp) must pass it,
 * under the one cluster protocol. A driver under test is handed out as two drivers, `a` and `b`,
 * that behave like two nodes of one cluster (two connections to one broker, or one store); the
 * suite runs the protocol over each, with a tap under `b` that loses tail entries and takes the
 * link down and up, to check that the protocol repairs both on every driver.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type {
  Backplane,
  BackplaneOptions,
  ClusterEventSink,
} from '../../src/backplane/backplane.js';
import type { BackplaneDriver, StampedDraft } from '../../src/backplane/driver.js';
import { ReplicatedBackplane } from '../../src/backplane/protocol/replicated-backplane.js';
import { STAYS_PER_GROUP } from '../../src/core/membership-history.js';
import { TappedDriver } from './tapped-driver.js';
import { decodeCursor, type CursorPosition } from '../../src/core/cursor.js';
import { EpushError } from '../../src/core/errors.js';
import type { ClusterEvent, NotificationEvent, NotificationId } from '../../src/core/events.js';
import type { GroupName } from '../../src/core/group-name.js';
import { mintPushIds, type PushId } from '../../src/core/push-id.js';

export interface DriverPair {
  readonly a: BackplaneDriver;
  readonly b: BackplaneDriver;
  /** Frees what the pair holds beyond the drivers (they are closed by the suite). */
  close?(): Promise<void>;
}

export type DriverFactory = (options: BackplaneOptions) => Promise<DriverPair>;

interface BackplanePair {
  readonly a: Backplane;
  readonly b: Backplane;
  /** The tap under `b`. */
  readonly tap: TappedDriver;
  close(): Promise<void>;
}

async function open(factory: DriverFactory, options: BackplaneOptions): Promise<BackplanePair> {
  const drivers = await factory(options);
  const tap = new TappedDriver(drivers.b);
  const a = new ReplicatedBackplane(drivers.a, options);
  const b = new ReplicatedBackplane(tap.asDriver(), options);
  return {
    a,
    b,
    tap,
    close: async () => {
      await a.stop();
      await b.stop();
      await drivers.close?.();
    },
  };
}

const OPTIONS: BackplaneOptions = {
  retentionMs: 60_000,
  pushIdTtlMs: 400,
  maxLogBytes: 64 << 20,
  nodeTimeoutMs: 15_000,
};

class RecordingSink implements ClusterEventSink {
  readonly events: ClusterEvent[] = [];
  up = false;
  gaps: number[] = [];
  onEvent(event: ClusterEvent): void {
    this.events.push(event);
  }
  onGap(resumeSeq: number): void {
    this.gaps.push(resumeSeq);
  }
  onAvailability(up: boolean): void {
    this.up = up;
  }
  /** Resolves once an event matching `predicate` has arrived. */
  async waitFor(
    predicate: (event: ClusterEvent) => boolean,
    timeoutMs = 3000,
  ): Promise<ClusterEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.find(predicate);
      if (found) return found;
      if (Date.now() > deadline) throw new Error('timed out waiting for a cluster event');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
}

let counter = 0;
function uniqueGroup(): GroupName {
  counter += 1;
  return `conformance.${process.pid}.${counter}.${Math.random().toString(36).slice(2, 8)}` as GroupName;
}

function draft(group: GroupName | null, pushId: PushId | null, payload: unknown = null) {
  counter += 1;
  return {
    type: 'notification' as const,
    id: `conf${counter}` as NotificationId,
    group,
    pushId,
    payloadJson: JSON.stringify(payload),
    publishedAt: Date.now(),
  };
}

function uniqueKey(): string {
  counter += 1;
  return `idem-${process.pid}-${counter}-${Math.random().toString(36).slice(2, 8)}`;
}

function stamped(
  notification: ReturnType<typeof draft>,
  key: string,
  fingerprint: string,
): StampedDraft {
  return { ...notification, idem: { key, fingerprint } };
}

function position(cursor: string): CursorPosition {
  const decoded = decodeCursor(cursor);
  assert.ok(decoded, `not a cursor: ${cursor}`);
  return decoded;
}

async function freshIds(backplane: Backplane, count: number): Promise<PushId[]> {
  const ids = mintPushIds(count);
  await backplane.register(ids);
  return ids;
}

export function runBackplaneConformance(name: string, factory: DriverFactory): void {
  describe(`backplane conformance: ${name}`, () => {
    let pair: BackplanePair;
    const sinkA = new RecordingSink();
    const sinkB = new RecordingSink();

    before(async () => {
      pair = await open(factory, OPTIONS);
      await pair.a.start(sinkA);
      await pair.b.start(sinkB);
    });

    after(async () => {
      await pair.close();
    });

    test('declares its guarantees with a summary for the start-up banner', () => {
      const { guarantees } = pair.a;
      assert.equal(typeof guarantees.summary, 'string');
      assert.ok(guarantees.summary.length > 10);
      for (const key of [
        'multiNode',
        'survivesNodeLoss',
        'survivesBackplaneRestart',
        'exactResume',
      ] as const) {
        assert.equal(typeof guarantees[key], 'boolean', key);
      }
      assert.equal(pair.a.isUp(), true);
      assert.equal(sinkA.up, true, 'start reports availability');
    });

    test('a probe comes back through the fan-out path on every node', async () => {
      await Promise.all([pair.a.probe(), pair.b.probe(), pair.a.probe()]);
    });

    test('a published notification reaches every node in seq order', async () => {
      const [id] = await freshIds(pair.a, 1);
      const first = await pair.a.publish(draft(null, id!, { n: 1 }));
      const second = await pair.b.publish(draft(null, id!, { n: 2 }));
      assert.ok(second.seq > first.seq);
      for (const sink of [sinkA, sinkB]) {
        await sink.waitFor((e) => e.seq === second.seq);
        const seqs = sink.events.map((e) => e.seq);
        assert.deepEqual(
          seqs,
          [...seqs].sort((x, y) => x - y),
          'in order',
        );
        for (let i = 1; i < seqs.length; i++)
          assert.equal(seqs[i], seqs[i - 1]! + 1, 'without gaps');
        const got = sink.events.find((e) => e.seq === first.seq) as NotificationEvent;
        assert.equal(got.payloadJson, '{"n":1}');
        assert.equal(got.id, first.id);
      }
    });

    test('a cursor taken on one node resumes exactly on the other', async () => {
      const [id] = await freshIds(pair.a, 1);
      const start = await pair.a.head();
      const published: NotificationEvent[] = [];
      for (let n = 0; n < 5; n++) published.push(await pair.a.publish(draft(null, id!, n)));
      const read = await pair.b.readForListener(position(start.cursor), [id!], 100);
      assert.equal(read.kind, 'read');
      if (read.kind !== 'read') return;
      assert.deepEqual(
        read.deliveries.map((d) => d.event.id),
        published.map((e) => e.id),
      );
      assert.deepEqual(
        read.deliveries.map((d) => d.pushId),
        published.map(() => id),
      );
      const again = await pair.a.readForListener(position(read.cursor), [id!], 100);
      assert.equal(again.kind === 'read' ? again.deliveries.length : -1, 0, 'nothing repeated');
    });

    test('a null cursor means from now', async () => {
      const [id] = await freshIds(pair.a, 1);
      await pair.a.publish(draft(null, id!));
      const read = await pair.b.readForListener(null, [id!], 100);
      assert.equal(read.kind === 'read' ? read.deliveries.length : -1, 0);
    });

    test('a group notification reaches the push IDs that were members when it was published', async () => {
      const group = uniqueGroup();
      const [early, late, leaver, outsider] = await freshIds(pair.a, 4);
      await pair.a.addMember(group, early!);
      await pair.b.addMember(group, leaver!);
      const start = await pair.a.head();
      const event = await pair.b.publish(draft(group, null, 'hello'));
      await pair.a.addMember(group, late!);
      await pair.a.removeMember(group, leaver!);
      const read = await pair.a.readForListener(
        position(start.cursor),
        [early!, late!, leaver!, outsider!],
        100,
      );
      assert.equal(read.kind, 'read');
      if (read.kind !== 'read') return;
      assert.deepEqual(
        read.deliveries.map((d) => d.pushId).sort(),
        [early!, leaver!].sort(),
        'joined later: no; left later: yes; never a member: no',
      );
      assert.ok(read.deliveries.every((d) => d.event.id === event.id && d.event.group === group));
      assert.deepEqual(read.groups.get(late!), [group], 'groups are as of the cursor');
      assert.deepEqual(read.groups.get(leaver!), []);
    });

    test('membership is the same from every node, and add/remove are idempotent', async () => {
      const group = uniqueGroup();
      const [x, y] = await freshIds(pair.a, 2);
      await pair.a.addMember(group, x!);
      await pair.b.addMember(group, x!);
      await pair.b.addMember(group, y!);
      assert.deepEqual((await pair.a.members(group)).sort(), [x!, y!].sort());
      await pair.a.removeMember(group, y!);
      await pair.b.removeMember(group, y!);
      assert.deepEqual(await pair.b.members(group), [x!]);
      const added = sinkB.events.filter((e) => e.type === 'member-added' && e.group === group);
      assert.equal(added.length, 2, 'a repeated add does not emit a second event');
    });

    test('adding an unknown push ID is refused with push_id_not_found', async () => {
      const [stranger] = mintPushIds(1);
      await assert.rejects(pair.a.addMember(uniqueGroup(), stranger!), (error: unknown) => {
        assert.ok(error instanceof EpushError);
        assert.equal(error.code, 'push_id_not_found');
        return true;
      });
    });

    test('touch reports unknown push IDs as expired and keeps live ones alive', async () => {
      const [live] = await freshIds(pair.a, 1);
      const [stranger] = mintPushIds(1);
      assert.deepEqual(await pair.b.touch([live!, stranger!]), [stranger]);
      assert.equal(await pair.b.isLive(live!), true);
      for (let i = 0; i < 4; i++) {
        await new Promise((resolve) => setTimeout(resolve, OPTIONS.pushIdTtlMs / 2));
        assert.deepEqual(
          await pair.a.touch([live!]),
          [],
          'touching keeps it alive past its first TTL',
        );
      }
    });

    test('an unheld push ID expires after its TTL and leaves every group', async () => {
      const group = uniqueGroup();
      const [doomed, keeper] = await freshIds(pair.a, 2);
      await pair.a.addMember(group, doomed!);
      await pair.a.addMember(group, keeper!);
      const deadline = Date.now() + OPTIONS.pushIdTtlMs * 6;
      while (Date.now() < deadline && (await pair.b.isLive(doomed!))) {
        await pair.a.touch([keeper!]);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await pair.a.touch([keeper!]);
      assert.equal(await pair.b.isLive(doomed!), false);
      assert.deepEqual(await pair.b.touch([doomed!]), [doomed], 'an expired push ID stays expired');
      const expiredEvent = sinkB.waitFor(
        (e) => e.type === 'push-id-expired' && e.pushId === doomed,
      );
      const keepAlive = setInterval(() => void pair.a.touch([keeper!]), 50);
      try {
        await expiredEvent;
        assert.deepEqual(await pair.a.members(group), [keeper]);
      } finally {
        clearInterval(keepAlive);
      }
    });

    test('a read is limited, and the cursor lets the reader continue where it stopped', async () => {
      const [id] = await freshIds(pair.a, 1);
      const start = await pair.a.head();
      for (let n = 0; n < 7; n++) await pair.a.publish(draft(null, id!, n));
      const first = await pair.b.readForListener(position(start.cursor), [id!], 3);
      assert.equal(first.kind === 'read' ? first.deliveries.length : -1, 3);
      const rest = await pair.b.readForListener(position(first.cursor), [id!], 100);
      assert.deepEqual(
        rest.kind === 'read'
          ? rest.deliveries.map((d) => JSON.parse(d.event.payloadJson) as number)
          : [],
        [3, 4, 5, 6],
      );
    });

    test('a cursor from another log epoch is answered with reset at the head', async () => {
      const [id] = await freshIds(pair.a, 1);
      const head = await pair.a.head();
      const read = await pair.b.readForListener({ epoch: 'zzzzzz', seq: 1 }, [id!], 10);
      assert.equal(read.kind, 'reset');
      assert.ok(read.cursorSeq >= head.seq);
      assert.notEqual(position(read.cursor).epoch, 'zzzzzz');
    });

    test('entries the live tail lost are read back from the log, in order, without a gap', async () => {
      const [id] = await freshIds(pair.a, 1);
      const gaps = sinkB.gaps.length;
      const first = await pair.a.publish(draft(null, id!, 'first'));
      pair.tap.drop = (entry) => entry.seq === first.seq + 1;
      const lost = await pair.a.publish(draft(null, id!, 'lost'));
      pair.tap.drop = () => false;
      const third = await pair.a.publish(draft(null, id!, 'third'));
      await sinkB.waitFor((e) => e.seq === third.seq);
      const seqs = sinkB.events.map((e) => e.seq);
      for (let i = 1; i < seqs.length; i++) assert.equal(seqs[i], seqs[i - 1]! + 1, 'no gap');
      assert.ok(seqs.includes(lost.seq), 'the lost entry was read back');
      assert.equal(sinkB.gaps.length, gaps, 'repaired without a gap report');
    });

    test('a tail that stopped delivering fails the probe, and what it missed arrives after', async () => {
      const [id] = await freshIds(pair.a, 1);
      // The tail delivers nothing (expiry events of other tests included): no hole shows it,
      // only the probe can notice that this node is behind the log.
      pair.tap.drop = () => true;
      const missed = await pair.a.publish(draft(null, id!, 'missed'));
      try {
        await assert.rejects(pair.b.probe(), /stuck/);
        await sinkB.waitFor((e) => e.seq === missed.seq);
      } finally {
        pair.tap.drop = () => false;
      }
      await pair.b.probe();
    });

    test('availability goes down and up, and what was appended meanwhile is delivered', async () => {
      const [id] = await freshIds(pair.a, 1);
      pair.tap.setDown(true);
      assert.equal(sinkB.up, false, 'down is reported');
      assert.equal(pair.b.isUp(), false);
      const during = await pair.a.publish(draft(null, id!, 'during'));
      pair.tap.setDown(false);
      assert.equal(sinkB.up, true, 'up is reported');
      await sinkB.waitFor((e) => e.seq === during.seq);
    });

    test(`the membership history keeps the last ${STAYS_PER_GROUP} stays of a push ID in a group`, async () => {
      const group = uniqueGroup();
      const [id] = await freshIds(pair.a, 1);
      const start = await pair.a.head();
      const sent: NotificationEvent[] = [];
      const stays = STAYS_PER_GROUP + 2;
      for (let n = 0; n < stays; n++) {
        // Live again for a TTL (400 ms here): ten rounds on a busy box can take longer.
        await pair.a.register([id!]);
        await pair.a.addMember(group, id!);
        sent.push(await pair.b.publish(draft(group, null, n)));
        await pair.b.removeMember(group, id!);
      }
      // Every node gives the same answer from the oldest cursor: the oldest stays are forgotten.
      for (const node of [pair.a, pair.b]) {
        const read = await node.readForListener(position(start.cursor), [id!], 1000);
        assert.equal(read.kind, 'read');
        assert.deepEqual(
          read.kind === 'read' ? read.deliveries.map((d) => d.event.id) : [],
          sent.slice(stays - STAYS_PER_GROUP).map((e) => e.id),
        );
      }
    });

    test('idempotent publish: the same key twice on two nodes appends once and answers the first id', async () => {
      const [id] = await freshIds(pair.a, 1);
      const key = uniqueKey();
      const first = await pair.a.publishOnce(stamped(draft(null, id!, { n: 1 }), key, 'fp-1'));
      assert.equal(first.kind, 'published');
      const before = await pair.a.head();
      const again = await pair.b.publishOnce(stamped(draft(null, id!, { n: 1 }), key, 'fp-1'));
      const third = await pair.a.publishOnce(stamped(draft(null, id!, { n: 1 }), key, 'fp-1'));
      const firstId = first.kind === 'published' ? first.event.id : '';
      assert.deepEqual(again, { kind: 'repeat', id: firstId });
      assert.deepEqual(third, { kind: 'repeat', id: firstId });
      assert.equal((await pair.b.head()).seq, before.seq, 'nothing more was appended');
      const read = await pair.b.readForListener(position(before.cursor), [id!], 100);
      assert.equal(read.kind === 'read' ? read.deliveries.length : -1, 0);
    });

    test('idempotent publish: the same key with another fingerprint is a conflict', async () => {
      const key = uniqueKey();
      const group = uniqueGroup();
      await pair.a.publishOnce(stamped(draft(group, null, 'a'), key, 'fp-a'));
      await assert.rejects(
        pair.b.publishOnce(stamped(draft(group, null, 'b'), key, 'fp-b')),
        (error: unknown) => error instanceof EpushError && error.code === 'idempotency_conflict',
      );
      // Another key is another notification.
      const other = await pair.b.publishOnce(stamped(draft(group, null, 'b'), uniqueKey(), 'fp-b'));
      assert.equal(other.kind, 'published');
    });

    test('idempotent publish: two nodes racing the same key append exactly once', async () => {
      const group = uniqueGroup();
      const before = await pair.a.head();
      for (let round = 0; round < 5; round++) {
        const key = uniqueKey();
        const outcomes = await Promise.all(
          [pair.a, pair.b, pair.a, pair.b].map((node) =>
            node.publishOnce(stamped(draft(group, null, round), key, `fp-${round}`)),
          ),
        );
        const published = outcomes.filter((o) => o.kind === 'published');
        assert.equal(published.length, 1, `round ${round}: exactly one append`);
        const ids = new Set(outcomes.map((o) => (o.kind === 'published' ? o.event.id : o.id)));
        assert.equal(ids.size, 1, `round ${round}: every caller got the first id`);
      }
      assert.equal((await pair.b.head()).seq, before.seq + 5);
    });

    test('history of a group: its group notifications, oldest first, the most recent without since, a cursor that continues', async () => {
      const group = uniqueGroup();
      const start = await pair.a.head();
      const sent: NotificationEvent[] = [];
      for (let n = 0; n < 3; n++) sent.push(await pair.a.publish(draft(group, null, { n })));
      await pair.a.publish(draft(uniqueGroup(), null, 'elsewhere'));
      const all = await pair.b.history({ kind: 'group', group }, null, 100);
      assert.equal(all.reset, false);
      assert.deepEqual(
        all.items.map((i) => [i.event.id, i.pushId, i.event.group, i.event.payloadJson]),
        sent.map((e) => [e.id, null, group, e.payloadJson]),
      );
      const recent = await pair.a.history({ kind: 'group', group }, null, 2);
      assert.deepEqual(
        recent.items.map((i) => i.event.id),
        sent.slice(1).map((e) => e.id),
        'the most recent 2, oldest first',
      );
      const first = await pair.b.history({ kind: 'group', group }, position(start.cursor), 2);
      assert.deepEqual(
        first.items.map((i) => i.event.id),
        sent.slice(0, 2).map((e) => e.id),
      );
      const next = await pair.a.history({ kind: 'group', group }, position(first.cursor), 2);
      assert.deepEqual(
        next.items.map((i) => i.event.id),
        [sent[2]!.id],
      );
      const end = await pair.b.history({ kind: 'group', group }, position(next.cursor), 2);
      assert.deepEqual(end.items, []);
      const later = await pair.a.publish(draft(group, null, 'later'));
      const after = await pair.b.history({ kind: 'group', group }, position(end.cursor), 10);
      assert.deepEqual(
        after.items.map((i) => i.event.id),
        [later.id],
      );
    });

    test('history of a push ID: its direct notifications and those of groups it was a member of', async () => {
      const group = uniqueGroup();
      const [id, other] = await freshIds(pair.a, 2);
      const start = await pair.a.head();
      await pair.a.publish(draft(group, null, 'before it joined'));
      await pair.a.addMember(group, id!);
      const g = await pair.b.publish(draft(group, null, 'while a member'));
      const d = await pair.a.publish(draft(null, id!, 'direct'));
      await pair.a.publish(draft(null, other!, 'to another'));
      await pair.b.removeMember(group, id!);
      await pair.a.publish(draft(group, null, 'after it left'));
      for (const page of [
        await pair.b.history({ kind: 'push-id', pushId: id! }, position(start.cursor), 100),
        await pair.a.history({ kind: 'push-id', pushId: id! }, null, 100),
      ]) {
        assert.deepEqual(
          page.items.map((i) => [i.event.id, i.pushId, i.event.group]),
          [
            [g.id, id, group],
            [d.id, id, null],
          ],
        );
      }
      await assert.rejects(
        pair.b.history({ kind: 'push-id', pushId: mintPushIds(1)[0]! }, null, 10),
        (error: unknown) => error instanceof EpushError && error.code === 'push_id_not_found',
      );
    });

    test('history: a cursor of another epoch is answered with reset at the head', async () => {
      const page = await pair.a.history(
        { kind: 'group', group: uniqueGroup() },
        { epoch: 'otherepoch', seq: 1 },
        10,
      );
      assert.equal(page.reset, true);
      assert.deepEqual(page.items, []);
      assert.equal(page.cursor, (await pair.a.head()).cursor);
    });

    test('the node directory lists live nodes and forgets one that leaves', async () => {
      const startedAt = new Date().toISOString();
      await pair.a.heartbeat({ id: 'conf-node-a', connections: 3, startedAt });
      await pair.b.heartbeat({ id: 'conf-node-b', connections: 0, startedAt });
      const nodes = await pair.b.nodes();
      const a = nodes.find((n) => n.id === 'conf-node-a');
      assert.equal(a?.connections, 3);
      assert.ok(a && Date.parse(a.lastSeen) > 0);
      await pair.a.leave('conf-node-a');
      assert.equal(
        (await pair.b.nodes()).some((n) => n.id === 'conf-node-a'),
        false,
      );
    });
  });
}

/** Retention is tested apart: it needs a backplane with a tiny window. */
export function runRetentionConformance(name: string, factory: DriverFactory): void {
  test(`backplane conformance: ${name}: what retention removed before a node read it is reported as a gap`, async () => {
    const pair = await open(factory, { ...OPTIONS, retentionMs: 200 });
    const sinkB = new RecordingSink();
    try {
      await pair.a.start(new RecordingSink());
      await pair.b.start(sinkB);
      const [id] = await freshIds(pair.a, 1);
      pair.tap.drop = () => true;
      await pair.a.publish(draft(null, id!));
      await new Promise((resolve) => setTimeout(resolve, 600));
      pair.tap.drop = () => false;
      const after = await pair.a.publish(draft(null, id!));
      const deadline = Date.now() + 3000;
      while (sinkB.gaps.length === 0 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      // Told to re-read from the log (its listeners do, with their cursors): nothing is skipped.
      assert.ok(
        sinkB.gaps.some((seq) => seq >= after.seq - 1),
        `gaps: ${sinkB.gaps.join(',')}`,
      );
    } finally {
      await pair.close();
    }
  });

  test(`backplane conformance: ${name}: a cursor older than retention is answered with reset`, async () => {
    const pair = await open(factory, { ...OPTIONS, retentionMs: 200 });
    try {
      await pair.a.start(new RecordingSink());
      const [id] = await freshIds(pair.a, 1);
      const old = await pair.a.head();
      await pair.a.publish(draft(null, id!));
      await new Promise((resolve) => setTimeout(resolve, 600));
      await pair.a.publish(draft(null, id!));
      const read = await pair.a.readForListener(position(old.cursor), [id!], 10);
      assert.equal(read.kind, 'reset');
    } finally {
      await pair.close();
    }
  });

  test(`backplane conformance: ${name}: an idempotency key expires with retention`, async () => {
    const pair = await open(factory, { ...OPTIONS, retentionMs: 300 });
    try {
      await pair.a.start(new RecordingSink());
      await pair.b.start(new RecordingSink());
      const group = uniqueGroup();
      const key = uniqueKey();
      const first = await pair.a.publishOnce(stamped(draft(group, null, 1), key, 'fp'));
      const repeat = await pair.b.publishOnce(stamped(draft(group, null, 1), key, 'fp'));
      assert.equal(first.kind, 'published');
      assert.equal(repeat.kind, 'repeat', 'a repeat within retention');
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const later = await pair.b.publishOnce(stamped(draft(group, null, 2), key, 'fp-2'));
      assert.equal(later.kind, 'published', 'past retention the key is new again');
      const laterId = later.kind === 'published' ? later.event.id : '';
      const again = await pair.a.publishOnce(stamped(draft(group, null, 2), key, 'fp-2'));
      assert.deepEqual(again, { kind: 'repeat', id: laterId }, 'and held again from there');
    } finally {
      await pair.close();
    }
  });

  test(`backplane conformance: ${name}: a history since a cursor older than retention is answered with reset`, async () => {
    const pair = await open(factory, { ...OPTIONS, retentionMs: 200 });
    try {
      await pair.a.start(new RecordingSink());
      const group = uniqueGroup();
      const old = await pair.a.head();
      await pair.a.publish(draft(group, null, 1));
      await new Promise((resolve) => setTimeout(resolve, 600));
      const kept = await pair.a.publish(draft(group, null, 2));
      const page = await pair.a.history({ kind: 'group', group }, position(old.cursor), 10);
      assert.equal(page.reset, true);
      const recent = await pair.a.history({ kind: 'group', group }, null, 10);
      assert.deepEqual(
        recent.items.map((i) => i.event.id),
        [kept.id],
        'only what is within retention',
      );
    } finally {
      await pair.close();
    }
  });
}
