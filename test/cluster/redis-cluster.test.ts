/**
 * Redis as the cluster's backplane: the shared cluster behaviour (backplane-cluster.ts) over a
 * private redis-server, plus what is Redis's own: --workers over Redis, password and TLS URLs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import {
  api,
  listen,
  sleep,
  startEpush,
  until,
  type EpushProcess,
} from '../support/epush-process.js';
import { describeBrokerOutage, describeThreeNodes, KEY, startNode } from './backplane-cluster.js';

describeThreeNodes('redis', () => PrivateRedis.start());
describeBrokerOutage('Redis', () => PrivateRedis.start({ persistent: true }));

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
