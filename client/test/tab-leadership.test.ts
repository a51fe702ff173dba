import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  DEFAULT_LEASE_TIMINGS,
  LeaseLeadership,
  WebLocksLeadership,
  type Leadership,
} from '../src/tab-leadership.js';
import { FakeClock, FakeLocks, FakeStorageArea, FakeWindow, newLogger, settle } from './fakes.js';

interface Candidate {
  readonly name: string;
  readonly leadership: Leadership;
  readonly changes: boolean[];
  kill(): void;
}

function lockCandidates(count: number): { locks: FakeLocks; candidates: Candidate[] } {
  const locks = new FakeLocks();
  const candidates = Array.from({ length: count }, (_, i) => {
    const holder = locks.holder();
    const changes: boolean[] = [];
    const leadership = new WebLocksLeadership(
      holder,
      'epush-test',
      (leader) => changes.push(leader),
      newLogger(),
    );
    return {
      name: `tab${i}`,
      leadership,
      changes,
      kill: () => {
        holder.kill();
      },
    };
  });
  return { locks, candidates };
}

/**
 * `blindForMs`: for that long each tab reads no lease at all, as when tabs in different processes
 * start together and none sees the others' writes yet (localStorage has no compare-and-set).
 */
function leaseCandidates(count: number, clock: FakeClock, blindForMs = 0): Candidate[] {
  const storage = new FakeStorageArea();
  const blindUntil = clock.now() + blindForMs;
  return Array.from({ length: count }, (_, i) => {
    const window = new FakeWindow();
    const scope = clock.scope();
    const changes: boolean[] = [];
    const area = storage.forWindow(window);
    const leadership = new LeaseLeadership(
      { ...area, getItem: (key) => (clock.now() < blindUntil ? null : area.getItem(key)) },
      window,
      'epush-test:lease',
      `tab${i}`,
      scope,
      (leader) => changes.push(leader),
    );
    return {
      name: `tab${i}`,
      leadership,
      changes,
      kill: () => {
        scope.kill();
        window.dead = true;
      },
    };
  });
}

const leaders = (candidates: Candidate[]): string[] =>
  candidates.filter((c) => c.leadership.isLeader).map((c) => c.name);

test('Web Locks: exactly one tab leads, and a waiting tab leads the moment the leader crashes', async () => {
  const { candidates } = lockCandidates(3);
  for (const c of candidates) c.leadership.start();
  await settle();
  assert.deepEqual(leaders(candidates), ['tab0']);
  candidates[0]!.kill();
  await settle();
  assert.deepEqual(leaders(candidates.slice(1)), ['tab1']);
  assert.deepEqual(candidates[1]!.changes, [true]);
  assert.deepEqual(candidates[2]!.changes, []);
});

test('Web Locks: stop() hands the lock over, and a tab that stops while waiting never leads', async () => {
  const { candidates } = lockCandidates(3);
  for (const c of candidates) c.leadership.start();
  await settle();
  candidates[1]!.leadership.stop(); // waiting
  candidates[0]!.leadership.stop(); // leading
  await settle();
  assert.deepEqual(leaders(candidates), ['tab2']);
  assert.deepEqual(candidates[1]!.changes, []);
});

test('lease: one tab claims the lease and the others stay followers while it renews', async () => {
  const clock = new FakeClock();
  const candidates = leaseCandidates(3, clock);
  for (const c of candidates) c.leadership.start();
  await clock.advance(DEFAULT_LEASE_TIMINGS.settleMs);
  assert.equal(leaders(candidates).length, 1);
  const leader = leaders(candidates)[0];
  await clock.advance(60_000);
  assert.deepEqual(leaders(candidates), [leader]);
  for (const c of candidates) assert.ok(c.changes.length <= 1, `${c.name} never flapped`);
});

test('lease: when the leader stops renewing (a crash), a follower takes over in under 2 s', async () => {
  const clock = new FakeClock();
  const candidates = leaseCandidates(3, clock);
  for (const c of candidates) c.leadership.start();
  await clock.advance(1000);
  const [leaderName] = leaders(candidates);
  const leader = candidates.find((c) => c.name === leaderName)!;
  // Crash right after a renewal: the worst case, the full lease must run out.
  await clock.advance(
    DEFAULT_LEASE_TIMINGS.renewMs - ((clock.now() - 1_000_000) % DEFAULT_LEASE_TIMINGS.renewMs),
  );
  leader.kill();
  const crashedAt = clock.now();
  const survivors = candidates.filter((c) => c !== leader);
  while (leaders(survivors).length === 0 && clock.now() - crashedAt < 5000) await clock.advance(10);
  const takeover = clock.now() - crashedAt;
  assert.ok(takeover < 2000, `took over after ${takeover} ms`);
  assert.ok(takeover >= 1000, `not before the lease ran out (${takeover} ms)`);
  assert.equal(leaders(survivors).length, 1);
});

test('lease: a leader that stops removes the lease and a follower takes over at once', async () => {
  const clock = new FakeClock();
  const candidates = leaseCandidates(2, clock);
  for (const c of candidates) c.leadership.start();
  await clock.advance(1000);
  const leader = candidates.find((c) => c.leadership.isLeader)!;
  const follower = candidates.find((c) => c !== leader)!;
  leader.leadership.stop();
  await clock.advance(DEFAULT_LEASE_TIMINGS.settleMs);
  assert.ok(follower.leadership.isLeader);
});

test('lease: tabs claiming at the same moment end with a single leader', async () => {
  const clock = new FakeClock();
  const candidates = leaseCandidates(5, clock, 20);
  for (const c of candidates) c.leadership.start(); // all see no lease and write a claim
  await clock.advance(DEFAULT_LEASE_TIMINGS.settleMs);
  assert.equal(leaders(candidates).length, 1, 'the read-back lets only the last claim win');
  await clock.advance(5000);
  assert.equal(leaders(candidates).length, 1);
  assert.equal(candidates.flatMap((c) => c.changes).length, 1, 'nobody else ever led');
});

test("lease: a leader that finds another tab's valid lease steps down", async () => {
  const clock = new FakeClock();
  const storage = new FakeStorageArea();
  const window = new FakeWindow();
  const area = storage.forWindow(window);
  const changes: boolean[] = [];
  const leadership = new LeaseLeadership(area, window, 'k', 'me', clock, (l) => changes.push(l));
  leadership.start();
  await clock.advance(200);
  assert.ok(leadership.isLeader);
  // A double claim that lost the race elsewhere: someone else's lease is now in storage.
  area.setItem('k', JSON.stringify({ owner: 'other', expires: clock.now() + 1500 }));
  await clock.advance(DEFAULT_LEASE_TIMINGS.renewMs);
  assert.equal(leadership.isLeader, false);
  assert.deepEqual(changes, [true, false]);
});
