// The hub frame's message handling with fakes: pages of two origins, each with its own hub
// frame (a `Hub` whose client is a tab of the push server's origin in the fake `Site`), share
// one listen; the hub answers only its parent window from an allowed origin, and hands each page
// only its own push IDs' notifications.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { EPushClient } from '../src/client.js';
import { HUB_LOADED_GRACE_MS, type HubFrameOpener } from '../src/hub-link.js';
import { HUB_PROTOCOL, parsePageMessage, type HubToPage } from '../src/hub-messages.js';
import { Hub, hubClientOptions, type HubClient, type HubMessageEvent } from '../src/hub.js';
import type { FetchLike } from '../src/types.js';
import { FakeStorageArea, FakeWindow, newLogger, pushId, type ClockScope } from './fakes.js';
import { Site, URL_BASE, type Tab, type TabOptions } from './site.js';

const ORDERS = 'https://orders.example.test';
const BILLING = 'https://billing.example.test';
const INTRUDER = 'https://intruder.example.test';
const TOKEN = `v1.1900000000.${'A'.repeat(43)}`;

/**
 * One page's hub frame: `Hub` on the push server's origin, its parent window (the page) at
 * `pageOrigin`. Messages travel as structured clones in microtasks, as `postMessage` does; the
 * page's window only hears posts whose target origin is its own.
 */
class FramedHub {
  readonly posted: { message: HubToPage; targetOrigin: string }[] = [];
  readonly parent = {
    postMessage: (message: HubToPage, targetOrigin: string): void => {
      this.posted.push({ message, targetOrigin });
      const deliver = this.toPage;
      if (deliver && targetOrigin === this.pageOrigin && !this.unloading) {
        const data: unknown = structuredClone(message);
        queueMicrotask(() => {
          deliver(data);
        });
      }
    },
  };
  readonly hub: Hub;
  clients = 0;
  /** The tab of the push server's origin the hub's client runs in. */
  tab: Tab | null = null;
  /** The page is unloading: what the hub posts never reaches it. */
  unloading = false;
  private readonly listeners: ((event: HubMessageEvent) => void)[] = [];
  private toPage: ((data: unknown) => void) | null = null;

  constructor(
    site: Site,
    readonly pageOrigin: string,
    allowedOrigins: '*' | readonly string[],
    tabOptions: TabOptions = {},
  ) {
    this.hub = new Hub({
      allowedOrigins,
      parent: this.parent,
      listenForMessages: (listener) => {
        this.listeners.push(listener);
      },
      createClient: (hello): HubClient => {
        this.clients += 1;
        const extra = { ...tabOptions.extra, ...hubClientOptions(hello) };
        this.tab = site.openTab({ ...tabOptions, extra });
        return this.tab.client;
      },
      clock: site.clock,
      logger: newLogger(),
    });
  }

  /** A message event in the hub's window, as the browser would dispatch it. */
  dispatch(data: unknown, origin = this.pageOrigin, source: unknown = this.parent): void {
    const event: HubMessageEvent = { data: structuredClone(data), origin, source };
    for (const listener of this.listeners) listener(event);
  }

  /** The page's `hubFrame` option: the frame is this hub (it loads at once). */
  readonly opener: HubFrameOpener = (_url, onMessage, onLoad) => {
    this.toPage = onMessage;
    queueMicrotask(onLoad);
    return {
      post: (message) => {
        queueMicrotask(() => {
          this.dispatch(message);
        });
      },
      close: () => {
        this.toPage = null;
      },
    };
  };
}

/** A page of another origin than the push server's: its client opens the hub with `hubFrame`. */
function openPage(
  site: Site,
  hubFrame: HubFrameOpener,
  name: string,
  page: { window?: FakeWindow; session?: FakeStorageArea } = {},
): { client: EPushClient; fetched: string[]; scope: ClockScope } {
  const fetched: string[] = [];
  const serverFetch = site.server.fetchFor(name);
  const fetch: FetchLike = (url, init) => {
    fetched.push(url);
    return serverFetch(url, init);
  };
  const scope = site.clock.scope();
  const window = page.window ?? new FakeWindow();
  const client = new EPushClient({
    url: URL_BASE,
    hubFrame,
    fetch,
    window,
    sessionStorage: page.session?.forWindow(window) ?? null,
    BroadcastChannel: null,
    locks: null,
    localStorage: null,
    now: scope.now,
    setTimeout: scope.setTimeout,
    clearTimeout: scope.clearTimeout,
    random: () => 0.5,
    logger: newLogger(),
  });
  return { client, fetched, scope };
}

describe('the hub frame', () => {
  test('pages of two origins share one listen through their hub frames, and each gets only its own notifications', async () => {
    const site = new Site();
    const allowed = [ORDERS, BILLING];
    const orders = new FramedHub(site, ORDERS, allowed);
    const billing = new FramedHub(site, BILLING, allowed);
    const pageA = openPage(site, orders.opener, 'pageA');
    const pageB = openPage(site, billing.opener, 'pageB');
    const idA = pushId('orders');
    const idB = pushId('billing');
    const gotA: string[] = [];
    const gotB: string[] = [];
    pageA.client.listen(idA, (n) => gotA.push(`${n.id} ${n.pushId}`));
    pageB.client.listen(idB, (n) => gotB.push(`${n.id} ${n.pushId}`));
    await site.advance(1300); // a long-poll held 1 s counts as connected

    assert.deepEqual(pageA.client.sharing, {
      mode: 'site',
      leadership: 'web-locks',
      channel: 'broadcast-channel',
    });
    assert.equal(pageB.client.sharing.mode, 'site');
    assert.deepEqual(site.server.heldPushIds(), [[idA, idB].sort()], 'one listen, the union');
    assert.deepEqual(
      [...pageA.fetched, ...pageB.fetched],
      [],
      'the pages themselves fetch nothing',
    );
    assert.equal([pageA, pageB].filter((page) => page.client.isLeader).length, 1);
    assert.equal(pageA.client.status, 'connected');

    const a = site.server.notify(idA);
    const b = site.server.notify(idB);
    const both = site.server.notify([idA, idB]);
    await site.advance(10);
    assert.deepEqual(gotA, [`${a} ${idA}`, `${both} ${idA}`]);
    assert.deepEqual(gotB, [`${b} ${idB}`, `${both} ${idB}`]);
    // Every post of a hub went to its own page's origin, and named only that page's push IDs.
    for (const [frame, own] of [
      [orders, idA],
      [billing, idB],
    ] as const) {
      for (const { message, targetOrigin } of frame.posted) {
        assert.equal(targetOrigin, frame.pageOrigin);
        if (message.t === 'deliver') {
          for (const n of message.notifications) assert.equal(n.pushId, own);
        }
      }
    }
  });

  test('a page of an origin that is not allowed gets no answer, the hub starts no client, and the page shares per origin', async () => {
    const site = new Site();
    const frame = new FramedHub(site, INTRUDER, [ORDERS]);
    const page = openPage(site, frame.opener, 'intruder');
    page.client.listen(pushId('intruder'), () => undefined);
    await site.advance(HUB_LOADED_GRACE_MS - 100);
    assert.equal(page.client.sharing.mode, 'site', 'still waiting for the hub');
    await site.advance(200); // the frame loaded the grace ago and said nothing
    assert.deepEqual(frame.posted, [], 'the hub said nothing');
    assert.equal(frame.clients, 0, 'and joined no tabs');
    assert.equal(page.client.sharing.mode, 'origin');
    assert.ok(page.fetched.length > 0, 'the page listens on its own after the fallback');
  });

  test("a frame the page's own CSP refuses is given up at once, without waiting for its load", async () => {
    const site = new Site();
    const blocked: HubFrameOpener = (_url, _onMessage, _onLoad, onBlocked) => {
      queueMicrotask(() => onBlocked?.());
      return { post: () => undefined, close: () => undefined };
    };
    const page = openPage(site, blocked, 'page');
    page.client.listen(pushId('page'), () => undefined);
    await site.advance(10);
    assert.equal(page.client.sharing.mode, 'origin');
    assert.ok(page.fetched.length > 0, 'the page listens on its own after the fallback');
  });

  test('a frame that never loads is given up after hubTimeoutSeconds', async () => {
    const site = new Site();
    const never: HubFrameOpener = () => ({ post: () => undefined, close: () => undefined });
    const page = openPage(site, never, 'page');
    await site.advance(9900);
    assert.equal(page.client.sharing.mode, 'site', 'still waiting for the hub');
    await site.advance(200);
    assert.equal(page.client.sharing.mode, 'origin');
  });

  test('the hub answers only its parent window, and only the origin that said hello first', async () => {
    const site = new Site();
    const frame = new FramedHub(site, ORDERS, '*');
    const hello = { p: HUB_PROTOCOL, t: 'hello' };
    frame.dispatch(hello, ORDERS, { postMessage: () => undefined }); // another window
    await site.advance(10);
    assert.equal(frame.posted.length, 0, 'no answer to another window');
    frame.dispatch(hello, ORDERS);
    await site.advance(10);
    assert.deepEqual(
      frame.posted.map((p) => [p.message.t, p.targetOrigin]),
      [['ready', ORDERS]],
    );
    // The parent navigated elsewhere (or anything else speaks from it): ignored.
    const id = pushId('stolen');
    frame.dispatch({ p: HUB_PROTOCOL, t: 'register', pushIds: [id] }, BILLING);
    await site.advance(300);
    assert.deepEqual(site.server.heldPushIds(), []);
    assert.equal(frame.hub.servedOrigin, ORDERS);
    frame.dispatch({ p: HUB_PROTOCOL, t: 'register', pushIds: [id] }, ORDERS);
    await site.advance(300);
    assert.deepEqual(site.server.heldPushIds(), [[id]], 'the page itself is heard');
  });

  test('listen tokens travel with their push IDs through the hub to the listen', async () => {
    const site = new Site();
    const bodies: { pushIds: string[]; listenTokens?: (string | null)[] }[] = [];
    const serverFetch = site.server.fetchFor('hub');
    const fetch: FetchLike = (url, init) => {
      bodies.push(JSON.parse(init.body) as (typeof bodies)[number]);
      return serverFetch(url, init);
    };
    const frame = new FramedHub(site, ORDERS, [ORDERS], { extra: { fetch } });
    const page = openPage(site, frame.opener, 'page');
    const id = pushId('tokened');
    page.client.listen(id, () => undefined, { listenToken: TOKEN });
    await site.advance(300);
    const last = bodies[bodies.length - 1];
    assert.deepEqual(last?.pushIds, [id]);
    assert.deepEqual(last.listenTokens, [TOKEN]);
  });

  test('a hub that could only lead alone (no locks, no storage) refuses, and the page falls back at once', async () => {
    const site = new Site();
    const alone = { locks: false, localStorage: false, broadcastChannel: false };
    const frame = new FramedHub(site, ORDERS, [ORDERS], alone);
    const page = openPage(site, frame.opener, 'page');
    await site.advance(200);
    assert.deepEqual(
      frame.posted.map((p) => p.message.t),
      ['refused'],
    );
    assert.equal(page.client.sharing.mode, 'origin');
  });

  test("a page's expired push IDs are reported to that page only", async () => {
    const site = new Site();
    const allowed = [ORDERS, BILLING];
    const orders = new FramedHub(site, ORDERS, allowed);
    const billing = new FramedHub(site, BILLING, allowed);
    const pageA = openPage(site, orders.opener, 'pageA');
    const pageB = openPage(site, billing.opener, 'pageB');
    const idA = pushId('gone');
    const expiredA: string[][] = [];
    const expiredB: string[][] = [];
    pageA.client.on('expired', (ids) => expiredA.push([...ids]));
    pageB.client.on('expired', (ids) => expiredB.push([...ids]));
    pageA.client.listen(idA, () => undefined);
    pageB.client.listen(pushId('stays'), () => undefined);
    await site.advance(300);
    site.server.expired.add(idA);
    site.server.notify(pushId('stays'));
    await site.advance(300);
    assert.deepEqual(expiredA, [[idA]]);
    assert.deepEqual(expiredB, []);
  });

  test('a page closing says bye: its hub leaves and another page takes the connection over', async () => {
    const site = new Site();
    const allowed = [ORDERS, BILLING];
    const orders = new FramedHub(site, ORDERS, allowed);
    const billing = new FramedHub(site, BILLING, allowed);
    const pageA = openPage(site, orders.opener, 'pageA');
    pageA.client.listen(pushId('closing'), () => undefined);
    await site.advance(300);
    assert.equal(pageA.client.isLeader, true, 'the first page leads');
    const pageB = openPage(site, billing.opener, 'pageB');
    const idB = pushId('survivor');
    const got: string[] = [];
    pageB.client.listen(idB, (n) => got.push(n.id));
    await site.advance(300);
    pageA.client.close();
    await site.advance(500);
    assert.equal(pageB.client.isLeader, true, "the other origin's page leads now");
    await site.advance(4000); // the union the old leader named is inherited for a few seconds
    assert.deepEqual(site.server.heldPushIds(), [[idB]]);
    const id = site.server.notify(idB);
    await site.advance(10);
    assert.deepEqual(got, [id]);
    assert.equal(site.server.open, 1);
  });

  test("a page reloaded before the hub's post of a notification reached it gets that notification after the reload, once", async () => {
    const site = new Site();
    const session = new FakeStorageArea();
    const window = new FakeWindow();
    const frame = new FramedHub(site, ORDERS, [ORDERS]);
    const page = openPage(site, frame.opener, 'page', { window, session });
    const id = pushId('reloading');
    const got: string[] = [];
    page.client.listen(id, (n) => got.push(n.id));
    await site.advance(1300);
    assert.equal(page.client.isLeader, true);
    const before = site.server.notify(id);
    await site.advance(10);
    // The hub gets the answer and posts it, but the page is unloading: the post never arrives,
    // while the hub (the leader) saves the shared cursor after it.
    frame.unloading = true;
    const missed = site.server.notify(id);
    await site.advance(10);
    window.dispatch({ type: 'pagehide', persisted: false });
    page.scope.kill();
    frame.tab?.closeTab();

    const reloadedFrame = new FramedHub(site, ORDERS, [ORDERS]);
    const reloaded = openPage(site, reloadedFrame.opener, 'reloaded', { session });
    const gotAfter: string[] = [];
    reloaded.client.listen(id, (n) => gotAfter.push(n.id));
    const after = site.server.notify(id);
    await site.advance(1300);
    assert.equal(reloaded.client.isLeader, true);
    assert.deepEqual(got, [before]);
    assert.deepEqual(gotAfter, [missed, after]);
  });

  test('malformed page messages are dropped, never trusted', () => {
    const p = HUB_PROTOCOL;
    for (const bad of [
      null,
      'hello',
      { t: 'hello' },
      { p: 'other/1', t: 'hello' },
      { p, t: 'hello', holdSeconds: -1 },
      { p, t: 'hello', transport: 'carrier-pigeon' },
      { p, t: 'register', pushIds: 'abc' },
      { p, t: 'register', pushIds: [1] },
      { p, t: 'register', pushIds: [], tokens: { a: 1 } },
      { p, t: 'register', pushIds: Array.from({ length: 1001 }, () => 'x') },
      { p, t: 'deliver', notifications: [] },
    ]) {
      assert.equal(parsePageMessage(bad), null, JSON.stringify(bad)?.slice(0, 80));
    }
    assert.deepEqual(parsePageMessage({ p, t: 'register', pushIds: ['a'], extra: 1 }), {
      p,
      t: 'register',
      pushIds: ['a'],
    });
  });
});
