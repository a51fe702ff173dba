import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PrivateRedis } from '../support/brokers/redis.js';
import {
  api,
  listenRaw,
  sleep,
  startEpush,
  until,
  type EpushProcess,
  type HttpAnswer,
} from '../support/epush-process.js';
import { NginxBalancer } from '../support/load-balancer.js';

const KEY = 'nginx-test-key-0123456789';
const CLIENTS = 30;

type Answer = HttpAnswer<{ notifications: { id: string }[]; cursor: string }>;

describe('behind nginx (deploy/nginx/epush.conf.template)', () => {
  let redis: PrivateRedis;
  let nodes: EpushProcess[];
  let nginx: NginxBalancer;

  before(async () => {
    redis = await PrivateRedis.start();
    nodes = await Promise.all(
      ['lb1', 'lb2'].map((id) =>
        startEpush([
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
        ]),
      ),
    );
    nginx = await NginxBalancer.start(nodes.map((node) => node.port));
  });

  after(async () => {
    await nginx.stop();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  });

  test('SIGKILL of a node under continuous publishing loses no accepted notification', async () => {
    const client = api(nginx.url, KEY);
    const pushIds = await client.mintPushIds(CLIENTS);
    const accepted: [string, string][] = [];
    const received = new Map<string, Set<string>>(pushIds.map((id) => [id, new Set()]));
    let done = false;
    const consumers = pushIds.map(async (pushId) => {
      let cursor: string | null = null;
      while (!done) {
        const answer: Answer | null = await listenRaw<Answer['body']>(nginx.url, {
          pushIds: [pushId],
          cursor,
        }).catch(() => null);
        if (answer?.status === 200) {
          for (const n of answer.body.notifications) received.get(pushId)!.add(n.id);
          cursor = answer.body.cursor;
        } else {
          await sleep(100);
        }
      }
    });
    await until('every client holds a listen', async () => {
      const nodesSeen = await client.cluster();
      return nodesSeen.reduce((sum, n) => sum + n.connections, 0) >= CLIENTS;
    });
    let publishing = true;
    const publisher = (async () => {
      let n = 0;
      while (publishing) {
        const pushId = pushIds[n++ % CLIENTS]!;
        const answer = await client
          .call<{ id: string }>('POST', `/api/push-ids/${pushId}/notify`, { body: { payload: n } })
          .catch(() => null);
        if (answer?.status === 202) accepted.push([pushId, answer.body.id]);
        await sleep(10);
      }
    })();
    await sleep(1000);
    const killedAt = Date.now();
    await nodes[0]!.stop(); // SIGKILL
    await sleep(2000);
    publishing = false;
    await publisher;
    const missing = (): [string, string][] =>
      accepted.filter(([pushId, id]) => !received.get(pushId)!.has(id));
    const recoveredAfter = await until(
      'every accepted notification has arrived',
      () => Promise.resolve(missing().length === 0),
      15_000,
    ).catch(() => -1);
    done = true;
    await Promise.race([Promise.all(consumers), sleep(7000)]);
    assert.ok(accepted.length > 100, `published ${accepted.length}`);
    assert.deepEqual(
      missing(),
      [],
      `${missing().length} of ${accepted.length} accepted notifications lost`,
    );
    console.log(
      `nginx, ${CLIENTS} clients: ${accepted.length} accepted, 0 lost; all delivered ${Date.now() - killedAt} ms after the SIGKILL (${recoveredAfter} ms after publishing stopped)`,
    );
  });
});
