/**
 * Application pages of several hosts for the site-sharing tests (test/e2e/site-hub.test.ts): one
 * loopback HTTP server answers for every host name Chromium maps to it
 * (`--host-resolver-rules`), each page loading the browser client from a push server host and
 * listening on one push ID (`?id=`), with the listener connections read from the node's metrics.
 */
import { createServer, type Server } from 'node:http';
import type { BrowserContext, Page } from 'playwright-core';
import type { PushNotification } from './browser.js';
import { sleep } from './epush-process.js';
import { freePort } from '../../testbed/free-port.js';

/**
 * Chromium as people run it: playwright-core turns third-party storage partitioning off; this
 * list (the last --disable-features wins) keeps the rest of its list and leaves partitioning on,
 * so third-party frames get storage, BroadcastChannel and locks per top-level site.
 */
export const DISABLED_FEATURES = [
  'AvoidUnnecessaryBeforeUnloadCheckSync',
  'DestroyProfileOnBrowserClose',
  'HttpsUpgrades',
  'HttpsFirstBalancedModeAutoEnable',
  'MediaRouter',
  'PaintHolding',
  'AvoidCorsURLLoaderRestartOnRedirect',
  'OptimizationHints',
  'NetworkTimeServiceQuerying',
  'AimEnabled',
  'PreconnectToSearch',
];

/** What the application page keeps on `window.app` (see `appPage`). */
export interface AppWindow {
  app: {
    received: PushNotification[];
    statuses: string[];
    /** Messages the page's window got from the push server's origin (the hub frame). */
    fromHub: number;
    push: {
      readonly isLeader: boolean;
      readonly status: string;
      readonly sharing: { mode: string; leadership: string; channel: string };
    };
  };
}

/** The application page: loads /epush.js from the push host, listens on `?id=`. */
export function appPage(pushUrl: string): string {
  const pushOrigin = new URL(pushUrl).origin;
  return `<!doctype html><meta charset="utf-8"><title>app</title>
<script src="${pushUrl}/epush.js"></script>
<script>
  const params = new URLSearchParams(location.search);
  window.app = { received: [], statuses: [], fromHub: 0 };
  addEventListener('message', (event) => {
    if (event.origin === ${JSON.stringify(pushOrigin)}) window.app.fromHub += 1;
  });
  const options = { url: ${JSON.stringify(pushUrl)} };
  if (params.has('hubTimeout')) options.hubTimeoutSeconds = Number(params.get('hubTimeout'));
  if (params.has('sharing')) options.sharing = params.get('sharing');
  const push = EPush.connect(options);
  window.app.push = push;
  push.on('status', (status) => window.app.statuses.push(status));
  push.listen(params.get('id'), (notification) => {
    window.app.received.push(notification);
    console.log('epush-received ' + JSON.stringify(notification));
  });
</script>`;
}

export interface AppTab {
  readonly page: Page;
  readonly host: string;
  readonly pushId: string;
  /** Deliveries with the test's clock when their console event arrived. */
  readonly delivered: { notification: PushNotification; at: number }[];
  /** What the client logged to the console (`epush: …` lines: why it shares as it does). */
  readonly clientLog: string[];
}

/**
 * Serves `appPage` on a free port for every host name: `?csp=noframes` adds a CSP that forbids
 * frames, `?push=other` points the page at `otherPushUrl` (the same node under another site).
 */
export async function startSiteApps(
  pushUrl: () => string,
  otherPushUrl: () => string,
): Promise<{ server: Server; port: number }> {
  const port = await freePort();
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/') {
      res.writeHead(404).end();
      return;
    }
    const headers: Record<string, string> = { 'content-type': 'text/html; charset=utf-8' };
    // A page whose own CSP forbids every frame: the hub cannot load there.
    if (url.searchParams.get('csp') === 'noframes') {
      headers['content-security-policy'] = "frame-src 'none'";
    }
    const push = url.searchParams.get('push') === 'other' ? otherPushUrl() : pushUrl();
    res.writeHead(200, headers).end(appPage(push));
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { server, port };
}

/** Opens `url` (an application page) in a new tab of `context`, collecting its deliveries. */
export async function openAppTab(
  context: BrowserContext,
  url: string,
  host: string,
  pushId: string,
): Promise<AppTab> {
  const page = await context.newPage();
  const delivered: AppTab['delivered'] = [];
  const clientLog: string[] = [];
  page.on('console', (message) => {
    const text = message.text();
    if (text.startsWith('epush: ')) clientLog.push(text);
    if (!text.startsWith('epush-received ')) return;
    const notification = JSON.parse(text.slice('epush-received '.length)) as PushNotification;
    delivered.push({ notification, at: Date.now() });
  });
  await page.goto(url);
  return { page, host, pushId, delivered, clientLog };
}

/** What the tab's client says about its sharing. */
export function appInfo(tab: AppTab): Promise<{ isLeader: boolean; status: string; mode: string }> {
  return tab.page.evaluate(() => {
    const { push } = (globalThis as unknown as AppWindow).app;
    return { isLeader: push.isLeader, status: push.status, mode: push.sharing.mode };
  });
}

export async function waitAppConnected(tab: AppTab): Promise<void> {
  await tab.page.waitForFunction(
    () => (globalThis as unknown as AppWindow).app.statuses.includes('connected'),
    undefined,
    { timeout: 10_000 },
  );
}

/** Listener connections the node at `nodeUrl` holds now, by transport. */
export async function connectionsByTransport(nodeUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${nodeUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const found = /^epush_connections\{transport="([^"]+)"\} (\d+)/.exec(line);
    if (found) counts[found[1]!] = Number(found[2]);
  }
  return counts;
}

/** Listener connections the node holds now, whatever the transport. */
export async function listenerConnections(nodeUrl: string): Promise<number> {
  return Object.values(await connectionsByTransport(nodeUrl)).reduce((sum, n) => sum + n, 0);
}

/** `count` readings of the listener connections, `everyMs` apart. */
export async function sampleListenerConnections(
  nodeUrl: string,
  count: number,
  everyMs: number,
): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < count; i += 1) {
    if (i > 0) await sleep(everyMs);
    values.push(await listenerConnections(nodeUrl));
  }
  return values;
}
