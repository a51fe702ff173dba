import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  EMPTY_STATE,
  STORM_LOOP_INTERVAL_MS,
  countListen,
  decodeState,
  encodeState,
  nextSequence,
} from './icepush-browser-state.js';

describe('ICEpush browser state cookie', () => {
  test('round-trips every field', () => {
    const state = {
      cursor: 'abc-1z',
      notifiedFrom: 'abc-1a',
      window: '3f9a1',
      sequence: 42,
      tightLoops: 3,
      lastListenAt: 1_765_000_000_123,
    };
    assert.deepEqual(decodeState(encodeState(state)), state);
    assert.deepEqual(decodeState(encodeState(EMPTY_STATE)), EMPTY_STATE);
  });

  test('a malformed cookie is a fresh start', () => {
    for (const bad of [
      '',
      'x',
      '2~~~~0~0~0',
      '1~not a cursor~~~0~0~0',
      '1~~~w!~0~0~0',
      '1~~~~-1~0~0',
    ]) {
      assert.deepEqual(decodeState(bad), EMPTY_STATE, bad);
    }
    assert.deepEqual(decodeState(undefined), EMPTY_STATE);
  });

  test('sequence tagging follows the larger of the echo and the stored count', () => {
    assert.equal(nextSequence(null, 0), 1);
    assert.equal(nextSequence(7, 3), 8);
    assert.equal(nextSequence(2, 5), 6);
    assert.equal(nextSequence(null, 5), 6);
  });

  test('more than 25 listens in a tight loop are a push storm', () => {
    let state = { ...EMPTY_STATE };
    let now = 1_000_000;
    let storms = 0;
    for (let i = 0; i < 27; i++) {
      const counted = countListen(state, now);
      if (counted.storm) storms++;
      state = { ...state, tightLoops: counted.tightLoops, lastListenAt: now };
      now += STORM_LOOP_INTERVAL_MS - 10;
    }
    assert.equal(storms, 1);
    assert.equal(countListen(state, now + STORM_LOOP_INTERVAL_MS).tightLoops, 0);
  });
});
