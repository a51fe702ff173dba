/**
 * `--icepush` in a cluster: three nodes over a private persistent Redis. A browser's listens may
 * land on any node (no stickiness): the duplicate close and forged browser IDs across nodes, and,
 * behind HAProxy (deploy/ template, with the `*.icepush` paths routed like `/push/`), ICEpush
 * browsers in their listen loops while notifications run and the node holding the most listens is
 * SIGKILLed: every accepted notification reaches every browser.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { PrivateRedis } from '../../testbed/brokers/redis.js';
import { api, sleep, until, type EpushProcess } from '../support/epush-process.js';
import {
  IcepushApplication,
  IcepushBrowser,
  notifiedIds,
  type IcepushExchange,
} from '../support/icepush-client.js';
import type { Balancer } from '../support/load-balancer.js';
import { RedisCluster } from '../support/redis-cluster.js';

const KEY = 'icepush-cluster-key-0123456789';
const BROWSERS = 24;
const GROUP = 'everyone';
const NOTIFY_EVERY_MS = 100;

/** What one ICEpush page's connection loop saw. */
class Page {
  readonly browser: IcepushBrowser;
  readonly payloads = new Set<string>();
  serverErrors = 0;
  networkErrors = 0;
  closed: string | null = null;
  pushId = '';
  /** The last answers, for a failure's report. */
  readonly log: string[] = [];

  constructor(base: string) {
    this.browser = new IcepushBrowser({ base });
  }

  /** The 2015 client's loop: listen again at once; after a 5xx, wait 1 s; a close stops it. */
  async run(running: () => boolean): Promise<void> {
    while (running() && this.closed === null) {
      let exchange: IcepushExchange;
      try {
        exchange = await this.browser.listen([this.pushId], { heartbeat: 10_000 });
      } catch {
        this.networkErrors++;
        await sleep(200);
        continue;
      }
      const { answer } = exchange;
      this.log.push(
        `${Date.now() % 100000} ${answer.kind} ${exchange.status} ${exchange.body.slice(0, 60)} ${this.browser.cookies.get('epush.icepush') ?? ''}`,
      );
      if (this.log.length > 8) this.log.shift();
      if (answer.kind === 'notified') {
        for (const n of answer.notifications) if (n.payload !== null) this.payloads.add(n.payload);
      } else if (answer.kind === 'close') {
        this.closed = answer.reason;
      } else if (exchange.status >= 500) {
        this.serverErrors++;
        await sleep(1000);
      }
    }
  }
}

describe('ICEpush on three nodes over Redis', () => {
  let cluster: RedisCluster;
  let redis: PrivateRedis;
  let nodes: readonly EpushProcess[];
  let balancer: Balancer;

  before(async () => {
    // deploy/haproxy's template sends listen.icepush where /push/ goes (held, replayed on a 503).
    cluster = await RedisCluster.start({
      apiKey: KEY,
      flags: ['--icepush', '--icepush-heartbeat-seconds', '5', '--heartbeat-seconds', '1'],
      balancer: 'haproxy',
      redis: { persistent: true },
    });
    ({ redis, nodes, balancer } = cluster);
  });

  after(async () => {
    await cluster.stop();
  });

  test('a listen on another node closes the older one as a duplicate', async () => {
    const [a, b] = [nodes[0]!, nodes[1]!];
    const browser = new IcepushBrowser({ base: `${a.url}/app/` });
    const pushId = await browser.createPushId();
    await new IcepushApplication(`${a.url}/`, KEY).addGroupMember('dup', pushId);
    const first = browser.listen([pushId]);
    await sleep(500);
    const onB = new IcepushBrowser({ base: `${b.url}/app/`, window: browser.window });
    for (const [name, value] of browser.cookies) onB.cookies.set(name, value);
    const second = onB.listen([pushId]);
    const closed = await first;
    assert.equal(closed.answer.kind, 'close', closed.body);
    assert.equal(closed.headers.get('x-connection-reason'), 'duplicate');
    await sleep(300);
    await new IcepushApplication(`${b.url}/`, KEY).notify('dup');
    assert.deepEqual(notifiedIds((await second).answer), [pushId]);
  });

  test('a forged browser ID on another node closes nobody', async () => {
    const [a, c] = [nodes[0]!, nodes[2]!];
    const victim = new IcepushBrowser({ base: `${a.url}/` });
    const pushId = await victim.createPushId();
    await new IcepushApplication(`${a.url}/`, KEY).addGroupMember('victims', pushId);
    const held = victim.listen([pushId]);
    let answered = false;
    void held.then(() => (answered = true));
    await sleep(500);
    const id = victim.browserId!;
    const attacker = new IcepushBrowser({ base: `${c.url}/`, window: victim.window });
    attacker.cookies.set('ice.push.browser', (id[0] === 'x' ? 'y' : 'x') + id.slice(1));
    const exchange = await attacker.listen([], { heartbeat: 1000 });
    assert.equal(exchange.answer.kind, 'browser');
    await sleep(500);
    assert.equal(answered, false, 'the victim is still held');
    await new IcepushApplication(`${c.url}/`, KEY).notify('victims');
    assert.deepEqual(notifiedIds((await held).answer), [pushId]);
  });

  test('SIGKILL of the node holding the most listens during notifications: none lost', async () => {
    const base = `${balancer.url}/app/`;
    const app = new IcepushApplication(base, KEY);
    const pages = Array.from({ length: BROWSERS }, () => new Page(base));
    for (const page of pages) {
      page.pushId = await page.browser.createPushId();
      assert.equal((await app.addGroupMember(GROUP, page.pushId)).status, 200);
    }
    let running = true;
    const loops = pages.map((page) => page.run(() => running));
    const client = api(balancer.url, KEY);
    await until('every page holds a listen', async () => {
      const held = (await client.cluster()).reduce((sum, node) => sum + node.connections, 0);
      return held >= BROWSERS;
    });
    const accepted: string[] = [];
    let publishing = true;
    const publisher = (async () => {
      for (let i = 0; publishing && i < 400; i++) {
        const payload = `n${i}`;
        const answer = await app.notify(GROUP, payload).catch(() => null);
        if (answer?.status === 200) accepted.push(payload);
        await sleep(NOTIFY_EVERY_MS);
      }
    })();
    await sleep(2000);
    const cluster = await client.cluster();
    const busiest = cluster.reduce((best, node) =>
      node.connections > best.connections ? node : best,
    );
    const victim = nodes.find((node) => node.nodeId === busiest.id)!;
    assert.ok(busiest.connections > 0);
    await victim.stop(); // SIGKILL
    await sleep(4000);
    publishing = false;
    await publisher;
    const lost = (): string[] =>
      pages.flatMap((page, index) =>
        accepted.filter((p) => !page.payloads.has(p)).map((p) => `page ${index}: ${p}`),
      );
    const deadline = Date.now() + 30_000;
    while (lost().length > 0 && Date.now() < deadline) await sleep(250);
    running = false;
    await Promise.all(loops);
    const missing = lost();
    const errors = pages.reduce((sum, page) => sum + page.serverErrors, 0);
    console.log(
      `icepush failover: ${accepted.length} notifications x ${BROWSERS} browsers; killed ${busiest.id}` +
        ` holding ${busiest.connections} listens; missing ${missing.length}; 5xx seen ${errors};` +
        ` network errors ${pages.reduce((sum, page) => sum + page.networkErrors, 0)};` +
        ` closed ${JSON.stringify(pages.map((page) => page.closed).filter((c) => c !== null))}`,
    );
    for (const page of pages.filter((p) => accepted.some((a) => !p.payloads.has(a)))) {
      console.log(
        `${page.browser.browserId ?? ''} at ${Date.now() % 100000}:\n  ${page.log.join('\n  ')}`,
      );
    }
    assert.ok(accepted.length > 20, `only ${accepted.length} notifications accepted`);
    assert.deepEqual(missing.slice(0, 20), []);
    assert.deepEqual(
      pages.filter((page) => page.closed !== null).map((page) => page.closed),
      [],
      'no page was told to stop',
    );
    // An ICEpush page gives up after three 5xx answers in its life.
    for (const page of pages)
      assert.ok(page.serverErrors < 3, `a page saw ${page.serverErrors} 5xx`);
  });

  test('without its backplane a node answers <server-error> with 503, then serves again', async () => {
    const node = nodes.find((n) => n.child.exitCode === null && n.child.signalCode === null)!;
    const browser = new IcepushBrowser({ base: `${node.url}/` });
    const pushId = await browser.createPushId();
    await redis.kill();
    let last: IcepushExchange | null = null;
    try {
      await until(
        'a listen is answered with <server-error>',
        async () => {
          last = await browser.listen([pushId], { heartbeat: 1000 });
          return last.answer.kind === 'server-error';
        },
        20_000,
        200,
      );
    } finally {
      await redis.restart();
    }
    assert.equal(last!.status, 503);
    await until(
      'listens are served again',
      async () => (await browser.listen([pushId], { heartbeat: 1000 })).answer.kind === 'noop',
      30_000,
      500,
    );
  });
});
