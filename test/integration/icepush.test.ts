/**
 * `--icepush` against one real node: every answer kind of `listen.icepush`, the endpoints and
 * their keys, the duplicate close, the heartbeat clamp, the re-send on a window change, push
 * storms, portlet namespaces and forged browser IDs, through the protocol-level ICEpush browser
 * of test/support/icepush-client.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { api, request, sleep, startEpush, type EpushProcess } from '../support/epush-process.js';
import {
  IcepushApplication,
  IcepushBrowser,
  notifiedIds,
  type IcepushExchange,
} from '../support/icepush-client.js';

const KEY = 'icepush-test-key-0123456789';
/** `--icepush-heartbeat-seconds`: short, and not ICEpush's default, so pages get configured. */
const HEARTBEAT_MS = 3000;

function forgedPushId(): string {
  return 'forgedBrowserId' + Math.random().toString(36).slice(2, 9).padEnd(7, 'x');
}

describe('ICEpush protocol (--icepush), one node', () => {
  let node: EpushProcess;
  let base: string;
  let app: IcepushApplication;

  before(async () => {
    node = await startEpush([
      '--icepush',
      '--api-key',
      KEY,
      '--icepush-heartbeat-seconds',
      String(HEARTBEAT_MS / 1000),
    ]);
    base = `${node.url}/shop/`;
    app = new IcepushApplication(base, KEY);
  });

  after(async () => {
    await node.stop();
  });

  /** A browser with an ID and one push ID of its own in group `group`. */
  async function browserIn(group: string): Promise<{ browser: IcepushBrowser; pushId: string }> {
    const browser = new IcepushBrowser({ base });
    const pushId = await browser.createPushId();
    assert.equal((await app.addGroupMember(group, pushId)).status, 200);
    return { browser, pushId };
  }

  test('a browser without an ID is given one: <browser id>, its cookie, no caching', async () => {
    const browser = new IcepushBrowser({ base });
    const first = await browser.listen([], { heartbeat: 1000 });
    assert.equal(first.answer.kind, 'browser');
    assert.match(browser.browserId ?? '', /^[A-Za-z0-9_-]{22}$/);
    assert.match(first.headers.get('content-type') ?? '', /^text\/xml/);
    assert.equal(first.headers.get('cache-control'), 'no-cache, no-store, must-revalidate');
    assert.equal(first.headers.get('pragma'), 'no-cache');
    assert.equal(first.headers.get('expires'), '0');
    // With its ID the next listen is held, then answered with a heartbeat.
    const second = await browser.listen([], { heartbeat: 1000 });
    assert.equal(second.answer.kind, 'noop');
  });

  test('create-push-id.icepush mints a push ID as text and sets the browser cookie', async () => {
    const browser = new IcepushBrowser({ base: `${node.url}/any/prefix/` });
    const pushId = await browser.createPushId();
    assert.match(pushId, /^[A-Za-z0-9_-]{22}$/);
    assert.match(browser.browserId ?? '', /^[A-Za-z0-9_-]{22}$/);
    assert.notEqual(browser.browserId, pushId);
    const again = await browser.createPushId();
    assert.notEqual(again, pushId);
  });

  test('a page asking for its configuration gets the non-default heartbeat', async () => {
    const { browser, pushId } = await browserIn('config');
    const exchange = await browser.listen([pushId], { sendConfiguration: true });
    assert.deepEqual(exchange.answer, {
      kind: 'configuration',
      attributes: { heartbeatTimeout: String(HEARTBEAT_MS) },
    });
  });

  test('a notify wakes the parked listen with <notified-pushids>; the sequence goes up', async () => {
    const { browser, pushId } = await browserIn('news');
    const listening = browser.listen([pushId]);
    await sleep(300);
    assert.equal((await app.notify('news')).status, 200);
    const exchange = await listening;
    assert.equal(exchange.body, `<notified-pushids>${pushId}</notified-pushids>`);
    const first = Number(exchange.headers.get('ice.push.sequence'));
    assert.ok(first >= 1);
    const nextListen = browser.listen([pushId]);
    await sleep(200);
    await app.notify('news');
    const next = await nextListen;
    assert.deepEqual(notifiedIds(next.answer), [pushId]);
    assert.equal(Number(next.headers.get('ice.push.sequence')), first + 1);
  });

  test('ice.push.sequence: an echo ahead of the server is followed', async () => {
    const { browser, pushId } = await browserIn('sequence');
    browser.sequence = 41;
    const exchange = await browser.listen([pushId], { heartbeat: 1000 });
    assert.equal(exchange.headers.get('ice.push.sequence'), '42');
  });

  test('payloads come as <notifications>, XML-escaped and grouped by payload', async () => {
    const a = await browserIn('payloads');
    const b = await browser2(a.browser);
    await app.addGroupMember('payloads', b);
    await app.addGroupMember('payloads-b', b);
    await app.notify('payloads', '<b class="x">&</b>');
    await app.notify('payloads-b', 'only b');
    const exchange = await a.browser.listen([a.pushId, b]);
    assert.equal(exchange.answer.kind, 'notified');
    if (exchange.answer.kind !== 'notified') return;
    assert.deepEqual(exchange.answer.notifications, [
      { pushIds: [a.pushId, b], payload: '<b class="x">&</b>' },
      { pushIds: [b], payload: 'only b' },
    ]);
    assert.match(exchange.body, /&lt;b class=&quot;x&quot;&gt;&amp;&lt;\/b&gt;/);
  });

  /** A second push ID of the same browser (another window's view). */
  async function browser2(browser: IcepushBrowser): Promise<string> {
    return browser.createPushId();
  }

  test('groups and notifications are one space with the application API', async () => {
    const client = api(node.url, KEY);
    const { browser, pushId } = await browserIn('shared');
    assert.deepEqual(await client.members('shared'), [pushId]);
    const viaApi = await client.mintPushId();
    await client.addMember('shared', viaApi);
    const listening = browser.listen([pushId, viaApi]);
    await sleep(200);
    await client.notifyGroup('shared', { room: 'lobby' });
    const exchange = await listening;
    assert.equal(exchange.answer.kind, 'notified');
    if (exchange.answer.kind !== 'notified') return;
    assert.deepEqual(exchange.answer.notifications, [
      { pushIds: [pushId, viaApi], payload: '{"room":"lobby"}' },
    ]);
    assert.equal((await app.removeGroupMember('shared', viaApi)).status, 200);
    assert.deepEqual(await client.members('shared'), [pushId]);
  });

  test('what is notified between two listens waits for the next one', async () => {
    const { browser, pushId } = await browserIn('between');
    await browser.listen([pushId], { heartbeat: 1000 }); // noop: the position is set
    await app.notify('between');
    const started = Date.now();
    const exchange = await browser.listen([pushId]);
    assert.deepEqual(notifiedIds(exchange.answer), [pushId]);
    assert.ok(Date.now() - started < 1500, 'answered at once');
  });

  test('the hold is the page heartbeat clamped to [hb/3, hb]', async () => {
    const { browser, pushId } = await browserIn('clamp');
    const timed = async (heartbeat: number): Promise<number> => {
      const started = Date.now();
      const exchange = await browser.listen([pushId], { heartbeat });
      assert.equal(exchange.answer.kind, 'noop');
      assert.equal(exchange.headers.get('x-connection-reason'), 'response timeout');
      return Date.now() - started;
    };
    const short = await timed(100); // clamped up to hb/3 = 1000 ms
    assert.ok(short >= 800 && short < 2600, `held ${short} ms`);
    const long = await timed(60_000); // clamped down to hb = 3000 ms
    assert.ok(long >= 2700 && long < 5500, `held ${long} ms`);
  });

  test('the last notifications are sent again when another window takes the connection', async () => {
    const { browser, pushId } = await browserIn('windows');
    await browser.listen([pushId], { heartbeat: 1000 });
    await app.notify('windows');
    const got = await browser.listen([pushId], { window: 'aaaaa' });
    assert.deepEqual(notifiedIds(got.answer), [pushId]);
    // The same window again: nothing new, held until the heartbeat.
    const same = await browser.listen([pushId], { window: 'aaaaa', heartbeat: 1000 });
    assert.equal(same.answer.kind, 'noop');
    // Another window: the last set again, at once (the old window may have died with it).
    const started = Date.now();
    const other = await browser.listen([pushId], { window: 'bbbbb' });
    assert.deepEqual(notifiedIds(other.answer), [pushId]);
    assert.ok(Date.now() - started < 1500);
  });

  test('a second listen of the browser closes the first: X-Connection close, duplicate', async () => {
    const { browser, pushId } = await browserIn('dup');
    const first = browser.listen([pushId]);
    await sleep(300);
    const second = browser.listen([pushId]);
    const closed = await first;
    assert.equal(closed.answer.kind, 'close');
    assert.equal(closed.headers.get('x-connection'), 'close');
    assert.equal(closed.headers.get('x-connection-reason'), 'duplicate');
    assert.equal(closed.headers.get('content-length'), '0');
    assert.equal(closed.body, '');
    await sleep(200);
    await app.notify('dup');
    assert.deepEqual(notifiedIds((await second).answer), [pushId]);
  });

  test('another browser listening on the same push ID is not a duplicate: no close', async () => {
    const { browser, pushId } = await browserIn('shared-id');
    const first = browser.listen([pushId]);
    await sleep(300);
    const other = new IcepushBrowser({ base });
    await other.bootstrap();
    const second = other.listen([pushId], { heartbeat: 1000 });
    const answered = await first;
    assert.equal(answered.answer.kind, 'noop', answered.body);
    assert.equal(answered.headers.get('x-connection'), null);
    assert.equal((await second).answer.kind, 'noop');
  });

  test('a forged browser ID closes nobody and steals nothing', async () => {
    const victim = await browserIn('victim');
    const held = victim.browser.listen([victim.pushId]);
    let settled: IcepushExchange | null = null;
    void held.then((exchange) => (settled = exchange));
    await sleep(300);
    const victimId = victim.browser.browserId!;
    const altered = (victimId[0] === 'A' ? 'B' : 'A') + victimId.slice(1);
    for (const forged of [forgedPushId(), altered, `${victimId.slice(0, 10)}:1`]) {
      const attacker = new IcepushBrowser({ base, window: victim.browser.window });
      attacker.cookies.set('ice.push.browser', forged);
      const exchange = await attacker.listen([], { heartbeat: 1000 });
      assert.equal(exchange.answer.kind, 'browser', forged);
      if (exchange.answer.kind === 'browser') assert.notEqual(exchange.answer.id, victimId);
      assert.equal(settled, null, 'the victim was not answered');
    }
    await app.notify('victim');
    const exchange = await held;
    assert.deepEqual(notifiedIds(exchange.answer), [victim.pushId]);
  });

  test('a push storm closes the connection: push storm occurred', async () => {
    const { browser, pushId } = await browserIn('storm');
    await browser.listen([pushId], { heartbeat: 1000 });
    await app.notify('storm');
    // A page in a tight loop: every listen is answered at once (a window change re-sends).
    let last: IcepushExchange | null = null;
    for (let i = 0; i < 40; i++) {
      last = await browser.listen([pushId], { window: i % 2 === 0 ? 'aaaaa' : 'bbbbb' });
      if (last.answer.kind === 'close') break;
      assert.equal(last.answer.kind, 'notified', `listen ${i}: ${last.body}`);
    }
    assert.ok(last !== null);
    assert.equal(last.answer.kind, 'close');
    assert.equal(last.headers.get('x-connection-reason'), 'push storm occurred');
  });

  test('a busy page, notified at every listen, is not a push storm', async () => {
    const { browser, pushId } = await browserIn('busy');
    await browser.listen([pushId], { heartbeat: 1000 });
    for (let i = 0; i < 35; i++) {
      await app.notify('busy', `n${i}`);
      const exchange = await browser.listen([pushId]);
      assert.equal(exchange.answer.kind, 'notified', `listen ${i}: ${exchange.body}`);
    }
  });

  test('a portlet namespace before every parameter is taken off', async () => {
    const browser = new IcepushBrowser({ base, namespace: '_portlet_WAR_app_INSTANCE_x_' });
    const pushId = await browser.createPushId();
    await app.addGroupMember('portlets', pushId);
    const listening = browser.listen([pushId]);
    await sleep(300);
    await app.notify('portlets');
    assert.deepEqual(notifiedIds((await listening).answer), [pushId]);
  });

  test('too many push IDs for one listen: <server-error> with 503', async () => {
    const browser = new IcepushBrowser({ base });
    await browser.bootstrap();
    const ids = await api(node.url, KEY).mintPushIds(120);
    const exchange = await browser.listen(ids);
    assert.equal(exchange.status, 503);
    assert.equal(exchange.answer.kind, 'server-error');
  });

  test('group changes and notify need an API key (bearer or ice.push.apiKey)', async () => {
    const browser = new IcepushBrowser({ base });
    const pushId = await browser.createPushId();
    for (const call of [
      () => new IcepushApplication(base, null).addGroupMember('keys', pushId),
      () => new IcepushApplication(base, null).removeGroupMember('keys', pushId),
      () => new IcepushApplication(base, null).notify('keys'),
      () => new IcepushApplication(base, 'wrong-key', 'param').notify('keys'),
      () => new IcepushApplication(base, 'wrong-key', 'bearer').notify('keys'),
    ]) {
      const answer = await call();
      assert.equal(answer.status, 401, answer.body);
      const body = JSON.parse(answer.body) as { error: { code: string; message: string } };
      assert.equal(body.error.code, 'unauthorized');
    }
    const withParam = new IcepushApplication(base, KEY, 'param');
    assert.equal((await withParam.addGroupMember('keys', pushId)).status, 200);
    assert.equal((await withParam.notify('keys')).status, 200);
    assert.deepEqual(await api(node.url, KEY).members('keys'), [pushId]);
  });

  test('bad input is a 4xx JSON error', async () => {
    const bad = await app.addGroupMember('bad group!', 'x');
    assert.equal(bad.status, 400);
    assert.equal(
      (JSON.parse(bad.body) as { error: { code: string } }).error.code,
      'invalid_group_name',
    );
    const badId = await app.addGroupMember('good', 'not-a-push-id');
    assert.equal(badId.status, 400);
    const unknown = await app.addGroupMember('good', forgedPushId());
    assert.equal(unknown.status, 404);
  });

  test('code.icepush is a 404 that says why', async () => {
    for (const path of ['/code.icepush', '/app/code.min.icepush']) {
      const answer = await request<{ error: { code: string; message: string } }>(
        'GET',
        node.url + path,
      );
      assert.equal(answer.status, 404);
      assert.equal(answer.body.error.code, 'not_found');
      assert.match(answer.body.error.message, /JavaScript client/);
    }
  });
});

describe('ICEpush protocol: flags', () => {
  test('off by default: listen.icepush is not served', async () => {
    const node = await startEpush(['--api-key', KEY]);
    try {
      const answer = await request('POST', `${node.url}/listen.icepush`, { body: '' });
      assert.equal(answer.status, 404);
    } finally {
      await node.stop();
    }
  });

  test('--icepush-open-api: no key needed; --icepush-storm-backoff-ms: storms back off; drain: noop shutdown', async () => {
    const node = await startEpush([
      '--icepush',
      '--icepush-open-api',
      '--icepush-storm-backoff-ms',
      '2000',
      '--api-key',
      KEY,
      '--drain-seconds',
      '2',
    ]);
    try {
      const base = `${node.url}/`;
      const open = new IcepushApplication(base, null);
      const browser = new IcepushBrowser({ base });
      const pushId = await browser.createPushId();
      assert.equal((await open.addGroupMember('open', pushId)).status, 200);
      await browser.listen([pushId], { heartbeat: 1000 });
      assert.equal((await open.notify('open')).status, 200);
      let last: IcepushExchange | null = null;
      for (let i = 0; i < 40; i++) {
        last = await browser.listen([pushId], { window: i % 2 === 0 ? 'aaaaa' : 'bbbbb' });
        if (last.answer.kind !== 'notified') break;
      }
      assert.deepEqual(last?.answer, { kind: 'back-off', delay: 2000 });
      const quiet = new IcepushBrowser({ base });
      const quietId = await quiet.createPushId();
      const held = quiet.listen([quietId]);
      await sleep(500);
      const exited = node.terminate();
      const exchange = await held;
      assert.equal(exchange.answer.kind, 'noop', exchange.body);
      assert.equal(exchange.headers.get('x-connection-reason'), 'shutdown');
      assert.equal((await exited).code, 0);
    } finally {
      await node.stop();
    }
  });
});
