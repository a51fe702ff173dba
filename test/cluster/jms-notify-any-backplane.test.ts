/**
 * `--jms-notify`: a Java application notifies through a JMS broker while the cluster runs on
 * another backplane (docs/jms.md). Two nodes on a private Redis both consume a private
 * ActiveMQ's notify queue over a STOMP connection of their own; a real JMS producer (OpenWire)
 * sends, a long-poll listener on either node receives, under the id derived from the JMS message
 * ID, and a message the broker redelivers is not delivered twice.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { notificationIdForJmsMessage } from '../../src/backplane/stomp/jms-notify-message.js';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import { api, listen, type EpushProcess } from '../support/epush-process.js';
import { compileJavaProducer, sendWithJavaProducer } from '../support/jms/java-producer.js';
import { KEY, startNode } from './backplane-cluster.js';

describe('--jms-notify: JMS through ActiveMQ, the cluster on Redis', () => {
  let broker: PrivateActiveMq;
  let redis: PrivateRedis;
  let nodes: EpushProcess[] = [];

  before(async () => {
    const [activemq, store] = await Promise.all([
      PrivateActiveMq.start(),
      PrivateRedis.start(),
      compileJavaProducer(),
    ]);
    broker = activemq;
    redis = store;
    const extra = ['--jms-notify', broker.stompUrl];
    nodes = [await startNode(redis, 'jn-a', extra), await startNode(redis, 'jn-b', extra)];
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await Promise.all([broker.stop(), redis.stop()]);
  });

  test('a group notification sent over OpenWire reaches a listener of a Redis cluster', async () => {
    const [a, b] = nodes as [EpushProcess, EpushProcess];
    assert.match(a.readyLine, /backplane redis/);
    const client = api(a.url, KEY);
    const pushId = await client.mintPushId();
    const group = `jn.${Date.now()}`;
    await client.addMember(group, pushId);
    const seen: string[] = [];
    const deadline = Date.now() + 20_000;
    const sent: string[] = [];
    // Held before anything is sent: a null cursor means "from now".
    const first = listen(b.url, [pushId], null);
    await new Promise((resolve) => setTimeout(resolve, 300));
    for (const text of ['one', 'two', 'three']) {
      const { messageId } = await sendWithJavaProducer({
        brokerUrl: broker.openwireUrl,
        user: broker.user,
        password: broker.password,
        destination: 'queue://epush.notify',
        body: JSON.stringify(text),
        properties: { epushGroup: group },
      });
      sent.push(notificationIdForJmsMessage(messageId));
    }
    // Both nodes consume the queue; the listener on b sees what either node published.
    const answer = await first;
    let cursor = answer.cursor;
    for (const n of answer.notifications) seen.push(n.id);
    while (seen.length < 3 && Date.now() < deadline) {
      const answer = await listen(b.url, [pushId], cursor);
      cursor = answer.cursor;
      for (const n of answer.notifications) seen.push(n.id);
    }
    assert.deepEqual([...seen].sort(), [...sent].sort(), 'each JMS message once, by its id');
  });
});
