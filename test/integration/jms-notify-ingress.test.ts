/**
 * The JMS notify ingress (issue 6, docs/jms.md) against a real private ActiveMQ and a real Java
 * JMS producer talking OpenWire: valid messages reach the notify path with the payload and the id
 * derived from the JMS message ID and are acknowledged only after; invalid ones land in the
 * dead-letter queue with a code, a reason and the original body; a failing notify path is
 * retried without acknowledging or dead-lettering; a node's order is the producer's order.
 * The notify path is a fake that records calls (the path through a real cluster is tested with
 * the STOMP backplane).
 */
import assert from 'node:assert/strict';
import { createHash, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { NotifyTarget } from '../../src/backplane/backplane.js';
import { JmsNotifyIngress } from '../../src/backplane/stomp/jms-notify-ingress.js';
import { notificationIdForJmsMessage } from '../../src/backplane/stomp/jms-notify-message.js';
import {
  parseStompUrl,
  stompClient,
  subscribeConfirmed,
  type Client,
  type IMessage,
} from '../../src/backplane/stomp/stomp-connection.js';
import { EpushError } from '../../src/core/errors.js';
import type { NotificationId } from '../../src/core/events.js';
import type { GroupName } from '../../src/core/group-name.js';
import {
  JMS_IDEMPOTENCY_SCOPE,
  scopedIdempotencyKey,
  type NotifyOptions,
} from '../../src/core/idempotency.js';
import type { PushId } from '../../src/core/push-id.js';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import { compileJavaProducer, sendWithJavaProducer } from '../support/jms/java-producer.js';

const PUSH_ID = 'pushIdForJmsTests_0001';
const MAX_PAYLOAD = 64 * 1024;
/** The ingress's debug line once it sent the ACK. */
const ACKNOWLEDGED = 'JMS notify message acknowledged';

interface NotifyCall {
  readonly kind: 'group' | 'push-id';
  readonly target: string;
  readonly payloadJson: string;
  readonly id: NotificationId | undefined;
  readonly idempotencyKey: string | undefined;
  readonly at: number;
}

/** Decides how the n-th call (0-based) ends; by default it succeeds at once. */
type Behaviour = (call: NotifyCall, n: number) => Promise<void>;

/** The notify path, faked: records every call, then behaves as told. */
class FakeTarget implements NotifyTarget {
  readonly calls: NotifyCall[] = [];
  /** Calls that resolved, in order. */
  readonly notified: NotifyCall[] = [];
  inFlight = 0;
  maxInFlight = 0;

  constructor(private readonly behaviour: Behaviour = () => Promise.resolve()) {}

  notifyGroup(
    group: GroupName,
    payloadJson: string,
    options?: NotifyOptions,
  ): Promise<NotificationId> {
    const { id, idempotencyKey } = options ?? {};
    return this.record({
      kind: 'group',
      target: group,
      payloadJson,
      id,
      idempotencyKey,
      at: Date.now(),
    });
  }

  notifyPushId(
    pushId: PushId,
    payloadJson: string,
    options?: NotifyOptions,
  ): Promise<NotificationId> {
    const { id, idempotencyKey } = options ?? {};
    return this.record({
      kind: 'push-id',
      target: pushId,
      payloadJson,
      id,
      idempotencyKey,
      at: Date.now(),
    });
  }

  private async record(call: NotifyCall): Promise<NotificationId> {
    this.calls.push(call);
    this.inFlight += 1;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      await this.behaviour(call, this.calls.length - 1);
    } finally {
      this.inFlight -= 1;
    }
    this.notified.push(call);
    return call.id ?? ('minted-by-the-fake' as NotificationId);
  }
}

async function waitFor(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

describe('JMS notify ingress: ActiveMQ, a Java JMS producer, STOMP', () => {
  let broker: PrivateActiveMq;
  /** Browses queues and reads dead-letter queues; never touches a notify queue's messages. */
  let inspector: Client;
  const clients: Client[] = [];

  async function connect(): Promise<Client> {
    const client = stompClient(parseStompUrl(broker.stompUrl), {
      reconnectDelayMs: 0,
      heartbeatMs: 0,
    });
    clients.push(client);
    await new Promise<void>((resolve, reject) => {
      client.onConnect = () => {
        resolve();
      };
      client.onStompError = (frame) => {
        reject(new Error(`STOMP ERROR: ${frame.headers.message ?? frame.body}`));
      };
      client.onWebSocketClose = () => {
        reject(new Error('the STOMP connection closed before CONNECTED'));
      };
      client.activate();
    });
    return client;
  }

  /** What the queue holds now, in order, left in place (a STOMP queue browser). */
  async function browse(queue: string): Promise<IMessage[]> {
    const seen: IMessage[] = [];
    let ended = false;
    const subscription = await subscribeConfirmed(
      inspector,
      `/queue/${queue}`,
      (message) => {
        if (message.headers.browser === 'end') ended = true;
        else seen.push(message);
      },
      { browser: 'true' },
    );
    await waitFor(`the end of browsing ${queue}`, () => ended, 10_000);
    subscription.unsubscribe();
    return seen;
  }

  /** One consumer node: its own connection, a fresh prefix unless one is shared, a fake target. */
  async function startNode(options: { prefix?: string; behaviour?: Behaviour } = {}) {
    const prefix = options.prefix ?? `t${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const client = await connect();
    const target = new FakeTarget(options.behaviour);
    const logs: LogLine[] = [];
    const log = pino(
      { level: 'debug' },
      {
        write(line: string) {
          logs.push(JSON.parse(line) as LogLine);
        },
      },
    );
    const ingress = new JmsNotifyIngress({ client, prefix, target, log });
    await ingress.start();
    return {
      prefix,
      client,
      target,
      logs,
      ingress,
      /** Sends with the Java producer to this node's notify queue. */
      send: (
        body: string,
        properties: Record<string, string>,
        extra: { count?: number; bytesBody?: Uint8Array } = {},
      ) =>
        sendWithJavaProducer({
          brokerUrl: broker.openwireUrl,
          user: broker.user,
          password: broker.password,
          destination: `queue://${prefix}.notify`,
          body,
          properties,
          ...extra,
        }),
      /**
       * Stops the ingress and closes its connection cleanly: the broker has then processed every
       * ACK it sent and put back every message it did not acknowledge.
       */
      finish: async (): Promise<void> => {
        ingress.stop();
        await client.deactivate();
      },
    };
  }

  before(async () => {
    const [started] = await Promise.all([PrivateActiveMq.start(), compileJavaProducer()]);
    broker = started;
    inspector = await connect();
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.deactivate({ force: true })));
    await broker.stop();
  });

  test('the notification id is "jms-" and 22 base64url characters of the SHA-256 of the message ID', () => {
    const messageId = 'ID:app-host-40213-1700000000000-1:1:1:1:7';
    const id = notificationIdForJmsMessage(messageId);
    assert.match(id, /^jms-[A-Za-z0-9_-]{22}$/);
    const digest = createHash('sha256').update(messageId).digest('base64url');
    assert.equal(id, `jms-${digest.slice(0, 22)}`);
    assert.equal(notificationIdForJmsMessage(messageId), id, 'the same message ID, the same id');
    assert.notEqual(notificationIdForJmsMessage(`${messageId.slice(0, -1)}8`), id);
  });

  test('a group message reaches notifyGroup with its payload re-serialized and the derived id, and is acknowledged', async () => {
    const node = await startNode();
    const body = '{ "text" : "héllo ✓",\n  "n" : [1, 2] }';
    const { messageId } = await node.send(body, { epushGroup: 'news.sport:eu~1' });
    await waitFor('the notify call', () => node.target.notified.length === 1);
    assert.deepEqual(
      node.target.calls.map(({ kind, target, payloadJson, id, idempotencyKey }) => ({
        kind,
        target,
        payloadJson,
        id,
        idempotencyKey,
      })),
      [
        {
          kind: 'group',
          target: 'news.sport:eu~1',
          payloadJson: JSON.stringify({ text: 'héllo ✓', n: [1, 2] }),
          id: notificationIdForJmsMessage(messageId),
          // The JMS message ID keys the notify in the JMS scope: a redelivery publishes nothing.
          idempotencyKey: scopedIdempotencyKey(JMS_IDEMPOTENCY_SCOPE, messageId),
        },
      ],
    );
    await node.finish();
    assert.deepEqual(await browse(`${node.prefix}.notify`), [], 'the message was acknowledged');
    assert.deepEqual(await browse(`${node.prefix}.notify.DLQ`), []);
  });

  test('a push-ID message reaches notifyPushId; an empty body is payload null; a BytesMessage of JSON text is accepted', async () => {
    const node = await startNode();
    const sent = [
      await node.send('{"for":"one view"}', { epushPushId: PUSH_ID }),
      await node.send('', { epushPushId: PUSH_ID }),
      await node.send('', { epushGroup: 'g' }, { bytesBody: Buffer.from('{"b":2}') }),
    ];
    await waitFor('three notify calls', () => node.target.notified.length === 3);
    assert.deepEqual(
      node.target.calls.map(({ kind, target, payloadJson, id }) => [kind, target, payloadJson, id]),
      [
        ['push-id', PUSH_ID, '{"for":"one view"}', notificationIdForJmsMessage(sent[0]!.messageId)],
        ['push-id', PUSH_ID, 'null', notificationIdForJmsMessage(sent[1]!.messageId)],
        ['group', 'g', '{"b":2}', notificationIdForJmsMessage(sent[2]!.messageId)],
      ],
    );
    await node.finish();
    assert.deepEqual(await browse(`${node.prefix}.notify`), []);
  });

  test('a message redelivered after its consumer died is notified again under the same id', async () => {
    // The first node takes the message and dies before its notify call returns.
    const first = await startNode({ behaviour: () => new Promise<void>(() => undefined) });
    const { messageId } = await first.send('{"once":true}', { epushGroup: 'news' });
    await waitFor('the first node to take the message', () => first.target.calls.length === 1);
    await first.client.deactivate({ force: true });
    first.ingress.stop();

    const second = await startNode({ prefix: first.prefix });
    await waitFor('the redelivery', () => second.target.notified.length === 1);
    const [before, redelivered] = [first.target.calls[0]!, second.target.calls[0]!];
    assert.equal(redelivered.payloadJson, before.payloadJson);
    assert.equal(redelivered.id, before.id);
    assert.equal(redelivered.id, notificationIdForJmsMessage(messageId));
    await second.finish();
    assert.deepEqual(await browse(`${second.prefix}.notify`), []);
  });

  const rejections: {
    readonly name: string;
    readonly code: string;
    readonly reason: RegExp;
    readonly body: string;
    readonly bytesBody?: Uint8Array;
    readonly properties: Record<string, string>;
    readonly behaviour?: Behaviour;
    /** The target is asked (and refuses) rather than the ingress refusing on its own. */
    readonly targetCalls?: number;
  }[] = [
    {
      name: 'no target property',
      code: 'missing_target',
      reason: /set the string property epushGroup .* or epushPushId/,
      body: '{"a":1}',
      properties: { note: 'kept out of the copy' },
    },
    {
      name: 'both target properties',
      code: 'ambiguous_target',
      reason: /both epushGroup and epushPushId: set exactly one/,
      body: '{"a":1}',
      properties: { epushGroup: 'news', epushPushId: PUSH_ID },
    },
    {
      name: 'an unknown epush property (a list of push IDs)',
      code: 'unknown_property',
      reason: /Unknown property "epushPushIds".*one push ID per message/,
      body: '{"a":1}',
      properties: { epushGroup: 'news', epushPushIds: `${PUSH_ID},${PUSH_ID}` },
    },
    {
      name: 'an invalid group name',
      code: 'invalid_group_name',
      reason: /epushGroup "news \/ sport" is not a group name: .*1-200 characters/,
      body: '{"a":1}',
      properties: { epushGroup: 'news / sport' },
    },
    {
      name: 'an invalid push ID',
      code: 'invalid_push_id',
      reason: /epushPushId "short" is not a push ID: .*16-64 characters/,
      body: '{"a":1}',
      properties: { epushPushId: 'short' },
    },
    {
      name: 'a body that is not JSON',
      code: 'invalid_json',
      reason: /The body is not JSON .*send the payload as JSON text/,
      body: 'hello, not JSON',
      properties: { epushGroup: 'news' },
    },
    {
      name: 'a payload over 64 KiB once serialized',
      code: 'payload_too_large',
      reason: /The payload is \d+ bytes once serialized; at most 65536/,
      body: JSON.stringify({ text: 'x'.repeat(MAX_PAYLOAD) }),
      properties: { epushGroup: 'news' },
    },
    {
      name: 'a BytesMessage that is not UTF-8 text',
      code: 'not_a_text_message',
      reason: /send a TextMessage whose text is the JSON payload/,
      body: '',
      bytesBody: new Uint8Array([0xff, 0xfe, 0x00, 0x7b]),
      properties: { epushGroup: 'news' },
    },
    {
      name: 'a push ID the target does not know',
      code: 'push_id_not_found',
      reason: /^No push ID pushIdForJmsTests_0001: it is unknown or expired\.$/,
      body: '{"a":1}',
      properties: { epushPushId: PUSH_ID },
      behaviour: () =>
        Promise.reject(
          new EpushError('push_id_not_found', `No push ID ${PUSH_ID}: it is unknown or expired.`),
        ),
      targetCalls: 1,
    },
  ];

  for (const rejection of rejections) {
    test(`rejected to the DLQ with its code, reason and original body: ${rejection.name}`, async () => {
      const node = await startNode(rejection.behaviour ? { behaviour: rejection.behaviour } : {});
      const deadLetters: IMessage[] = [];
      await subscribeConfirmed(inspector, `/queue/${node.prefix}.notify.DLQ`, (message) => {
        deadLetters.push(message);
      });
      const { messageId } = await node.send(
        rejection.body,
        rejection.properties,
        rejection.bytesBody ? { bytesBody: rejection.bytesBody } : {},
      );
      await waitFor('the dead-letter copy', () => deadLetters.length === 1);
      const copy = deadLetters[0]!;
      assert.equal(copy.headers.epushErrorCode, rejection.code);
      assert.match(copy.headers.epushError ?? '', rejection.reason);
      assert.equal(copy.headers.epushOriginalMessageId, messageId);
      assert.equal(copy.headers.persistent, 'true');
      if (rejection.bytesBody) {
        assert.deepEqual(Buffer.from(copy.binaryBody), Buffer.from(rejection.bytesBody));
        assert.ok(copy.headers['content-length'] !== undefined, 'the copy is a BytesMessage too');
      } else {
        assert.equal(copy.body, rejection.body);
      }
      for (const [key, value] of Object.entries(rejection.properties)) {
        if (key.startsWith('epush')) assert.equal(copy.headers[key], value, key);
        else assert.equal(copy.headers[key], undefined, key);
      }
      assert.equal(node.target.calls.length, rejection.targetCalls ?? 0);
      assert.equal(node.target.notified.length, 0);
      const warning = node.logs.find((line) => line.level === 40 && line.code === rejection.code);
      assert.ok(warning, `no warn line for ${rejection.code}: ${JSON.stringify(node.logs)}`);
      assert.equal(warning.messageId, messageId);

      // The copy can reach the inspector before the RECEIPT reaches the ingress, which only then
      // acknowledges the original: stopping it sooner would (rightly) leave the original unacked.
      await waitFor(
        'the ACK of the original',
        () => node.logs.some((line) => line.msg === ACKNOWLEDGED && line.messageId === messageId),
        5_000,
      );
      await node.finish();
      assert.deepEqual(await browse(`${node.prefix}.notify`), [], 'the original was acknowledged');
    });
  }

  test('a target failing with backplane_unavailable twice, then succeeding: notified once, acknowledged, not dead-lettered', async () => {
    const node = await startNode({
      behaviour: (_call, n) =>
        n < 2
          ? Promise.reject(new EpushError('backplane_unavailable', 'The backplane is unreachable.'))
          : Promise.resolve(),
    });
    const { messageId } = await node.send('{"retry":1}', { epushGroup: 'news' });
    await waitFor('the third attempt to succeed', () => node.target.notified.length === 1);
    await sleep(300); // room for a wrong extra attempt or a wrong dead-letter copy
    const calls = node.target.calls;
    assert.equal(calls.length, 3);
    const id = notificationIdForJmsMessage(messageId);
    assert.deepEqual(
      calls.map((call) => call.id),
      [id, id, id],
    );
    // Backoff: 100 ms, then 200 ms (timers may fire a little early on a loaded box).
    assert.ok(
      calls[1]!.at - calls[0]!.at >= 90,
      `first retry after ${calls[1]!.at - calls[0]!.at} ms`,
    );
    assert.ok(
      calls[2]!.at - calls[1]!.at >= 190,
      `second retry after ${calls[2]!.at - calls[1]!.at} ms`,
    );
    assert.equal(node.logs.filter((line) => line.level === 40).length, 2, 'one warn per failure');
    await node.finish();
    assert.deepEqual(await browse(`${node.prefix}.notify`), [], 'acknowledged');
    assert.deepEqual(await browse(`${node.prefix}.notify.DLQ`), [], 'not dead-lettered');
  });

  test('a message whose target keeps failing is neither acknowledged nor dead-lettered, and goes back to the queue on stop', async () => {
    const node = await startNode({
      behaviour: () =>
        Promise.reject(new EpushError('backplane_unavailable', 'The backplane is unreachable.')),
    });
    const { messageId } = await node.send('{"stuck":true}', { epushGroup: 'news' });
    await waitFor('three attempts', () => node.target.calls.length >= 3);
    await node.finish();
    const attempts = node.target.calls.length;
    let left: IMessage[] = [];
    for (let i = 0; i < 50 && left.length === 0; i++) {
      left = await browse(`${node.prefix}.notify`);
      if (left.length === 0) await sleep(100);
    }
    assert.equal(left.length, 1, 'the unacknowledged message is back in the queue');
    assert.equal(left[0]!.headers['message-id'], messageId);
    assert.equal(left[0]!.body, '{"stuck":true}');
    assert.deepEqual(await browse(`${node.prefix}.notify.DLQ`), []);
    await sleep(300);
    assert.equal(node.target.calls.length, attempts, 'no retry after stop()');
  });

  test('20 messages from one Java producer are notified one at a time, in the order sent', async () => {
    // Calls take 0-10 ms, unevenly: overlapping or reordered handling would show.
    const node = await startNode({ behaviour: (_call, n) => sleep((n * 7) % 11) });
    const { messageIds } = await node.send('{"n":{i}}', { epushGroup: 'ordered' }, { count: 20 });
    assert.equal(messageIds.length, 20);
    await waitFor('20 notify calls', () => node.target.notified.length === 20);
    assert.deepEqual(
      node.target.notified.map((call) => call.payloadJson),
      Array.from({ length: 20 }, (_, i) => `{"n":${i + 1}}`),
    );
    assert.deepEqual(
      node.target.notified.map((call) => call.id),
      messageIds.map(notificationIdForJmsMessage),
    );
    assert.equal(node.target.maxInFlight, 1, 'one message at a time');
    await node.finish();
    assert.deepEqual(await browse(`${node.prefix}.notify`), []);
  });
});
