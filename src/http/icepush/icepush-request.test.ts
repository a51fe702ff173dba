import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { Readable } from 'node:stream';
import { describe, test } from 'node:test';
import { IcepushRequest } from './icepush-request.js';

/** A request as node:http hands it over: a readable body with a method and headers. */
function fakeRequest(method: string, headers: Record<string, string>, body = ''): IncomingMessage {
  const stream = Readable.from(body === '' ? [] : [Buffer.from(body)]);
  return Object.assign(stream, { method, headers }) as unknown as IncomingMessage;
}

describe('ICEpush request parameters', () => {
  test('query and form parameters, repeated names kept in order', async () => {
    const req = fakeRequest(
      'POST',
      { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
      'ice.pushid=a&ice.pushid=b&ice.push.window=3f9a1',
    );
    const request = await IcepushRequest.read(req, new URL('http://x/listen.icepush?ice.pushid=q'));
    assert.deepEqual(request.all('ice.pushid'), ['q', 'a', 'b']);
    assert.equal(request.value('ice.push.window'), '3f9a1');
    assert.equal(request.has('ice.sendConfiguration'), false);
  });

  test('a portlet namespace is taken off every parameter; others are dropped', async () => {
    const req = fakeRequest(
      'POST',
      { 'content-type': 'application/x-www-form-urlencoded' },
      'ns_ice.push.browser=B&ns_ice.pushid=a&ice.pushid=foreign&ns_ice.sendConfiguration=',
    );
    const request = await IcepushRequest.read(req, new URL('http://x/listen.icepush'));
    assert.equal(request.value('ice.push.browser'), 'B');
    assert.deepEqual(request.all('ice.pushid'), ['a']);
    assert.equal(request.has('ice.sendConfiguration'), true);
  });

  test('ice.push.* values fall back to request headers (ICEpush 4.0 clients)', async () => {
    const req = fakeRequest('GET', { 'ice.push.sequence': '12', 'ice.push.window': 'w1' });
    const request = await IcepushRequest.read(req, new URL('http://x/listen.icepush'));
    assert.equal(request.integer('ice.push.sequence'), 12);
    assert.equal(request.value('ice.push.window'), 'w1');
    assert.equal(request.integer('ice.push.heartbeat'), null);
  });

  test('cookies: the first of two with one name wins; quotes are taken off', async () => {
    const req = fakeRequest('GET', { cookie: 'a=1; ice.push.browser="B1"; ice.push.browser=B2' });
    const request = await IcepushRequest.read(req, new URL('http://x/listen.icepush'));
    assert.equal(request.cookie('ice.push.browser'), 'B1');
    assert.equal(request.cookie('a'), '1');
    assert.equal(request.cookie('missing'), undefined);
  });

  test('a sequence that is not a whole number is absent', async () => {
    const req = fakeRequest('GET', {});
    const request = await IcepushRequest.read(
      req,
      new URL('http://x/listen.icepush?ice.push.sequence=NaN'),
    );
    assert.equal(request.integer('ice.push.sequence'), null);
  });
});
