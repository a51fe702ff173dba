/**
 * docs/protocol.md across the origins of one site, in real Chromium: pages of `orders.example.test` and
 * `billing.example.test` (one application server) use the push server on `push.example.test`,
 * all three mapped to loopback by Chromium's host resolver. Through the hub frame
 * (`/epush-hub.html` on the push server's origin) their tabs hold ONE listener connection; when
 * the tab holding it closes, a tab of the other host takes over within 2 s, losing and doubling
 * nothing. A page of an origin outside `--cors-origins` gets nothing through the hub, and a
 * page that forbids frames shares per origin instead.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { launchChromium, type PushNotification } from '../support/browser.js';
import { api, eventually, sleep, startEpush, type EpushProcess } from '../support/epush-process.js';
import { freePort } from '../../testbed/free-port.js';
import {
  appInfo,
  connectionsByTransport as byTransport,
  DISABLED_FEATURES,
  listenerConnections,
  openAppTab,
  sampleListenerConnections,
  startSiteApps,
  waitAppConnected,
  type AppTab,
  type AppWindow,
} from '../support/site-apps.js';

const TAKEOVER_LIMIT_MS = 2000;
const PUBLISH_EVERY_MS = 30;
const QUIET_MS = 500;

describe('one connection per browser across the origins of a site, through the hub frame', () => {
  let epush: EpushProcess;
  let apps: Server;
  let browser: Browser;
  let appPort: number;
  let pushUrl: string;
  let otherSitePushUrl: string;
  const contexts: BrowserContext[] = [];
  const origin = (host: string): string => `http://${host}.example.test:${appPort}`;
  const otherOrigin = (host: string): string => `http://${host}.other.test:${appPort}`;

  before(async () => {
    const pushPort = await freePort();
    pushUrl = `http://push.example.test:${pushPort}`;
    otherSitePushUrl = `http://push.other.test:${pushPort}`;
    ({ server: apps, port: appPort } = await startSiteApps(
      () => pushUrl,
      () => otherSitePushUrl,
    ));
    [epush, browser] = await Promise.all([
      startEpush([
        '--port',
        String(pushPort),
        '--insecure-dev',
        '--cors-origins',
        `${origin('orders')},${origin('billing')},${otherOrigin('www')}`,
      ]),
      launchChromium([
        '--host-resolver-rules=MAP *.example.test 127.0.0.1, MAP *.other.test 127.0.0.1',
        `--disable-features=${DISABLED_FEATURES.join(',')}`,
      ]),
    ]);
  });

  after(async () => {
    for (const context of contexts) await context.close();
    await browser?.close();
    await epush?.stop();
    await new Promise((resolve) => apps?.close(resolve));
  });

  async function newContext(): Promise<BrowserContext> {
    const context = await browser.newContext();
    contexts.push(context);
    return context;
  }

  async function closeContexts(): Promise<void> {
    for (const context of contexts.splice(0)) await context.close();
    await eventually(
      async () => ((await connections()) === 0 ? true : undefined),
      5000,
      'no held connection left from the previous test',
    );
  }

  const connectionsByTransport = (): Promise<Record<string, number>> => byTransport(epush.url);
  const connections = (): Promise<number> => listenerConnections(epush.url);
  const sampleConnections = (count: number, everyMs: number): Promise<number[]> =>
    sampleListenerConnections(epush.url, count, everyMs);
  const info = appInfo;
  const waitConnected = waitAppConnected;

  async function openTab(
    context: BrowserContext,
    host: string,
    query: Record<string, string> = {},
  ): Promise<AppTab> {
    const pushId = await api(epush.url).mintPushId();
    const search = new URLSearchParams({ id: pushId, ...query });
    const base = host.includes('.') ? `http://${host}:${appPort}` : origin(host);
    return openAppTab(context, `${base}/?${search.toString()}`, host, pushId);
  }

  async function leaders(tabs: readonly AppTab[]): Promise<AppTab[]> {
    const infos = await Promise.all(tabs.map(info));
    return tabs.filter((_, i) => infos[i]!.isLeader);
  }

  function idsOf(tab: AppTab): string[] {
    return tab.delivered.map((d) => `${d.notification.id} ${d.notification.pushId}`);
  }

  test('the hub page allows only the --cors-origins to frame it and runs no inline script', async () => {
    const response = await fetch(`${epush.url}/epush-hub.html`);
    assert.equal(response.status, 200);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    const ancestors = `${origin('orders')} ${origin('billing')} ${otherOrigin('www')}`;
    assert.match(csp, new RegExp(`frame-ancestors ${ancestors}(;|$)`));
    const html = await response.text();
    assert.doesNotMatch(html, /<script>/, 'no inline script');
    assert.match(html, /<script src="epush-hub.js"><\/script>/);
    assert.match(html, /data-epush-origins="\[&quot;http:\/\/orders\.example\.test:/);
    const script = await fetch(`${epush.url}/epush-hub.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
  });

  test('three tabs on two application hosts hold exactly one listener connection, and each view gets exactly its own notifications', async (t) => {
    await closeContexts();
    const context = await newContext();
    const openedAt = Date.now();
    const first = await openTab(context, 'orders');
    await waitConnected(first);
    const firstConnectedMs = Date.now() - openedAt;
    const tabs = [first, await openTab(context, 'billing'), await openTab(context, 'orders')];
    await Promise.all(tabs.map(waitConnected));
    const infos = await Promise.all(tabs.map(info));
    t.diagnostic(`tabs: ${JSON.stringify(infos)}`);
    t.diagnostic(`the first tab was connected (through its hub) ${firstConnectedMs} ms after goto`);
    for (const tabInfo of infos) assert.equal(tabInfo.mode, 'site');
    assert.equal((await leaders(tabs)).length, 1, 'exactly one tab holds the connection');
    const samples = await sampleConnections(6, 200);
    t.diagnostic(`listener connections sampled over 1 s: ${samples.join(', ')}`);
    assert.deepEqual(samples, [1, 1, 1, 1, 1, 1]);
    // The hub's CSP lets its client use the first transport it tries.
    assert.deepEqual(await connectionsByTransport(), { 'long-poll': 0, sse: 0, websocket: 1 });

    const ids = await Promise.all(
      tabs.map((tab, i) => api(epush.url).notifyPushId(tab.pushId, { tab: i })),
    );
    await eventually(
      () => Promise.resolve(tabs.every((tab) => tab.delivered.length > 0) ? true : undefined),
      5000,
      'every tab to receive its notification',
      20,
    );
    await sleep(QUIET_MS);
    tabs.forEach((tab, i) => {
      assert.deepEqual(
        tab.delivered.map((d) => d.notification),
        [{ id: ids[i], pushId: tab.pushId, group: null, payload: { tab: i } }],
        `tab ${i} (${tab.host}) gets exactly its own notification`,
      );
    });
    assert.deepEqual(await sampleConnections(3, 100), [1, 1, 1]);
  });

  test('closing the leader tab moves the connection to a tab of the other host within 2 s, losing and doubling nothing', async (t) => {
    await closeContexts();
    const context = await newContext();
    // The first tab leads (nobody else is there); the others are of the other host.
    const first = await openTab(context, 'billing');
    await waitConnected(first);
    const others = [await openTab(context, 'orders'), await openTab(context, 'orders')];
    await Promise.all(others.map(waitConnected));
    assert.deepEqual(await leaders([first, ...others]), [first]);
    assert.deepEqual(await sampleConnections(3, 100), [1, 1, 1]);

    const tabs = [first, ...others];
    const published: { key: string; pushId: string; at: number }[] = [];
    let publishing = true;
    const publisher = (async () => {
      for (let n = 0; publishing; n += 1) {
        const at = Date.now();
        await Promise.all(
          tabs.map(async (tab) => {
            const id = await api(epush.url).notifyPushId(tab.pushId, { n });
            published.push({ key: `${id} ${tab.pushId}`, pushId: tab.pushId, at });
          }),
        );
        await sleep(Math.max(0, PUBLISH_EVERY_MS - (Date.now() - at)));
      }
    })();
    await sleep(1000);
    await first.page.close();
    const goneAt = Date.now();
    await sleep(2000);
    publishing = false;
    await publisher;

    for (const tab of others) {
      const mine = published.filter((p) => p.pushId === tab.pushId).map((p) => p.key);
      await eventually(
        () => Promise.resolve(mine.every((key) => idsOf(tab).includes(key)) ? true : undefined),
        5000,
        `every notification published to ${tab.pushId} to arrive`,
        50,
      );
    }
    await sleep(QUIET_MS);
    const firstAfter = Math.min(
      ...others.flatMap((tab) =>
        tab.delivered
          .filter((d) => {
            const sent = published.find(
              (p) => p.key === `${d.notification.id} ${d.notification.pushId}`,
            );
            return sent !== undefined && sent.at >= goneAt;
          })
          .map((d) => d.at - goneAt),
      ),
    );
    const newLeaders = await leaders(others);
    t.diagnostic(
      `takeover: first delivery of a notification published after the leader tab closed ` +
        `${firstAfter} ms after; ${published.length} notifications`,
    );
    for (const tab of others) {
      const mine = published.filter((p) => p.pushId === tab.pushId).map((p) => p.key);
      assert.deepEqual(idsOf(tab), mine, `${tab.pushId}: every notification once, in order`);
    }
    assert.ok(firstAfter < TAKEOVER_LIMIT_MS, `took over after ${firstAfter} ms`);
    assert.equal(newLeaders.length, 1);
    assert.equal(newLeaders[0]!.host, 'orders', 'a tab of the other host holds it now');
    assert.deepEqual(await sampleConnections(3, 100), [1, 1, 1]);
  });

  test("a page of the push server's own origin shares per origin, and that is the hub frames' connection", async () => {
    await closeContexts();
    const context = await newContext();
    const tab = await openTab(context, 'billing');
    await waitConnected(tab);
    // A first answer gives the site a cursor: a push ID that joins later is listened on from
    // there (before any answer, a listen means "from now", client/README.md "Limits").
    const primed = await api(epush.url).notifyPushId(tab.pushId);
    await eventually(
      () => Promise.resolve(tab.delivered.length > 0 ? true : undefined),
      5000,
      'the first answer',
      20,
    );
    assert.equal(tab.delivered[0]?.notification.id, primed);
    const own = await context.newPage();
    // Any page of the push server's origin; the hub page's CSP lets /epush.js of 'self' run.
    await own.goto(`${pushUrl}/epush-hub.html`);
    await own.addScriptTag({ url: `${pushUrl}/epush.js` });
    const pushId = await api(epush.url).mintPushId();
    await own.evaluate(
      ({ url, id }) => {
        const w = globalThis as unknown as AppWindow & {
          EPush: {
            connect(options: { url: string }): AppWindow['app']['push'] & {
              listen(id: string, callback: (n: PushNotification) => void): void;
            };
          };
        };
        const push = w.EPush.connect({ url });
        w.app = { received: [], statuses: [], fromHub: 0, push };
        push.listen(id, (n) => w.app.received.push(n));
      },
      { url: pushUrl, id: pushId },
    );
    const sent = await api(epush.url).notifyPushId(pushId, { own: true });
    const received = await eventually(
      () =>
        own.evaluate(() => {
          const { app } = globalThis as unknown as AppWindow;
          return app.received.length > 0 ? app.received.map((n) => n.id) : undefined;
        }),
      5000,
      "the push server's own page to receive its notification",
      20,
    );
    assert.deepEqual(received, [sent]);
    const mode = await own.evaluate(
      () => (globalThis as unknown as AppWindow).app.push.sharing.mode,
    );
    assert.equal(mode, 'origin');
    assert.deepEqual(await sampleConnections(3, 200), [1, 1, 1]);
  });

  test('a push server of another site: its hub frames under the two hosts of one site share one partition, hence one connection', async (t) => {
    await closeContexts();
    const context = await newContext();
    const tabs = [
      await openTab(context, 'orders', { push: 'other' }),
      await openTab(context, 'billing', { push: 'other' }),
    ];
    await Promise.all(tabs.map(waitConnected));
    const infos = await Promise.all(tabs.map(info));
    t.diagnostic(`tabs: ${JSON.stringify(infos)}`);
    for (const tabInfo of infos) assert.equal(tabInfo.mode, 'site');
    assert.deepEqual(await sampleConnections(3, 200), [1, 1, 1]);
    const ids = await Promise.all(tabs.map((tab) => api(epush.url).notifyPushId(tab.pushId)));
    await eventually(
      () => Promise.resolve(tabs.every((tab) => tab.delivered.length > 0) ? true : undefined),
      5000,
      'every tab to receive its notification',
      20,
    );
    await sleep(QUIET_MS);
    tabs.forEach((tab, i) => {
      assert.deepEqual(
        tab.delivered.map((d) => d.notification.id),
        [ids[i]],
      );
    });
  });

  test('a page of another site shares nothing with this one (browsers partition by site): one connection per site', async (t) => {
    await closeContexts();
    const context = await newContext();
    const tabs = [
      await openTab(context, 'orders'),
      await openTab(context, 'billing'),
      await openTab(context, 'www.other.test'),
    ];
    await Promise.all(tabs.map(waitConnected));
    const infos = await Promise.all(tabs.map(info));
    t.diagnostic(`tabs: ${JSON.stringify(infos)}`);
    for (const tabInfo of infos) assert.equal(tabInfo.mode, 'site');
    assert.deepEqual(
      infos.map((i) => i.isLeader),
      [true, false, true],
      'the first tab of each site leads',
    );
    assert.deepEqual(await sampleConnections(3, 200), [2, 2, 2]);
    const ids = await Promise.all(tabs.map((tab) => api(epush.url).notifyPushId(tab.pushId)));
    await eventually(
      () => Promise.resolve(tabs.every((tab) => tab.delivered.length > 0) ? true : undefined),
      5000,
      'every tab to receive its notification',
      20,
    );
    await sleep(QUIET_MS);
    tabs.forEach((tab, i) => {
      assert.deepEqual(
        tab.delivered.map((d) => d.notification.id),
        [ids[i]],
      );
    });
  });

  test('a page of an origin outside --cors-origins gets nothing through the hub, even where the frame loads', async (t) => {
    await closeContexts();
    // Second round: the hub page's CSP is stripped on its way to the intruder, so the frame
    // loads even though frame-ancestors refuses the page: what is tested is the hub's own check.
    for (const stripCsp of [false, true]) {
      const context = await newContext();
      const member = await openTab(context, 'orders');
      await waitConnected(member);
      // The intruder knows the member's push ID, and tries to listen on it.
      const search = new URLSearchParams({ id: member.pushId });
      const intruder = await context.newPage();
      let hubScriptServed = false;
      if (stripCsp) {
        // Both hub files, fetched by the test (its resolver does not know the test hosts).
        await intruder.route(/\/epush-hub\.(html|js)$/, async (route) => {
          const path = new URL(route.request().url()).pathname;
          const response = await route.fetch({ url: epush.url + path });
          const headers = { ...response.headers() };
          delete headers['content-security-policy'];
          if (path.endsWith('.js')) hubScriptServed = true;
          await route.fulfill({ response, headers });
        });
      }
      const openedAt = Date.now();
      await intruder.goto(`${origin('intruder')}/?${search.toString()}`);
      const fellBackMs = await eventually(
        async () => {
          const mode = await intruder.evaluate(
            () => (globalThis as unknown as AppWindow).app.push.sharing.mode,
          );
          return mode === 'origin' ? Date.now() - openedAt : undefined;
        },
        // The hub frame's grace after its load (3 s), on a busy machine.
        10_000,
        'the intruder to give the hub up',
        20,
      );
      t.diagnostic(
        `CSP stripped: ${stripCsp}: the intruder gave the hub up after ${fellBackMs} ms`,
      );
      // With the CSP stripped the hub page really loaded (its script was fetched) and ran.
      assert.equal(hubScriptServed, stripCsp);
      const id = await api(epush.url).notifyPushId(member.pushId, { secret: stripCsp });
      await eventually(
        () => Promise.resolve(member.delivered.length > 0 ? true : undefined),
        5000,
        'the member to receive its notification',
        20,
      );
      await sleep(QUIET_MS);
      assert.equal(member.delivered[0]?.notification.id, id);
      const seen = await intruder.evaluate(() => {
        const { app } = globalThis as unknown as AppWindow;
        return { received: app.received, fromHub: app.fromHub, mode: app.push.sharing.mode };
      });
      assert.deepEqual(
        seen,
        { received: [], fromHub: 0, mode: 'origin' },
        `CSP stripped: ${stripCsp}: the intruder heard nothing from the hub`,
      );
      await context.close();
      contexts.splice(contexts.indexOf(context), 1);
    }
  });

  test('a page whose CSP forbids frames shares per origin instead and still gets its notifications', async (t) => {
    await closeContexts();
    const direct = await newContext();
    let openedAt = Date.now();
    const origin = await openTab(direct, 'orders', { sharing: 'origin' });
    await waitConnected(origin);
    t.diagnostic(`sharing forced to origin: connected ${Date.now() - openedAt} ms after goto`);
    assert.equal((await info(origin)).mode, 'origin');
    await closeContexts();

    const context = await newContext();
    openedAt = Date.now();
    const tab = await openTab(context, 'orders', { csp: 'noframes' });
    await waitConnected(tab);
    t.diagnostic(`frames forbidden: connected ${Date.now() - openedAt} ms after goto`);
    assert.equal((await info(tab)).mode, 'origin');
    // Seen from the page's CSP violation at once, not after the grace that follows a `load`.
    assert.ok(
      tab.clientLog.some((line) => line.includes('Content-Security-Policy does not allow the hub')),
      `the client's reason: ${JSON.stringify(tab.clientLog)}`,
    );
    const id = await api(epush.url).notifyPushId(tab.pushId, { fallback: true });
    await eventually(
      () => Promise.resolve(tab.delivered.length > 0 ? true : undefined),
      5000,
      'the notification',
      20,
    );
    assert.deepEqual(
      tab.delivered.map((d) => d.notification.id),
      [id],
    );
  });
});
