import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PrivateRedis } from '../support/brokers/redis.js';
import {
  api,
  listen,
  listenRaw,
  request,
  startEpush,
  type Api,
  type EpushProcess,
  type HttpAnswer,
  sleep,
  until,
} from '../support/epush-process.js';

const KEY = 'cluster-test-key-0123456789';

function startNode(redis: PrivateRedis, id: string, extra: string[] = []): Promise<EpushProcess> {
  return startEpush([
    '--backplane',
    redis.url,
    '--node-id',
    id,
    '--api-key',
    KEY,
    '--hold-seconds',
    '5',
    '--heartbeat-seconds',
    '1',
    ...extra,
  ]);
}

describe('three nodes over one Redis', () => {
  let redis: PrivateRedis;
  let nodes: EpushProcess[];
  let apis: Api[];

  before(async () => {
    redis = await PrivateRedis.start();
    nodes = await Promise.all(
      ['n1', 'n2', 'n3'].map((id) => startNode(redis, id, ['--push-id-ttl', '2'])),
    );
    apis = nodes.map((node) => api(node.url, KEY));
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  });

  test('every node prints the redis backplane in its ready line', () => {
    for (const node of nodes) assert.equal(node.backplane, 'redis');
  });

  test('a group notification published on one node wakes a listener held on another', async () => {
    const [a, b] = apis as [Api, Api, Api];
    const pushId = await a.mintPushId();
    await b.addMember('room', pushId);
    const held = listen(nodes[1]!.url, [pushId]);
    await sleep(200);
    const id = await a.notifyGroup('room', { text: 'cross-node' });
    const answer = await held;
    assert.deepEqual(answer.notifications, [
      { id, pushId, group: 'room', payload: { text: 'cross-node' } },
    ]);
    assert.ok(answer.ms < 2000, `answered after ${answer.ms} ms`);
  });

  test('a direct notification published on one node wakes a listener held on another', async () => {
    const pushId = await apis[2]!.mintPushId();
    const held = listen(nodes[0]!.url, [pushId]);
    await sleep(200);
    const id = await apis[2]!.notifyPushId(pushId, 7);
    assert.deepEqual((await held).notifications, [{ id, pushId, group: null, payload: 7 }]);
  });

  test('a cursor from one node resumes exactly on another: nothing lost, nothing repeated', async () => {
    const pushId = await apis[0]!.mintPushId();
    // Take a cursor from node 1 (a held listen answered by one notification).
    const held = listen(nodes[0]!.url, [pushId]);
    await sleep(200);
    const firstId = await apis[1]!.notifyPushId(pushId, 0);
    const answered = await held;
    assert.deepEqual(
      answered.notifications.map((n) => n.id),
      [firstId],
    );
    const ids: string[] = [];
    for (let n = 1; n <= 5; n++) ids.push(await apis[n % 3]!.notifyPushId(pushId, n));
    const resumed = await listen(nodes[2]!.url, [pushId], answered.cursor);
    assert.deepEqual(
      resumed.notifications.map((n) => n.id),
      ids,
    );
    assert.deepEqual(
      resumed.notifications.map((n) => n.payload),
      [1, 2, 3, 4, 5],
    );
    const again = await listen(nodes[1]!.url, [pushId], resumed.cursor, {
      signal: AbortSignal.timeout(500),
    }).catch(() => null);
    assert.equal(again, null, 'nothing repeated: the next listen is held');
  });

  test('group membership is the same from every node', async () => {
    const [x, y] = await apis[0]!.mintPushIds(2);
    await apis[0]!.addMember('shared', x!);
    await apis[1]!.addMember('shared', y!);
    await apis[2]!.removeMember('shared', x!);
    for (const client of apis) assert.deepEqual(await client.members('shared'), [y]);
  });

  test('an unheld push ID expires for every node and leaves its groups', async () => {
    const [doomed, kept] = await apis[0]!.mintPushIds(2);
    await apis[0]!.addMember('expiring', doomed!);
    await apis[0]!.addMember('expiring', kept!);
    // Holding `kept` on node 2 keeps it alive past its TTL; nobody holds `doomed`.
    const holding = listen(nodes[1]!.url, [kept!]);
    await until('the unheld push ID has left the group', async () => {
      const members = await apis[2]!.members('expiring');
      return !members.includes(doomed!);
    });
    assert.deepEqual(await apis[0]!.members('expiring'), [kept]);
    const answer = await listen(nodes[2]!.url, [doomed!]);
    assert.deepEqual(answer.expired, [doomed]);
    assert.deepEqual((await holding).expired, []);
  });

  test('GET /api/cluster lists every live node with its connections, from any node', async () => {
    const pushId = await apis[0]!.mintPushId();
    const held = listen(nodes[2]!.url, [pushId]);
    await until('n3 reports one connection', async () => {
      const listed = await apis[0]!.cluster();
      return listed.find((n) => n.id === 'n3')?.connections === 1;
    });
    const listed = await apis[1]!.cluster();
    assert.deepEqual(listed.map((n) => n.id).sort(), ['n1', 'n2', 'n3']);
    for (const node of listed) {
      assert.ok(Date.parse(node.startedAt) > 0);
      assert.ok(Date.now() - Date.parse(node.lastSeen) < 5000);
    }
    await apis[0]!.notifyPushId(pushId);
    await held;
  });

  test('a node that dies disappears from the cluster within a few heartbeats', async () => {
    const extra = await startNode(redis, 'n4');
    await until('n4 is listed', async () => (await apis[0]!.cluster()).some((n) => n.id === 'n4'));
    await extra.stop(); // SIGKILL: no goodbye
    const killedAt = Date.now();
    await until(
      'n4 is gone',
      async () => !(await apis[0]!.cluster()).some((n) => n.id === 'n4'),
      10_000,
    );
    assert.ok(Date.now() - killedAt < 6000, 'within 3 heartbeats of 1 s, plus one');
  });
});

describe('--workers 2 over Redis', () => {
  let redis: PrivateRedis;
  let node: EpushProcess;

  before(async () => {
    redis = await PrivateRedis.start();
    node = await startNode(redis, 'multi', ['--workers', '2']);
  });

  after(async () => {
    await node.stop();
    await redis.stop();
  });

  test('both workers join the cluster and any of them delivers to any listener', async () => {
    const client = api(node.url, KEY);
    await until('two workers are listed', async () => (await client.cluster()).length === 2);
    assert.deepEqual((await client.cluster()).map((n) => n.id).sort(), ['multi-w1', 'multi-w2']);
    // Connections are spread over the workers; every listen must be woken whichever worker holds it.
    const pushIds = await client.mintPushIds(6);
    for (const pushId of pushIds) await client.addMember('workers', pushId);
    const held = pushIds.map((pushId) => listen(node.url, [pushId]));
    await sleep(300);
    const id = await client.notifyGroup('workers', 'all');
    for (const answer of await Promise.all(held))
      assert.deepEqual(
        answer.notifications.map((n) => n.id),
        [id],
      );
  });

  test('SIGTERM drains both workers and the primary exits 0', async () => {
    const client = api(node.url, KEY);
    const pushId = await client.mintPushId();
    const held = listen(node.url, [pushId]);
    await sleep(200);
    const exit = await node.terminate();
    assert.equal(exit.code, 0);
    assert.equal((await held).reconnect, true);
  });
});

describe('Redis outage and return', () => {
  let redis: PrivateRedis;
  let publisher: EpushProcess;
  let listener: EpushProcess;

  before(async () => {
    redis = await PrivateRedis.start({ persistent: true });
    [publisher, listener] = await Promise.all([startNode(redis, 'pub'), startNode(redis, 'sub')]);
  });

  after(async () => {
    await Promise.all([publisher.stop(), listener.stop()]);
    await redis.stop();
  });

  test('held listens are told to reconnect, the API answers 503 and readiness is red while Redis is down', async () => {
    const client = api(publisher.url, KEY);
    const pushId = await client.mintPushId();
    const held = listen(listener.url, [pushId]);
    await sleep(200);
    await redis.kill();
    const answer = await held;
    assert.equal(answer.reconnect, true);
    await until(
      'readiness is red',
      async () => (await request('GET', `${publisher.url}/readyz`)).status === 503,
    );
    const notify = await client.call('POST', `/api/push-ids/${pushId}/notify`);
    assert.equal(notify.status, 503);
    assert.equal((notify.body as { error: { code: string } }).error.code, 'backplane_unavailable');
    const relisten = await listenRaw(listener.url, { pushIds: [pushId], cursor: answer.cursor });
    assert.equal(relisten.status, 503);
    await redis.restart();
    await until(
      'readiness is green again',
      async () => (await request('GET', `${publisher.url}/readyz`)).status === 200,
    );
    await until(
      'the listener node is ready too',
      async () => (await request('GET', `${listener.url}/readyz`)).status === 200,
    );
  });

  test('every notification accepted with 202 while Redis stops and restarts is delivered', async () => {
    const client = api(publisher.url, KEY);
    const pushId = await client.mintPushId();
    const accepted: string[] = [];
    const received: string[] = [];
    let publishing = true;
    let allAccepted = false;
    const consume = (async () => {
      let cursor: string | null = null;
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const answer: HttpAnswer<{ notifications: { id: string }[]; cursor: string }> | null =
          await listenRaw<{
            notifications: { id: string }[];
            cursor: string;
          }>(listener.url, {
            pushIds: [pushId],
            cursor,
          }).catch(() => null);
        if (answer?.status === 200) {
          for (const notification of answer.body.notifications) received.push(notification.id);
          cursor = answer.body.cursor;
          if (allAccepted && accepted.every((id) => received.includes(id))) return;
        } else {
          await sleep(100);
        }
      }
    })();
    // The consumer's first listen (cursor null = from now) must be held before publishing starts.
    await until('the first listen is held', async () => {
      const metrics = await request<string>('GET', `${listener.url}/metrics`);
      return /^epush_listeners 1$/m.test(metrics.text);
    });
    const publish = (async () => {
      let n = 0;
      while (publishing) {
        n += 1;
        const answer = await client
          .call<{ id: string }>('POST', `/api/push-ids/${pushId}/notify`, { body: { payload: n } })
          .catch(() => null);
        if (answer?.status === 202) accepted.push(answer.body.id);
        await sleep(20);
      }
    })();
    await sleep(500);
    await redis.kill();
    await sleep(700);
    await redis.restart();
    await until(
      'the publisher is accepting again',
      async () => (await request('GET', `${publisher.url}/readyz`)).status === 200,
    );
    await sleep(700);
    publishing = false;
    await publish;
    accepted.push(await client.notifyPushId(pushId, 'last'));
    allAccepted = true;
    await consume;
    const missing = accepted.filter((id) => !received.includes(id));
    assert.deepEqual(
      missing,
      [],
      `${missing.length} of ${accepted.length} accepted notifications were lost`,
    );
    assert.equal(new Set(received).size, received.length, 'nothing delivered twice on one cursor');
  });
});

describe('Redis URLs', () => {
  test('a password in the URL is used, and a wrong one keeps the node from starting', async () => {
    const redis = await PrivateRedis.start({ password: 's3cret/pass' });
    try {
      const node = await startNode(redis, 'with-password');
      try {
        const client = api(node.url, KEY);
        const pushId = await client.mintPushId();
        await client.addMember('auth', pushId);
        assert.deepEqual(await client.members('auth'), [pushId]);
        assert.equal(
          redis.cli('-a', 's3cret/pass', '--no-auth-warning', 'EXISTS', '{epush}:live'),
          '1',
        );
      } finally {
        await node.stop();
      }
      const wrong = redis.url.replace('s3cret%2Fpass', 'wrong');
      await assert.rejects(
        startEpush(['--backplane', wrong, '--api-key', KEY], { timeoutMs: 8000 }),
        /cannot start|WRONGPASS|NOAUTH/,
      );
    } finally {
      await redis.stop();
    }
  });
});

describe('Redis over TLS', () => {
  test('a rediss:// URL connects over TLS with a CA the process trusts', async () => {
    const redis = await PrivateRedis.start({ tls: true });
    try {
      assert.match(redis.url, /^rediss:\/\//);
      const node = await startEpush(
        ['--backplane', redis.url, '--api-key', KEY, '--node-id', 'tls'],
        {
          env: { NODE_EXTRA_CA_CERTS: redis.caFile },
        },
      );
      try {
        assert.equal(node.backplane, 'redis');
        const client = api(node.url, KEY);
        const pushId = await client.mintPushId();
        const held = listen(node.url, [pushId]);
        await sleep(200);
        const id = await client.notifyPushId(pushId, 'over tls');
        assert.deepEqual(
          (await held).notifications.map((n) => n.id),
          [id],
        );
      } finally {
        await node.stop();
      }
      // Without the CA the certificate is refused: the node does not start.
      await assert.rejects(
        startEpush(['--backplane', redis.url, '--api-key', KEY], { timeoutMs: 8000 }),
        /cannot start/,
      );
    } finally {
      await redis.stop();
    }
  });
});
