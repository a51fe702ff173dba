/**
 * docs/protocol.md in a real browser: every tab and every application of a site share ONE blocking
 * connection to the push server, and each view still gets exactly its own notifications.
 * The demo's two applications (chat and ticker, one origin) run in tabs of one browser context.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  clientInfo,
  openDemoTab,
  waitConnected,
  type DemoApp,
  type DemoTab,
} from '../support/browser.js';
import { useDemoInBrowser } from '../support/demo-in-browser.js';
import { sampleConnections } from '../support/demo-process.js';
import { eventually, sleep } from '../support/epush-process.js';

/** After the expected deliveries arrived, how long to keep watching for extra ones. */
const QUIET_MS = 500;

describe('one connection per browser, shared by tabs and applications', () => {
  const env = useDemoInBrowser();

  /** Opens the tabs one after another (sequential) or all at once, and waits until connected. */
  async function openTabs(apps: DemoApp[], together: boolean): Promise<DemoTab[]> {
    const ctx = await env.newContext();
    let tabs: DemoTab[];
    if (together) {
      tabs = await Promise.all(apps.map((app) => openDemoTab(ctx, env.demo.appsUrl, app)));
    } else {
      tabs = [];
      for (const app of apps) tabs.push(await openDemoTab(ctx, env.demo.appsUrl, app));
    }
    await Promise.all(tabs.map((tab) => waitConnected(tab.page)));
    return tabs;
  }

  async function notifyDirect(pushId: string, payload: unknown): Promise<string> {
    const { id } = (await env.demo.api('POST', `/api/push-ids/${pushId}/notify`, { payload })) as {
      id: string;
    };
    return id;
  }

  async function notifyGroup(group: string, payload: unknown): Promise<string> {
    const { id } = (await env.demo.api('POST', `/api/groups/${group}/notify`, { payload })) as {
      id: string;
    };
    return id;
  }

  /** Exactly one tab leads, all share over Web Locks and BroadcastChannel. */
  async function assertOneLeader(tabs: DemoTab[]): Promise<void> {
    const infos = await Promise.all(tabs.map((tab) => clientInfo(tab.page, env.demo.pushUrl)));
    assert.equal(
      infos.filter((info) => info.isLeader).length,
      1,
      `leaders: ${JSON.stringify(infos)}`,
    );
    for (const info of infos) {
      assert.equal(info.leadership, 'web-locks');
      assert.equal(info.channel, 'broadcast-channel');
    }
  }

  /**
   * Sends each tab a direct notification with a payload naming it, waits until each has one,
   * then checks that each tab's whole log is exactly its own notification.
   */
  async function assertOwnDirectNotifications(tabs: DemoTab[]): Promise<void> {
    const before = tabs.map((tab) => tab.delivered.length);
    const ids = await Promise.all(
      tabs.map((tab, i) => notifyDirect(tab.pushId, { direct: i, app: tab.app })),
    );
    await eventually(
      () =>
        Promise.resolve(
          tabs.every((tab, i) => tab.delivered.length > before[i]!) ? true : undefined,
        ),
      5000,
      'every tab to receive its direct notification',
      20,
    );
    await sleep(QUIET_MS);
    tabs.forEach((tab, i) => {
      const got = tab.delivered.slice(before[i]).map((d) => d.notification);
      assert.deepEqual(
        got,
        [{ id: ids[i], pushId: tab.pushId, group: null, payload: { direct: i, app: tab.app } }],
        `tab ${i} (${tab.app}) must receive exactly its own direct notification`,
      );
    });
  }

  /** A group notify reaches exactly the tabs of that application, once each. */
  async function assertGroupReachesApp(tabs: DemoTab[], app: DemoApp): Promise<void> {
    const group = `demo.${app}`;
    const id = await notifyGroup(group, { group: app });
    const members = tabs.filter((tab) => tab.app === app);
    const count = (tab: DemoTab): number =>
      tab.delivered.filter((d) => d.notification.id === id).length;
    await eventually(
      () => Promise.resolve(members.every((tab) => count(tab) > 0) ? true : undefined),
      5000,
      `every ${app} tab to receive the ${group} notification`,
      20,
    );
    await sleep(QUIET_MS);
    for (const [i, tab] of tabs.entries()) {
      const copies = tab.delivered.filter((d) => d.notification.id === id);
      assert.equal(copies.length, tab.app === app ? 1 : 0, `tab ${i} (${tab.app}): ${group}`);
      for (const { notification } of copies) {
        assert.deepEqual(notification, { id, pushId: tab.pushId, group, payload: { group: app } });
      }
    }
  }

  test('four tabs of two applications hold exactly one listener connection to the server', async (t) => {
    const tabs = await openTabs(['chat', 'ticker', 'chat', 'ticker'], false);
    assert.equal(new Set(tabs.map((tab) => tab.pushId)).size, 4, 'each view has its own push ID');
    await assertOneLeader(tabs);
    const samples = await sampleConnections(env.demo, 6, 200);
    t.diagnostic(`4 tabs: listener connections sampled over 1 s: ${samples.join(', ')}`);
    assert.deepEqual(samples, [1, 1, 1, 1, 1, 1]);

    await assertOwnDirectNotifications(tabs);
    await assertGroupReachesApp(tabs, 'chat');
    assert.deepEqual(await sampleConnections(env.demo, 3, 100), [1, 1, 1]);
  });

  test('eight tabs, more than the browser allows connections per host, all get their own and their group notifications over one connection', async (t) => {
    const apps: DemoApp[] = [
      'chat',
      'ticker',
      'chat',
      'ticker',
      'chat',
      'ticker',
      'chat',
      'ticker',
    ];
    const tabs = await openTabs(apps, true);
    assert.equal(new Set(tabs.map((tab) => tab.pushId)).size, 8, 'each view has its own push ID');
    await assertOneLeader(tabs);
    const samples = await sampleConnections(env.demo, 6, 200);
    t.diagnostic(`8 tabs: listener connections sampled over 1 s: ${samples.join(', ')}`);
    assert.deepEqual(samples, [1, 1, 1, 1, 1, 1]);

    await assertOwnDirectNotifications(tabs);
    await assertGroupReachesApp(tabs, 'chat');
    await assertGroupReachesApp(tabs, 'ticker');
    // The pages' own requests (notify, then pull) still go through: nothing starves the host.
    const pulled = await tabs[1]!.page.evaluate(async () => {
      const response = await fetch('api/quotes');
      return response.status;
    });
    assert.equal(pulled, 200);
    assert.deepEqual(await sampleConnections(env.demo, 3, 100), [1, 1, 1]);
  });
});
