/**
 * A Java web application on a real application server, behind nginx together with a two-node
 * epush cluster at one origin (deploy/nginx/java-app.conf.template), in Chromium: the sample
 * application (java/sample) mints a push ID per page view with the servlet helper and writes
 * the script that listens through /epush.js; its /notify servlet notifies through the Java
 * client (HTTP, rotating over both nodes) and through JMS to a private ActiveMQ, whose notify
 * queue the nodes consume with `--jms-notify` while the cluster itself runs on a private Redis
 * (docs/jms.md). Run by java-tomcat.test.ts and java-jetty.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import { eventually, startEpush, type EpushProcess } from '../support/epush-process.js';
import { JavaAppProxy } from '../support/java/app-proxy.js';
import { JavaAppServer, type AppServerKind } from '../support/java/app-server.js';
import { buildJava } from '../support/java/java-build.js';

const KEY = 'java-app-test-key-0123456789';
/** Notifications in the run during which a node is SIGKILLed, and when the kill comes. */
const RUN = 40;
const KILL_AFTER = 12;
/** Notify requests the page has in flight at once during the run. */
const IN_FLIGHT = 4;

export interface JavaAppScenario {
  readonly server: AppServerKind;
}

interface Received {
  readonly id: string;
  readonly pushId: string;
  readonly group: string | null;
  readonly payload: { readonly via: string; readonly n: string };
}

interface NotifyAnswer {
  readonly status: number;
  readonly body: string;
}

/** What the tests read in the sample page (the server's tsconfig has no DOM types). */
interface SamplePage {
  received: Received[];
  sendNotify(via: string, n: string): Promise<NotifyAnswer>;
  document: {
    body: { dataset: Record<string, string | undefined> };
    getElementById(id: string): { textContent: string | null } | null;
  };
}

/** Listener connections a node holds (held long-polls, SSE streams, WebSockets), from /metrics. */
async function listenerConnections(node: EpushProcess): Promise<number> {
  const text = await fetch(`${node.url}/metrics`).then((answer) => answer.text());
  let total = 0;
  for (const [, count] of text.matchAll(/^epush_connections\{[^}]*\} (\d+)$/gm)) {
    total += Number(count);
  }
  return total;
}

function received(page: Page): Promise<Received[]> {
  return page.evaluate(() => (globalThis as unknown as SamplePage).received);
}

export function describeJavaAppScenario(scenario: JavaAppScenario): void {
  const name = `${scenario.server} behind nginx with two epush nodes on Redis, notifying over HTTP and over JMS (ActiveMQ)`;

  describe(name, { timeout: 240_000 }, () => {
    let broker: PrivateActiveMq;
    let redis: PrivateRedis;
    let nodes: EpushProcess[] = [];
    let app: JavaAppServer;
    let proxy: JavaAppProxy;
    let browser: Browser;

    before(async () => {
      const [build, startedBroker, startedRedis, startedBrowser] = await Promise.all([
        buildJava(),
        PrivateActiveMq.start(),
        PrivateRedis.start({ persistent: false }),
        launchChromium(),
      ]);
      broker = startedBroker;
      redis = startedRedis;
      browser = startedBrowser;
      nodes = await Promise.all(
        ['java-a', 'java-b'].map((id) =>
          startEpush([
            '--backplane',
            redis.url,
            '--jms-notify',
            broker.stompUrl,
            '--node-id',
            id,
            '--api-key',
            KEY,
            '--hold-seconds',
            '5',
            '--heartbeat-seconds',
            '1',
          ]),
        ),
      );
      const env: Record<string, string> = {
        EPUSH_URLS: nodes.map((node) => node.url).join(','),
        EPUSH_API_KEY: KEY,
      };
      env.EPUSH_JMS_URL = broker.openwireUrl;
      env.EPUSH_JMS_USER = broker.user;
      env.EPUSH_JMS_PASSWORD = broker.password;
      const war = scenario.server === 'tomcat10' ? build.jakartaWar : build.javaxWar;
      app = await JavaAppServer.start(scenario.server, war, env, '/notify');
      proxy = await JavaAppProxy.start(
        nodes.map((node) => node.port),
        app.port,
      );
    });

    after(async () => {
      await browser?.close();
      await proxy?.stop();
      await app?.stop();
      await Promise.all(nodes.map((node) => node.stop()));
      await broker?.stop();
      await redis?.stop();
    });

    /** Opens the sample page through nginx and waits until its listen is established. */
    async function openPage(): Promise<{ page: Page; pushId: string }> {
      const context = await browser.newContext();
      const page = await context.newPage();
      const consoleLines: string[] = [];
      page.on('console', (message) => consoleLines.push(`${message.type()}: ${message.text()}`));
      page.on('pageerror', (error) => consoleLines.push(`pageerror: ${error.message}`));
      const answer = await page.goto(`${proxy.url}/`);
      assert.equal(answer?.status(), 200, `the page through nginx: ${app.logTail()}`);
      const pushId = await page.evaluate(
        () => (globalThis as unknown as SamplePage).document.body.dataset.pushId ?? '',
      );
      assert.match(pushId, /^[A-Za-z0-9_-]{16,64}$/, 'the servlet minted a push ID for the view');
      // The first listen means "from now": notify only once the page is connected.
      await page
        .waitForFunction(
          () =>
            (globalThis as unknown as SamplePage).document.getElementById('status')?.textContent ===
            'connected',
          undefined,
          {
            timeout: 15_000,
          },
        )
        .catch(async (error: unknown) => {
          const status = await page.evaluate(
            () =>
              (globalThis as unknown as SamplePage).document.getElementById('status')?.textContent,
          );
          throw new Error(
            `the page did not connect through /epush.js (status ${String(status)}): ${String(error)}\n` +
              `console:\n${consoleLines.join('\n')}\nnginx:\n${proxy.log()}`,
          );
        });
      return { page, pushId };
    }

    test(`a page view served by ${scenario.server} listens through /epush.js at the same origin and receives what its button clicks ask the servlet to send, over HTTP and over JMS`, async () => {
      const { page, pushId } = await openPage();
      const scriptUrls: string[] = [];
      page.on('request', (request) => scriptUrls.push(request.url()));
      await page.click('#http');
      await page.click('#jms');
      const expected = 2;
      const got = await eventually(
        async () => {
          const list = await received(page);
          return list.length >= expected ? list : undefined;
        },
        15_000,
        `${expected} notifications in the page`,
      );
      const byVia = new Map(got.map((n) => [n.payload.via, n]));
      const overHttp = byVia.get('http');
      assert.deepEqual(overHttp?.payload, { via: 'http', n: 'click-1' });
      assert.equal(overHttp?.pushId, pushId);
      assert.equal(overHttp?.group, null);
      const overJms = byVia.get('jms');
      assert.deepEqual(overJms?.payload, { via: 'jms', n: 'click-2' });
      assert.match(
        overJms?.id ?? '',
        /^jms-[A-Za-z0-9_-]{22}$/,
        'the id derived from the JMS message ID',
      );
      assert.equal(got.length, expected, 'each once');
      await page.context().close();
    });

    test(`SIGKILL of one epush node during a run of ${RUN} notifications loses none`, async (t: TestContext) => {
      const { page } = await openPage();
      const answers = new Map<string, NotifyAnswer>();
      let next = 0;
      let victim = null as Promise<EpushProcess> | null;
      // The node to kill is the one that holds the page's listen, so the page must move.
      const killHolder = async (): Promise<EpushProcess> => {
        const holder = await eventually(
          async () => {
            const held = await Promise.all(nodes.map(listenerConnections));
            return held.filter((count) => count > 0).length === 1
              ? nodes[held.findIndex((count) => count > 0)]
              : undefined;
          },
          5_000,
          "exactly one node to hold the page's listen",
          20,
        );
        await holder.stop(); // SIGKILL
        return holder;
      };
      const worker = async (): Promise<void> => {
        while (next < RUN) {
          const i = next++;
          if (i >= KILL_AFTER) await (victim ??= killHolder());
          const via = i % 2 === 1 ? 'jms' : 'http';
          const label = `run-${i}`;
          const answer = await page.evaluate(
            ([v, n]) => (globalThis as unknown as SamplePage).sendNotify(v, n),
            [via, label] as const,
          );
          answers.set(label, answer);
        }
      };
      await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
      const refused = [...answers].filter(([, answer]) => answer.status !== 200);
      assert.deepEqual(
        refused,
        [],
        'the servlet notified every one (the client moved to the live node)',
      );

      const labels = [...answers.keys()];
      const seen = await eventually(
        async () => {
          const list = await received(page);
          const have = new Set(list.map((n) => n.payload.n));
          return labels.every((label) => have.has(label)) ? list : undefined;
        },
        30_000,
        `all ${RUN} notifications in the page`,
      ).catch(async (error: unknown) => {
        const have = new Set((await received(page)).map((n) => n.payload.n));
        const missing = labels.filter((label) => !have.has(label));
        throw new Error(`${String(error)}; missing: ${missing.join(', ')}`);
      });
      const runSeen = seen.filter((n) => n.payload.n.startsWith('run-'));
      for (const n of runSeen) {
        // Over JMS the id comes from the JMS message ID (docs/jms.md); over HTTP, from the node.
        assert.equal(n.id.startsWith('jms-'), n.payload.via === 'jms', JSON.stringify(n));
      }
      const killed = await victim;
      assert.ok(killed, 'a node was killed');
      t.diagnostic(
        `${RUN} sent (half over JMS, node ${killed.nodeId}, which held the page's listen, SIGKILLed after ${KILL_AFTER}), ` +
          `${runSeen.length} delivered to the page callback (${runSeen.length - RUN} duplicates)`,
      );
      await page.context().close();
    });
  });
}
