/**
 * docs/protocol.md `/admin` in a real browser: two nodes over a private Redis, the key form, then the
 * dashboard kept live by epush's own push while the cluster carries traffic. Takes a screenshot
 * into a temp folder; `npm run docs:screenshots` (EPUSH_DOCS_SCREENSHOTS=1) saves it as the one
 * shown in docs/operations.md (docs/admin-dashboard.png) instead.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import {
  api,
  listen,
  REPO_ROOT,
  sleep,
  startEpush,
  type EpushProcess,
} from '../support/epush-process.js';

const KEY = 'dashboard-e2e-key-0123456789';
/** Tests write no tracked file: the doc picture is regenerated only when asked for. */
const FOR_DOCS = process.env.EPUSH_DOCS_SCREENSHOTS === '1';
const SCREENSHOT_DIR = FOR_DOCS
  ? join(REPO_ROOT, 'docs')
  : mkdtempSync(join(tmpdir(), 'epush-dashboard-'));
const SCREENSHOT = join(SCREENSHOT_DIR, 'admin-dashboard.png');

interface NodeRow {
  readonly node: string;
  readonly state: string;
  readonly lp: number;
  readonly publish: number;
  readonly deliver: number;
  readonly backplane: string;
}

interface Dashboard {
  readonly rows: NodeRow[];
  readonly nodes: string;
  readonly publish: number;
  readonly deliver: number;
  readonly connections: number;
  readonly status: string;
  /** `data-points` of the cluster charts, and whether each has drawn a line. */
  readonly charts: Record<string, { points: number; line: boolean }>;
}

/**
 * What the dashboard shows, read from its DOM. A string, not a function: tsx would wrap the
 * helpers of a function in `__name(…)` calls, which do not exist in the page.
 */
const READ_DASHBOARD = `(() => {
  const text = (root, selector) => (root.querySelector(selector)?.textContent ?? '').trim();
  const rows = [...document.querySelectorAll('#node-rows tr')].map((row) => ({
    node: row.getAttribute('data-node') ?? '',
    state: text(row, '.state'),
    lp: Number(text(row, '.lp')),
    publish: Number(text(row, '.publish')),
    deliver: Number(text(row, '.deliver')),
    backplane: text(row, '.backplane'),
  }));
  const charts = {};
  for (const id of ['chart-publish', 'chart-deliver', 'chart-connections']) {
    const svg = document.querySelector('#' + id + ' svg');
    charts[id] = {
      points: Number(svg?.getAttribute('data-points') ?? 0),
      line: svg !== null && svg.querySelector('polyline') !== null,
    };
  }
  return {
    rows,
    nodes: text(document, '#sum-nodes'),
    publish: Number(text(document, '#sum-publish')),
    deliver: Number(text(document, '#sum-deliver')),
    connections: Number(text(document, '#sum-connections')),
    status: text(document, '#live-status'),
    charts,
  };
})()`;

function readDashboard(page: Page): Promise<Dashboard> {
  return page.evaluate<Dashboard>(READ_DASHBOARD);
}

describe('the /admin dashboard in Chromium', () => {
  let redis: PrivateRedis;
  let nodes: EpushProcess[] = [];
  let browser: Browser;
  let traffic = true;
  const background: Promise<unknown>[] = [];

  before(async () => {
    redis = await PrivateRedis.start();
    const flags = (id: string): string[] => [
      '--backplane',
      redis.url,
      '--node-id',
      id,
      '--api-key',
      KEY,
      '--hold-seconds',
      '5',
      '--heartbeat-seconds',
      '1',
    ];
    let a: EpushProcess;
    let b: EpushProcess;
    [a, b, browser] = await Promise.all([
      startEpush(flags('node-a')),
      startEpush(flags('node-b')),
      launchChromium(),
    ]);
    nodes = [a, b];
  });

  after(async () => {
    traffic = false;
    await Promise.allSettled(background);
    await browser?.close();
    await Promise.all(nodes.map((node) => node.stop()));
    await redis?.stop();
    if (!FOR_DOCS) rmSync(SCREENSHOT_DIR, { recursive: true, force: true });
  });

  /** Held long-polls on node B (re-polled with their cursors) and a notification every 150 ms on A. */
  async function startTraffic(): Promise<void> {
    const [a, b] = nodes as [EpushProcess, EpushProcess];
    const client = api(a.url, KEY);
    const pushIds = await client.mintPushIds(3);
    for (const pushId of pushIds) await client.addMember('e2e.load', pushId);
    for (const pushId of pushIds) {
      background.push(
        (async () => {
          let cursor: string | null = null;
          while (traffic) cursor = (await listen(b.url, [pushId], cursor)).cursor;
        })(),
      );
    }
    background.push(
      (async () => {
        for (let i = 0; traffic; i += 1) {
          await client.notifyGroup('e2e.load', { i });
          await sleep(150);
        }
      })(),
    );
  }

  test('the key form logs in, and the node table and charts follow the cluster live', async (t) => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 860 } });
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    const [a] = nodes as [EpushProcess, EpushProcess];

    const first = await page.goto(`${a.url}/admin`);
    assert.equal(first?.status(), 401, 'without a key: 401 with the form');
    await page.locator('input#key').waitFor();

    /** The answer to the form's submission (POST) or to the page it redirects to (GET). */
    const adminAnswer = (method: string) =>
      page.waitForResponse(
        (response) =>
          response.request().method() === method && new URL(response.url()).pathname === '/admin',
      );

    await page.fill('input#key', 'not-the-key-of-this-cluster');
    const [refused] = await Promise.all([adminAnswer('POST'), page.click('button[type=submit]')]);
    assert.equal(refused.status(), 401);
    await page.waitForLoadState();
    assert.match(await page.locator('.error').innerText(), /not valid/);
    problems.length = 0; // the 401 itself is reported as a console error by Chromium

    await page.fill('input#key', KEY);
    const [opened] = await Promise.all([adminAnswer('GET'), page.click('button[type=submit]')]);
    assert.equal(opened.status(), 200);
    await page.waitForLoadState();
    assert.equal(new URL(page.url()).pathname, '/admin');
    const cookies = await context.cookies();
    assert.equal(cookies.length, 1);
    assert.equal(cookies[0]?.name, 'epush_admin');
    assert.equal(cookies[0]?.httpOnly, true);
    assert.equal(cookies[0]?.sameSite, 'Strict');
    assert.ok(!cookies[0]?.value.includes(KEY));

    await startTraffic();
    const started = Date.now();
    let shown: Dashboard | undefined;
    for (;;) {
      shown = await readDashboard(page);
      const byNode = new Map(shown.rows.map((row) => [row.node, row]));
      const ready =
        byNode.get('node-a')?.state === 'live' &&
        byNode.get('node-b')?.state === 'live' &&
        (byNode.get('node-a')?.publish ?? 0) > 0 &&
        (byNode.get('node-b')?.deliver ?? 0) > 0 &&
        (byNode.get('node-b')?.lp ?? 0) >= 1 &&
        // A sample counts the long-polls held at that instant: one just answered is between
        // answer and re-poll, so wait for a sample that caught all of them held.
        shown.connections >= 4 &&
        shown.charts['chart-publish']?.line === true &&
        shown.charts['chart-deliver']?.line === true &&
        (shown.charts['chart-deliver']?.points ?? 0) >= 4;
      if (ready) break;
      if (Date.now() - started > 15_000) {
        assert.fail(`the dashboard did not show the live cluster: ${JSON.stringify(shown)}`);
      }
      await sleep(250);
    }
    t.diagnostic(`live after ${Date.now() - started} ms: ${JSON.stringify(shown)}`);

    assert.deepEqual(
      shown.rows.map((row) => row.node),
      ['node-a', 'node-b'],
    );
    assert.equal(shown.nodes, '2 / 2');
    assert.equal(shown.status, 'connected');
    for (const row of shown.rows) assert.equal(row.backplane, 'up');
    // About 6.7 notifications/s to three listeners, all held on node B.
    const nodeA = shown.rows[0]!;
    const nodeB = shown.rows[1]!;
    assert.ok(nodeA.publish > 2 && nodeA.publish < 12, `node-a publishes ${nodeA.publish}/s`);
    assert.ok(nodeB.deliver > 5, `node-b delivers ${nodeB.deliver}/s`);
    assert.ok(shown.publish >= nodeA.publish && shown.deliver >= nodeB.deliver);
    // Node B holds the three load long-polls; the dashboard's own listener is on node A.
    assert.ok(shown.connections >= 4, `connections ${shown.connections}`);
    assert.deepEqual(problems, []);

    await page.screenshot({ path: SCREENSHOT, fullPage: true });
    assert.ok(statSync(SCREENSHOT).size > 10_000, 'the screenshot is a picture of the page');
    await context.close();
  });
});
