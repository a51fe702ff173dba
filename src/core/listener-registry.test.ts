import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NotificationEvent, NotificationId } from './events.js';
import type { GroupName } from './group-name.js';
import { ListenerRegistry } from './listener-registry.js';
import type { PushId } from './push-id.js';

const room = 'room' as GroupName;
const [a, b, c] = ['a', 'b', 'c'].map((x) => x.repeat(22) as PushId) as [PushId, PushId, PushId];

function groupNote(seq: number, group: GroupName): NotificationEvent {
  return {
    type: 'notification',
    seq,
    id: `n${seq}` as NotificationId,
    group,
    pushId: null,
    payloadJson: 'null',
    publishedAt: 0,
  };
}

function directNote(seq: number, pushId: PushId): NotificationEvent {
  return { ...groupNote(seq, room), group: null, pushId };
}

describe('ListenerRegistry', () => {
  test('a group notification wakes exactly the waiting members, with their push IDs', () => {
    const registry = new ListenerRegistry<{ pushIds: PushId[] }>();
    const first = { pushIds: [a, b] };
    const second = { pushIds: [c] };
    registry.add(
      first,
      new Map([
        [a, [room]],
        [b, [room]],
      ]),
    );
    registry.add(second, new Map([[c, []]]));
    const wakeups = registry.apply(groupNote(1, room));
    assert.deepEqual([...(wakeups ?? new Map())], [[first, [a, b]]]);
  });

  test('a direct notification wakes only the listener of that push ID', () => {
    const registry = new ListenerRegistry<{ pushIds: PushId[] }>();
    const listener = { pushIds: [a] };
    registry.add(listener, new Map());
    assert.deepEqual([...(registry.apply(directNote(1, a)) ?? [])], [[listener, [a]]]);
    assert.equal(registry.apply(directNote(2, b)), null);
  });

  test('membership events change who a later notification wakes', () => {
    const registry = new ListenerRegistry<{ pushIds: PushId[] }>();
    const listener = { pushIds: [a] };
    registry.add(listener, new Map());
    assert.equal(registry.apply(groupNote(1, room))?.size ?? 0, 0);
    registry.apply({ type: 'member-added', seq: 2, group: room, pushId: a });
    assert.equal(registry.apply(groupNote(3, room))?.size, 1);
    registry.apply({ type: 'member-removed', seq: 4, group: room, pushId: a });
    assert.equal(registry.apply(groupNote(5, room))?.size ?? 0, 0);
    registry.apply({ type: 'member-added', seq: 6, group: room, pushId: a });
    registry.apply({ type: 'push-id-expired', seq: 7, pushId: a });
    assert.equal(registry.apply(groupNote(8, room))?.size ?? 0, 0);
  });

  test('a newer listener for an overlapping push ID displaces the older one entirely', () => {
    const registry = new ListenerRegistry<{ pushIds: PushId[] }>();
    const older = { pushIds: [a, b] };
    const newer = { pushIds: [b, c] };
    registry.add(older, new Map([[a, [room]]]));
    assert.deepEqual(registry.add(newer, new Map()), [older]);
    assert.equal(registry.get(a), undefined, 'the displaced listener is fully unregistered');
    assert.equal(registry.get(b), newer);
    assert.equal(registry.size, 1);
    assert.equal(registry.apply(groupNote(1, room)), null);
  });

  test('removing a listener that was displaced leaves its successor in place', () => {
    const registry = new ListenerRegistry<{ pushIds: PushId[] }>();
    const older = { pushIds: [a] };
    const newer = { pushIds: [a] };
    registry.add(older, new Map());
    registry.add(newer, new Map());
    registry.remove(older);
    assert.equal(registry.get(a), newer);
    assert.equal(registry.size, 1);
  });
});
