/**
 * Listen tokens in real Chromium: an embedded epush that requires them; the page passes each
 * push ID's token to `listen()`, and every transport (forced in turn) carries it to the server
 * and delivers; a push ID without a token surfaces as the `forbidden` event.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import type { Server } from 'node:http';
import { after, before, describe, test } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { createEpush, type EmbeddedEpush } from '../../src/index.js';
import { createLogger } from '../../src/observability/logger.js';
import { hostEmbedded, launchChromium, type PushNotification } from '../support/browser.js';

const SECRET = 'e2e-listen-token-secret-0123456789abcdef';
const PAGE = `<!doctype html><meta charset="utf-8"><title>tokens</title><script src="/epush.js"></script>`;

interface TestWindow {
  received: PushNotification[];
  forbidden: { pushIds: string[]; message: string }[];
}

function token(pushId: string): string {
  const expires = Math.floor(Date.now() / 1000) + 3600;
  const mac = createHmac('sha256', SECRET)
    .update(`epush-listen\n${pushId}\n${expires}`)
    .digest('base64url');
  return `v1.${expires}.${mac}`;
}

async function openPage(
  browser: Browser,
  url: string,
  transport: string,
  pushId: string,
  listenToken: string | null,
): Promise<{ page: Page; close: () => Promise<void> }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto(`${url}/`);
  await page.evaluate(
    ({ base, forced, id, listenToken }) => {
      const w = globalThis as unknown as TestWindow & {
        EPush: {
          connect(options: { url: string; transport: string }): {
            on(event: 'forbidden', callback: (e: TestWindow['forbidden'][number]) => void): void;
            listen(
              pushId: string,
              callback: (n: PushNotification) => void,
              options?: { listenToken?: string },
            ): void;
          };
        };
      };
      w.received = [];
      w.forbidden = [];
      const push = w.EPush.connect({ url: base, transport: forced });
      push.on('forbidden', (event) => w.forbidden.push(event));
      push.listen(id, (n) => w.received.push(n), listenToken === null ? {} : { listenToken });
    },
    { base: url, forced: transport, id: pushId, listenToken },
  );
  return { page, close: () => context.close() };
}

describe('listen tokens in Chromium (--require-listen-tokens)', () => {
  let epush: EmbeddedEpush;
  let server: Server;
  let url: string;
  let browser: Browser;

  before(async () => {
    epush = createEpush({
      listenTokenSecret: [SECRET],
      requireListenTokens: true,
      logger: createLogger('warn', 'tokens-e2e'),
    });
    ({ server, url } = await hostEmbedded(epush, PAGE));
    [, browser] = await Promise.all([epush.start(), launchChromium()]);
  });

  after(async () => {
    await browser?.close();
    await epush?.close();
    server?.closeAllConnections();
    server?.close();
  });

  for (const transport of ['websocket', 'sse', 'long-poll'] as const) {
    test(`forced to ${transport}, the page's listen token reaches the server and delivery works`, async () => {
      const [pushId] = await epush.createPushIds();
      const { page, close } = await openPage(browser, url, transport, pushId!, token(pushId!));
      try {
        let received = 0;
        for (let attempt = 0; attempt < 20 && received === 0; attempt++) {
          await epush.notifyPushId(pushId!, { attempt });
          await new Promise((resolve) => setTimeout(resolve, 500));
          received = await page.evaluate(
            () => (globalThis as unknown as TestWindow).received.length,
          );
        }
        assert.ok(received > 0, `nothing received over ${transport}`);
        const forbidden = await page.evaluate(
          () => (globalThis as unknown as TestWindow).forbidden,
        );
        assert.deepEqual(forbidden, []);
      } finally {
        await close();
      }
    });
  }

  for (const transport of ['websocket', 'long-poll', 'auto'] as const) {
    test(`(${transport}) a push ID without its token surfaces as the forbidden event`, async () => {
      const [pushId] = await epush.createPushIds();
      const { page, close } = await openPage(browser, url, transport, pushId!, null);
      try {
        await page.waitForFunction(
          () => (globalThis as unknown as TestWindow).forbidden.length > 0,
          undefined,
          { timeout: 15_000 },
        );
        const [event] = await page.evaluate(() => (globalThis as unknown as TestWindow).forbidden);
        assert.deepEqual(event?.pushIds, [pushId]);
        assert.match(event?.message ?? '', /missing/);
      } finally {
        await close();
      }
    });
  }
});
