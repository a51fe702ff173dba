/**
 * Presence webhooks in a cluster (docs/webhooks.md): 3 nodes over a private Redis. In a healthy
 * cluster each state change is sent once, by one node, while listeners move between nodes;
 * when the node that decided changes is SIGKILLed before its receiver acknowledged them,
 * another node sends them.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RedisCluster } from '../support/redis-cluster.js';
import { api, listen, sleep, type Api, type EpushProcess } from '../support/epush-process.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

const KEY = 'webhook-cluster-key-0123456789';
const SECRET = 'webhook-cluster-secret-0123456789ab';
const GRACE_SECONDS = 1;
const HEARTBEAT_SECONDS = 1;

async function until(what: string, check: () => boolean, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
    await sleep(50);
  }
}

describe('presence webhooks: 3 nodes over Redis', () => {
  let cluster: RedisCluster;
  let receiver: WebhookReceiver;
  let nodes: readonly EpushProcess[];
  let client: Api;

  before(async () => {
    receiver = await WebhookReceiver.start();
    cluster = await RedisCluster.start({
      apiKey: KEY,
      flags: [
        '--hold-seconds',
        '1',
        '--heartbeat-seconds',
        String(HEARTBEAT_SECONDS),
        '--presence-grace-seconds',
        String(GRACE_SECONDS),
        '--webhook-url',
        receiver.url,
        '--webhook-secret',
        SECRET,
      ],
    });
    ({ nodes } = cluster);
    client = api(nodes[1]!.url, KEY);
  });

  after(async () => {
    await cluster.stop();
    await receiver.close();
  });

  const eventsOf = (pushId: string) => receiver.acknowledged.filter((e) => e.pushId === pushId);

  test('in a healthy cluster each state change is sent once, by one node', async () => {
    const pushIds = await client.mintPushIds(30);
    // Every push ID is listened to on one node, then re-polled on the next (it moves).
    await Promise.all(
      pushIds.map(async (pushId, i) => {
        const first = await listen(nodes[i % 3]!.url, [pushId]);
        await listen(nodes[(i + 1) % 3]!.url, [pushId], first.cursor);
      }),
    );
    await until(
      'an idle event for every push ID',
      () => pushIds.every((p) => eventsOf(p).some((e) => e.type === 'push_id.idle')),
      GRACE_SECONDS * 1000 + 10_000,
    );
    await sleep(1500); // a duplicate, if any, would arrive now
    for (const pushId of pushIds) {
      const types = eventsOf(pushId).map((e) => e.type);
      assert.deepEqual(
        types,
        ['push_id.listening', 'push_id.idle'],
        `${pushId}: ${types.join(', ')}`,
      );
    }
    const all = receiver.acknowledged;
    assert.equal(new Set(all.map((e) => e.id)).size, all.length, 'no event id twice');
    const deliveries = receiver.received.map((r) => r.delivery);
    assert.equal(new Set(deliveries).size, deliveries.length, 'no batch sent twice');
  });

  test('the events a SIGKILLed sender had not delivered are sent by another node', async () => {
    receiver.mode = 500;
    const failedBefore = receiver.received.length;
    const pushIds = await client.mintPushIds(10);
    const failedEvents = () =>
      receiver.received
        .slice(failedBefore)
        .flatMap((r) => r.events)
        .filter((e) => pushIds.includes(e.pushId));
    // Held on node a only: a decides `listening` for each, and fails to deliver them. A sender
    // keeps one batch in flight, so events decided after its first batch wait behind it, unsent.
    const held = pushIds.map((pushId) => listen(nodes[0]!.url, [pushId]).catch(() => null));
    await until('a failed attempt', () => failedEvents().length > 0, 10_000);
    const deadline = Date.now() + 5000;
    for (const pushId of pushIds) {
      for (;;) {
        const answer = await client.call<{ state: string }>('GET', `/api/push-ids/${pushId}`);
        if (answer.body.state === 'listening') break;
        assert.ok(Date.now() < deadline, `${pushId} is ${answer.body.state}, not listening`);
        await sleep(50);
      }
    }
    const unsent = new Set(failedEvents().map((e) => e.id));
    await nodes[0]!.stop(); // SIGKILL, before any of them was acknowledged
    await Promise.all(held);
    receiver.mode = 204;
    const killedAt = Date.now();
    await until(
      'every unsent event delivered by another node',
      () =>
        [...unsent].every((id) => receiver.acknowledged.some((e) => e.id === id)) &&
        pushIds.every((p) => eventsOf(p).some((e) => e.type === 'push_id.listening')),
      HEARTBEAT_SECONDS * 3000 + 15_000,
    );
    // Taken over, not decided again: one listening event per push ID, the one a had decided.
    for (const pushId of pushIds) {
      const listening = eventsOf(pushId).filter((e) => e.type === 'push_id.listening');
      assert.equal(listening.length, 1, `${pushId}: ${listening.length} listening events`);
    }
    const tookMs = Date.now() - killedAt;
    const takenOver = receiver.received.filter(
      (r) => r.status === 204 && r.events.some((e) => unsent.has(e.id)),
    );
    assert.ok(
      takenOver.every((r) => r.at >= killedAt),
      'delivered after the sender died',
    );
    // Its listeners did not come back: idle once a's death is known and the grace is over.
    await until(
      'an idle event for every push ID',
      () => pushIds.every((p) => eventsOf(p).some((e) => e.type === 'push_id.idle')),
      HEARTBEAT_SECONDS * 3000 + GRACE_SECONDS * 1000 + 10_000,
    );
    assert.ok(tookMs < HEARTBEAT_SECONDS * 3000 + 15_000, `${tookMs} ms`);
  });
});
