/**
 * JMS interoperability through ActiveMQ Classic (issue 6): a real Java JMS producer, talking
 * OpenWire, reaches a STOMP subscriber (@stomp/stompjs over the backplane's TCP adapter) with the body and the JMS properties intact; persistent queue messages survive
 * a SIGKILL of the broker; a wrong password is refused in words a person can act on.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  parseStompUrl,
  stompClient,
  stompHeaders,
  type Client,
  type IFrame,
  type IMessage,
} from '../../src/backplane/stomp/stomp-connection.js';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import {
  compileJavaProducer,
  runJavaProducer,
  sendWithJavaProducer,
} from '../support/jms/java-producer.js';

/** A connected stompjs client over TCP (the backplane's adapter); rejects with the broker's ERROR. */
function connectStomp(broker: PrivateActiveMq, password = broker.password): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = stompClient(
      { ...parseStompUrl(broker.stompUrl), passcode: password },
      { reconnectDelayMs: 0, heartbeatMs: 0 },
    );
    client.onConnect = () => {
      resolve(client);
    };
    client.onStompError = (frame: IFrame) => {
      reject(new Error(`STOMP ERROR: ${frame.headers.message ?? frame.body}`));
      void client.deactivate();
    };
    client.onWebSocketClose = () => {
      reject(new Error('the STOMP connection closed before CONNECTED'));
    };
    client.activate();
  });
}

/** Subscribes and resolves once the broker confirmed it (a RECEIPT), so no send races it. */
async function subscribe(
  client: Client,
  destination: string,
  headers: Record<string, string> = {},
): Promise<() => Promise<IMessage>> {
  const queue: IMessage[] = [];
  let waiter: ((message: IMessage) => void) | null = null;
  const receipt = `sub-${randomUUID()}`;
  const confirmed = new Promise<void>((resolve) => {
    client.watchForReceipt(receipt, () => {
      resolve();
    });
  });
  client.subscribe(
    destination,
    (message) => {
      if (waiter) waiter(message);
      else queue.push(message);
    },
    stompHeaders({ ...headers, receipt }),
  );
  await confirmed;
  return () => {
    const next = queue.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no message on ${destination} within 10 s`));
      }, 10_000);
      waiter = (message) => {
        clearTimeout(timer);
        waiter = null;
        resolve(message);
      };
    });
  };
}

describe('ActiveMQ: a Java JMS producer and STOMP subscribers', () => {
  let broker: PrivateActiveMq;
  const clients: Client[] = [];

  before(async () => {
    // javac and the broker's JVM start side by side: the suite waits for the slower one only.
    const [started] = await Promise.all([PrivateActiveMq.start(), compileJavaProducer()]);
    broker = started;
    console.log(`# ActiveMQ answered STOMP ${broker.lastStartMs} ms after spawn`);
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.deactivate({ force: true })));
    await broker.stop();
  });

  test('the body and JMS properties arrive intact (topic, OpenWire to STOMP)', async () => {
    const client = await connectStomp(broker);
    clients.push(client);
    const next = await subscribe(client, '/topic/epush.interop');
    const body = JSON.stringify({ text: 'héllo ✓ from JMS', n: 1 });
    const { messageId } = await sendWithJavaProducer({
      brokerUrl: broker.openwireUrl,
      user: broker.user,
      password: broker.password,
      destination: 'topic://epush.interop',
      body,
      properties: { epushGroup: 'news', epushPushIds: 'a,b', note: 'café: ✓\\x' },
    });
    const message = await next();
    assert.equal(message.body, body);
    assert.equal(message.headers['message-id'], messageId);
    assert.equal(message.headers.destination, '/topic/epush.interop');
    assert.equal(message.headers.epushGroup, 'news');
    assert.equal(message.headers.epushPushIds, 'a,b');
    // A colon and a backslash survive STOMP 1.2 header escaping both ways.
    assert.equal(message.headers.note, 'café: ✓\\x');
  });

  test('a wrong password is refused, on STOMP and on OpenWire', async () => {
    const [stomp, jms] = await Promise.all([
      connectStomp(broker, 'not-the-password').then(
        () => assert.fail('CONNECT with a wrong password succeeded'),
        (error: unknown) => error as Error,
      ),
      runJavaProducer({
        brokerUrl: broker.openwireUrl,
        user: broker.user,
        password: 'not-the-password',
        destination: 'queue://epush.refused',
        body: 'x',
      }),
    ]);
    assert.match(stomp.message, /STOMP ERROR: User name \[epush\] or password is invalid/);
    assert.equal(jms.status, 2);
    assert.match(jms.stderr, /JMSSecurityException: User name \[epush\] or password is invalid/);
  });

  test('browsing a queue over STOMP reads it in order, ends with browser:end, and keeps it', async () => {
    // The STOMP backplane's plan reads its log queue this way (docs/backplanes.md).
    const client = await connectStomp(broker);
    clients.push(client);
    const queue = `/queue/epush.browse.${randomUUID()}`;
    const bodies = ['event 1', 'event 2', 'event 3'];
    for (const body of bodies) {
      const receipt = `send-${randomUUID()}`;
      const stored = new Promise<void>((resolve) => {
        client.watchForReceipt(receipt, () => {
          resolve();
        });
      });
      client.publish({
        destination: queue,
        body,
        headers: stompHeaders({ persistent: 'true', receipt }),
        skipContentLengthHeader: true,
      });
      await stored;
    }
    const browse = async (): Promise<string[]> => {
      const next = await subscribe(client, queue, { browser: 'true' });
      const seen: string[] = [];
      for (;;) {
        const message = await next();
        if (message.headers.browser === 'end') return seen;
        seen.push(message.body);
      }
    };
    assert.deepEqual(await browse(), bodies);
    assert.deepEqual(await browse(), bodies, 'a second browse still sees every message');
  });

  test('a persistent queue message sent before a SIGKILL restart is delivered after', async () => {
    const queue = `epush.durable.${randomUUID()}`;
    const body = 'sent before the broker died';
    await sendWithJavaProducer({
      brokerUrl: broker.openwireUrl,
      user: broker.user,
      password: broker.password,
      destination: `queue://${queue}`,
      body,
      properties: { epushPushIds: 'p1' },
    });
    await broker.restart();
    console.log(`# ActiveMQ answered STOMP ${broker.lastStartMs} ms after the restart`);
    const client = await connectStomp(broker);
    clients.push(client);
    const next = await subscribe(client, `/queue/${queue}`);
    const message = await next();
    assert.equal(message.body, body);
    assert.equal(message.headers.persistent, 'true');
    assert.equal(message.headers.epushPushIds, 'p1');
  });
});
