import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseJsonObject } from './json-object.js';

test('parseJsonObject: an object comes back; anything else, or text that is not JSON, is null', () => {
  assert.deepEqual(parseJsonObject('{"a":1,"b":[2]}'), { a: 1, b: [2] });
  for (const text of ['', 'not json', '[1,2]', 'null', '42', '"text"', '{"a":']) {
    assert.equal(parseJsonObject(text), null, text);
  }
});
