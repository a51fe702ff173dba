import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { GroupName } from './group-name.js';
import { MembershipIndex } from './membership-index.js';
import type { PushId } from './push-id.js';

const g = 'room' as GroupName;
const h = 'other' as GroupName;
const a = 'aaaaaaaaaaaaaaaaaaaaaa' as PushId;
const b = 'bbbbbbbbbbbbbbbbbbbbbb' as PushId;

describe('MembershipIndex', () => {
  test('a notification reaches members that joined before it and had not left', () => {
    const index = new MembershipIndex();
    index.add(g, a, 10);
    index.remove(g, a, 20);
    assert.equal(index.wasMemberAt(g, a, 10), false, 'published before the join took effect');
    assert.equal(index.wasMemberAt(g, a, 15), true);
    assert.equal(index.wasMemberAt(g, a, 20), false);
    assert.equal(index.wasMemberAt(g, a, 25), false);
  });

  test('tracks re-joins as separate stays', () => {
    const index = new MembershipIndex();
    index.add(g, a, 1);
    index.remove(g, a, 5);
    index.add(g, a, 8);
    assert.equal(index.wasMemberAt(g, a, 6), false);
    assert.equal(index.wasMemberAt(g, a, 9), true);
    assert.deepEqual(index.members(g), [a]);
  });

  test('add and remove are idempotent and report whether they changed anything', () => {
    const index = new MembershipIndex();
    assert.equal(index.add(g, a, 1), true);
    assert.equal(index.add(g, a, 2), false);
    assert.equal(index.remove(g, b, 3), false);
    assert.equal(index.remove(g, a, 3), true);
    assert.equal(index.remove(g, a, 4), false);
    assert.equal(index.groupCount, 0);
  });

  test('removeEverywhere takes a push ID out of all its groups', () => {
    const index = new MembershipIndex();
    index.add(g, a, 1);
    index.add(h, a, 2);
    index.add(g, b, 3);
    assert.deepEqual(index.removeEverywhere(a, 4).sort(), [h, g].sort());
    assert.deepEqual(index.groupsOf(a), []);
    assert.deepEqual(index.members(g), [b]);
    assert.equal(index.wasMemberAt(h, a, 3), true, 'history is kept for resuming readers');
  });

  test('groupsAt gives membership just after an event took effect', () => {
    const index = new MembershipIndex();
    index.add(g, a, 3);
    index.remove(g, a, 7);
    assert.deepEqual(index.groupsAt(a, 2), []);
    assert.deepEqual(index.groupsAt(a, 3), [g]);
    assert.deepEqual(index.groupsAt(a, 6), [g]);
    assert.deepEqual(index.groupsAt(a, 7), []);
  });

  test('forgetBefore drops only stays that ended before the horizon', () => {
    const index = new MembershipIndex();
    index.add(g, a, 1);
    index.remove(g, a, 2);
    index.add(h, a, 3);
    index.forgetBefore(5);
    assert.equal(index.wasMemberAt(g, a, 2), false);
    assert.equal(index.wasMemberAt(h, a, 6), true);
  });
});
