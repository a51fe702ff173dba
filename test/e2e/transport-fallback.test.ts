/**
 * The browser client picks WebSocket, then SSE, then long-poll, and falls back by itself when
 * a proxy is in the way (issue 7, item 2). Chromium runs the real client behind three nginx
 * configurations derived from deploy/nginx/epush.conf.template:
 * - as shipped: WebSocket passes, the client uses it;
 * - without the /push/ws location (nginx drops the upgrade): the client ends on SSE;
 * - additionally buffering and compressing responses (proxy_buffering on, ignoring
 *   X-Accel-Buffering, gzip for event streams): the SSE stream is held back, and the client ends
 *   on long-poll.
 * In each the page receives every notification published, none twice; which transport it ended
 * on is read from the node's epush_connections metric.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import {
  api,
  sleep,
  startEpush,
  until,
  type Api,
  type EpushProcess,
} from '../support/epush-process.js';
import { Balancer } from '../support/load-balancer.js';
import { connectionsByTransport } from '../support/metrics.js';
import { startPageServer, type PageServer } from '../support/page-server.js';

const KEY = 'fallback-test-key-0123456789';
const HOLD_SECONDS = 2;

const PAGE = `<!doctype html>
<html lang="en">
  <head><meta charset="utf-8" /><link rel="icon" href="data:," /><title>epush transports</title></head>
  <body>
    <script>
      const params = new URLSearchParams(location.search);
      const pushUrl = params.get('push');
      const state = { received: [], statuses: [], errors: [] };
      window.page = state;
      const script = document.createElement('script');
      script.src = pushUrl + '/epush.js';
      script.onerror = () => state.errors.push('could not load ' + script.src);
      script.onload = () => {
        const push = EPush.connect({ url: pushUrl, holdSeconds: ${HOLD_SECONDS} });
        push.on('status', (status) => state.statuses.push(status));
        push.listen(params.get('id'), (n) => state.received.push(n.id));
      };
      document.head.append(script);
    </script>
  </body>
</html>
`;

interface PageState {
  readonly received: string[];
  readonly statuses: string[];
  readonly errors: string[];
}

function withoutWebSocketLocation(config: string): string {
  const start = config.indexOf('    location = /push/ws {');
  assert.ok(start > 0, 'the template has a /push/ws location');
  const end = config.indexOf('    }\n', start) + '    }\n'.length;
  return config.slice(0, start) + config.slice(end);
}

/** A proxy that holds a stream back: buffering, and gzip, which compresses the stream in blocks. */
function buffering(config: string): string {
  const edited = withoutWebSocketLocation(config).replace(
    'proxy_buffering off;',
    'proxy_buffering on;\n    proxy_ignore_headers X-Accel-Buffering;\n' +
      '    gzip on;\n    gzip_types text/event-stream application/json;\n    gzip_min_length 0;',
  );
  assert.notEqual(edited, config);
  return edited;
}

const CASES = [
  { name: 'nginx as shipped', edit: (config: string) => config, expected: 'websocket' },
  { name: 'nginx that drops WebSocket upgrades', edit: withoutWebSocketLocation, expected: 'sse' },
  { name: 'nginx that also buffers responses', edit: buffering, expected: 'long-poll' },
] as const;

describe('the browser client falls back from WebSocket to SSE to long-poll', () => {
  let browser: Browser;
  let pageServer: PageServer;
  let pageOrigin: string;
  let node: EpushProcess;
  let client: Api;

  before(async () => {
    [browser, pageServer] = await Promise.all([launchChromium(), startPageServer(PAGE)]);
    pageOrigin = pageServer.origin;
    node = await startEpush([
      '--api-key',
      KEY,
      '--hold-seconds',
      String(HOLD_SECONDS),
      '--cors-origins',
      pageOrigin,
    ]);
    client = api(node.url, KEY);
  });

  after(async () => {
    await browser.close();
    await node.stop();
    await pageServer.close();
  });

  for (const { name, edit, expected } of CASES) {
    test(`${name}: the page ends on ${expected} and receives every notification once`, async () => {
      const proxy = await Balancer.start('nginx', [node.port], edit);
      const context = await browser.newContext();
      try {
        const pushId = await client.mintPushId();
        const page = await context.newPage();
        const url = `${pageOrigin}/?push=${encodeURIComponent(proxy.url)}&id=${pushId}`;
        await page.goto(url);
        const state = () =>
          page.evaluate(() => (globalThis as unknown as { page: PageState }).page);
        await until(
          `the page listens over ${expected}`,
          async () => (await connectionsByTransport(node.url))[expected] === 1,
          20_000,
        ).catch(async (error: unknown) => {
          const seen = await connectionsByTransport(node.url);
          const { statuses, errors } = await state();
          throw new Error(
            `${(error as Error).message}: connections ${JSON.stringify(seen)}, statuses ${statuses.join(',')}, errors ${errors.join(';')}`,
          );
        });
        const accepted: string[] = [];
        for (let n = 0; n < 20; n++) {
          accepted.push(await client.notifyPushId(pushId, { n }));
          await sleep(25);
        }
        await until(
          'every notification reached the page',
          async () => {
            const { received } = await state();
            return accepted.every((id) => received.includes(id));
          },
          15_000,
        ).catch(() => undefined);
        const { received, errors } = await state();
        assert.deepEqual(errors, []);
        assert.deepEqual(
          accepted.filter((id) => !received.includes(id)),
          [],
          'every accepted notification arrived',
        );
        assert.equal(new Set(received).size, received.length, 'none arrived twice');
        const open = await connectionsByTransport(node.url);
        for (const other of ['websocket', 'sse', 'long-poll'].filter((t) => t !== expected)) {
          assert.equal(open[other] ?? 0, 0, `no ${other} connection is left open`);
        }
      } finally {
        await context.close();
        await proxy.stop();
      }
    });
  }
});
