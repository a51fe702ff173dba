import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { decodeCursor, encodeCursor } from './cursor.js';
import { isGroupName } from './group-name.js';
import { NotificationIdSource } from './notification-id.js';
import { PushIdLiveness } from './push-id-liveness.js';
import { isPushId, mintPushIds, type PushId } from './push-id.js';

describe('push IDs', () => {
  test('are 128-bit, URL-safe and distinct', () => {
    const ids = mintPushIds(1000);
    assert.equal(new Set(ids).size, 1000);
    for (const id of ids) {
      assert.match(id, /^[A-Za-z0-9_-]{22}$/);
      assert.equal(Buffer.from(id, 'base64url').length, 16);
      assert.ok(isPushId(id));
    }
  });

  test('validation rejects anything outside the alphabet or length', () => {
    for (const bad of ['', 'short', 'x'.repeat(65), 'a/b'.repeat(8), 'ü'.repeat(20), 42, null]) {
      assert.equal(isPushId(bad), false, String(bad));
    }
  });
});

describe('group names', () => {
  test('accept 1-200 characters of [A-Za-z0-9._:~-] and nothing else', () => {
    for (const good of ['a', 'chat.room-1', 'app:orders~42_x', 'x'.repeat(200), '...', '.a'])
      assert.ok(isGroupName(good), good);
    // `.` and `..` would be resolved away in /api/groups/{group}/… paths.
    for (const bad of ['', 'x'.repeat(201), 'a b', 'a/b', 'ü', '%41', 7, '.', '..'])
      assert.equal(isGroupName(bad), false, String(bad));
  });
});

describe('cursors', () => {
  test('round-trip epoch and sequence', () => {
    assert.deepEqual(decodeCursor(encodeCursor('abc123', 123456789)), {
      epoch: 'abc123',
      seq: 123456789,
    });
  });

  test('reject strings that are not cursors', () => {
    for (const bad of [
      '',
      'abc',
      '-1',
      'ABC-1',
      'a-',
      'a-b-c',
      'a'.repeat(25) + '-1',
      'a-zzzzzzzzzzzz',
    ]) {
      assert.equal(decodeCursor(bad), null, bad);
    }
  });
});

describe('notification ids', () => {
  test('are unique within a source and between sources', () => {
    const one = new NotificationIdSource();
    const two = new NotificationIdSource();
    const ids = new Set<string>();
    for (let i = 0; i < 500; i++) ids.add(one.next()).add(two.next());
    assert.equal(ids.size, 1000);
  });
});

describe('PushIdLiveness', () => {
  test('a push ID lives for one TTL after its last touch', () => {
    const liveness = new PushIdLiveness(1000);
    const id = 'p'.repeat(22) as PushId;
    liveness.touch(id, 0);
    liveness.touch(id, 800);
    assert.equal(liveness.isLive(id, 1700), true);
    assert.deepEqual(liveness.sweep(1700), []);
    assert.equal(liveness.isLive(id, 1800), false);
    assert.deepEqual(liveness.sweep(1800), [id]);
    assert.equal(liveness.size, 0);
  });
});
