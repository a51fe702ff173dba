/**
 * Scoped API keys (`--api-key KEY;groups=…`, `KEY;read-only`), several keys at once (rotation),
 * the `epush_rejected_requests_total{reason}` counter and `X-Request-Id`, over real HTTP.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  api,
  listen,
  request,
  runEpush,
  startEpush,
  type EpushProcess,
} from '../support/epush-process.js';
import { assertError } from '../support/expect.js';

const ROOT = 'scopes-root-key-000000000001';
const ROOT_NEXT = 'scopes-root-key-000000000002';
const APP_A = 'scopes-app-a-key-0000000001';
const READER = 'scopes-reader-key-000000001';

function rejected(metrics: string, reason: string): number {
  const line = metrics
    .split('\n')
    .find((l) => l.startsWith(`epush_rejected_requests_total{reason="${reason}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('scoped API keys', { concurrency: true }, () => {
  let node: EpushProcess;

  before(async () => {
    node = await startEpush([
      '--api-key',
      `${ROOT},${ROOT_NEXT},${APP_A};groups=app-a.|shared:,${READER};read-only`,
    ]);
  });
  after(async () => {
    await node.stop();
  });

  test('every configured key is accepted: two unscoped keys serve the same cluster (rotation)', async () => {
    const one = await api(node.url, ROOT).cluster();
    const two = await api(node.url, ROOT_NEXT).cluster();
    assert.deepEqual(
      one.map((n) => n.id),
      two.map((n) => n.id),
    );
  });

  test('a groups= key manages and notifies its own groups, and nothing else', async () => {
    const appA = api(node.url, APP_A);
    const pushId = await appA.mintPushId();
    await appA.addMember('app-a.orders', pushId);
    await appA.addMember('shared:news', pushId);
    assert.deepEqual(await appA.members('app-a.orders'), [pushId]);
    const answer = listen(node.url, [pushId], null);
    await new Promise((r) => setTimeout(r, 100));
    const id = await appA.notifyGroup('app-a.orders', { n: 1 });
    assert.deepEqual(
      (await answer).notifications.map((n) => n.id),
      [id],
    );

    for (const [method, path] of [
      ['PUT', `/api/groups/app-b.orders/members/${pushId}`],
      ['DELETE', `/api/groups/app-b.orders/members/${pushId}`],
      ['GET', '/api/groups/app-b.orders/members'],
      ['POST', '/api/groups/app-b.orders/notify'],
      // A prefix is a prefix of the name, not a pattern: "app-a" without the dot is not "app-a.".
      ['POST', '/api/groups/app-a/notify'],
    ] as const) {
      const refused = await appA.call(method, path);
      assertError(refused, 403, 'forbidden');
      assert.match(refused.text, /\\"app-a\.\\"/);
      assert.doesNotMatch(refused.text, new RegExp(APP_A));
    }
  });

  test('a refused call changes nothing: the member was not added, the group not notified', async () => {
    const root = api(node.url, ROOT);
    const pushId = await root.mintPushId();
    assertError(
      await api(node.url, APP_A).call('PUT', `/api/groups/app-b.x/members/${pushId}`),
      403,
      'forbidden',
    );
    assert.deepEqual(await root.members('app-b.x'), []);
  });

  test('nobody joins or notifies the dashboard group epush.admin through the API', async () => {
    const root = api(node.url, ROOT);
    const pushId = await root.mintPushId();
    for (const [method, path] of [
      ['PUT', `/api/groups/epush.admin/members/${pushId}`],
      ['DELETE', `/api/groups/epush.admin/members/${pushId}`],
      ['POST', '/api/groups/epush.admin/notify'],
    ] as const) {
      const refused = await root.call(method, path, { body: { payload: { forged: true } } });
      assertError(refused, 403, 'forbidden');
      assert.match(refused.text, /reserved/);
    }
    assert.deepEqual(await root.members('epush.admin'), []);
  });

  test('a read-only key reads but cannot mint, join, leave or notify', async () => {
    const reader = api(node.url, READER);
    const root = api(node.url, ROOT);
    const pushId = await root.mintPushId();
    await root.addMember('ro.group', pushId);
    assert.deepEqual(await reader.members('ro.group'), [pushId]);
    assert.ok((await reader.cluster()).length >= 1);
    for (const [method, path] of [
      ['POST', '/api/push-ids'],
      ['PUT', `/api/groups/ro.group/members/${pushId}`],
      ['DELETE', `/api/groups/ro.group/members/${pushId}`],
      ['POST', '/api/groups/ro.group/notify'],
      ['POST', `/api/push-ids/${pushId}/notify`],
    ] as const) {
      const refused = await reader.call(method, path);
      assertError(refused, 403, 'forbidden');
      assert.match(refused.text, /read-only/);
    }
    assert.deepEqual(await root.members('ro.group'), [pushId]);
  });

  test('refusals are counted by reason, and every API answer names its request', async () => {
    const before = rejected((await request('GET', `${node.url}/metrics`)).text, 'unauthorized');
    const refused = await api(node.url, 'not-a-configured-key-at-all').call('GET', '/api/cluster');
    assertError(refused, 401, 'unauthorized');
    assert.match(refused.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
    const after = rejected((await request('GET', `${node.url}/metrics`)).text, 'unauthorized');
    assert.equal(after, before + 1);
    assert.ok(
      rejected((await request('GET', `${node.url}/metrics`)).text, 'forbidden') > 0 ||
        (await api(node.url, READER).call('POST', '/api/push-ids')).status === 403,
    );

    // A proxy's request id is kept; a hostile one is replaced.
    const kept = await api(node.url, ROOT).call('GET', '/api/cluster', {
      headers: { 'x-request-id': 'lb-1234.abcd' },
    });
    assert.equal(kept.headers.get('x-request-id'), 'lb-1234.abcd');
    const replaced = await api(node.url, ROOT).call('GET', '/api/cluster', {
      headers: { 'x-request-id': 'x'.repeat(300) },
    });
    assert.match(replaced.headers.get('x-request-id') ?? '', /^[0-9a-f-]{36}$/);
  });
});

describe('API key entries are checked at start', () => {
  for (const [entry, message] of [
    ['short', /at least 16 characters/],
    ['scopes-app-a-key-0000000001;groups=bad/prefix', /group prefix/],
    ['scopes-app-a-key-0000000001;write-only', /unknown scope "write-only"/],
  ] as const) {
    test(`--api-key '${entry}' stops the start naming the flag`, async () => {
      const result = await runEpush(['start', '--api-key', entry]);
      assert.equal(result.code, 2);
      assert.match(result.stderr, /--api-key/);
      assert.match(result.stderr, message);
      assert.doesNotMatch(result.stderr, /scopes-app-a-key/);
    });
  }
});
