import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PrivateNats } from '../support/brokers/nats.js';
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

function startNode(nats: PrivateNats, id: string, extra: string[] = []): Promise<EpushProcess> {
  return startEpush([
    '--backplane',
    nats.url,
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

describe('three nodes over one NATS JetStream', () => {
  let nats: PrivateNats;
  let nodes: EpushProcess[];
  let apis: Api[];

  before(async () => {
    nats = await PrivateNats.start();
    nodes = await Promise.all(
      ['n1', 'n2', 'n3'].map((id) => startNode(nats, id, ['--push-id-ttl', '2'])),
    );
    apis = nodes.map((node) => api(node.url, KEY));
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await nats.stop();
  });

  test('every node prints the nats backplane in its ready line', () => {
    for (const node of nodes) assert.equal(node.backplane, 'nats');
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

  test('a cursor resumes exactly on another node after the node it came from is SIGKILLed', async () => {
    const doomed = await startNode(nats, 'doomed');
    try {
      const pushId = await apis[0]!.mintPushId();
      const held = listen(doomed.url, [pushId]);
      await sleep(200);
      const firstId = await apis[1]!.notifyPushId(pushId, 0);
      const answered = await held;
      assert.deepEqual(
        answered.notifications.map((n) => n.id),
        [firstId],
      );
      const ids: string[] = [];
      for (let n = 1; n <= 5; n++) ids.push(await apis[n % 3]!.notifyPushId(pushId, n));
      await doomed.stop(); // SIGKILL
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
    } finally {
      await doomed.stop();
    }
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

  test('GET /api/cluster lists every live node, from any node', async () => {
    await until('three nodes are listed', async () => (await apis[0]!.cluster()).length === 3);
    const listed = await apis[1]!.cluster();
    assert.deepEqual(listed.map((n) => n.id).sort(), ['n1', 'n2', 'n3']);
  });

  test('cross-node latency, publish to listen answer, over 200 notifications', async () => {
    const pushId = await apis[0]!.mintPushId();
    let cursor: string | null = null;
    const samples: number[] = [];
    for (let n = 0; n < 200; n++) {
      const held = listen(nodes[1]!.url, [pushId], cursor);
      // Let the listen reach node 2 and be held before publishing on node 1.
      await sleep(5);
      const started = performance.now();
      await apis[0]!.notifyPushId(pushId, n);
      let answer = await held;
      // An empty answer (a `reconnect` while the box is loaded, say) is followed by a listen
      // from its cursor, as a browser would; the notification must come on that one.
      while (answer.notifications.length === 0) {
        answer = await listen(nodes[1]!.url, [pushId], answer.cursor);
      }
      samples.push(performance.now() - started);
      assert.equal(answer.notifications.length, 1);
      cursor = answer.cursor;
    }
    samples.sort((x, y) => x - y);
    const p50 = samples[100]!;
    const p99 = samples[197]!;
    console.log(`nats cross-node latency: p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms`);
    assert.ok(p50 < 100, `p50 ${p50} ms`);
  });
});

describe('NATS restart mid-stream (user:pass@ in the URL)', () => {
  let nats: PrivateNats;
  let publisher: EpushProcess;
  let listener: EpushProcess;

  before(async () => {
    nats = await PrivateNats.start({ user: 'epush', password: 's3cret/pass' });
    [publisher, listener] = await Promise.all([startNode(nats, 'pub'), startNode(nats, 'sub')]);
  });

  after(async () => {
    await Promise.all([publisher.stop(), listener.stop()]);
    await nats.stop();
  });

  test('a wrong password keeps a node from starting', async () => {
    const wrong = nats.url.replace('s3cret%2Fpass', 'wrong');
    await assert.rejects(
      startEpush(['--backplane', wrong, '--api-key', KEY], { timeoutMs: 8000 }),
      /cannot start|Authorization|AUTHORIZATION/i,
    );
  });

  test('while nats-server is down the API answers 503 and readiness is red, then green', async () => {
    const client = api(publisher.url, KEY);
    const pushId = await client.mintPushId();
    const held = listen(listener.url, [pushId]);
    await sleep(200);
    await nats.kill();
    const answer = await held;
    assert.equal(answer.reconnect, true);
    await until(
      'readiness is red',
      async () => (await request('GET', `${publisher.url}/readyz`)).status === 503,
    );
    const notify = await client.call('POST', `/api/push-ids/${pushId}/notify`);
    assert.equal(notify.status, 503);
    assert.equal((notify.body as { error: { code: string } }).error.code, 'backplane_unavailable');
    await nats.restart();
    await until(
      'readiness is green again',
      async () => (await request('GET', `${publisher.url}/readyz`)).status === 200,
    );
    await until(
      'the listener node is ready too',
      async () => (await request('GET', `${listener.url}/readyz`)).status === 200,
    );
    // The log survived the restart: the cursor from before it still resumes (no reset).
    const resumed = await listenRaw<{ reset?: boolean }>(
      listener.url,
      { pushIds: [pushId], cursor: answer.cursor },
      { signal: AbortSignal.timeout(500) },
    ).catch(() => null);
    assert.notEqual(resumed?.body.reset, true, 'the epoch survives a nats-server restart');
  });

  test('every notification accepted with 202 while nats-server is SIGKILLed and restarted is delivered', async () => {
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
    await until('some notifications were accepted', () => Promise.resolve(accepted.length >= 3));
    const acceptedBefore = accepted.length;
    await nats.restart(); // SIGKILL, then the same port and store
    let sawRed = false;
    await until('the publisher is accepting again', async () => {
      const status = (await request('GET', `${publisher.url}/readyz`)).status;
      if (status === 503) sawRed = true;
      return sawRed && status === 200;
    });
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
    assert.ok(accepted.length > acceptedBefore, 'notifications were accepted after the restart');
    assert.equal(new Set(received).size, received.length, 'nothing delivered twice on one cursor');
  });
});
