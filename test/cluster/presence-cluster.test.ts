/**
 * Presence in a cluster (docs/protocol.md, "Presence"): 3 nodes over a private Redis behind
 * HAProxy (deploy/haproxy template; long-polls leastconn, the API round-robin, so consecutive
 * presence reads come from different nodes). A long-poll listener stays `listening` across 100
 * re-polls that land on different nodes; a tab takeover in Chromium does not flap and a closed
 * page is `idle` within grace + 2 s; the listeners of a SIGKILLed node that reconnect elsewhere
 * never read `idle`, one that does not come back does after the grace; a push ID past its TTL
 * reads `expired`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import {
  api,
  listenRaw,
  sleep,
  type Api,
  type EpushProcess,
  type HttpAnswer,
  type ListenAnswer,
} from '../support/epush-process.js';
import type { Balancer } from '../support/load-balancer.js';
import { RedisCluster } from '../support/redis-cluster.js';
import { startPageServer, type PageServer } from '../support/page-server.js';

const KEY = 'presence-cluster-key-0123456789';
const GRACE_SECONDS = 5;
const HEARTBEAT_SECONDS = 1;
/** A node is dead after 3 silent heartbeats. */
const NODE_TIMEOUT_MS = HEARTBEAT_SECONDS * 3000;
const TTL_SECONDS = 8;

const PAGE = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><link rel="icon" href="data:," /><title>presence</title></head>
  <body>
    <script>
      const params = new URLSearchParams(location.search);
      const pushUrl = params.get('push');
      window.page = { statuses: [], errors: [] };
      const script = document.createElement('script');
      script.src = pushUrl + '/epush.js';
      script.onerror = () => window.page.errors.push('could not load ' + script.src);
      script.onload = () => {
        const push = EPush.connect({ url: pushUrl });
        window.page.push = push;
        push.on('status', (status) => window.page.statuses.push(status));
        push.listen(params.get('id'), () => undefined);
      };
      document.head.append(script);
    </script>
  </body>
</html>
`;

interface Presence {
  state: string;
  since: string;
}

/** Reads one push ID's presence every `everyMs` until stopped; every answer is kept. */
/** Polls the states until stopped, or for at most a minute (a failed test cannot leave it on). */
function watch(client: Api, pushIds: readonly string[], everyMs = 100) {
  const seen: { at: number; pushId: string; state: string }[] = [];
  let running = true;
  const stopAt = Date.now() + 60_000;
  const loop = (async () => {
    while (running && Date.now() < stopAt) {
      await Promise.all(
        pushIds.map(async (pushId) => {
          const answer = await client
            .call<Presence>('GET', `/api/push-ids/${pushId}`)
            .catch(() => null);
          if (answer?.status === 200)
            seen.push({ at: Date.now(), pushId, state: answer.body.state });
        }),
      );
      await sleep(everyMs);
    }
  })();
  return {
    seen,
    async stop() {
      running = false;
      await loop;
      return seen;
    },
  };
}

async function stateOf(client: Api, pushId: string): Promise<string> {
  const answer = await client.call<Presence>('GET', `/api/push-ids/${pushId}`);
  assert.equal(answer.status, 200, answer.text);
  return answer.body.state;
}

async function waitForState(
  client: Api,
  pushId: string,
  state: string,
  withinMs: number,
): Promise<number> {
  const started = Date.now();
  for (;;) {
    if ((await stateOf(client, pushId)) === state) return Date.now() - started;
    if (Date.now() - started > withinMs) {
      throw new Error(`${pushId} did not read ${state} within ${withinMs} ms`);
    }
    await sleep(50);
  }
}

/** A browser-like long-poll loop: re-polls at once, retries failures after a short pause. */
/** Long-polls until stopped, or for at most two minutes (a failed test cannot leave it on). */
function pollForever(url: string, pushId: string) {
  let running = true;
  let cursor: string | null = null;
  const stopAt = Date.now() + 120_000;
  const loop = (async () => {
    while (running && Date.now() < stopAt) {
      const answer: HttpAnswer<ListenAnswer> | null = await listenRaw(url, {
        pushIds: [pushId],
        cursor,
      }).catch(() => null);
      if (answer?.status === 200) cursor = answer.body.cursor;
      else await sleep(100 + Math.random() * 200);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
    },
  };
}

describe('presence: 3 nodes over Redis behind HAProxy', () => {
  let cluster: RedisCluster;
  let nodes: readonly EpushProcess[];
  let balancer: Balancer;
  let client: Api;

  before(async () => {
    cluster = await RedisCluster.start({
      apiKey: KEY,
      flags: [
        '--hold-seconds',
        '2',
        '--heartbeat-seconds',
        String(HEARTBEAT_SECONDS),
        '--presence-grace-seconds',
        String(GRACE_SECONDS),
        '--push-id-ttl',
        String(TTL_SECONDS),
      ],
      balancer: 'haproxy',
    });
    ({ nodes, balancer } = cluster);
    client = api(balancer.url, KEY);
  });

  after(async () => {
    await cluster.stop();
  });

  test('a long-poll listener stays listening across 100 re-polls that move between nodes', async () => {
    const pushId = await client.mintPushId();
    let cursor: string | null = null;
    const first = listenRaw(balancer.url, { pushIds: [pushId], cursor });
    await waitForState(client, pushId, 'listening', 5000);
    cursor = (await first).body.cursor;
    const watcher = watch(client, [pushId], 30);
    const between: string[] = [];
    for (let i = 0; i < 100; i++) {
      const held: Promise<HttpAnswer<ListenAnswer>> = listenRaw(balancer.url, {
        pushIds: [pushId],
        cursor,
      });
      await client.notifyPushId(pushId, { i });
      const answer: HttpAnswer<ListenAnswer> = await held;
      assert.equal(answer.status, 200, answer.text);
      cursor = answer.body.cursor;
      // Between an answer and its re-poll: where a flap would show.
      between.push(await stateOf(client, pushId));
    }
    const seen = await watcher.stop();
    assert.equal(between.length, 100);
    const states = new Set([...seen.map((s) => s.state), ...between]);
    assert.deepEqual([...states], ['listening'], `states read: ${[...states].join(', ')}`);
  });

  test('a push ID past its TTL reads expired', async () => {
    const pushId = await client.mintPushId();
    await client.addMember('presence-expiry', pushId);
    assert.equal(await stateOf(client, pushId), 'idle');
    await waitForState(client, pushId, 'expired', TTL_SECONDS * 1000 + 5000);
    const answer = await client.call<{ groups: string[] }>('GET', `/api/push-ids/${pushId}`);
    assert.deepEqual(answer.body.groups, []);
  });

  describe('in Chromium', () => {
    let browser: Browser;
    let pages: PageServer;

    before(async () => {
      browser = await launchChromium();
      pages = await startPageServer(PAGE);
    });

    after(async () => {
      await browser.close();
      await pages.close();
    });

    test('a tab takeover does not flap, and a closed page is idle within grace + 2 s', async (t) => {
      const context = await browser.newContext();
      try {
        const [idA, idB] = (await client.mintPushIds(2)) as [string, string];
        const open = async (id: string): Promise<Page> => {
          const page = await context.newPage();
          await page.goto(`${pages.origin}/?push=${encodeURIComponent(balancer.url)}&id=${id}`);
          return page;
        };
        const tabA = await open(idA);
        const tabB = await open(idB);
        await waitForState(client, idA, 'listening', 10_000);
        await waitForState(client, idB, 'listening', 10_000);
        const isLeader = (page: Page): Promise<boolean> =>
          page.evaluate(
            () =>
              (globalThis as unknown as { page: { push: { isLeader: boolean } } }).page.push
                .isLeader,
          );
        const [leader, follower, leaderId, followerId] = (await isLeader(tabA))
          ? [tabA, tabB, idA, idB]
          : [tabB, tabA, idB, idA];
        assert.ok(await isLeader(leader), 'one of the tabs holds the connection');

        // The leader goes: the other tab takes the connection over (maybe on another node).
        const watcher = watch(client, [followerId], 50);
        const closedAt = Date.now();
        let leaderIdle: number;
        try {
          await leader.close({ runBeforeUnload: true });
          leaderIdle = await waitForState(client, leaderId, 'idle', (GRACE_SECONDS + 4) * 1000);
          t.diagnostic(`the closed leader tab's push ID read idle after ${leaderIdle} ms`);
          await sleep(Math.max(0, GRACE_SECONDS * 1000 + 2000 - (Date.now() - closedAt)));
        } finally {
          await watcher.stop();
        }
        const seen = watcher.seen;
        assert.ok(await isLeader(follower), 'the remaining tab took the connection over');
        const states = new Set(seen.map((s) => s.state));
        assert.deepEqual(
          [...states],
          ['listening'],
          `the remaining tab read ${[...states].join(', ')}`,
        );
        // The closed tab's push ID: idle once the grace is over, not before, and within grace +
        // 2 s (the tab that takes over does not inherit a departed tab's push IDs).
        assert.ok(leaderIdle >= (GRACE_SECONDS - 1) * 1000, `idle after ${leaderIdle} ms`);
        assert.ok(leaderIdle <= (GRACE_SECONDS + 2) * 1000, `idle after ${leaderIdle} ms`);

        // The last page closes: idle within grace + 2 s.
        await follower.close({ runBeforeUnload: true });
        const lastIdle = await waitForState(client, followerId, 'idle', (GRACE_SECONDS + 4) * 1000);
        assert.ok(lastIdle <= (GRACE_SECONDS + 2) * 1000, `idle after ${lastIdle} ms`);
      } finally {
        await context.close();
      }
    });
  });

  test("a SIGKILLed node's listeners that reconnect elsewhere never read idle; one that does not come back does", async () => {
    const pushIds = await client.mintPushIds(12);
    const pollers = pushIds.map((pushId) => pollForever(balancer.url, pushId));
    // One listener straight on node a (no balancer): it cannot come back when a dies.
    const [stranded] = (await client.mintPushIds(1)) as [string];
    const strandedPoller = pollForever(nodes[0]!.url, stranded);
    for (const pushId of [...pushIds, stranded])
      await waitForState(client, pushId, 'listening', 10_000);
    const survivor = api(nodes[1]!.url, KEY);
    const watcher = watch(survivor, pushIds, 100);
    const killedAt = Date.now();
    await nodes[0]!.stop(); // SIGKILL
    const strandedIdle = await waitForState(
      survivor,
      stranded,
      'idle',
      NODE_TIMEOUT_MS + GRACE_SECONDS * 1000 + 5000,
    );
    await sleep(
      Math.max(0, NODE_TIMEOUT_MS + GRACE_SECONDS * 1000 + 2000 - (Date.now() - killedAt)),
    );
    const seen = await watcher.stop();
    await Promise.all([...pollers, strandedPoller].map((poller) => poller.stop()));
    const idle = seen.filter((s) => s.state !== 'listening');
    assert.deepEqual(idle, [], 'a listener that reconnected elsewhere read something else');
    assert.ok(seen.length > pushIds.length * 20, `only ${seen.length} presence reads`);
    // Its hold ended at its node's last heartbeat: idle after about the grace, not much later
    // than the node's death is known.
    assert.ok(strandedIdle >= (GRACE_SECONDS - HEARTBEAT_SECONDS - 1) * 1000, `${strandedIdle} ms`);
    assert.ok(strandedIdle <= NODE_TIMEOUT_MS + GRACE_SECONDS * 1000 + 2000, `${strandedIdle} ms`);
  });
});
