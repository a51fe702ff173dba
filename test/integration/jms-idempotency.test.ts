/**
 * The JMS ingress's duplicate protection as the node applies it: a message the broker redelivers
 * to another node carries the same JMS message ID, which is the notify's idempotency key in the
 * JMS scope (jms-notify-ingress.test.ts checks the ingress passes it). Two nodes on a private
 * Redis: the second notify publishes nothing and answers the first id; an HTTP caller whose
 * Idempotency-Key happens to equal a JMS message ID is in another scope.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { notificationIdForJmsMessage } from '../../src/backplane/stomp/jms-notify-message.js';
import { JMS_IDEMPOTENCY_SCOPE, scopedIdempotencyKey } from '../../src/core/idempotency.js';
import type { GroupName } from '../../src/core/group-name.js';
import { createEpush, type EmbeddedEpush } from '../../src/embed/create-epush.js';
import { createLogger } from '../../src/observability/logger.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';

describe('JMS message IDs as idempotency keys, across nodes', () => {
  let redis: PrivateRedis;
  let nodes: EmbeddedEpush[] = [];

  before(async () => {
    redis = await PrivateRedis.start();
    nodes = ['jms-idem-a', 'jms-idem-b'].map((nodeId) =>
      createEpush({ backplane: redis.url, nodeId, logger: createLogger('silent', nodeId) }),
    );
    await Promise.all(nodes.map((node) => node.start()));
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.close()));
    await redis.stop();
  });

  test('a redelivered message notifies once, on whichever node takes it', async () => {
    const [a, b] = nodes as [EmbeddedEpush, EmbeddedEpush];
    const group = `jms.idem.${Date.now()}` as GroupName;
    const messageId = `ID:app-host-1-${Date.now()}-1:1:1:1:1`;
    const options = {
      id: notificationIdForJmsMessage(messageId),
      idempotencyKey: scopedIdempotencyKey(JMS_IDEMPOTENCY_SCOPE, messageId),
    };
    const first = await a.node.notifyGroup(group, '"once"', options);
    const again = await b.node.notifyGroup(group, '"once"', options);
    assert.equal(first, options.id);
    assert.equal(again, first);
    // An API key's scope never meets the JMS scope, even with the same raw key.
    const http = await a.node.notifyGroup(group, '"once"', {
      idempotencyKey: scopedIdempotencyKey('key-0000abcd', messageId),
    });
    assert.notEqual(http, first);
    const page = await b.node.history({ kind: 'group', group }, null, 10);
    assert.deepEqual(
      page.items.map((item) => item.event.id),
      [first, http],
    );
  });
});
