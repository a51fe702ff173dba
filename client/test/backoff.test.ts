import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Backoff, backoffCeiling } from '../src/backoff.js';

test('the backoff ceiling doubles from 0.5 s per consecutive failure and stops at 30 s', () => {
  const ceilings = Array.from({ length: 9 }, (_, attempt) => backoffCeiling(attempt, 500, 30_000));
  assert.deepEqual(ceilings, [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]);
  assert.equal(backoffCeiling(1000, 500, 30_000), 30_000);
});

test('each delay is drawn uniformly below the current ceiling (full jitter)', () => {
  const low = new Backoff(() => 0);
  const high = new Backoff(() => 0.999_999);
  for (let attempt = 0; attempt < 10; attempt++) {
    const ceiling = backoffCeiling(attempt, 500, 30_000);
    assert.equal(low.next(), 0);
    const top = high.next();
    assert.ok(top < ceiling && top >= ceiling - 1, `attempt ${attempt}: ${top} vs ${ceiling}`);
  }
  let seed = 42;
  const random = (): number => {
    seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
    return seed / 2 ** 31;
  };
  const backoff = new Backoff(random);
  const firsts = new Set<number>();
  for (let i = 0; i < 200; i++) {
    const delay = backoff.next();
    const ceiling = backoffCeiling(backoff.attempts - 1, 500, 30_000);
    assert.ok(delay >= 0 && delay < ceiling, `${delay} within [0, ${ceiling})`);
    if (backoff.attempts === 1) firsts.add(delay);
    if (backoff.attempts === 3) backoff.reset();
  }
  assert.ok(firsts.size > 20, 'delays are spread, not fixed');
});

test('reset() after a success brings the next delay back under the first ceiling', () => {
  const backoff = new Backoff(() => 0.5);
  assert.deepEqual([backoff.next(), backoff.next(), backoff.next()], [250, 500, 1000]);
  assert.equal(backoff.attempts, 3);
  backoff.reset();
  assert.equal(backoff.attempts, 0);
  assert.equal(backoff.next(), 250);
});
