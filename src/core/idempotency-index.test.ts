import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { NotificationEvent, NotificationId } from './events.js';
import { IdempotencyIndex } from './idempotency-index.js';

function event(seq: number, key: string): NotificationEvent {
  return {
    type: 'notification',
    seq,
    id: `n${seq}` as NotificationId,
    group: null,
    pushId: null,
    payloadJson: 'null',
    publishedAt: 0,
    idem: { key, fingerprint: `fp${seq}` },
  };
}

test('a key is held for one retention, then a reuse of it is the new first call', () => {
  const index = new IdempotencyIndex(1000);
  index.note(event(1, 'k'), 0);
  assert.equal(index.get('k', 999)?.id, 'n1');
  assert.equal(index.get('k', 1000), undefined, 'expired');
  index.note(event(2, 'k'), 1500);
  assert.equal(index.get('k', 2000)?.id, 'n2');
  index.note(event(3, 'k'), 1600); // a second reuse within the new window does not replace it
  assert.equal(index.get('k', 2000)?.id, 'n2');
  index.note(event(1, 'k'), 0); // an older event arriving late (history prepended) does not either
  assert.equal(index.get('k', 2000)?.id, 'n2');
  index.forgetOld(2600);
  assert.equal(index.get('k', Number.NEGATIVE_INFINITY), undefined, 'forgotten');
});
