import { after, before, beforeEach } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { launchChromium } from './browser.js';
import { listenerConnections, startDemo, type DemoProcess } from './demo-process.js';
import { eventually } from './epush-process.js';

/** One demo and one Chromium shared by the tests of a describe block. */
export interface DemoInBrowser {
  readonly demo: DemoProcess;
  readonly browser: Browser;
  /** The current test's browser context, if it opened one. */
  readonly context: BrowserContext | undefined;
  /** A fresh browser context for this test (closed before the next test and at the end). */
  newContext(): Promise<BrowserContext>;
}

/**
 * Registers the hooks of the enclosing describe: the demo and Chromium start once; before each
 * test the previous test's context is closed and the demo must hold no listener connection any
 * more, so that every test counts connections from zero.
 */
export function useDemoInBrowser(): DemoInBrowser {
  let demo: DemoProcess | undefined;
  let browser: Browser | undefined;
  let context: BrowserContext | undefined;
  const started = <T>(value: T | undefined, what: string): T => {
    if (value === undefined) throw new Error(`${what} is not started (outside a test?)`);
    return value;
  };

  before(async () => {
    [demo, browser] = await Promise.all([startDemo(), launchChromium()]);
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await demo?.stop();
  });

  beforeEach(async () => {
    await context?.close();
    context = undefined;
    const running = started(demo, 'the demo');
    // The previous test's browser is gone: the server holds nothing before this one starts.
    await eventually(
      async () => ((await listenerConnections(running)) === 0 ? true : undefined),
      5000,
      'no held connection left from the previous test',
    );
  });

  return {
    get demo() {
      return started(demo, 'the demo');
    },
    get browser() {
      return started(browser, 'Chromium');
    },
    get context() {
      return context;
    },
    async newContext() {
      await context?.close();
      context = await started(browser, 'Chromium').newContext();
      return context;
    },
  };
}
