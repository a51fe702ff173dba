import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseListenRequest } from '../core/listen-request.js';
import { parseJson } from './json-body.js';
import { parsePlainListenBody } from './plain-listen-body.js';

const ID = 'AAAAAAAAAAAAAAAAAAAAAA';

function full(text: string): unknown {
  try {
    return parseListenRequest(parseJson(Buffer.from(text)));
  } catch (error) {
    return error;
  }
}

describe('parsePlainListenBody', () => {
  it('reads the bodies the clients send, as parseListenRequest does', () => {
    for (const text of [
      `{"pushIds":["${ID}"],"cursor":null}`,
      `{"pushIds":["${ID}"],"cursor":"k3x9-1z"}`,
      `{"pushIds":["${'b'.repeat(64)}"],"cursor":"${'e'.repeat(24)}-${'z'.repeat(10)}"}`,
    ]) {
      const quick = parsePlainListenBody(Buffer.from(text));
      assert.notEqual(quick, null, text);
      assert.deepEqual(quick, full(text), text);
    }
  });

  it('leaves everything else to the full parser', () => {
    for (const text of [
      `{"pushIds":["${ID}","${ID}"],"cursor":null}`, // two push IDs
      `{"pushIds":["${ID}"], "cursor":null}`, // a space
      `{"cursor":null,"pushIds":["${ID}"]}`, // another order
      `{"pushIds":["${ID}"],"cursor":null,"listenTokens":["t"]}`, // tokens
      `{"pushIds":["short"],"cursor":null}`, // not a push ID
      `{"pushIds":["${ID}"],"cursor":"k3x9-${'z'.repeat(12)}"}`, // seq too long
      `{"pushIds":["${ID}"],"cursor":"K3-1"}`, // not a cursor
      `{"pushIds":["${ID}"],"cursor":null}\n`, // trailing byte
      `{"pushIds":["${ID}"],"cursor":"k3-1\\u0030"}`, // an escape
    ]) {
      assert.equal(parsePlainListenBody(Buffer.from(text)), null, text);
    }
  });

  it('never disagrees with parseListenRequest (property)', () => {
    const pushId = fc.stringMatching(/^[A-Za-z0-9_-]{14,66}$/);
    const cursor = fc.oneof(
      fc.constant(null),
      fc.stringMatching(/^[a-z0-9]{0,25}-[0-9a-z]{0,12}$/),
      fc.string(),
    );
    fc.assert(
      fc.property(pushId, cursor, (id, at) => {
        const text = `{"pushIds":[${JSON.stringify(id)}],"cursor":${JSON.stringify(at)}}`;
        const quick = parsePlainListenBody(Buffer.from(text));
        if (quick !== null) assert.deepEqual(quick, full(text));
      }),
      { numRuns: 2000 },
    );
  });
});
