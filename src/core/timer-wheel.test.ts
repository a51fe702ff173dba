import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TimerWheel } from './timer-wheel.js';

describe('TimerWheel', () => {
  test('fires items at or after their deadline, never before', () => {
    const wheel = new TimerWheel<string>(100, 0);
    wheel.schedule('a', 250);
    wheel.schedule('b', 300);
    assert.deepEqual(wheel.advance(249), []);
    assert.deepEqual(wheel.advance(299), []);
    assert.deepEqual(wheel.advance(300).sort(), ['a', 'b']);
    assert.deepEqual(wheel.advance(10_000), []);
  });

  test('a cancelled item does not fire', () => {
    const wheel = new TimerWheel<string>(100, 0);
    const slot = wheel.schedule('a', 500);
    wheel.schedule('b', 500);
    wheel.cancel('a', slot);
    assert.deepEqual(wheel.advance(1000), ['b']);
  });

  test('fires in deadline order after a long pause', () => {
    const wheel = new TimerWheel<number>(10, 0);
    for (const deadline of [900, 100, 500]) wheel.schedule(deadline, deadline);
    assert.deepEqual(wheel.advance(1_000_000), [100, 500, 900]);
  });

  test('a deadline in the past fires on the next advance', () => {
    const wheel = new TimerWheel<string>(100, 1000);
    wheel.schedule('late', 0);
    assert.deepEqual(wheel.advance(1100), ['late']);
  });
});
