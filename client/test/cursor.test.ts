import assert from 'node:assert/strict';
import { test } from 'node:test';
import { compareCursors, oldestCursor } from '../src/cursor.js';

test('cursors of one epoch order by their base-36 sequence; other epochs and foreign shapes do not order', () => {
  assert.ok((compareCursors('ab-9', 'ab-a') ?? 0) < 0, '9 < a in base 36');
  assert.ok((compareCursors('ab-10', 'ab-z') ?? 0) > 0);
  assert.equal(compareCursors('ab-5', 'ab-5'), 0);
  assert.equal(compareCursors('ab-5', 'cd-1'), null);
  assert.equal(compareCursors('ab-5', 'not a cursor'), null);
});

test('several listens resume from the oldest cursor; "from now" listens are skipped; unordered ones fall back', () => {
  assert.equal(oldestCursor(['e-a', 'e-3', 'e-5'], 'fallback'), 'e-3');
  assert.equal(oldestCursor([null, 'e-5'], 'fallback'), 'e-5');
  assert.equal(oldestCursor([null, null], null), null);
  assert.equal(oldestCursor(['e-1', 'f-1'], 'f-1'), 'f-1');
});
