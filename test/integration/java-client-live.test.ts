/**
 * The Java client against a real epush node (not a stub): LiveServerCheck (java/src/test) runs
 * every call of docs/protocol.md and the listen tokens through a node list whose first node refuses
 * connections, and notifies a push ID this test listens on.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { freePort } from '../../testbed/free-port.js';
import {
  api,
  listen,
  listenRaw,
  sleep,
  startEpush,
  type EpushProcess,
} from '../support/epush-process.js';
import { buildJava, type JavaBuild } from '../support/java/java-build.js';

const run = promisify(execFile);
const KEY = 'java-live-key-0123456789';
const SECRET = 'java-live-listen-token-secret-0123456789';

interface LiveResult {
  pushIds: string[];
  listenTokens: string[] | null;
  membersAfterAdd: string[];
  membersAfterRemove: string[];
  freshToken: string;
  freshExpiresAt: string;
  notifyPushId: string;
  notifyEmptyGroup: string;
  cluster: Record<string, number>;
  unknownPushId: string;
  wrongKey: string;
  repeatSameId: boolean;
  conflict: string;
  groupHistory: string[];
  historyFirstId: string;
  historyReset: boolean;
  historyAfterCursor: number;
}

describe('the Java client against a real node', () => {
  let build: JavaBuild;
  let node: EpushProcess;

  before(async () => {
    [build, node] = await Promise.all([
      buildJava(),
      startEpush([
        '--api-key',
        KEY,
        '--node-id',
        'java-live',
        '--listen-token-secret',
        SECRET,
        '--hold-seconds',
        '5',
      ]),
    ]);
  });

  after(async () => {
    await node.stop();
  });

  test('every docs/protocol.md call and the listen tokens work, a refusing first node is skipped, and the notification reaches a listener', async () => {
    const listened = await api(node.url, KEY).mintPushId();
    const held = listen(node.url, [listened], null);
    await sleep(300);
    const refusing = `http://127.0.0.1:${await freePort()}`;
    const { stdout } = await run(
      'java',
      [
        '-XX:TieredStopAtLevel=1',
        '-cp',
        [build.testClasses, build.jar].join(':'),
        'io.epush.client.LiveServerCheck',
        refusing,
        node.url,
        KEY,
        listened,
      ],
      { timeout: 60_000 },
    );
    const result = JSON.parse(stdout) as LiveResult;

    assert.equal(result.pushIds.length, 2);
    assert.equal(result.listenTokens?.length, 2, 'tokens minted alongside the push IDs');
    assert.deepEqual(result.membersAfterAdd, [result.pushIds[0]]);
    assert.deepEqual(result.membersAfterRemove, []);
    assert.ok(Date.parse(result.freshExpiresAt) > Date.now());
    assert.deepEqual(Object.keys(result.cluster), ['java-live']);
    assert.match(result.notifyEmptyGroup, /\S/);
    // A 404 is not retried: one attempt, two when the call started on the refusing node.
    assert.match(result.unknownPushId, /^push_id_not_found 404 [12]$/);
    assert.equal(result.wrongKey, 'unauthorized 401');
    // Idempotency-Key and history as the server implements them.
    assert.equal(result.repeatSameId, true, 'a repeat answers the first id');
    assert.equal(result.conflict, 'idempotency_conflict 409');
    assert.deepEqual(result.groupHistory, [`${result.historyFirstId} {"n":1}`]);
    assert.equal(result.historyReset, false);
    assert.equal(result.historyAfterCursor, 0);

    const answer = await held;
    assert.equal(answer.notifications.length, 1);
    const [notification] = answer.notifications;
    assert.equal(notification?.id, result.notifyPushId);
    assert.deepEqual(notification?.payload, {
      from: 'java',
      text: 'héllo <b>',
      n: 18446744073709551616,
    });

    // The tokens the client received are the server's: a listen with them is accepted.
    const [first] = result.pushIds;
    const answers = await Promise.all(
      [result.listenTokens?.[0], result.freshToken].map((token) =>
        listenRaw(node.url, { pushIds: [first], cursor: null, listenTokens: [token] }),
      ),
    );
    for (const withToken of answers) {
      assert.equal(withToken.status, 200, JSON.stringify(withToken.body));
    }
  });
});
