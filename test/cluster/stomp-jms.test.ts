/**
 * A Java application notifies the cluster without HTTP (issue 6, item 2; docs/jms.md): a real
 * JMS producer, compiled by the test against the Debian package's jars and talking OpenWire,
 * sends TextMessages to the queue `epush.notify` of a private ActiveMQ; two epush nodes over
 * that broker (STOMP backplane) turn them into notifications, and a long-poll listener on the
 * other node receives them. A message epush cannot deliver ends in `epush.notify.DLQ`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  parseStompUrl,
  stompClient,
  subscribeConfirmed,
  type Client,
  type IMessage,
} from '../../src/backplane/stomp/stomp-connection.js';
import { notificationIdForJmsMessage } from '../../src/backplane/stomp/jms-notify-message.js';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import { api, listen, unknownPushId, type EpushProcess } from '../support/epush-process.js';
import { compileJavaProducer, sendWithJavaProducer } from '../support/jms/java-producer.js';
import { KEY, startNode } from './backplane-cluster.js';

describe('a Java JMS application notifies through ActiveMQ', () => {
  let broker: PrivateActiveMq;
  let nodes: EpushProcess[] = [];
  let inspector: Client;

  const send = (properties: Record<string, string>, body: string) =>
    sendWithJavaProducer({
      brokerUrl: broker.openwireUrl,
      user: broker.user,
      password: broker.password,
      destination: 'queue://epush.notify',
      body,
      properties,
    });

  before(async () => {
    const [started] = await Promise.all([PrivateActiveMq.start(), compileJavaProducer()]);
    broker = started;
    nodes = [await startNode(broker, 'jms-a'), await startNode(broker, 'jms-b')];
    inspector = stompClient(parseStompUrl(broker.stompUrl), {
      reconnectDelayMs: 0,
      heartbeatMs: 0,
    });
    await new Promise<void>((resolve) => {
      inspector.onConnect = () => {
        resolve();
      };
      inspector.activate();
    });
  });

  after(async () => {
    await inspector.deactivate();
    await Promise.all(nodes.map((node) => node.stop()));
    await broker.stop();
  });

  test('a group notification sent over OpenWire wakes a long-poll listener, under the id derived from the JMS message ID', async () => {
    const [a, b] = nodes as [EpushProcess, EpushProcess];
    const client = api(a.url, KEY);
    const pushId = await client.mintPushId();
    const group = `jms.${Date.now()}`;
    await client.addMember(group, pushId);
    const held = listen(b.url, [pushId], null);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const body = JSON.stringify({ order: 42, text: 'shipped ✓' });
    const { messageId } = await send({ epushGroup: group }, body);
    const answer = await held;
    assert.equal(answer.notifications.length, 1);
    const [notification] = answer.notifications;
    assert.deepEqual(notification?.payload, { order: 42, text: 'shipped ✓' });
    assert.equal(notification?.group, group);
    assert.equal(notification?.id, notificationIdForJmsMessage(messageId));
  });

  test('a direct notification to one push ID arrives, and later ones resume from the cursor', async () => {
    const [a, b] = nodes as [EpushProcess, EpushProcess];
    const pushId = await api(b.url, KEY).mintPushId();
    const first = listen(a.url, [pushId], null);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await send({ epushPushId: pushId }, '"one"');
    const answer = await first;
    assert.deepEqual(
      answer.notifications.map((n) => n.payload),
      ['one'],
    );
    await send({ epushPushId: pushId }, '"two"');
    await send({ epushPushId: pushId }, '"three"');
    const seen: unknown[] = [];
    let cursor = answer.cursor;
    while (seen.length < 2) {
      const next = await listen(b.url, [pushId], cursor);
      seen.push(...next.notifications.map((n) => n.payload));
      cursor = next.cursor;
    }
    assert.deepEqual(seen, ['two', 'three'], 'in the order the Java producer sent them');
  });

  test('a message for an unknown push ID ends in epush.notify.DLQ with the reason', async () => {
    const stranger = unknownPushId();
    const dead = new Promise<IMessage>((resolve) => {
      void subscribeConfirmed(inspector, '/queue/epush.notify.DLQ', resolve);
    });
    await send({ epushPushId: stranger }, '{"x":1}');
    const message = await dead;
    assert.equal(message.body, '{"x":1}');
    assert.equal(message.headers.epushPushId, stranger);
    assert.equal(message.headers.epushErrorCode, 'push_id_not_found');
    assert.match(message.headers.epushError ?? '', /unknown or expired/);
  });
});
