import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deliveryKey, RecentDeliveries } from '../src/dedupe.js';
import type { PushNotification } from '../src/types.js';

const note = (id: string, pushId: string): PushNotification => ({
  id,
  pushId,
  group: null,
  payload: null,
});

test('a delivery is admitted once per (notification id, push ID) pair; the same id to another push ID is another delivery', () => {
  const recent = new RecentDeliveries();
  const first = recent.admit([note('n1', 'a'), note('n1', 'b'), note('n1', 'a')]);
  assert.deepEqual(first.map(deliveryKey), ['n1 a', 'n1 b']);
  assert.deepEqual(recent.admit([note('n1', 'b'), note('n2', 'b')]).map(deliveryKey), ['n2 b']);
});

test('the memory is bounded and forgets the oldest deliveries first', () => {
  const recent = new RecentDeliveries(3);
  recent.admit(['n1', 'n2', 'n3', 'n4'].map((id) => note(id, 'a')));
  assert.equal(recent.size, 3);
  assert.equal(recent.has('n1 a'), false);
  assert.equal(recent.has('n4 a'), true);
  assert.deepEqual(recent.newest(2), ['n3 a', 'n4 a']);
  assert.equal(recent.admit([note('n1', 'a')]).length, 1, 'forgotten, so admitted again');
});
