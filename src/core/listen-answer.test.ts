import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { encodeCursor } from './cursor.js';
import type { NotificationEvent, NotificationId } from './events.js';
import type { GroupName } from './group-name.js';
import { FanoutAnswer, listenAnswerJson } from './listen-answer.js';
import type { PushId } from './push-id.js';

const a = 'a'.repeat(22) as PushId;
const b = 'b'.repeat(22) as PushId;
const event: NotificationEvent = {
  type: 'notification',
  seq: 7,
  id: 'abc' as NotificationId,
  group: 'news' as GroupName,
  pushId: null,
  payloadJson: JSON.stringify({ text: 'quote " and \\ and ü' }),
  publishedAt: 0,
};

describe('listen answers', () => {
  test('serialize to the SPEC shape with every optional flag', () => {
    const json = listenAnswerJson({
      deliveries: [{ event, pushId: a }],
      cursor: encodeCursor('ep', 7),
      expired: [b],
      reconnect: true,
      reset: true,
    });
    assert.deepEqual(JSON.parse(json), {
      notifications: [
        { id: 'abc', pushId: a, group: 'news', payload: { text: 'quote " and \\ and ü' } },
      ],
      cursor: 'ep-7',
      expired: [b],
      reconnect: true,
      reset: true,
    });
  });

  test('a fan-out answer equals the general serializer for one or several push IDs', () => {
    const cursor = encodeCursor('ep', 7);
    const fanout = new FanoutAnswer(event, cursor);
    for (const pushIds of [[a], [a, b]]) {
      assert.equal(
        fanout.for(pushIds),
        listenAnswerJson({
          deliveries: pushIds.map((pushId) => ({ event, pushId })),
          cursor,
          expired: [],
        }),
      );
    }
  });

  test('a direct notification has a null group and a missing payload is null', () => {
    const direct = { ...event, group: null, pushId: a, payloadJson: 'null' };
    const parsed = JSON.parse(
      listenAnswerJson({
        deliveries: [{ event: direct, pushId: a }],
        cursor: encodeCursor('e', 1),
        expired: [],
      }),
    ) as { notifications: { group: unknown; payload: unknown }[] };
    assert.equal(parsed.notifications[0]?.group, null);
    assert.equal(parsed.notifications[0]?.payload, null);
  });
});
