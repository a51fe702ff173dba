import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import {
  api,
  listenRaw,
  request,
  startEpush,
  type EpushProcess,
  until,
} from '../support/epush-process.js';
import { metricSample } from '../support/metrics.js';
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js';

const KEY = 'canary-test-key-0123456789';

describe('delivery canary', () => {
  let redis: PrivateRedis;
  let proxy: TcpFaultProxy;
  let node: EpushProcess;

  before(async () => {
    redis = await PrivateRedis.start();
    proxy = await TcpFaultProxy.start('127.0.0.1', redis.port);
    node = await startEpush([
      '--backplane',
      `redis://${proxy.url}`,
      '--api-key',
      KEY,
      '--canary-seconds',
      '1',
    ]);
  });

  after(async () => {
    await node.stop();
    await proxy.stop();
    await redis.stop();
  });

  test('a link that stays connected but stops delivering turns readiness red, then green when it delivers again', async () => {
    const ready = async (): Promise<boolean> =>
      (await request('GET', `${node.url}/readyz`)).status === 200;
    await until('ready at start', ready);
    assert.equal(await metricSample(node.url, 'epush_backplane_up'), 1);
    assert.equal(await metricSample(node.url, 'epush_backplane_outages_total'), 0);
    const rtt = await metricSample(node.url, 'epush_backplane_rtt_seconds');
    assert.ok(rtt !== null && rtt >= 0 && rtt < 1, `canary round trip ${rtt}`);

    const pushId = await api(node.url, KEY).mintPushId();
    const held = listenRaw<{ reconnect?: boolean }>(node.url, { pushIds: [pushId], cursor: null });
    await until(
      'the listen is held',
      async () => (await metricSample(node.url, 'epush_listeners')) === 1,
    );

    proxy.setMode('blackhole'); // TCP stays up: only the canary can notice
    const redAfter = await until('readiness is red', async () => !(await ready()));
    assert.ok(redAfter < 8000, `red after ${redAfter} ms`);
    assert.equal(await metricSample(node.url, 'epush_backplane_up'), 0);
    assert.equal(await metricSample(node.url, 'epush_backplane_outages_total'), 1);
    const answer = await held;
    assert.equal(answer.status, 200);
    assert.equal(answer.body.reconnect, true, 'held listeners are sent to another node');
    const refused = await listenRaw(node.url, { pushIds: [pushId], cursor: null });
    assert.equal(refused.status, 503);

    proxy.setMode('pass');
    const greenAfter = await until('readiness is green again', ready);
    assert.ok(greenAfter < 8000, `green after ${greenAfter} ms`);
    assert.equal(await metricSample(node.url, 'epush_backplane_up'), 1);
  });
});
