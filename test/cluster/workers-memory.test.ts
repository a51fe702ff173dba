import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import {
  api,
  listenRaw,
  startEpush,
  type EpushProcess,
  type HttpAnswer,
  sleep,
} from '../support/epush-process.js';

const KEY = 'workers-test-key-0123456789';

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid), '-f', 'cli/main'], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.trim() !== '')
      .map(Number);
  } catch {
    return [];
  }
}

type Answer = HttpAnswer<{ notifications: { id: string }[]; cursor: string }>;

describe('--workers 2 on the memory backplane', () => {
  let node: EpushProcess;

  before(async () => {
    node = await startEpush([
      '--workers',
      '2',
      '--api-key',
      KEY,
      '--hold-seconds',
      '3',
      '--heartbeat-seconds',
      '1',
    ]);
  });

  after(async () => {
    await node.stop();
  });

  test('the workers behave as one service, and killing one loses no notification', async () => {
    const client = api(node.url, KEY);
    const deadline = Date.now() + 10_000;
    while ((await client.cluster()).length < 2 && Date.now() < deadline) await sleep(100);
    assert.equal((await client.cluster()).length, 2);

    const pushIds = await client.mintPushIds(4);
    const accepted: string[] = [];
    const received = new Map<string, string[]>(pushIds.map((id) => [id, []]));
    let publishing = true;
    let done = false;

    const consumers = pushIds.map(async (pushId) => {
      let cursor: string | null = null;
      while (!done) {
        const answer: Answer | null = await listenRaw<Answer['body']>(node.url, {
          pushIds: [pushId],
          cursor,
        }).catch(() => null);
        if (answer?.status === 200) {
          for (const n of answer.body.notifications) received.get(pushId)!.push(n.id);
          cursor = answer.body.cursor;
        } else {
          await sleep(50);
        }
      }
    });
    await sleep(500); // every consumer holds its first listen (null cursor = from now)
    const publisher = (async () => {
      let n = 0;
      while (publishing) {
        const pushId = pushIds[n++ % pushIds.length]!;
        const answer = await client
          .call<{ id: string }>('POST', `/api/push-ids/${pushId}/notify`, { body: { payload: n } })
          .catch(() => null);
        if (answer?.status === 202) accepted.push(`${pushId}:${answer.body.id}`);
        await sleep(15);
      }
    })();

    await sleep(500);
    const workers = childPids(node.child.pid!);
    assert.equal(workers.length, 2, `two worker processes (${workers.join(',')})`);
    process.kill(workers[0]!, 'SIGKILL');
    const acceptedAtKill = accepted.length;
    // Publishing goes on after the kill (bounded: a loaded machine publishes slowly).
    const publishUntil = Date.now() + 10_000;
    while (Date.now() < publishUntil && accepted.length < acceptedAtKill + 40) await sleep(100);
    publishing = false;
    await publisher;
    const settle = Date.now() + 8000;
    const missing = (): string[] =>
      accepted.filter((entry) => {
        const [pushId, id] = entry.split(':') as [string, string];
        return !received.get(pushId)!.includes(id);
      });
    while (missing().length > 0 && Date.now() < settle) await sleep(100);
    done = true;
    await Promise.race([Promise.all(consumers), sleep(4000)]);
    assert.ok(
      accepted.length >= acceptedAtKill + 40,
      `published ${accepted.length - acceptedAtKill} after the kill`,
    );
    assert.deepEqual(missing(), [], `${missing().length} of ${accepted.length} lost`);
    const restarted = childPids(node.child.pid!);
    assert.equal(restarted.length, 2, 'the primary started a new worker');
  });
});
