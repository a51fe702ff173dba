/**
 * Idempotent notify (`Idempotency-Key`) and the history calls (docs/protocol.md) over real HTTP,
 * on two nodes sharing a private Redis: a repeat on either node answers the first id and
 * publishes nothing, every refusal has its code, and history reads the same from both nodes.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import {
  api,
  headCursor,
  listen,
  startEpush,
  unknownPushId,
  type Api,
  type EpushProcess,
  type HttpAnswer,
} from '../support/epush-process.js';
import { assertError } from '../support/expect.js';

const KEY_A = 'idempotency-key-aaaaaaaaaaa';
const KEY_B = 'idempotency-key-bbbbbbbbbbb';
const KEY_SCOPED = 'idempotency-key-scoped-ccc;groups=scoped.';

interface HistoryAnswer {
  notifications: {
    id: string;
    pushId: string | null;
    group: string | null;
    payload: unknown;
    publishedAt: string;
  }[];
  cursor: string;
  reset?: boolean;
}

function uniqueGroup(): string {
  return `idem.${randomUUID().slice(0, 8)}`;
}

function notify(
  client: Api,
  path: string,
  key: string | undefined,
  payload: unknown,
): Promise<HttpAnswer<{ id: string }>> {
  return client.call<{ id: string }>('POST', path, {
    body: { payload },
    headers: key === undefined ? {} : { 'idempotency-key': key },
  });
}

async function history(client: Api, path: string, query = ''): Promise<HistoryAnswer> {
  const answer = await client.call<HistoryAnswer>('GET', `${path}${query}`);
  assert.equal(answer.status, 200, answer.text);
  return answer.body;
}

describe('idempotent notify and history on two nodes', { concurrency: true }, () => {
  let redis: PrivateRedis;
  let nodes: EpushProcess[];
  let a: Api;
  let b: Api;

  before(async () => {
    redis = await PrivateRedis.start();
    nodes = await Promise.all(
      ['idem-a', 'idem-b'].map((id) =>
        startEpush([
          '--backplane',
          redis.url,
          '--node-id',
          id,
          '--api-key',
          `${KEY_A},${KEY_B},${KEY_SCOPED}`,
          '--hold-seconds',
          '3',
        ]),
      ),
    );
    a = api(nodes[0]!.url, KEY_A);
    b = api(nodes[1]!.url, KEY_A);
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  });

  test('a repeat on the other node answers 202 with the first id and publishes nothing', async () => {
    const group = uniqueGroup();
    const pushId = await a.mintPushId();
    await a.addMember(group, pushId);
    const cursor = await headCursor(nodes[1]!.url);
    const key = randomUUID();
    const path = `/api/groups/${group}/notify`;
    const first = await notify(a, path, key, { n: 1 });
    assert.equal(first.status, 202, first.text);
    for (const client of [b, a, b]) {
      const again = await notify(client, path, key, { n: 1 });
      assert.equal(again.status, 202, again.text);
      assert.deepEqual(again.body, { id: first.body.id });
    }
    const answer = await listen(nodes[1]!.url, [pushId], cursor);
    assert.deepEqual(
      answer.notifications.map((n) => n.id),
      [first.body.id],
      'delivered once',
    );
    const page = await history(b, `/api/groups/${group}/notifications`);
    assert.deepEqual(
      page.notifications.map((n) => n.id),
      [first.body.id],
      'stored once',
    );
    // The same on a push ID's notify.
    const direct = `/api/push-ids/${pushId}/notify`;
    const d1 = await notify(b, direct, key, 'direct');
    const d2 = await notify(a, direct, key, 'direct');
    assert.equal(d1.status, 409, 'the key was used for the group notify: another target');
    const other = randomUUID();
    const d3 = await notify(b, direct, other, 'direct');
    const d4 = await notify(a, direct, other, 'direct');
    assert.equal(d3.status, 202);
    assert.deepEqual(d4.body, d3.body);
    assertError(d2, 409, 'idempotency_conflict');
  });

  test('the same key with another body or target answers 409 idempotency_conflict', async () => {
    const group = uniqueGroup();
    const key = randomUUID();
    const first = await notify(a, `/api/groups/${group}/notify`, key, { n: 1 });
    assert.equal(first.status, 202);
    assertError(
      await notify(b, `/api/groups/${group}/notify`, key, { n: 2 }),
      409,
      'idempotency_conflict',
    );
    assertError(
      await notify(a, `/api/groups/${uniqueGroup()}/notify`, key, { n: 1 }),
      409,
      'idempotency_conflict',
    );
    const page = await history(a, `/api/groups/${group}/notifications`);
    assert.equal(page.notifications.length, 1);
  });

  test('keys are scoped to the API key that sent them', async () => {
    const group = uniqueGroup();
    const key = randomUUID();
    const path = `/api/groups/${group}/notify`;
    const first = await notify(a, path, key, 'x');
    const other = await notify(api(nodes[1]!.url, KEY_B), path, key, 'x');
    assert.equal(other.status, 202);
    assert.notEqual(other.body.id, first.body.id, 'another API key: another notification');
    assert.equal((await history(a, `/api/groups/${group}/notifications`)).notifications.length, 2);
  });

  test('a malformed Idempotency-Key answers 400 invalid_idempotency_key and publishes nothing', async () => {
    const group = uniqueGroup();
    for (const key of ['', 'has space', 'a/b', 'a,b', 'x'.repeat(201)]) {
      assertError(
        await notify(a, `/api/groups/${group}/notify`, key, 'x'),
        400,
        'invalid_idempotency_key',
      );
    }
    const pushId = await a.mintPushId();
    assertError(
      await notify(b, `/api/push-ids/${pushId}/notify`, '{}', 'x'),
      400,
      'invalid_idempotency_key',
    );
    assert.deepEqual((await history(a, `/api/groups/${group}/notifications`)).notifications, []);
    const longest = await notify(
      a,
      `/api/groups/${group}/notify`,
      'Az09._:~-'.repeat(22).slice(0, 200),
      'x',
    );
    assert.equal(longest.status, 202, longest.text);
  });

  test('history of a group: payloads, ISO-8601 times, the most recent without since, a cursor that continues', async () => {
    const group = uniqueGroup();
    const path = `/api/groups/${group}/notifications`;
    const start = await history(a, path);
    assert.deepEqual(start.notifications, []);
    const ids: string[] = [];
    for (let n = 0; n < 5; n++) ids.push(await (n % 2 ? a : b).notifyGroup(group, { n }));
    const all = await history(b, path);
    assert.deepEqual(
      all.notifications.map((n) => n.id),
      ids,
    );
    const first = all.notifications[0]!;
    assert.deepEqual(Object.keys(first), ['id', 'pushId', 'group', 'payload', 'publishedAt']);
    assert.equal(first.pushId, null);
    assert.equal(first.group, group);
    assert.deepEqual(first.payload, { n: 0 });
    assert.equal(new Date(first.publishedAt).toISOString(), first.publishedAt);
    assert.ok(Math.abs(Date.parse(first.publishedAt) - Date.now()) < 60_000);
    assert.equal('reset' in all, false);
    const recent = await history(a, path, '?limit=2');
    assert.deepEqual(
      recent.notifications.map((n) => n.id),
      ids.slice(3),
    );
    const page1 = await history(a, path, `?since=${start.cursor}&limit=3`);
    assert.deepEqual(
      page1.notifications.map((n) => n.id),
      ids.slice(0, 3),
    );
    const page2 = await history(b, path, `?since=${page1.cursor}&limit=3`);
    assert.deepEqual(
      page2.notifications.map((n) => n.id),
      ids.slice(3),
    );
    const page3 = await history(a, path, `?since=${page2.cursor}`);
    assert.deepEqual(page3.notifications, []);
  });

  test('history of a push ID: direct notifications and those of its groups while a member', async () => {
    const group = uniqueGroup();
    const pushId = await a.mintPushId();
    await a.notifyGroup(group, 'before');
    await a.addMember(group, pushId);
    const g = await b.notifyGroup(group, 'member');
    const d = await a.notifyPushId(pushId, 'direct');
    await b.removeMember(group, pushId);
    await a.notifyGroup(group, 'after');
    const page = await history(b, `/api/push-ids/${pushId}/notifications`);
    assert.deepEqual(
      page.notifications.map((n) => [n.id, n.pushId, n.group, n.payload]),
      [
        [g, pushId, group, 'member'],
        [d, pushId, null, 'direct'],
      ],
    );
    assertError(
      await a.call('GET', `/api/push-ids/${unknownPushId()}/notifications`),
      404,
      'push_id_not_found',
    );
  });

  test('history refuses a bad limit or cursor, answers reset for a cursor of another epoch, and keeps a scoped key to its groups', async () => {
    const path = `/api/groups/${uniqueGroup()}/notifications`;
    for (const limit of ['0', '1001', 'abc', '-1', '1.5', '']) {
      assertError(await a.call('GET', `${path}?limit=${limit}`), 400, 'invalid_limit');
    }
    assert.equal((await a.call('GET', `${path}?limit=1000`)).status, 200);
    assertError(await a.call('GET', `${path}?since=not-a-cursor!`), 400, 'invalid_cursor');
    const reset = await history(b, path, '?since=otherepoch-5');
    assert.equal(reset.reset, true);
    assert.deepEqual(reset.notifications, []);
    const scoped = api(nodes[0]!.url, KEY_SCOPED.split(';')[0]);
    assertError(await scoped.call('GET', path), 403, 'forbidden');
    assert.equal((await scoped.call('GET', '/api/groups/scoped.x/notifications')).status, 200);
    assertError(await api(nodes[0]!.url).call('GET', path), 401, 'unauthorized');
    // A push ID's history shows a scoped key only its own groups' notifications and direct ones.
    const pushId = await a.mintPushId();
    const mine = `scoped.${randomUUID().slice(0, 8)}`;
    const other = uniqueGroup();
    await a.addMember(mine, pushId);
    await a.addMember(other, pushId);
    const inMine = await a.notifyGroup(mine, 1);
    await a.notifyGroup(other, 2);
    const direct = await a.notifyPushId(pushId, 3);
    const seen = await history(scoped, `/api/push-ids/${pushId}/notifications`);
    assert.deepEqual(
      seen.notifications.map((n) => n.id),
      [inMine, direct],
    );
    assert.equal(
      (await history(a, `/api/push-ids/${pushId}/notifications`)).notifications.length,
      3,
    );
  });
});

describe('idempotent notify without API keys (--insecure-dev)', () => {
  let node: EpushProcess;

  before(async () => {
    node = await startEpush(['--insecure-dev', '--hold-seconds', '2']);
  });

  after(async () => {
    await node?.stop();
  });

  test('keyless callers share one scope: a repeat answers the first id', async () => {
    const client = api(node.url);
    const key = randomUUID();
    const group = uniqueGroup();
    const first = await notify(client, `/api/groups/${group}/notify`, key, 1);
    const again = await notify(api(node.url), `/api/groups/${group}/notify`, key, 1);
    assert.equal(first.status, 202);
    assert.deepEqual(again.body, first.body);
    assertError(
      await notify(client, `/api/groups/${group}/notify`, key, 2),
      409,
      'idempotency_conflict',
    );
    const page = await history(client, `/api/groups/${group}/notifications`);
    assert.deepEqual(
      page.notifications.map((n) => n.id),
      [first.body.id],
    );
  });
});
