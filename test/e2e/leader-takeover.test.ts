/**
 * docs/protocol.md in a real browser: when the tab holding the site's connection closes or crashes,
 * another tab takes over within 2 seconds and resumes from the last cursor, so notifications
 * published meanwhile all arrive, each once; a reloaded page resumes from its own cursor the same
 * way. Notifications are published continuously (every 30 ms to every view, every 10 ms around
 * reloads) around the event. A crash is CDP `Page.crash` on the leader's renderer.
 */
import assert from 'node:assert/strict';
import { describe, test, type TestContext } from 'node:test';
import {
  clientInfo,
  demoPushId,
  openDemoTab,
  pageLog,
  waitConnected,
  type DemoApp,
  type DemoTab,
  type PushNotification,
} from '../support/browser.js';
import { useDemoInBrowser } from '../support/demo-in-browser.js';
import {
  listenerConnections,
  sampleConnections,
  startPublishing,
  type DemoProcess,
  type Published,
} from '../support/demo-process.js';
import { eventually, sleep } from '../support/epush-process.js';
import { recordListens } from '../support/listen-recorder.js';

/** docs/protocol.md: another tab takes over within 2 seconds. */
const TAKEOVER_LIMIT_MS = 2000;
const PUBLISH_EVERY_MS = 30;
/** Publishing runs this long before the leader goes, and this long after. */
const PUBLISH_BEFORE_MS = 1000;
const PUBLISH_AFTER_MS = 2000;
/** In the takeover tests, the pause between one leader going and the next. */
const BETWEEN_KILLS_MS = 500;
const RELOADS = 5;
const RELOAD_PUBLISH_EVERY_MS = 10;

interface ConnectionSample {
  readonly at: number;
  readonly connections: number;
}

/** Reads the held connections every `everyMs` until stopped (server's view of the takeover). */
function watchConnections(
  demo: DemoProcess,
  everyMs = 20,
): { stop(): Promise<ConnectionSample[]> } {
  const samples: ConnectionSample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const connections = await listenerConnections(demo);
      samples.push({ at: Date.now(), connections });
      await sleep(everyMs);
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

/**
 * Deliveries that arrived after `listenAt` (a new leader's, or a reloaded page's, first listen)
 * of notifications published before it: only the handed-over cursor can bring those, since a
 * listen without a cursor means "from now".
 */
function carriedOver(
  tabs: readonly DemoTab[],
  tag: string,
  published: readonly Published[],
  listenAt: number,
): number {
  const publishedAt = new Map(published.map((p) => [`${p.id} ${p.pushId}`, p.at]));
  let carried = 0;
  for (const tab of tabs) {
    for (const { notification, at } of tab.delivered) {
      if ((notification.payload as { tag?: unknown }).tag !== tag || at < listenAt) continue;
      const sentAt = publishedAt.get(`${notification.id} ${notification.pushId}`);
      if (sentAt !== undefined && sentAt < listenAt) carried += 1;
    }
  }
  return carried;
}

/** Reads what a tab's views received. */
type Received = (tab: DemoTab) => Promise<PushNotification[]>;

/** From the console events (with arrival times; fine while the page is not navigating). */
const fromConsole: Received = (tab) =>
  Promise.resolve(tab.delivered.map((delivery) => delivery.notification));

/** From the log the page keeps in sessionStorage (complete across reloads). */
const fromPageLog: Received = (tab) => pageLog(tab.page);

/** The deliveries of this publisher's notifications, keyed `id pushId`, with counts. */
function deliveryCounts(
  notifications: readonly PushNotification[],
  tag: string,
): Map<string, number> {
  const counts = new Map<string, number>();
  for (const notification of notifications) {
    const payload = notification.payload as { tag?: unknown } | null;
    if (payload?.tag !== tag) continue;
    const key = `${notification.id} ${notification.pushId}`;
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  return counts;
}

function missing(
  tab: DemoTab,
  notifications: readonly PushNotification[],
  tag: string,
  published: readonly Published[],
): Published[] {
  const counts = deliveryCounts(notifications, tag);
  return published.filter((p) => p.pushId === tab.pushId && !counts.has(`${p.id} ${p.pushId}`));
}

/** Waits until every notification published to `tabs` arrived, then checks: each once, no stray. */
async function assertEachDeliveredOnce(
  tabs: readonly DemoTab[],
  tag: string,
  published: readonly Published[],
  received: Received = fromConsole,
): Promise<void> {
  let lost: Published[][] = [];
  await eventually(
    async () => {
      lost = await Promise.all(
        tabs.map(async (tab) => missing(tab, await received(tab), tag, published)),
      );
      return lost.every((list) => list.length === 0) ? true : undefined;
    },
    5000,
    'every published notification to arrive',
    50,
  ).catch((error: unknown) => {
    const report = tabs.map((tab, i) => {
      const list = lost[i] ?? [];
      return `${tab.app} ${tab.pushId}: ${list.length} missing (n = ${list.map((p) => p.n).join(', ')})`;
    });
    throw new Error(`${String(error)}\n${report.join('\n')}`);
  });
  await sleep(500); // late duplicates would show up here
  for (const tab of tabs) {
    const notifications = await received(tab);
    const mine = published.filter((p) => p.pushId === tab.pushId);
    const counts = deliveryCounts(notifications, tag);
    const duplicated = [...counts].filter(([, count]) => count > 1);
    assert.deepEqual(duplicated, [], `${tab.app} ${tab.pushId}: delivered more than once`);
    assert.equal(counts.size, mine.length, `${tab.app} ${tab.pushId}: deliveries vs published`);
    for (const notification of notifications) {
      assert.equal(notification.pushId, tab.pushId, 'a tab only receives its own push ID');
    }
  }
}

/**
 * The takeover as the tabs see it: from `goneAt` to the first delivery of a notification
 * published after it; and the longest publish-to-delivery latency over the whole run.
 */
function takeoverTimes(
  tabs: readonly DemoTab[],
  tag: string,
  published: readonly Published[],
  goneAt: number,
): { firstAfterMs: number; worstLatencyMs: number } {
  const publishedAt = new Map(published.map((p) => [`${p.id} ${p.pushId}`, p.at]));
  let firstAfter = Number.POSITIVE_INFINITY;
  let worstLatency = 0;
  for (const tab of tabs) {
    for (const { notification, at } of tab.delivered) {
      const sentAt = publishedAt.get(`${notification.id} ${notification.pushId}`);
      if (sentAt === undefined || (notification.payload as { tag?: unknown }).tag !== tag) continue;
      worstLatency = Math.max(worstLatency, at - sentAt);
      if (sentAt >= goneAt) firstAfter = Math.min(firstAfter, at - goneAt);
    }
  }
  return { firstAfterMs: firstAfter, worstLatencyMs: worstLatency };
}

/**
 * The server's view from `from` on: the most listener connections held at once (2 would mean
 * two tabs leading at the same time). While notifications stream every few ms, each answer
 * ends a long-poll, so gaps with none held are normal and say nothing about the takeover.
 */
function describeConnections(samples: readonly ConnectionSample[], from: number): string {
  const most = Math.max(0, ...samples.filter((s) => s.at >= from).map((s) => s.connections));
  return `at most ${most} listener connection held at once (${samples.length} samples)`;
}

describe('leader takeover and reload in a real browser', () => {
  const env = useDemoInBrowser();

  async function openTabs(apps: DemoApp[]): Promise<DemoTab[]> {
    const ctx = await env.newContext();
    const tabs = await Promise.all(apps.map((app) => openDemoTab(ctx, env.demo.appsUrl, app)));
    await Promise.all(tabs.map((tab) => waitConnected(tab.page)));
    assert.deepEqual(await sampleConnections(env.demo, 3, 100), [1, 1, 1], 'one connection before');
    return tabs;
  }

  async function findLeader(tabs: readonly DemoTab[]): Promise<DemoTab> {
    const infos = await Promise.all(tabs.map((tab) => clientInfo(tab.page, env.demo.pushUrl)));
    const leaders = tabs.filter((_, i) => infos[i]!.isLeader);
    assert.equal(leaders.length, 1, `exactly one leader: ${JSON.stringify(infos)}`);
    return leaders[0]!;
  }

  /**
   * `tabCount` tabs of both applications; notifications stream to all of them while the leader
   * goes with `kill`, `kills` times in a row (a tab that is gone gets none anymore). Checks each
   * takeover (a survivor leads, within 2 s) and that every tab got, once each, everything
   * published to it: the tabs left at the end all of it, the later leaders all of it up to the
   * newest one they got (a publisher round is appended after the previous one, so the server
   * answers a push ID's notifications in publication order).
   */
  async function takeover(
    t: TestContext,
    tag: string,
    { tabCount, kills }: { tabCount: number; kills: number },
    kill: (leader: DemoTab) => Promise<void>,
  ): Promise<void> {
    const apps = Array.from({ length: tabCount }, (_, i): DemoApp => (i % 2 ? 'ticker' : 'chat'));
    const tabs = await openTabs(apps);
    const listens = recordListens(env.context!);
    const watch = watchConnections(env.demo);
    const publisher = startPublishing(
      env.demo,
      tabs.map((tab) => tab.pushId),
      tag,
      PUBLISH_EVERY_MS,
    );
    await sleep(PUBLISH_BEFORE_MS);
    let alive = tabs;
    const rounds: { killAt: number; goneAt: number; leader: DemoTab; alive: DemoTab[] }[] = [];
    for (let round = 0; round < kills; round += 1) {
      if (round > 0) await sleep(BETWEEN_KILLS_MS);
      const leader = await findLeader(alive);
      const killAt = Date.now();
      await kill(leader);
      const goneAt = Date.now();
      alive = alive.filter((tab) => tab !== leader);
      rounds.push({ killAt, goneAt, leader, alive });
    }
    await sleep(PUBLISH_AFTER_MS);
    const published = await publisher.stop();
    await sleep(300); // the last round's deliveries
    const samples = await watch.stop();

    // Reported before the assertions, so the times are there even when something was lost.
    const takeovers: number[] = [];
    const killTimes: number[] = [];
    const firstListens: number[] = [];
    const carried: number[] = [];
    for (const [i, { killAt, goneAt, leader, alive: survivors }] of rounds.entries()) {
      // docs/protocol.md's clock: from the moment the old leader's tab is gone to the first delivery of a
      // notification published after it (so a new leader delivered it). Chromium's own teardown
      // of the tab (the close or crash itself, up to ~1.1 s on a loaded CI machine) is printed
      // beside it but not counted: it is not the client's time.
      const { firstAfterMs } = takeoverTimes(survivors, tag, published, goneAt);
      takeovers.push(firstAfterMs);
      killTimes.push(goneAt - killAt);
      const newListen = listens().find((l) => l.sentAt >= killAt && l.page !== leader.page);
      assert.ok(newListen, `a surviving tab listens after ${tag} ${i + 1}`);
      firstListens.push(newListen.sentAt - killAt);
      carried.push(carriedOver(survivors, tag, published, newListen.sentAt));
    }
    const { worstLatencyMs } = takeoverTimes(alive, tag, published, rounds[0]!.killAt);
    const message =
      `${tag} x${kills} (${tabCount} tabs): takeover ms after the tab was gone ` +
      `[${takeovers.join(', ')}] (max ${Math.max(...takeovers)}); the ${tag} itself took ` +
      `[${killTimes.join(', ')}]; ` +
      `new leader's first listen after [${firstListens.join(', ')}] ms; notifications ` +
      `published before it and delivered through it [${carried.join(', ')}]; worst ` +
      `publish-to-delivery latency ${worstLatencyMs} ms; ${published.length} notifications; ` +
      `server: ${describeConnections(samples, rounds[0]!.killAt)}`;
    t.diagnostic(message);
    console.log(message);

    await assertEachDeliveredOnce(alive, tag, published);
    // The leaders of later rounds lived through the earlier takeovers: they too must have got,
    // once each, everything published to them up to the newest notification they got.
    for (const { leader } of rounds.slice(1)) {
      const notifications = await fromConsole(leader);
      const numbers = notifications
        .map((n) => n.payload as { tag?: unknown; n?: number })
        .filter((payload) => payload.tag === tag)
        .map((payload) => payload.n ?? -1);
      const newest = Math.max(-1, ...numbers);
      const lost = missing(
        leader,
        notifications,
        tag,
        published.filter((p) => p.n < newest),
      );
      assert.deepEqual(
        lost.map((p) => p.n),
        [],
        `${leader.app} ${leader.pushId} (a later leader) missed these before it went`,
      );
      const counts = deliveryCounts(notifications, tag);
      assert.deepEqual(
        [...counts].filter(([, count]) => count > 1),
        [],
        `${leader.app} ${leader.pushId} (a later leader): delivered more than once`,
      );
    }
    for (const [i, ms] of takeovers.entries()) {
      assert.ok(ms < TAKEOVER_LIMIT_MS, `takeover ${i + 1} took ${ms} ms`);
    }
    // A takeover that fell between two notifications carries none over and proves nothing about
    // the handed-over cursor; with a notification every few ms most carry some, and one must.
    assert.ok(
      carried.some((count) => count > 0),
      `a takeover resumed notifications published before it (carried ${carried.join(', ')})`,
    );
    // A notification published as a tab starts closing waits for the teardown too.
    const teardown = Math.max(...killTimes);
    assert.ok(
      worstLatencyMs < TAKEOVER_LIMIT_MS + teardown,
      `a notification waited ${worstLatencyMs} ms (the ${tag} itself took up to ${teardown} ms)`,
    );
    const newLeader = await findLeader(alive);
    assert.ok(!rounds.some((r) => r.leader === newLeader));
    assert.deepEqual(await sampleConnections(env.demo, 3, 100), [1, 1, 1], 'one connection after');
  }

  test('closing the leader tab (four times in a row) hands the connection to another tab within 2 s, losing and doubling nothing', async (t) => {
    await takeover(t, 'close', { tabCount: 6, kills: 4 }, async (leader) => {
      await leader.page.close();
    });
  });

  test('a crashed leader tab (eight in a row) is replaced within 2 s, losing and doubling nothing', async (t) => {
    await takeover(t, 'crash', { tabCount: 10, kills: 8 }, async (leader) => {
      const session = await leader.page.context().newCDPSession(leader.page);
      const crashed = new Promise<void>((resolve) =>
        leader.page.once('crash', () => {
          resolve();
        }),
      );
      // The renderer dies before it can answer, so the command's own promise may never settle.
      void session.send('Page.crash').catch(() => undefined);
      await crashed;
    });
  });

  test('reloading the only tab (five times in a row) resumes from its cursor: every notification arrives, none twice', async (t) => {
    const [tab] = await openTabs(['chat']);
    const listens = recordListens(env.context!);
    let committedAt = Number.POSITIVE_INFINITY;
    tab!.page.on('framenavigated', (frame) => {
      if (frame === tab!.page.mainFrame()) committedAt = Date.now();
    });
    // Often, so that some are on their way to the page as it unloads (what the page's ledger
    // is for: the shared cursor moves past them while the page never shows them).
    const publisher = startPublishing(env.demo, [tab!.pushId], 'reload', RELOAD_PUBLISH_EVERY_MS);
    await sleep(PUBLISH_BEFORE_MS);
    const reloads: { at: number; firstListenAt: number }[] = [];
    for (let i = 0; i < RELOADS; i++) {
      const at = Date.now();
      committedAt = Number.POSITIVE_INFINITY;
      await tab!.page.reload();
      assert.equal(await demoPushId(tab!.page), tab!.pushId, 'the view keeps its push ID');
      await waitConnected(tab!.page);
      const listen = listens().find((l) => l.sentAt >= committedAt);
      assert.ok(listen, `the page listens after reload ${i + 1}`);
      reloads.push({ at, firstListenAt: listen.sentAt });
      await sleep(BETWEEN_KILLS_MS);
    }
    await sleep(PUBLISH_AFTER_MS);
    const published = await publisher.stop();
    // Chromium drops console events of the page being unloaded: count from the page's own log.
    await assertEachDeliveredOnce([tab!], 'reload', published, fromPageLog);
    const dropped =
      deliveryCounts(await fromPageLog(tab!), 'reload').size -
      deliveryCounts(await fromConsole(tab!), 'reload').size;

    const carried = reloads.map(({ firstListenAt }) =>
      carriedOver([tab!], 'reload', published, firstListenAt),
    );
    const { worstLatencyMs } = takeoverTimes([tab!], 'reload', published, reloads[0]!.at);
    const message =
      `reload x${RELOADS}: the new page's first listen [${reloads.map((r) => r.firstListenAt - r.at).join(', ')}] ` +
      `ms after the reload began; notifications published before it delivered through it ` +
      `[${carried.join(', ')}]; worst publish-to-delivery latency ${worstLatencyMs} ms; ` +
      `${published.length} notifications (${dropped} of their console events lost by the ` +
      `reloads, all in the page's own log)`;
    t.diagnostic(message);
    console.log(message);
    // Otherwise every reload fell between two notifications and proved nothing about resuming.
    assert.ok(
      carried.some((count) => count > 0),
      'some notifications were published while the page was away',
    );
    assert.deepEqual(await sampleConnections(env.demo, 3, 100), [1, 1, 1], 'one connection after');
  });
});
