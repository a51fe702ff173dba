/**
 * The cluster behaviour every multi-node backplane must show, run by redis-cluster.test.ts and
 * nats-cluster.test.ts against their own private broker: cross-node delivery, exact resume on
 * another node (also after the SIGKILL of the node the cursor came from), membership and expiry
 * seen alike from every node, the node directory, and a broker outage in which nothing the API
 * accepted is lost.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  api,
  listen,
  listenRaw,
  request,
  sleep,
  startEpush,
  until,
  type Api,
  type EpushProcess,
  type HttpAnswer,
} from '../support/epush-process.js';

export const KEY = 'cluster-test-key-0123456789';

/** A private broker a suite owns (PrivateRedis, PrivateNats). */
export interface ClusterBroker {
  readonly url: string;
  /** SIGKILL; the broker stays down until `restart`. */
  kill(): Promise<void>;
  /** Starts it again on the same port, with its data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export function startNode(
  broker: ClusterBroker,
  id: string,
  extra: string[] = [],
): Promise<EpushProcess> {
  return startEpush([
    '--backplane',
    broker.url,
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

/** Three nodes over one broker. `kind` is the backplane name the ready line prints. */
export function describeThreeNodes(kind: string, startBroker: () => Promise<ClusterBroker>): void {
  describe(`three nodes over one ${kind}`, () => {
    let broker: ClusterBroker;
    let nodes: EpushProcess[];
    let apis: Api[];

    before(async () => {
      broker = await startBroker();
      nodes = await Promise.all(
        ['n1', 'n2', 'n3'].map((id) => startNode(broker, id, ['--push-id-ttl', '2'])),
      );
      apis = nodes.map((node) => api(node.url, KEY));
    });

    after(async () => {
      await Promise.all(nodes.map((node) => node.stop()));
      await broker.stop();
    });

    test(`every node prints the ${kind} backplane in its ready line`, () => {
      for (const node of nodes) assert.equal(node.backplane, kind);
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

    /** A cursor answered by `origin`, then five notifications, resumed on node 3. */
    async function resumeElsewhere(origin: EpushProcess, beforeResume: () => Promise<void>) {
      const pushId = await apis[0]!.mintPushId();
      const held = listen(origin.url, [pushId]);
      await sleep(200);
      const firstId = await apis[1]!.notifyPushId(pushId, 0);
      const answered = await held;
      assert.deepEqual(
        answered.notifications.map((n) => n.id),
        [firstId],
      );
      const ids: string[] = [];
      for (let n = 1; n <= 5; n++) ids.push(await apis[n % 3]!.notifyPushId(pushId, n));
      await beforeResume();
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
    }

    test('a cursor from one node resumes exactly on another: nothing lost, nothing repeated', async () => {
      await resumeElsewhere(nodes[0]!, () => Promise.resolve());
    });

    test('a cursor resumes exactly on another node after the node it came from is SIGKILLed', async () => {
      const doomed = await startNode(broker, 'doomed');
      try {
        await resumeElsewhere(doomed, () => doomed.stop());
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
      const extra = await startNode(broker, 'n4');
      await until('n4 is listed', async () =>
        (await apis[0]!.cluster()).some((n) => n.id === 'n4'),
      );
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
}

/**
 * A publisher node and a listener node over a broker that goes away and comes back; the broker
 * must keep its data across `restart` (persistent).
 */
export function describeBrokerOutage(
  name: string,
  startBroker: () => Promise<ClusterBroker>,
): void {
  describe(`${name} outage and return`, () => {
    let broker: ClusterBroker;
    let publisher: EpushProcess;
    let listener: EpushProcess;

    before(async () => {
      broker = await startBroker();
      [publisher, listener] = await Promise.all([
        startNode(broker, 'pub'),
        startNode(broker, 'sub'),
      ]);
    });

    after(async () => {
      await Promise.all([publisher.stop(), listener.stop()]);
      await broker.stop();
    });

    test(`held listens are told to reconnect, the API answers 503 and readiness is red while ${name} is down`, async () => {
      const client = api(publisher.url, KEY);
      const pushId = await client.mintPushId();
      const held = listen(listener.url, [pushId]);
      await sleep(200);
      await broker.kill();
      const answer = await held;
      assert.equal(answer.reconnect, true);
      await until(
        'readiness is red',
        async () => (await request('GET', `${publisher.url}/readyz`)).status === 503,
      );
      const notify = await client.call('POST', `/api/push-ids/${pushId}/notify`);
      assert.equal(notify.status, 503);
      assert.equal(
        (notify.body as { error: { code: string } }).error.code,
        'backplane_unavailable',
      );
      const relisten = await listenRaw(listener.url, { pushIds: [pushId], cursor: answer.cursor });
      assert.equal(relisten.status, 503);
      await broker.restart();
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
      assert.notEqual(resumed?.body.reset, true, 'the epoch survives a broker restart');
    });

    test(`every notification accepted with 202 while ${name} stops and restarts is delivered`, async () => {
      const client = api(publisher.url, KEY);
      const pushId = await client.mintPushId();
      const accepted: string[] = [];
      const received: string[] = [];
      let publishing = true;
      let allAccepted = false;
      type Body = { notifications: { id: string }[]; cursor: string };
      const consume = (async () => {
        let cursor: string | null = null;
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline) {
          const answer: HttpAnswer<Body> | null = await listenRaw<Body>(listener.url, {
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
      // The consumer's first listen (cursor null = from now) must be held before publishing.
      await until('the first listen is held', async () => {
        const metrics = await request<string>('GET', `${listener.url}/metrics`);
        return /^epush_listeners 1$/m.test(metrics.text);
      });
      const publish = (async () => {
        let n = 0;
        while (publishing) {
          n += 1;
          const answer = await client
            .call<{ id: string }>('POST', `/api/push-ids/${pushId}/notify`, {
              body: { payload: n },
            })
            .catch(() => null);
          if (answer?.status === 202) accepted.push(answer.body.id);
          await sleep(20);
        }
      })();
      await until('some notifications were accepted', () => Promise.resolve(accepted.length >= 3));
      await broker.kill();
      await sleep(700);
      await broker.restart();
      await until(
        'the publisher is ready again',
        async () => (await request('GET', `${publisher.url}/readyz`)).status === 200,
      );
      // A publish in flight when the broker died may wait out its command timeout (5 s).
      const acceptedAtRestart = accepted.length;
      await until(
        'publishing resumed after the restart',
        () => Promise.resolve(accepted.length >= acceptedAtRestart + 5),
        15_000,
      );
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
      assert.equal(
        new Set(received).size,
        received.length,
        'nothing delivered twice on one cursor',
      );
    });
  });
}
