/**
 * The long-poll browser protocol (docs/protocol.md) over real HTTP against real nodes: holding, waking,
 * resuming with a cursor, membership semantics, expiry, reset, replacement and CORS.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  api,
  headCursor,
  listen,
  listenRaw,
  request,
  sleep,
  startEpush,
  unknownPushId,
  type Api,
  type EpushProcess,
  type ListenAnswer,
} from '../support/epush-process.js';
import { assertError, assertPlainAnswer } from '../support/expect.js';

/** Time a listen gets to reach the server and register before the test publishes. */
const SETTLE_MS = 300;

describe('long-poll listen', { concurrency: true }, () => {
  /** hold-seconds 1: for answers that come after the hold. */
  let quick: EpushProcess;
  /** hold-seconds 5: an answer well before 5 s was woken by a notification. */
  let slow: EpushProcess;
  /** push-id-ttl 1, hold-seconds 3. */
  let ttl: EpushProcess;
  /** retention-seconds 1. */
  let retention: EpushProcess;
  /** cors-origins limited to two origins. */
  let cors: EpushProcess;
  let quickApi: Api;
  let slowApi: Api;
  let ttlApi: Api;
  let retentionApi: Api;

  before(async () => {
    [quick, slow, ttl, retention, cors] = await Promise.all([
      startEpush(['--insecure-dev', '--hold-seconds', '1']),
      startEpush(['--insecure-dev', '--hold-seconds', '5']),
      startEpush(['--insecure-dev', '--hold-seconds', '3', '--push-id-ttl', '1']),
      startEpush(['--insecure-dev', '--hold-seconds', '1', '--retention-seconds', '1']),
      startEpush([
        '--insecure-dev',
        '--hold-seconds',
        '1',
        '--cors-origins',
        'https://app.example.com,https://other.example.com',
      ]),
    ]);
    quickApi = api(quick.url);
    slowApi = api(slow.url);
    ttlApi = api(ttl.url);
    retentionApi = api(retention.url);
  });

  after(async () => {
    await Promise.all([quick, slow, ttl, retention, cors].map((node) => node?.stop()));
  });

  /**
   * Starts a listen and gives it time to be held before the caller publishes. Without a cursor
   * it listens from the current head, so a slow machine cannot make it miss what follows.
   */
  async function held(
    url: string,
    pushIds: readonly string[],
    cursor?: string | null,
    signal?: AbortSignal,
  ): Promise<{ answer: Promise<ListenAnswer & { ms: number }> }> {
    const from = cursor === undefined ? await headCursor(url) : cursor;
    const answer = listen(url, pushIds, from, signal ? { signal } : {});
    // Keep a rejection from being unhandled while we sleep; the caller awaits it.
    answer.catch(() => undefined);
    await sleep(SETTLE_MS);
    return { answer };
  }

  describe('holding and waking', { concurrency: true }, () => {
    test('a listen with nothing to deliver is held for hold-seconds, then answered empty with a cursor', async () => {
      const pushId = await quickApi.mintPushId();
      const answer = await listen(quick.url, [pushId]);
      assert.ok(answer.ms >= 900, `answered after ${answer.ms} ms, before the 1 s hold`);
      assert.ok(answer.ms < 3000, `answered after ${answer.ms} ms, long after the 1 s hold`);
      assert.deepEqual(answer.notifications, []);
      assert.deepEqual(answer.expired, []);
      assert.equal(typeof answer.cursor, 'string');
      assert.ok(answer.cursor.length > 0);
      assertPlainAnswer(answer);
    });

    test('the listen answer has exactly the fields notifications, cursor and expired', async () => {
      const pushId = await quickApi.mintPushId();
      const answer = await listenRaw(quick.url, { pushIds: [pushId], cursor: null });
      assert.equal(answer.status, 200);
      assert.match(answer.headers.get('content-type') ?? '', /^application\/json/);
      assert.deepEqual(Object.keys(answer.body).sort(), ['cursor', 'expired', 'notifications']);
    });

    test('a held listen is answered at once by a direct notification with id, pushId, null group and the payload', async () => {
      const pushId = await slowApi.mintPushId();
      const { answer } = await held(slow.url, [pushId]);
      const sentAt = Date.now();
      const id = await slowApi.notifyPushId(pushId, { text: 'hello', n: 1 });
      const result = await answer;
      assert.ok(Date.now() - sentAt < 1000, `answered ${Date.now() - sentAt} ms after the notify`);
      assert.deepEqual(result.notifications, [
        { id, pushId, group: null, payload: { text: 'hello', n: 1 } },
      ]);
      assert.deepEqual(result.expired, []);
      assertPlainAnswer(result);
    });

    test('a listen with a null cursor is woken by a notification published after it arrived', async () => {
      const pushId = await slowApi.mintPushId();
      const answer = listen(slow.url, [pushId], null);
      await sleep(1000); // no cursor to fall back on: let the listen arrive first
      const id = await slowApi.notifyPushId(pushId, 'after arrival');
      const result = await answer;
      assert.ok(result.ms < 3000, `held ${result.ms} ms: the notification did not wake it`);
      assert.deepEqual(
        result.notifications.map((n) => n.id),
        [id],
      );
    });

    test('a held listen is answered at once by a notification to a group its push ID is a member of', async () => {
      const pushId = await slowApi.mintPushId();
      await slowApi.addMember('room.1', pushId);
      const { answer } = await held(slow.url, [pushId]);
      const sentAt = Date.now();
      const id = await slowApi.notifyGroup('room.1', ['a', 2]);
      const result = await answer;
      assert.ok(Date.now() - sentAt < 1000, `answered ${Date.now() - sentAt} ms after the notify`);
      assert.deepEqual(result.notifications, [{ id, pushId, group: 'room.1', payload: ['a', 2] }]);
    });

    test('the payload is null when the notify call sent no body, and when the body had no payload', async () => {
      const pushId = await slowApi.mintPushId();
      const from = await headCursor(slow.url);
      const first = await slowApi.notifyPushId(pushId);
      const second = await slowApi.call<{ id: string }>('POST', `/api/push-ids/${pushId}/notify`, {
        body: {},
      });
      assert.equal(second.status, 202);
      const result = await listen(slow.url, [pushId], from);
      assert.deepEqual(result.notifications, [
        { id: first, pushId, group: null, payload: null },
        { id: second.body.id, pushId, group: null, payload: null },
      ]);
    });

    test('payloads of every JSON type arrive unchanged, in publish order', async () => {
      const pushId = await slowApi.mintPushId();
      const payloads: unknown[] = [
        'text with ünïcødé ✓ and "quotes" \u2028',
        42.5,
        false,
        null,
        [1, [2, [3]]],
        { nested: { deep: { list: [{ a: null }] } }, emoji: '🚀' },
      ];
      const from = await headCursor(slow.url);
      const ids: string[] = [];
      for (const payload of payloads) ids.push(await slowApi.notifyPushId(pushId, payload));
      const result = await listen(slow.url, [pushId], from);
      assert.deepEqual(
        result.notifications.map((n) => n.payload),
        payloads,
      );
      assert.deepEqual(
        result.notifications.map((n) => n.id),
        ids,
      );
    });

    test('every notification gets its own id', async () => {
      const pushId = await slowApi.mintPushId();
      await slowApi.addMember('ids', pushId);
      const ids = await Promise.all([
        slowApi.notifyPushId(pushId),
        slowApi.notifyPushId(pushId),
        slowApi.notifyGroup('ids'),
        slowApi.notifyGroup('ids'),
      ]);
      assert.equal(new Set(ids).size, 4, `ids repeat: ${ids.join(', ')}`);
      for (const id of ids) assert.ok(id.length > 0);
    });

    test('a direct notification to one push ID does not wake the listener of another', async () => {
      const [mine, other] = await quickApi.mintPushIds(2);
      const { answer } = await held(quick.url, [mine!]);
      await quickApi.notifyPushId(other!, 'not for you');
      const result = await answer;
      assert.ok(result.ms >= 900, `answered after ${result.ms} ms, before the hold ended`);
      assert.deepEqual(result.notifications, []);
    });

    test('a group notification does not wake a listener whose push ID is not a member', async () => {
      const [member, outsider] = await quickApi.mintPushIds(2);
      await quickApi.addMember('members-only', member!);
      const { answer } = await held(quick.url, [outsider!]);
      await quickApi.notifyGroup('members-only', 1);
      const result = await answer;
      assert.ok(result.ms >= 900, `answered after ${result.ms} ms, before the hold ended`);
      assert.deepEqual(result.notifications, []);
    });
  });

  describe('cursors', { concurrency: true }, () => {
    test('resuming with the last cursor delivers everything published while not listening, in order, exactly once', async () => {
      const pushId = await quickApi.mintPushId();
      await quickApi.addMember('resume', pushId);
      const first = await listen(quick.url, [pushId]); // held 1 s, empty
      assert.deepEqual(first.notifications, []);
      const ids = [
        await quickApi.notifyPushId(pushId, 1),
        await quickApi.notifyGroup('resume', 2),
        await quickApi.notifyPushId(pushId, 3),
      ];
      const second = await listen(quick.url, [pushId], first.cursor);
      assert.ok(second.ms < 900, `the backlog took ${second.ms} ms: it was held`);
      assert.deepEqual(
        second.notifications.map((n) => [n.id, n.pushId, n.group, n.payload]),
        [
          [ids[0], pushId, null, 1],
          [ids[1], pushId, 'resume', 2],
          [ids[2], pushId, null, 3],
        ],
      );
      assert.notEqual(second.cursor, first.cursor);
      const third = await listen(quick.url, [pushId], second.cursor);
      assert.deepEqual(third.notifications, [], 'notifications were delivered twice');
      assert.ok(third.ms >= 900, `answered after ${third.ms} ms, the listen was not held`);
    });

    test('the cursor of an answer that delivered notifications resumes after them', async () => {
      const pushId = await slowApi.mintPushId();
      const { answer } = await held(slow.url, [pushId]);
      const first = await slowApi.notifyPushId(pushId, 'one');
      const woken = await answer;
      assert.deepEqual(
        woken.notifications.map((n) => n.id),
        [first],
      );
      const second = await slowApi.notifyPushId(pushId, 'two');
      const resumed = await listen(slow.url, [pushId], woken.cursor);
      assert.deepEqual(
        resumed.notifications.map((n) => [n.id, n.payload]),
        [[second, 'two']],
      );
    });

    test('a null cursor means from now: notifications published before the listen are not delivered', async () => {
      const pushId = await quickApi.mintPushId();
      await quickApi.addMember('before', pushId);
      await quickApi.notifyPushId(pushId, 'old direct');
      await quickApi.notifyGroup('before', 'old group');
      const answer = await listen(quick.url, [pushId], null);
      assert.deepEqual(answer.notifications, []);
      assert.ok(answer.ms >= 900, `answered after ${answer.ms} ms: something was delivered`);
    });

    test('a cursor that is not one the server handed out is refused with 400 invalid_cursor', async () => {
      const pushId = await quickApi.mintPushId();
      for (const cursor of ['not a cursor', '', 'x'.repeat(300), 12, { seq: 1 }, ['a-1']]) {
        const answer = await listenRaw(quick.url, { pushIds: [pushId], cursor });
        assertError(answer, 400, 'invalid_cursor');
      }
    });

    test('a cursor from another server instance is answered with reset and a cursor that works here', async () => {
      const otherCursor = await headCursor(quick.url);
      const pushId = await slowApi.mintPushId();
      const answer = await listen(slow.url, [pushId], otherCursor);
      assert.equal(answer.reset, true);
      assert.deepEqual(answer.notifications, []);
      assert.ok(answer.ms < 1000, `the reset took ${answer.ms} ms`);
      assert.notEqual(answer.cursor, otherCursor);
      const id = await slowApi.notifyPushId(pushId, 'after reset');
      const resumed = await listen(slow.url, [pushId], answer.cursor);
      assert.equal(resumed.reset, undefined);
      assert.deepEqual(
        resumed.notifications.map((n) => n.id),
        [id],
      );
    });

    test('a cursor older than retention-seconds is answered with reset; its new cursor resumes normally', async () => {
      const pushId = await retentionApi.mintPushId();
      const old = await headCursor(retention.url);
      await retentionApi.notifyPushId(pushId, 'falls out of retention');
      await sleep(1500);
      // A later event makes the log drop what retention no longer covers.
      await retentionApi.notifyPushId(pushId, 'recent');
      const answer = await listen(retention.url, [pushId], old);
      assert.equal(answer.reset, true, `no reset: ${JSON.stringify(answer)}`);
      assert.deepEqual(answer.notifications, []);
      assert.notEqual(answer.cursor, old);
      const id = await retentionApi.notifyPushId(pushId, 'after reset');
      const resumed = await listen(retention.url, [pushId], answer.cursor);
      assert.equal(resumed.reset, undefined);
      assert.deepEqual(
        resumed.notifications.map((n) => n.id),
        [id],
      );
    });

    test('a cursor within retention resumes without reset on the retention-limited node', async () => {
      const pushId = await retentionApi.mintPushId();
      const from = await headCursor(retention.url);
      const id = await retentionApi.notifyPushId(pushId, 'fresh');
      const answer = await listen(retention.url, [pushId], from);
      assert.equal(answer.reset, undefined);
      assert.deepEqual(
        answer.notifications.map((n) => n.id),
        [id],
      );
    });
  });

  describe('group membership', { concurrency: true }, () => {
    test('a push ID that joins a group after a notification was published does not receive it', async () => {
      const pushId = await slowApi.mintPushId();
      const from = await headCursor(slow.url);
      await slowApi.notifyGroup('late-join', 'before joining');
      await slowApi.addMember('late-join', pushId);
      const marker = await slowApi.notifyPushId(pushId, 'marker');
      const answer = await listen(slow.url, [pushId], from);
      assert.deepEqual(
        answer.notifications.map((n) => [n.id, n.payload]),
        [[marker, 'marker']],
      );
    });

    test('a push ID removed from a group after a notification was published still receives it on resume', async () => {
      const pushId = await slowApi.mintPushId();
      await slowApi.addMember('early-leave', pushId);
      const from = await headCursor(slow.url);
      const id = await slowApi.notifyGroup('early-leave', 'while a member');
      await slowApi.removeMember('early-leave', pushId);
      const answer = await listen(slow.url, [pushId], from);
      assert.deepEqual(answer.notifications, [
        { id, pushId, group: 'early-leave', payload: 'while a member' },
      ]);
    });

    test('a push ID removed from a group no longer receives its later notifications', async () => {
      const pushId = await slowApi.mintPushId();
      await slowApi.addMember('left', pushId);
      await slowApi.removeMember('left', pushId);
      const from = await headCursor(slow.url);
      await slowApi.notifyGroup('left', 'after leaving');
      const marker = await slowApi.notifyPushId(pushId, 'marker');
      const answer = await listen(slow.url, [pushId], from);
      assert.deepEqual(
        answer.notifications.map((n) => n.id),
        [marker],
      );
    });

    test('a push ID removed from a group while its listen is held is not woken by that group any more', async () => {
      const pushId = await slowApi.mintPushId();
      await slowApi.addMember('left-while-held', pushId);
      const { answer } = await held(slow.url, [pushId]);
      await slowApi.removeMember('left-while-held', pushId);
      await slowApi.notifyGroup('left-while-held', 'after leaving');
      const marker = await slowApi.notifyPushId(pushId, 'marker');
      const result = await answer;
      assert.deepEqual(
        result.notifications.map((n) => [n.id, n.payload]),
        [[marker, 'marker']],
      );
    });

    test('a push ID that joins a group while its listen is held is woken by the group', async () => {
      const pushId = await slowApi.mintPushId();
      const { answer } = await held(slow.url, [pushId]);
      await slowApi.addMember('joined-while-held', pushId);
      const id = await slowApi.notifyGroup('joined-while-held', 'welcome');
      const result = await answer;
      assert.deepEqual(result.notifications, [
        { id, pushId, group: 'joined-while-held', payload: 'welcome' },
      ]);
    });

    test('a group notification reaching two push IDs of one listen is delivered twice with the same id', async () => {
      const [a, b, c] = await slowApi.mintPushIds(3);
      await slowApi.addMember('pair', a!);
      await slowApi.addMember('pair', b!);
      const { answer } = await held(slow.url, [a!, b!, c!]);
      const id = await slowApi.notifyGroup('pair', { hi: true });
      const result = await answer;
      assert.equal(result.notifications.length, 2, JSON.stringify(result));
      assert.deepEqual(result.notifications.map((n) => n.pushId).sort(), [a!, b!].sort());
      for (const delivery of result.notifications) {
        assert.equal(delivery.id, id);
        assert.equal(delivery.group, 'pair');
        assert.deepEqual(delivery.payload, { hi: true });
      }
    });

    test('a group notification reaching two push IDs is delivered twice with the same id on resume too', async () => {
      const [a, b] = await slowApi.mintPushIds(2);
      await slowApi.addMember('pair-resume', a!);
      await slowApi.addMember('pair-resume', b!);
      const from = await headCursor(slow.url);
      const id = await slowApi.notifyGroup('pair-resume', 7);
      const result = await listen(slow.url, [a!, b!], from);
      assert.deepEqual(
        result.notifications.map((n) => [n.id, n.pushId]).sort(),
        [
          [id, a!],
          [id, b!],
        ].sort(),
      );
    });

    test('two listeners of one group each receive the group notification', async () => {
      const [a, b] = await slowApi.mintPushIds(2);
      await slowApi.addMember('fanout', a!);
      await slowApi.addMember('fanout', b!);
      const { answer: first } = await held(slow.url, [a!]);
      const { answer: second } = await held(slow.url, [b!]);
      const id = await slowApi.notifyGroup('fanout', 'both');
      const [ra, rb] = await Promise.all([first, second]);
      assert.deepEqual(ra.notifications, [{ id, pushId: a!, group: 'fanout', payload: 'both' }]);
      assert.deepEqual(rb.notifications, [{ id, pushId: b!, group: 'fanout', payload: 'both' }]);
    });
  });

  describe('push IDs per listen', { concurrency: true }, () => {
    test('a listen for 100 push IDs is accepted and one for 101 is refused with too_many_push_ids', async () => {
      const pushIds = await quickApi.mintPushIds(101);
      const hundred = await listenRaw(quick.url, { pushIds: pushIds.slice(0, 100), cursor: null });
      assert.equal(hundred.status, 200, hundred.text);
      assert.deepEqual(hundred.body.expired, []);
      const tooMany = await listenRaw(quick.url, { pushIds, cursor: null });
      assertError(tooMany, 400, 'too_many_push_ids');
    });

    test('a notification to the 100th push ID of a listen wakes it', async () => {
      const pushIds = await slowApi.mintPushIds(100);
      const { answer } = await held(slow.url, pushIds);
      const id = await slowApi.notifyPushId(pushIds[99]!, 'last');
      const result = await answer;
      assert.deepEqual(result.notifications, [
        { id, pushId: pushIds[99]!, group: null, payload: 'last' },
      ]);
    });

    test('a push ID named twice in one listen gets each notification once', async () => {
      const pushId = await slowApi.mintPushId();
      const { answer } = await held(slow.url, [pushId, pushId]);
      const id = await slowApi.notifyPushId(pushId, 'once');
      const result = await answer;
      assert.deepEqual(result.notifications, [{ id, pushId, group: null, payload: 'once' }]);
    });

    test('a listen with no push IDs, or push IDs that are not push IDs, is refused', async () => {
      assertError(await listenRaw(quick.url, { pushIds: [], cursor: null }), 400, 'invalid_body');
      assertError(
        await listenRaw(quick.url, { pushIds: ['short'], cursor: null }),
        400,
        'invalid_push_id',
      );
      assertError(
        await listenRaw(quick.url, { pushIds: ['has spaces in it, too long'], cursor: null }),
        400,
        'invalid_push_id',
      );
    });
  });

  describe('expiry', { concurrency: true }, () => {
    test('a listen with a push ID that was never minted is answered at once with it under expired', async () => {
      const live = await slowApi.mintPushId();
      const unknown = unknownPushId();
      const answer = await listen(slow.url, [live, unknown]);
      assert.ok(answer.ms < 1000, `held for ${answer.ms} ms`);
      assert.deepEqual(answer.expired, [unknown]);
      assert.deepEqual(answer.notifications, []);
      assert.equal(typeof answer.cursor, 'string');
    });

    test('a push ID nobody listened on for push-id-ttl expires: listen reports it, it left its groups, notify and join answer 404', async () => {
      const [gone, other] = await ttlApi.mintPushIds(2);
      await ttlApi.addMember('ttl-group', gone!);
      await ttlApi.addMember('ttl-group', other!);
      assert.deepEqual((await ttlApi.members('ttl-group')).sort(), [gone!, other!].sort());
      await sleep(1800);
      assert.deepEqual(await ttlApi.members('ttl-group'), []);
      const answer = await listen(ttl.url, [gone!]);
      assert.ok(answer.ms < 1000, `held for ${answer.ms} ms`);
      assert.deepEqual(answer.expired, [gone!]);
      const notify = await ttlApi.call('POST', `/api/push-ids/${gone!}/notify`, { body: {} });
      assertError(notify, 404, 'push_id_not_found');
      const join = await ttlApi.call('PUT', `/api/groups/ttl-group/members/${gone!}`);
      assertError(join, 404, 'push_id_not_found');
    });

    test('an expired push ID stays expired: a second listen reports it again', async () => {
      const gone = await ttlApi.mintPushId();
      await sleep(1800);
      const first = await listen(ttl.url, [gone]);
      const second = await listen(ttl.url, [gone], first.cursor);
      assert.deepEqual(first.expired, [gone]);
      assert.deepEqual(second.expired, [gone]);
    });

    test('a push ID held by a listen for longer than push-id-ttl does not expire', async () => {
      const pushId = await ttlApi.mintPushId();
      await ttlApi.addMember('held-group', pushId);
      const first = await listen(ttl.url, [pushId]); // held 3 s, three times the ttl
      assert.deepEqual(first.expired, []);
      assert.ok(first.ms >= 2500, `answered after ${first.ms} ms`);
      const members = await ttlApi.members('held-group');
      const second = await listen(ttl.url, [pushId], first.cursor);
      assert.deepEqual(second.expired, [], 'the held push ID expired while it was held');
      assert.deepEqual(members, [pushId], 'the held push ID left its group while it was held');
    });
  });

  describe('replacement and disconnects', { concurrency: true }, () => {
    test('a newer listen for the same push ID answers the older one at once with replaced and a cursor', async () => {
      const pushId = await slowApi.mintPushId();
      const { answer: older } = await held(slow.url, [pushId]);
      const newer = listen(slow.url, [pushId]);
      const displaced = await older;
      assert.ok(displaced.ms < 2000, `the older listen was held ${displaced.ms} ms`);
      assert.equal(displaced.replaced, true);
      assert.deepEqual(displaced.notifications, []);
      assert.equal(typeof displaced.cursor, 'string');
      await sleep(SETTLE_MS);
      const id = await slowApi.notifyPushId(pushId, 'to the newer one');
      const result = await newer;
      assert.deepEqual(
        result.notifications.map((n) => n.id),
        [id],
      );
      assert.equal(result.replaced, undefined);
    });

    test('a newer listen overlapping in one push ID replaces the older listen of several push IDs', async () => {
      const [a, b] = await slowApi.mintPushIds(2);
      const { answer: older } = await held(slow.url, [a!, b!]);
      const newer = listen(slow.url, [b!]);
      const displaced = await older;
      assert.equal(displaced.replaced, true);
      await sleep(SETTLE_MS);
      const id = await slowApi.notifyPushId(b!, 'b');
      assert.deepEqual(
        (await newer).notifications.map((n) => n.id),
        [id],
      );
      // Nothing is lost for the other push ID: the displaced cursor resumes it.
      const forA = await slowApi.notifyPushId(a!, 'a');
      const resumed = await listen(slow.url, [a!], displaced.cursor);
      assert.deepEqual(
        resumed.notifications.map((n) => n.id),
        [forA],
      );
    });

    test('a client that disconnects while held does not break later delivery', async () => {
      const pushId = await slowApi.mintPushId();
      const from = await headCursor(slow.url);
      const abort = new AbortController();
      const { answer: abandoned } = await held(slow.url, [pushId], from, abort.signal);
      abort.abort();
      await assert.rejects(abandoned);
      await sleep(100);
      const missed = await slowApi.notifyPushId(pushId, 'while away');
      const resumed = await listen(slow.url, [pushId], from);
      assert.deepEqual(
        resumed.notifications.map((n) => n.id),
        [missed],
      );
      const { answer: again } = await held(slow.url, [pushId], resumed.cursor);
      const next = await slowApi.notifyPushId(pushId, 'live again');
      const result = await again;
      assert.ok(result.ms < 2000, `held ${result.ms} ms after the notify`);
      assert.deepEqual(
        result.notifications.map((n) => n.id),
        [next],
      );
    });
  });

  describe('CORS', { concurrency: true }, () => {
    test('with the default cors-origins a listen answer allows any origin', async () => {
      const pushId = await slowApi.mintPushId();
      const answer = await listenRaw(
        slow.url,
        { pushIds: [pushId, unknownPushId()], cursor: null },
        { headers: { origin: 'https://anywhere.example.org' } },
      );
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('access-control-allow-origin'), '*');
    });

    test('a preflight for POST /push/listen is answered 204 with the allowed method and headers', async () => {
      const answer = await request('OPTIONS', `${slow.url}/push/listen`, {
        headers: {
          origin: 'https://anywhere.example.org',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type',
        },
      });
      assert.equal(answer.status, 204);
      assert.equal(answer.text, '');
      assert.equal(answer.headers.get('access-control-allow-origin'), '*');
      assert.match(answer.headers.get('access-control-allow-methods') ?? '', /\bPOST\b/);
      assert.match(answer.headers.get('access-control-allow-headers') ?? '', /content-type/i);
    });

    test('with cors-origins set, an allowed origin is echoed and varies by Origin', async () => {
      const answer = await listenRaw(
        cors.url,
        { pushIds: [unknownPushId()], cursor: null },
        { headers: { origin: 'https://other.example.com' } },
      );
      assert.equal(answer.status, 200);
      assert.equal(answer.headers.get('access-control-allow-origin'), 'https://other.example.com');
      assert.match(answer.headers.get('vary') ?? '', /origin/i);
    });

    test('with cors-origins set, another origin may not listen (403, no Access-Control-Allow-Origin), nor read a preflight', async () => {
      const answer = await listenRaw(
        cors.url,
        { pushIds: [unknownPushId()], cursor: null },
        { headers: { origin: 'https://evil.example.net' } },
      );
      assertError(answer, 403, 'forbidden_origin');
      assert.equal(answer.headers.get('access-control-allow-origin'), null);
      // The node:http path (Content-Encoding is left to it by the accept loop) and SSE refuse it
      // the same way.
      const handedOff = await listenRaw(
        cors.url,
        { pushIds: [unknownPushId()], cursor: null },
        { headers: { origin: 'https://evil.example.net', 'content-encoding': 'identity' } },
      );
      assertError(handedOff, 403, 'forbidden_origin');
      const sse = await request('GET', `${cors.url}/push/sse?pushIds=${unknownPushId()}`, {
        headers: { origin: 'https://evil.example.net' },
      });
      assertError(sse, 403, 'forbidden_origin');
      const metrics = (await request('GET', `${cors.url}/metrics`)).text;
      assert.match(metrics, /epush_rejected_requests_total\{reason="forbidden_origin"\} [1-9]/);
      const preflight = await request('OPTIONS', `${cors.url}/push/listen`, {
        headers: { origin: 'https://evil.example.net', 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.headers.get('access-control-allow-origin'), null);
    });

    test('a preflight from an allowed origin echoes it', async () => {
      const preflight = await request('OPTIONS', `${cors.url}/push/listen`, {
        headers: { origin: 'https://app.example.com', 'access-control-request-method': 'POST' },
      });
      assert.equal(preflight.status, 204);
      assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example.com');
    });

    test('error answers on /push/* carry the CORS headers so the browser can read them', async () => {
      const answer = await listenRaw(cors.url, '{not json', {
        headers: { origin: 'https://app.example.com', 'content-type': 'application/json' },
      });
      assertError(answer, 400, 'invalid_json');
      assert.equal(answer.headers.get('access-control-allow-origin'), 'https://app.example.com');
    });
  });
});
