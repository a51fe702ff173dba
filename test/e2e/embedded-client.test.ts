/**
 * The browser client against an embedded epush (docs/embedding.md): a host application serves
 * its own page and mounts epush under /push-server; the page loads /push-server/epush.js and
 * connects with `url: '/push-server'`, and each transport, forced in turn, reaches epush under
 * the base path and delivers a notification the host sent through the in-process API.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { createEpush, type EmbeddedEpush } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { hostEmbedded, launchChromium, type PushNotification } from '../support/browser.js';

const BASE = '/push-server';

interface TestWindow {
  received: PushNotification[];
  statuses: string[];
}

const PAGE = `<!doctype html><meta charset="utf-8"><title>host page</title>
<script src="${BASE}/epush.js"></script>`;

describe('the browser client with epush embedded under a base path', () => {
  let epush: EmbeddedEpush;
  let server: Server;
  let url: string;
  let browser: Browser;

  before(async () => {
    epush = createEpush({ basePath: BASE, logger: createLogger('warn', 'embedded-e2e') });
    ({ server, url } = await hostEmbedded(epush, PAGE));
    [, browser] = await Promise.all([epush.start(), launchChromium()]);
  });

  after(async () => {
    await browser?.close();
    await epush?.close();
    server?.closeAllConnections();
    server?.close();
  });

  for (const [transport, path] of [
    ['websocket', `${BASE}/push/ws`],
    ['sse', `${BASE}/push/sse`],
    ['long-poll', `${BASE}/push/listen`],
  ] as const) {
    test(`forced to ${transport}, the page connects to ${path} and receives a notification sent in-process`, async () => {
      const [pushId] = await epush.createPushIds();
      await epush.addMember('e2e.room', pushId!);
      const context = await browser.newContext();
      try {
        const page = await context.newPage();
        const requested = new Set<string>();
        page.on('websocket', (ws) => requested.add(new URL(ws.url()).pathname));
        page.on('request', (request) => requested.add(new URL(request.url()).pathname));
        await page.goto(`${url}/`);
        await page.evaluate(
          ({ base, forced, id }) => {
            const w = globalThis as unknown as TestWindow & {
              EPush: {
                connect(options: { url: string; transport: string }): {
                  on(event: 'status', callback: (status: string) => void): void;
                  listen(pushId: string, callback: (n: PushNotification) => void): void;
                };
              };
            };
            w.received = [];
            w.statuses = [];
            const push = w.EPush.connect({ url: base, transport: forced });
            push.on('status', (status) => w.statuses.push(status));
            push.listen(id, (n) => w.received.push(n));
          },
          { base: BASE, forced: transport, id: pushId! },
        );
        await page.waitForFunction(
          () => (globalThis as unknown as TestWindow).statuses.includes('connected'),
          undefined,
          { timeout: 10_000 },
        );
        // Connected means a listen is on its way; the first answer of a long-poll comes only
        // with a notification, so notify until one arrives (each id is checked below).
        const sent: string[] = [];
        for (let attempt = 0; attempt < 20; attempt++) {
          sent.push((await epush.notifyGroup('e2e.room', { transport, attempt })).id);
          const got = await page
            .waitForFunction(
              () => (globalThis as unknown as TestWindow).received.length > 0,
              undefined,
              {
                timeout: 500,
              },
            )
            .then(
              () => true,
              () => false,
            );
          if (got) break;
        }
        const received = await page.evaluate(() => (globalThis as unknown as TestWindow).received);
        assert.ok(received.length > 0, `nothing received over ${transport}`);
        const first = received[0]!;
        assert.ok(sent.includes(first.id), JSON.stringify(first));
        assert.equal(first.pushId, pushId);
        assert.equal(first.group, 'e2e.room');
        assert.ok(requested.has(`${BASE}/epush.js`), [...requested].join(' '));
        assert.ok(requested.has(path), `${path} not used: ${[...requested].join(' ')}`);
        for (const other of [`${BASE}/push/ws`, `${BASE}/push/sse`, `${BASE}/push/listen`]) {
          if (other !== path) assert.ok(!requested.has(other), `${other} used too`);
        }
        for (const p of requested) {
          if (!/\/push\/|epush/.test(p)) continue; // the host's page, a favicon
          assert.ok(p.startsWith(`${BASE}/`), `an epush request outside the base path: ${p}`);
        }
      } finally {
        await context.close();
      }
    });
  }
});
