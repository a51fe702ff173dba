/**
 * docs/protocol.md: the node serves the browser client as a classic script (/epush.js, global EPush) and
 * as an ES module (/epush.mjs), cacheable (ETag, 304) and usable from another origin (CORS).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { startDemo, type DemoProcess } from '../support/demo-process.js';

/** What the test pages below put on `window`. */
interface TestWindow {
  esm?: { connectType: string; sharing: unknown; status?: string; received: unknown[] };
  same?: { same: boolean } | { error: string };
}

describe('the browser client served by the node', () => {
  let demo: DemoProcess;
  let browser: Browser;

  before(async () => {
    [demo, browser] = await Promise.all([startDemo(), launchChromium()]);
  });

  after(async () => {
    await browser?.close();
    await demo?.stop();
  });

  for (const path of ['/epush.js', '/epush.mjs']) {
    test(`${path} answers 200 as JavaScript with an ETag, and 304 to If-None-Match`, async () => {
      const first = await fetch(demo.pushUrl + path);
      assert.equal(first.status, 200);
      assert.match(first.headers.get('content-type') ?? '', /^text\/javascript\b/);
      const etag = first.headers.get('etag');
      assert.ok(etag !== null && etag.length > 2, 'an ETag');
      const body = await first.text();
      assert.ok(body.length > 1000, 'the bundle has content');
      if (path === '/epush.mjs') assert.match(body, /export\s*\{[^}]*\bconnect\b/);
      else assert.match(body, /\bEPush\b/);

      const again = await fetch(demo.pushUrl + path, { headers: { 'if-none-match': etag } });
      assert.equal(again.status, 304);
      assert.equal(again.headers.get('etag'), etag);
      assert.equal(await again.text(), '');

      const stale = await fetch(demo.pushUrl + path, { headers: { 'if-none-match': '"stale"' } });
      assert.equal(stale.status, 200);
      await stale.arrayBuffer();
    });
  }

  test('a page on another origin imports connect from /epush.mjs and receives a notification through it', async () => {
    const { pushIds } = (await demo.api('POST', '/api/push-ids', { count: 1 })) as {
      pushIds: string[];
    };
    const pushId = pushIds[0]!;
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('console', (message) => {
        if (message.type() === 'error') errors.push(message.text());
      });
      // A real page of the demo's origin (not the node's); route.fulfill would not do: Chromium
      // puts a fulfilled page in the public address space, which may not fetch from loopback.
      await page.goto(`${demo.appsUrl}/`);
      assert.notEqual(new URL(page.url()).origin, new URL(demo.pushUrl).origin);
      await page.addScriptTag({
        type: 'module',
        content: `
          import { connect } from '${demo.pushUrl}/epush.mjs';
          window.esm = { connectType: typeof connect, sharing: null, received: [] };
          const push = connect({ url: '${demo.pushUrl}' });
          push.on('status', (s) => { window.esm.status = s; window.esm.sharing = push.sharing; });
          push.listen('${pushId}', (n) => { window.esm.received.push(n); });
        `,
      });
      await page
        .waitForFunction(
          () => (globalThis as unknown as TestWindow).esm?.status === 'connected',
          undefined,
          { timeout: 10_000 },
        )
        .catch((error: unknown) => {
          throw new Error(
            `the module client did not connect: ${String(error)}\n${errors.join('\n')}`,
          );
        });
      const loaded = await page.evaluate(() => (globalThis as unknown as TestWindow).esm);
      assert.equal(loaded?.connectType, 'function');
      // Another origin of the same site: it shares through the hub frame of the node's origin.
      assert.deepEqual(loaded?.sharing, {
        mode: 'site',
        leadership: 'web-locks',
        channel: 'broadcast-channel',
      });

      const { id } = (await demo.api('POST', `/api/push-ids/${pushId}/notify`, {
        payload: { esm: true },
      })) as { id: string };
      const handle = await page.waitForFunction(
        () => {
          const received = (globalThis as unknown as TestWindow).esm?.received ?? [];
          return received.length > 0 ? received : false;
        },
        undefined,
        { timeout: 5000 },
      );
      assert.deepEqual(await handle.jsonValue(), [
        { id, pushId, group: null, payload: { esm: true } },
      ]);
    } finally {
      await context.close();
    }
  });

  test('the classic script and the ES module on one page give the same client instance', async () => {
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${demo.appsUrl}/`);
      await page.addScriptTag({ url: `${demo.pushUrl}/epush.js` });
      await page.addScriptTag({
        type: 'module',
        content: `
          try {
            const { connect } = await import('${demo.pushUrl}/epush.mjs');
            const fromModule = connect({ url: '${demo.pushUrl}' });
            const fromScript = EPush.connect({ url: '${demo.pushUrl}' });
            window.same = { same: fromModule === fromScript };
          } catch (error) {
            window.same = { error: String(error) };
          }
        `,
      });
      const handle = await page.waitForFunction(
        () => (globalThis as unknown as TestWindow).same ?? false,
        undefined,
        { timeout: 5000 },
      );
      assert.deepEqual(await handle.jsonValue(), { same: true });
    } finally {
      await context.close();
    }
  });
});
