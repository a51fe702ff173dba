/**
 * Issue 5, item 4 (browser failover), docs/protocol.md delivery promise in a real browser: Chromium on a
 * page of its own origin listens through the real browser client (/epush.js, reached through
 * the balancer) on three epush nodes over Redis, with a real load balancer from its deploy/
 * template in front. Notifications are published every 40 ms through the balancer; the node
 * holding the page's listen is SIGKILLed while publishing goes on. The page gets every accepted
 * notification, none twice, and keeps receiving after the kill.
 *
 * The kill is aimed: after a publishing round, once the page has everything accepted so far and
 * exactly one node holds a long-poll (the page's: nothing else listens), that node is killed
 * before the next round, so no answer can move the listen elsewhere in between. The browser's
 * own request log then shows the listen that was in flight across the kill.
 *
 * The balancers differ in what the page sees of the cut listen, and each file asserts its own
 * (CUT_LISTEN below). nginx re-sends it to another node (proxy_next_upstream), so the page never
 * notices. Apache httpd does not re-send; behind it the kill is aimed at a listen that is the
 * first request on its browser connection, which Apache answers with its own 502 (no CORS
 * headers: a network error to the page), so the client's own retry path must recover: status
 * `reconnecting`, then a new listen answered 200 and `connected` again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import { launchChromium } from '../support/browser.js';
import {
  api,
  eventually,
  sleep,
  startEpush,
  type Api,
  type EpushProcess,
} from '../support/epush-process.js';
import { recordListens, type ListenSeen } from '../support/listen-recorder.js';
import { Balancer, type BalancerKind } from '../support/load-balancer.js';
import { requiredMetric } from '../support/metrics.js';
import { startPageServer, type PageServer } from '../support/page-server.js';

const KEY = 'e2e-failover-key-0123456789';
const NODE_IDS = ['fo1', 'fo2', 'fo3'];
const HOLD_SECONDS = 10;
const PUSH_IDS = 2;
/** One round notifies every push ID of the page (concurrently), one round every 40 ms. */
const ROUND_EVERY_MS = 40;
/** Publishing runs this long before the kill, and this long after it. */
const PUBLISH_BEFORE_MS = 1000;
const PUBLISH_AFTER_MS = 2000;

/**
 * The test page, served from its own origin (a node:http server on another port: the push
 * server is cross-origin, as in production). `?push=URL&ids=a,b&hold=S`: it loads
 * `URL/epush.js`, listens on the push IDs and records every callback in `window.failover`.
 */
const PAGE = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <link rel="icon" href="data:," />
    <title>epush browser failover</title>
  </head>
  <body>
    <script>
      const params = new URLSearchParams(location.search);
      const pushUrl = params.get('push');
      const state = { received: [], statuses: [], errors: [] };
      window.failover = state;
      const script = document.createElement('script');
      script.src = pushUrl + '/epush.js';
      script.onerror = () => state.errors.push('could not load ' + script.src);
      script.onload = () => {
        // Long-poll forced: this suite is about how each balancer treats a cut long-poll.
        const push = EPush.connect({
          url: pushUrl,
          holdSeconds: Number(params.get('hold')),
          transport: 'long-poll',
        });
        push.on('status', (status) => state.statuses.push({ status, at: Date.now() }));
        for (const pushId of params.get('ids').split(',')) {
          push.listen(pushId, (n) => {
            state.received.push({ id: n.id, pushId: n.pushId, payload: n.payload, at: Date.now() });
          });
        }
      };
      document.head.append(script);
    </script>
  </body>
</html>
`;

/** One callback invocation on the page, with `Date.now()` in the page (same machine clock). */
interface Received {
  readonly id: string;
  readonly pushId: string;
  readonly payload: { readonly n?: number } | null;
  readonly at: number;
}

interface PageState {
  readonly received: Received[];
  readonly statuses: { readonly status: string; readonly at: number }[];
  readonly errors: string[];
}

/** One notify call through the balancer. Only a 202 counts as accepted. */
interface Notify {
  readonly pushId: string;
  readonly n: number;
  /** `Date.now()` when the call was sent. */
  readonly sentAt: number;
  /** HTTP status, or 0 when the call failed without one. */
  readonly status: number;
  /** The notification id of a 202. */
  readonly id: string | null;
}

async function pageState(page: Page): Promise<PageState> {
  return page.evaluate(() => (globalThis as unknown as { failover: PageState }).failover);
}

const keyOf = (n: { id: string | null; pushId: string }): string => `${n.id} ${n.pushId}`;

type BrowserFailoverKind = Extract<BalancerKind, 'nginx' | 'apache'>;

/**
 * What the page sees of the listen cut by the SIGKILL.
 *
 * `resent`: the balancer re-sends it to another node; the browser gets an ordinary 200 and the
 * client never notices (nginx, proxy_next_upstream).
 *
 * `failed`: the browser sees it fail and the client's own retry must recover. Apache httpd does
 * not re-send, but when the backend dies under a request that is *not* the first on its browser
 * connection, mod_proxy_http closes that connection without an answer "to trigger a retry by the
 * client", and Chromium does re-send a request whose reused connection closed before any answer:
 * the page sees a 200 again. Only a listen that is the first request on its connection gets
 * Apache's own 502 (no CORS headers: a network error to the page). Apache closes a connection
 * after MaxKeepAliveRequests (100 by default) answers, with `Connection: close`, so the kill is
 * aimed at the listen sent right after such an answer.
 */
const CUT_LISTEN: Record<BrowserFailoverKind, 'resent' | 'failed'> = {
  nginx: 'resent',
  apache: 'failed',
};

const BALANCER_NAME: Record<BrowserFailoverKind, string> = {
  nginx: 'nginx',
  apache: 'Apache httpd',
};

/**
 * How long publishing may go on looking for a listen on a new connection (`failed` only). A
 * chance comes once per 100 answers (5–10 s), and a loaded box can miss one (the round's checks
 * come after that listen was answered): room for three.
 */
const AIM_WITHIN_MS = 30_000;

const ok = (l: ListenSeen): boolean => l.failure === null && l.status === 200;

export function describeBrowserFailover(kind: BrowserFailoverKind): void {
  const name = BALANCER_NAME[kind];

  describe(`browser failover behind ${name}`, () => {
    let pageServer: PageServer;
    let pageOrigin: string;
    let redis: PrivateRedis;
    let nodes: EpushProcess[];
    let balancer: Balancer;
    let browser: Browser;
    let context: BrowserContext | undefined;
    let client: Api;

    before(async () => {
      [pageServer, redis, browser] = await Promise.all([
        startPageServer(PAGE),
        PrivateRedis.start({ persistent: false }),
        launchChromium(),
      ]);
      pageOrigin = pageServer.origin;
      nodes = await Promise.all(
        NODE_IDS.map((id) =>
          startEpush([
            '--backplane',
            redis.url,
            '--node-id',
            id,
            '--api-key',
            KEY,
            '--heartbeat-seconds',
            '1',
            '--hold-seconds',
            String(HOLD_SECONDS),
            '--cors-origins',
            pageOrigin,
          ]),
        ),
      );
      balancer = await Balancer.start(
        kind,
        nodes.map((node) => node.port),
      );
      client = api(balancer.url, KEY);
    });

    after(async () => {
      await context?.close();
      await browser?.close();
      await balancer?.stop();
      await Promise.all((nodes ?? []).map((node) => node.stop()));
      await redis?.stop();
      await pageServer?.close();
    });

    const expectation =
      CUT_LISTEN[kind] === 'resent'
        ? 'the balancer re-sends the cut listen'
        : 'the client recovers the cut listen itself';
    test(`SIGKILL of the node holding the page’s listen: every accepted notification arrives once, they keep coming, and ${expectation}`, async (t: TestContext) => {
      const pushIds = await client.mintPushIds(PUSH_IDS);
      context = await browser.newContext();
      const listens = recordListens(context);
      const page = await context.newPage();
      const consoleErrors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error' || message.type() === 'warning')
          consoleErrors.push(message.text());
      });
      const query = new URLSearchParams({
        push: balancer.url,
        ids: pushIds.join(','),
        hold: String(HOLD_SECONDS),
      });
      await page.goto(`${pageOrigin}/?${query.toString()}`);
      assert.notEqual(
        new URL(page.url()).origin,
        new URL(balancer.url).origin,
        'cross-origin page',
      );
      // The first listen means "from now" (client README, Limits): publish only once connected.
      await page
        .waitForFunction(
          () =>
            (globalThis as unknown as { failover?: PageState }).failover?.statuses.some(
              (s) => s.status === 'connected',
            ) === true,
          undefined,
          { timeout: 10_000 },
        )
        .catch(async (error: unknown) => {
          const state = await pageState(page).catch(() => null);
          throw new Error(
            `the page did not connect through ${name}: ${String(error)}\n` +
              `page: ${JSON.stringify(state)}\nconsole: ${consoleErrors.join('\n')}`,
          );
        });

      const notifies: Notify[] = [];
      const accepted = (): Notify[] => notifies.filter((x) => x.status === 202);
      let killedAt = 0;
      let goneAt = 0;
      let victim: EpushProcess | undefined;
      let pausedMs = 0;

      /**
       * Whether the page's listen now in flight is the one to cut: any for `resent`; for
       * `failed`, the first request on a new connection (the one before it closed its own).
       */
      function aimed(): boolean {
        if (CUT_LISTEN[kind] === 'resent') return true;
        const sent = listens().sort((a, b) => a.sentAt - b.sentAt);
        const [before, last] = sent.slice(-2);
        return (
          last !== undefined &&
          last.endedAt === null &&
          before !== undefined &&
          before.endedAt !== null &&
          before.closedConnection
        );
      }

      /**
       * Waits until the page has all accepted so far and one node holds its listen; kills that
       * node if the listen is the one aimed at. Returns whether it did.
       */
      async function killHolder(): Promise<boolean> {
        const pausedFrom = Date.now();
        await eventually(
          async () => {
            const have = new Set((await pageState(page)).received.map(keyOf));
            return accepted().every((x) => have.has(keyOf(x))) ? true : undefined;
          },
          3000,
          'the page to have every notification accepted before the kill',
          5,
        );
        const holder = await eventually(
          async () => {
            const held = await Promise.all(
              nodes.map((node) =>
                requiredMetric(node.url, 'epush_connections{transport="long-poll"}'),
              ),
            );
            const total = held.reduce((sum, count) => sum + count, 0);
            return total === 1 ? nodes[held.indexOf(1)] : undefined;
          },
          3000,
          'exactly one node to hold the page’s listen',
          5,
        );
        if (!aimed()) return false;
        killedAt = Date.now();
        await holder.stop(); // SIGKILL
        goneAt = Date.now();
        victim = holder;
        pausedMs = goneAt - pausedFrom;
        return true;
      }

      const started = Date.now();
      let stopAt = Number.POSITIVE_INFINITY;
      let aimedRounds = 0;
      for (let n = 0; Date.now() < stopAt; n += 1) {
        const roundAt = Date.now();
        const aiming = victim === undefined && roundAt - started >= PUBLISH_BEFORE_MS;
        // Aiming at a listen on a new connection: one notification per round, so each round
        // ends with exactly one answer, and every answer that closes the connection is seen
        // with the listen that follows it in flight.
        const roundIds =
          aiming && CUT_LISTEN[kind] === 'failed' ? [pushIds[n % pushIds.length]!] : pushIds;
        await Promise.all(
          roundIds.map(async (pushId) => {
            const sentAt = Date.now();
            const answer = await client
              .call<{ id?: string }>('POST', `/api/push-ids/${pushId}/notify`, {
                body: { payload: { n } },
              })
              .catch(() => null);
            const status = answer?.status ?? 0;
            const id = status === 202 ? (answer?.body.id ?? null) : null;
            notifies.push({ pushId, n, sentAt, status, id });
          }),
        );
        if (aiming) {
          aimedRounds += 1;
          if (await killHolder()) {
            stopAt = goneAt + PUBLISH_AFTER_MS;
            continue;
          }
          if (Date.now() - started > PUBLISH_BEFORE_MS + AIM_WITHIN_MS) {
            const closing = listens().filter((l) => l.closedConnection).length;
            assert.fail(
              `no listen of the page went out on a new connection within ${AIM_WITHIN_MS} ms ` +
                `(${listens().length} listens, ${closing} answered with Connection: close; ` +
                `is MaxKeepAliveRequests unlimited?)`,
            );
          }
        }
        await sleep(Math.max(0, ROUND_EVERY_MS - (Date.now() - roundAt)));
      }
      const publishingStoppedAt = Date.now();
      assert.ok(victim, 'a node was killed');
      const killed = victim;

      const wanted = accepted();
      let missing: Notify[] = [];
      await eventually(
        async () => {
          const have = new Set((await pageState(page)).received.map(keyOf));
          missing = wanted.filter((x) => !have.has(keyOf(x)));
          return missing.length === 0 ? true : undefined;
        },
        10_000,
        'every accepted notification to reach the page',
        50,
      ).catch(() => undefined);
      await sleep(500); // late duplicates would show up here
      const state = await pageState(page);

      const counts = new Map<string, number>();
      for (const r of state.received) counts.set(keyOf(r), (counts.get(keyOf(r)) ?? 0) + 1);
      const duplicates = [...counts].filter(([, count]) => count > 1);
      const acceptedKeys = new Set(wanted.map(keyOf));
      const unaccepted = [...counts.keys()].filter((key) => !acceptedKeys.has(key));
      const refused = notifies.filter((x) => x.status !== 202);
      const acceptedAfter = wanted.filter((x) => x.sentAt >= killedAt);
      const sentAtByKey = new Map(wanted.map((x) => [keyOf(x), x.sentAt]));
      const receivedAfter = state.received.filter(
        (r) => (sentAtByKey.get(keyOf(r)) ?? 0) >= killedAt,
      );
      const gapMs = Math.min(...receivedAfter.map((r) => r.at)) - killedAt;
      const pageListens = listens();
      const inFlight = pageListens.filter(
        (l) => l.sentAt < killedAt && (l.endedAt === null || l.endedAt >= killedAt),
      );
      const listenStatuses = new Map<string, number>();
      for (const l of pageListens) {
        const label = l.failure ?? String(l.status ?? 'pending');
        listenStatuses.set(label, (listenStatuses.get(label) ?? 0) + 1);
      }
      const statusesAfter = state.statuses.filter((s) => s.at >= killedAt);
      const since = (at: number | null): string => (at === null ? 'never' : `+${at - killedAt}`);
      const cut = inFlight.length === 1 ? inFlight[0]! : undefined;
      const cutEndedAt = cut?.endedAt ?? Number.POSITIVE_INFINITY;
      // The client's own recovery: the listens it sent once the cut one had ended, up to and
      // including the first one answered 200.
      const retries: ListenSeen[] = [];
      for (const l of pageListens.filter((l) => l.sentAt >= cutEndedAt)) {
        retries.push(l);
        if (ok(l)) break;
      }
      const recovered = retries.find(ok);
      const outcome = (l: ListenSeen): string =>
        [l.status === null ? null : `HTTP ${l.status}`, l.failure].filter(Boolean).join(' then ') ||
        'pending';
      const connection = (l: ListenSeen): string =>
        l.newConnection === null
          ? 'connection unknown'
          : l.newConnection
            ? 'new connection'
            : 'reused connection';
      const describeListen = (l: ListenSeen): string =>
        `sent ${since(l.sentAt)}, ended ${since(l.endedAt)} (${outcome(l)}, ${connection(l)})`;
      const killedExit = await killed.exited;
      const balancerLog = balancer.log().trim();
      // Apache's message codes (AH00898: its own 502 "Error reading from remote server").
      const logCodes = [...new Set(balancerLog.match(/AH\d{5}/g) ?? [])];
      const recovery =
        `cut listen #${cut ? pageListens.indexOf(cut) + 1 : 0} (${cut ? connection(cut) : '-'}) ` +
        `sent ${killedAt - (cut?.sentAt ?? killedAt)} ms before the kill, ` +
        `ended ${since(cut?.endedAt ?? null)} ms (${cut ? outcome(cut) : 'none'}); ` +
        `statuses after the kill [${statusesAfter.map((s) => `${s.status} ${since(s.at)}`).join(', ')}]; ` +
        `listens after it [${retries.map(describeListen).join('; ')}]`;

      const message =
        `browser behind ${name}, SIGKILL of ${killed.nodeId} (held the page's listen): ` +
        `${wanted.length} accepted (${acceptedAfter.length} after the kill), ` +
        `${refused.length} not accepted [${refused.map((x) => x.status).join(', ')}]; ` +
        `received ${state.received.length} (${counts.size} distinct), ${missing.length} missing, ` +
        `${duplicates.length} duplicates, ${unaccepted.length} received but not accepted; ` +
        `gap from the SIGKILL to the first notification published after it: ${gapMs} ms; ` +
        `publishing paused ${pausedMs} ms for the aimed kill (after ${aimedRounds} rounds aiming, ` +
        `${pageListens.filter((l) => l.closedConnection && l.sentAt < killedAt).length} answers closing their connection); ` +
        `${recovery}; ` +
        `page listens ${JSON.stringify(Object.fromEntries(listenStatuses))}; ` +
        `console warnings/errors ${consoleErrors.length}` +
        (logCodes.length > 0 ? `; ${name} log codes ${logCodes.join(', ')}` : '');
      t.diagnostic(message);
      console.log(message);
      if (consoleErrors.length > 0) console.log(`page console:\n${consoleErrors.join('\n')}`);
      // The balancer's own account, when anything below fails.
      try {
        checkOutcome();
      } catch (error) {
        console.log(`${name} log (last 4000 chars):\n${balancerLog.slice(-4000)}`);
        throw error;
      }

      function checkOutcome(): void {
        assert.equal(state.errors.length, 0, `page errors: ${state.errors.join('; ')}`);
        assert.deepEqual(killedExit, { code: null, signal: 'SIGKILL' });
        assert.equal(
          inFlight.length,
          1,
          'the page had exactly one listen in flight at the SIGKILL',
        );
        assert.ok(wanted.length > 50, `only ${wanted.length} notifications were accepted`);
        assert.ok(
          acceptedAfter.length > 20,
          `only ${acceptedAfter.length} accepted after the kill`,
        );
        assert.deepEqual(
          missing.map((x) => `${x.pushId}#${x.n}`),
          [],
          `${missing.length} of ${wanted.length} accepted notifications never reached the page`,
        );
        assert.deepEqual(duplicates, [], 'notifications the page received more than once');
        // A notify whose answer was lost (a 502 when the node died mid-call) may still have been
        // published: only those may arrive without having been accepted.
        assert.ok(
          unaccepted.length <= refused.length,
          `${unaccepted.length} received notifications were never published: ${unaccepted.join(', ')}`,
        );
        for (const r of state.received) assert.ok(pushIds.includes(r.pushId), `stray ${r.pushId}`);
        assert.ok(receivedAfter.length > 0, 'the page received nothing published after the kill');
        assert.ok(
          killedAt + gapMs < publishingStoppedAt,
          `the page got nothing published after the kill until publishing stopped (${gapMs} ms)`,
        );

        if (CUT_LISTEN[kind] === 'resent') {
          // The balancer hid the kill: the cut listen came back 200 and the client never wavered.
          assert.ok(cut && ok(cut), `${name} did not re-send the cut listen: ${recovery}`);
          assert.deepEqual(
            statusesAfter.map((s) => s.status),
            [],
            `the page's status changed: ${recovery}`,
          );
        } else {
          // The browser saw the cut listen fail (network error or a 5xx), so the client went
          // through its own retry path: `reconnecting`, a new listen answered 200, `connected`.
          assert.ok(
            cut && !ok(cut) && cut.endedAt !== null,
            `the cut listen did not fail: ${recovery}`,
          );
          const reconnecting = statusesAfter.find((s) => s.status === 'reconnecting');
          assert.ok(reconnecting, `the page's status never left connected: ${recovery}`);
          const back = statusesAfter.find(
            (s) => s.status === 'connected' && s.at >= reconnecting.at,
          );
          assert.ok(back, `the page's status never came back to connected: ${recovery}`);
          assert.equal(
            statusesAfter.at(-1)?.status,
            'connected',
            `the page ended up not connected: ${recovery}`,
          );
          assert.ok(recovered, `no listen after the failed one was answered 200: ${recovery}`);
        }
      }
    });
  });
}
