import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Backplane } from '../backplane/backplane.js';
import type { PushId } from '../core/push-id.js';
import { PresenceTracker, type HoldSource } from './presence-tracker.js';

const A = 'AAAAAAAAAAAAAAAAAAAAAA' as PushId;
const B = 'BBBBBBBBBBBBBBBBBBBBBB' as PushId;
const LINGER = 1000;

/** A backplane that records the hold transitions written, and fails while `failing`. */
function fakeBackplane() {
  const writes: { started: PushId[]; stopped: { pushId: PushId; at: number }[] }[] = [];
  const state = { failing: false };
  const backplane = {
    presenceSupported: true,
    nodes: () => Promise.resolve([{ id: 'n1', connections: 0, startedAt: '', lastSeen: '' }]),
    presenceHolds: (
      _node: string,
      started: readonly PushId[],
      stopped: readonly { pushId: PushId; at: number }[],
    ) => {
      if (state.failing) return Promise.reject(new Error('down'));
      writes.push({ started: [...started], stopped: [...stopped] });
      return Promise.resolve();
    },
  } as unknown as Backplane;
  return { backplane, writes, state };
}

/** The dispatcher's registrations: push ID → parked since (null: waiting). */
function source(holds: Map<PushId, number | null>): HoldSource {
  // Reports every push IDs it ever held as changed at every tick: the tracker must not depend
  // on being told less.
  const ever = new Set<PushId>();
  return {
    takeChanged() {
      for (const pushId of holds.keys()) ever.add(pushId);
      return [...ever];
    },
    holdOf(pushId) {
      return holds.has(pushId) ? holds.get(pushId) : undefined;
    },
  };
}

describe('PresenceTracker', () => {
  test('a held push ID is written once; re-polls and parks within the linger write nothing', async () => {
    const { backplane, writes } = fakeBackplane();
    const holds = new Map<PushId, number | null>([[A, null]]);
    let now = 10_000;
    const tracker = new PresenceTracker(backplane, source(holds), 'n1', LINGER, () => now);
    await tracker.tick();
    assert.deepEqual(writes, [{ started: [A], stopped: [] }]);
    for (let i = 0; i < 100; i++) {
      // Answered (parked), then re-polled on this node a moment later.
      holds.set(A, now);
      now += 200;
      await tracker.tick();
      holds.set(A, null);
      now += 200;
      await tracker.tick();
    }
    assert.equal(writes.length, 1, 'nothing more reached the backplane');
  });

  test('a parked listener that does not come back is released at its answer, after the linger', async () => {
    const { backplane, writes } = fakeBackplane();
    const holds = new Map<PushId, number | null>([[A, null]]);
    let now = 10_000;
    const tracker = new PresenceTracker(backplane, source(holds), 'n1', LINGER, () => now);
    await tracker.tick();
    holds.set(A, now); // answered at 10 000
    now += LINGER - 1;
    await tracker.tick();
    assert.equal(writes.length, 1);
    now += 2;
    await tracker.tick();
    assert.deepEqual(writes[1], { started: [], stopped: [{ pushId: A, at: 10_000 }] });
  });

  test('a listener gone from the node is released when it went, after the linger', async () => {
    const { backplane, writes } = fakeBackplane();
    const holds = new Map<PushId, number | null>([
      [A, null],
      [B, null],
    ]);
    let now = 10_000;
    const tracker = new PresenceTracker(backplane, source(holds), 'n1', LINGER, () => now);
    await tracker.tick();
    holds.delete(A);
    now += 250;
    await tracker.tick();
    now += LINGER;
    await tracker.tick();
    assert.deepEqual(writes.at(-1), { started: [], stopped: [{ pushId: A, at: 10_250 }] });
    assert.equal(tracker.heldCount, 1);
  });

  test('a failed write is retried at the next tick', async () => {
    const { backplane, writes, state } = fakeBackplane();
    const holds = new Map<PushId, number | null>([[A, null]]);
    const tracker = new PresenceTracker(backplane, source(holds), 'n1', LINGER, () => 10_000);
    state.failing = true;
    await assert.rejects(tracker.tick());
    state.failing = false;
    await tracker.tick();
    assert.deepEqual(writes, [{ started: [A], stopped: [] }]);
  });
});
