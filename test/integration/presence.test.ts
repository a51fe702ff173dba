/**
 * Presence on one node over real HTTP (docs/protocol.md, "Presence"): the answers' shapes, the
 * error cases, and the states a push ID goes through: idle when minted, listening while a
 * long-poll or a stream holds it and through the grace after, idle after the grace, expired
 * past its TTL. The cluster behaviour is in test/cluster/presence-cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import {
  api,
  listen,
  runEpush,
  sleep,
  startEpush,
  unknownPushId,
  type Api,
  type EpushProcess,
} from '../support/epush-process.js';
import { assertError } from '../support/expect.js';

const KEY = 'presence-test-key-0123456789';
const GRACE_SECONDS = 1;
const TTL_SECONDS = 4;

interface PushIdPresence {
  pushId: string;
  state: string;
  since: string;
  groups: string[];
}

describe('presence on one node', { concurrency: true }, () => {
  let node: EpushProcess;
  let client: Api;

  before(async () => {
    node = await startEpush([
      '--api-key',
      KEY,
      '--presence-grace-seconds',
      String(GRACE_SECONDS),
      '--push-id-ttl',
      String(TTL_SECONDS),
      '--hold-seconds',
      '2',
    ]);
    client = api(node.url, KEY);
  });

  after(async () => {
    await node.stop();
  });

  const presenceOf = async (pushId: string): Promise<PushIdPresence> => {
    const answer = await client.call<PushIdPresence>('GET', `/api/push-ids/${pushId}`);
    assert.equal(answer.status, 200, answer.text);
    return answer.body;
  };

  test('a minted push ID is idle since its minting, with its groups', async () => {
    const before = Date.now();
    const pushId = await client.mintPushId();
    await client.addMember('room-1', pushId);
    const presence = await presenceOf(pushId);
    assert.deepEqual(Object.keys(presence).sort(), ['groups', 'pushId', 'since', 'state']);
    assert.equal(presence.pushId, pushId);
    assert.equal(presence.state, 'idle');
    assert.deepEqual(presence.groups, ['room-1']);
    assert.ok(Date.parse(presence.since) >= before - 1000, presence.since);
  });

  test('a long-poll makes it listening, the grace keeps it so, then it is idle', async () => {
    const pushId = await client.mintPushId();
    const held = listen(node.url, [pushId]);
    await waitForState(presenceOf, pushId, 'listening', 3000);
    const answer = await held; // answered empty after --hold-seconds
    const endedAt = Date.now();
    // Within the grace (the long-poll "between two polls"): still listening.
    assert.equal((await presenceOf(pushId)).state, 'listening');
    const idle = await waitForState(presenceOf, pushId, 'idle', GRACE_SECONDS * 1000 + 4000);
    assert.ok(answer.cursor);
    const since = Date.parse(idle.since);
    assert.ok(since >= endedAt - 500, `idle since ${idle.since}, the listen ended at ${endedAt}`);
  });

  test('a push ID past its TTL is expired and in no group', async () => {
    const pushId = await client.mintPushId();
    await client.addMember('room-2', pushId);
    const expired = await waitForState(presenceOf, pushId, 'expired', TTL_SECONDS * 1000 + 5000);
    assert.deepEqual(expired.groups, []);
  });

  test('a group reports its members and those listening', async () => {
    const [a, b] = (await client.mintPushIds(2)) as [string, string];
    await client.addMember('room-3', a);
    await client.addMember('room-3', b);
    const held = listen(node.url, [a]);
    await waitForState(presenceOf, a, 'listening', 3000);
    const answer = await client.call<{ members: number; listening: string[] }>(
      'GET',
      '/api/groups/room-3/presence',
    );
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(answer.body, { members: 2, listening: [a] });
    await held;
  });

  test('a push ID never minted is 404, a malformed one 400, a call without key 401', async () => {
    assertError(
      await client.call('GET', `/api/push-ids/${unknownPushId()}`),
      404,
      'push_id_not_found',
    );
    assertError(await client.call('GET', '/api/push-ids/not!a!push!id'), 400, 'invalid_push_id');
    assertError(
      await api(node.url).call('GET', `/api/push-ids/${unknownPushId()}`),
      401,
      'unauthorized',
    );
    assertError(
      await client.call('GET', '/api/groups/bad%20name/presence'),
      400,
      'invalid_group_name',
    );
  });

  test('--presence-grace-seconds refuses a bad value with exit 2 naming the flag', async () => {
    const result = await runEpush(['start', '--insecure-dev', '--presence-grace-seconds', '0']);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /--presence-grace-seconds/);
  });
});

async function waitForState(
  presenceOf: (pushId: string) => Promise<PushIdPresence>,
  pushId: string,
  state: string,
  withinMs: number,
): Promise<PushIdPresence> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const presence = await presenceOf(pushId);
    if (presence.state === state) return presence;
    if (Date.now() > deadline) {
      throw new Error(`${pushId} is still ${presence.state}, not ${state}, after ${withinMs} ms`);
    }
    await sleep(100);
  }
}
