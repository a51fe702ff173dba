import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { backOffXml, browserXml, escapeXml, notifiedXml, serverErrorXml } from './icepush-xml.js';

describe('ICEpush XML answers', () => {
  test('notifications without payload are the classic notified-pushids, each push ID once', () => {
    assert.equal(
      notifiedXml([
        { pushId: 'a', payload: null },
        { pushId: 'b', payload: null },
        { pushId: 'a', payload: null },
      ]),
      '<notified-pushids>a b</notified-pushids>',
    );
  });

  test('payloads are escaped and push IDs are grouped by payload', () => {
    assert.equal(
      notifiedXml([
        { pushId: 'a', payload: '<b>&"x"' },
        { pushId: 'b', payload: null },
        { pushId: 'c', payload: '<b>&"x"' },
      ]),
      '<notifications><notification push-ids="a c">&lt;b&gt;&amp;&quot;x&quot;</notification>' +
        '<notification push-ids="b"/></notifications>',
    );
  });

  test('attributes are escaped', () => {
    assert.equal(escapeXml(`'`), '&apos;');
    assert.equal(browserXml('x"y'), '<browser id="x&quot;y"/>');
    assert.equal(serverErrorXml('a < b'), '<server-error message="a &lt; b"/>');
    assert.equal(backOffXml(1500.4), '<back-off delay="1500"/>');
  });
});
