import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { EmbeddedEpush } from '../../src/index.js';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';

/**
 * Debian's Chromium driven by playwright-core. Fails loudly, naming the package, when it is
 * missing: a browser test never skips silently. `extraArgs` are added to the command line (e.g.
 * `--host-resolver-rules=MAP *.example.test 127.0.0.1` for several sites on loopback).
 */
export async function launchChromium(extraArgs: readonly string[] = []): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install the Debian package "chromium" (apt-get install chromium)`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
      '--no-first-run',
      // Background tabs must keep their timers running at full speed for takeover timing.
      '--disable-background-timer-throttling',
      '--disable-renderer-backgrounding',
      '--disable-backgrounding-occluded-windows',
      ...extraArgs,
    ],
  });
}

/** A notification as the browser client hands it to a view. */
export interface PushNotification {
  readonly id: string;
  readonly pushId: string;
  readonly group: string | null;
  readonly payload: unknown;
}

/** One notification a demo page logged (`epush-received …`), with when the test saw it. */
export interface Delivered {
  readonly notification: PushNotification;
  /** `Date.now()` in the test process when the console event arrived. */
  readonly at: number;
}

export type DemoApp = 'chat' | 'ticker';

/** One tab of a demo application (demo/chat.html or demo/ticker.html). */
export interface DemoTab {
  readonly page: Page;
  readonly app: DemoApp;
  readonly pushId: string;
  /**
   * Every notification the page logged, as console events, across reloads (the listener
   * survives them). Chromium drops the console events of a page that is being navigated away
   * from, so around a reload use `pageLog()`, which the page itself keeps.
   */
  readonly delivered: Delivered[];
}

/** What the demo pages and the client expose on `window`, as seen from `page.evaluate`. */
interface DemoWindow {
  demo?: { pushId: string | null; statuses: string[] };
  EPush: {
    connect(options: { url: string }): {
      readonly isLeader: boolean;
      readonly status: string;
      readonly sharing: { leadership: string; channel: string };
      close(): void;
    };
  };
}

const RECEIVED_PREFIX = 'epush-received ';
const PAGE_LOG_KEY = 'epush-e2e.received';

interface PageStorage {
  readonly length: number;
  key(index: number): string | null;
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/**
 * Runs in the page before its scripts, on every load: copies each `epush-received` console line
 * into sessionStorage, which survives reloads of the tab. Each line gets its own key, named after
 * the document (its time origin) and the line's number: the document after a reload never
 * rewrites what the one before wrote, however late that write lands.
 */
function keepReceivedLog({ prefix, key }: { prefix: string; key: string }): void {
  const page = globalThis as unknown as {
    console: { log: (...args: unknown[]) => void };
    sessionStorage: PageStorage;
    performance: { timeOrigin: number };
  };
  const documentKey = `${key}:${page.performance.timeOrigin}:`;
  let lines = 0;
  const log = page.console.log.bind(page.console);
  page.console.log = (...args: unknown[]) => {
    const [first] = args;
    if (typeof first === 'string' && first.startsWith(prefix)) {
      page.sessionStorage.setItem(documentKey + String(lines++), first.slice(prefix.length));
    }
    log(...args);
  };
}

/** Every notification the tab's views received, across reloads, in order (see `keepReceivedLog`). */
export async function pageLog(page: Page): Promise<PushNotification[]> {
  const entries = await page.evaluate((key) => {
    const storage = (globalThis as unknown as { sessionStorage: PageStorage }).sessionStorage;
    const found: [number, number, string][] = [];
    for (let i = 0; i < storage.length; i++) {
      const name = storage.key(i);
      if (name === null || !name.startsWith(key + ':')) continue;
      const [origin = '', line = ''] = name.slice(key.length + 1).split(':');
      found.push([Number(origin), Number(line), storage.getItem(name) ?? '']);
    }
    return found;
  }, PAGE_LOG_KEY);
  return entries
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])
    .map(([, , line]) => JSON.parse(line) as PushNotification);
}

/**
 * Opens the demo application `app` in a new tab of `context` and waits until the page has its
 * push ID. Every `epush-received` console line is collected in `delivered` from the start.
 */
export async function openDemoTab(
  context: BrowserContext,
  appsUrl: string,
  app: DemoApp,
): Promise<DemoTab> {
  const page = await context.newPage();
  const delivered: Delivered[] = [];
  await page.addInitScript(keepReceivedLog, { prefix: RECEIVED_PREFIX, key: PAGE_LOG_KEY });
  page.on('console', (message) => {
    const text = message.text();
    if (!text.startsWith(RECEIVED_PREFIX)) return;
    const notification = JSON.parse(text.slice(RECEIVED_PREFIX.length)) as PushNotification;
    delivered.push({ notification, at: Date.now() });
  });
  await page.goto(`${appsUrl}/${app}/`);
  const pushId = await demoPushId(page);
  return { page, app, pushId, delivered };
}

/** The push ID the demo page joined with (waits for it). */
export async function demoPushId(page: Page): Promise<string> {
  const handle = await page.waitForFunction(
    () => (globalThis as unknown as DemoWindow).demo?.pushId ?? false,
    undefined,
    { timeout: 10_000 },
  );
  return (await handle.jsonValue()) as string;
}

/** Waits until the page's client reports the shared connection `connected`. */
export async function waitConnected(page: Page, timeoutMs = 10_000): Promise<void> {
  await page.waitForFunction(
    () => (globalThis as unknown as DemoWindow).demo?.statuses.includes('connected') === true,
    undefined,
    { timeout: timeoutMs },
  );
}

/** What the page's client for `pushUrl` says about itself (the same instance the page uses). */
export async function clientInfo(
  page: Page,
  pushUrl: string,
): Promise<{ isLeader: boolean; status: string; leadership: string; channel: string }> {
  return page.evaluate((url) => {
    const client = (globalThis as unknown as DemoWindow).EPush.connect({ url });
    try {
      return { isLeader: client.isLeader, status: client.status, ...client.sharing };
    } finally {
      client.close(); // releases only the reference connect() just took
    }
  }, pushUrl);
}

/**
 * A host application on a free loopback port around an embedded epush: every request goes to
 * epush first; what it leaves is the host's, `page` at `/` and 404 elsewhere.
 */
export async function hostEmbedded(
  epush: EmbeddedEpush,
  page: string,
): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    epush.handler(req, res, () => {
      res.writeHead(req.url === '/' ? 200 : 404, { 'content-type': 'text/html' });
      res.end(req.url === '/' ? page : 'host: not found');
    });
  });
  epush.attach(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}
