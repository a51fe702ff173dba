/**
 * Safe retries end to end: 3 nodes over a private Redis behind HAProxy (deploy/ template). The
 * Node SDK publishes N group notifications through the balancer, each with its own
 * Idempotency-Key, while one node is SIGKILLed mid-run; the SDK retries what it got no answer
 * for (a reset, a 502 from the balancer) with the same key. Listeners on the surviving nodes,
 * resuming by cursor, must receive every notification exactly once per push ID, and the log
 * itself (the group's history) must hold each one once. So that lost answers certainly happen
 * (not only when the kill catches a request in flight), the SDK talks to the balancer through
 * a small HTTP front that drops every DROP_EVERY-th answer after the node gave it.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { EpushApiClient } from '../../src/sdk/index.js';
import { api, headCursor, listen, sleep, type EpushProcess } from '../support/epush-process.js';
import type { Balancer } from '../support/load-balancer.js';
import { RedisCluster } from '../support/redis-cluster.js';

const KEY = 'idempotent-failover-key-0123';
const GROUP = 'idem.failover';
const NOTIFICATIONS = 200;
const CONCURRENCY = 6;
/** The node dies once this many notifications were started. */
const KILL_AFTER = 70;
const LISTENERS_PER_NODE = 3;
const DROP_EVERY = 10;

/** Forwards every request to `target`; every DROP_EVERY-th answer is dropped (socket reset). */
async function lossyFront(
  target: string,
): Promise<{ url: string; dropped: () => number; server: Server }> {
  let requests = 0;
  let dropped = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const name of ['authorization', 'content-type', 'idempotency-key']) {
        const value = req.headers[name];
        if (typeof value === 'string') headers[name] = value;
      }
      const body = Buffer.concat(chunks);
      void fetch(target + (req.url ?? ''), {
        method: req.method ?? 'GET',
        headers,
        ...(body.length === 0 ? {} : { body }),
      })
        .then(async (answer) => {
          const text = Buffer.from(await answer.arrayBuffer());
          requests += 1;
          if (requests % DROP_EVERY === 0) {
            dropped += 1;
            req.socket.destroy();
            return;
          }
          res.writeHead(answer.status, { 'content-type': 'application/json' }).end(text);
        })
        .catch(() => req.socket.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : 0;
  return { url: `http://127.0.0.1:${port}`, dropped: () => dropped, server };
}

describe('idempotent notify through HAProxy while a node is SIGKILLed', () => {
  let cluster: RedisCluster;
  let nodes: readonly EpushProcess[];
  let balancer: Balancer;

  before(async () => {
    cluster = await RedisCluster.start({
      apiKey: KEY,
      flags: ['--hold-seconds', '2', '--heartbeat-seconds', '1'],
      balancer: 'haproxy',
    });
    ({ nodes, balancer } = cluster);
  });

  after(async () => {
    await cluster.stop();
  });

  test(`${NOTIFICATIONS} notifications, one node killed mid-run: each reaches each push ID once`, async () => {
    const setup = api(nodes[1]!.url, KEY);
    const survivors = [nodes[1]!, nodes[2]!];
    const pushIds = await setup.mintPushIds(LISTENERS_PER_NODE * survivors.length);
    for (const pushId of pushIds) await setup.addMember(GROUP, pushId);
    const start = await headCursor(nodes[1]!.url);

    // Listeners on the surviving nodes, each resuming by its cursor.
    const received = new Map<string, string[]>(pushIds.map((id) => [id, []]));
    let listening = true;
    const loops = pushIds.map(async (pushId, i) => {
      const node = survivors[i % survivors.length]!;
      let cursor = start;
      while (listening) {
        const answer = await listen(node.url, [pushId], cursor);
        assert.equal(answer.reset, undefined, 'no listener is reset');
        for (const n of answer.notifications) received.get(pushId)!.push(n.id);
        cursor = answer.cursor;
      }
    });

    const front = await lossyFront(balancer.url);
    const sdk = new EpushApiClient({
      url: front.url,
      apiKey: KEY,
      timeoutMs: 4000,
      retries: { attempts: 10, baseDelayMs: 50, maxDelayMs: 500 },
    });
    const ids = new Array<string>(NOTIFICATIONS);
    let next = 0;
    let killedAt = -1;
    const started = Date.now();
    const publishers = Array.from({ length: CONCURRENCY }, async () => {
      while (next < NOTIFICATIONS) {
        const n = next++;
        if (n === KILL_AFTER) {
          killedAt = n;
          void nodes[0]!.stop(); // SIGKILL while requests are in flight through the balancer
        }
        const { id } = await sdk.notifyGroup(GROUP, { n }, { idempotencyKey: `run-1:n-${n}` });
        ids[n] = id;
        await sleep(10);
      }
    });
    await Promise.all(publishers);
    const publishMs = Date.now() - started;
    await sdk.close();
    front.server.closeAllConnections();
    front.server.close();
    assert.ok(front.dropped() >= NOTIFICATIONS / DROP_EVERY - 1, 'answers were lost and retried');
    assert.equal(killedAt, KILL_AFTER, 'the node was killed mid-run');
    assert.equal(new Set(ids).size, NOTIFICATIONS, 'every notify answered with its own id');

    // Every listener gets all of them; then wait a hold more for anything extra.
    const deadline = Date.now() + 20_000;
    while ([...received.values()].some((got) => got.length < NOTIFICATIONS)) {
      assert.ok(Date.now() < deadline, 'every listener received every notification');
      await sleep(100);
    }
    await sleep(2500);
    listening = false;
    await Promise.all(loops);

    const expected = [...ids].sort();
    for (const [pushId, got] of received) {
      assert.equal(got.length, NOTIFICATIONS, `${pushId}: exactly ${NOTIFICATIONS} deliveries`);
      assert.deepEqual([...got].sort(), expected, `${pushId}: each notification once`);
    }
    // The log itself holds each notification once: the server did not publish a retry twice.
    const history = await api(nodes[2]!.url, KEY).call<{
      notifications: { id: string; payload: { n: number } }[];
    }>('GET', `/api/groups/${GROUP}/notifications?limit=1000`);
    assert.equal(history.status, 200);
    const logged = history.body.notifications;
    assert.equal(logged.length, NOTIFICATIONS, 'the log holds each notification once');
    assert.deepEqual(
      logged.map((n) => n.payload.n).sort((x, y) => x - y),
      Array.from({ length: NOTIFICATIONS }, (_, n) => n),
    );
    assert.deepEqual(logged.map((n) => n.id).sort(), expected);
    console.log(
      `# ${NOTIFICATIONS} notifications in ${publishMs} ms, node a SIGKILLed after ${KILL_AFTER}; ` +
        `${front.dropped()} answers dropped and retried; ${pushIds.length} listeners each ` +
        `received ${NOTIFICATIONS}, the log holds ${logged.length}`,
    );
  });
});
