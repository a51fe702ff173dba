/**
 * docs/protocol.md `GET /admin`: the dashboard behind an API key (bearer or a signed session cookie set
 * by the key form), and its live feed through epush's own push (the reserved group
 * `epush.admin`). Real nodes over HTTP.
 */
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  api,
  listen,
  request,
  startEpush,
  type Api,
  type EpushProcess,
  type HttpAnswer,
} from '../support/epush-process.js';
import { assertError } from '../support/expect.js';

const FULL_KEY = 'admin-full-key-aaaaaaaaaaaa';
const SCOPED_KEY = 'admin-scoped-key-bbbbbbbbbb';
const READ_ONLY_KEY = 'admin-readonly-key-cccccccc';
const HTML = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };

interface SessionAnswer {
  readonly pushId: string;
  readonly snapshot: {
    readonly nodes: { id: string; connections: number }[];
    readonly sample: Record<string, unknown>;
    readonly periodSeconds: number;
    readonly group: string;
    readonly backplane: string;
  };
}

/** One exchange without following redirects (fetch would follow the 303 by itself). */
async function raw(
  method: string,
  url: string,
  headers: Record<string, string> = {},
  body?: string,
): Promise<Response> {
  return fetch(url, {
    method,
    headers,
    redirect: 'manual',
    ...(body === undefined ? {} : { body }),
  });
}

function form(key: string): { headers: Record<string, string>; body: string } {
  return {
    headers: { ...HTML, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ key }).toString(),
  };
}

/** A session cookie made the way the node makes them, for any expiry (tests of expiry). */
function signedCookie(key: string, expires: number): string {
  const digest = createHash('sha256').update(key).digest();
  const mac = createHmac('sha256', digest).update(`epush-admin:${expires}`).digest('base64url');
  return `epush_admin=v1.${expires}.${mac}`;
}

function assertPageHeaders(answer: HttpAnswer | Response): void {
  const csp = answer.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  assert.equal(answer.headers.get('x-frame-options'), 'DENY');
  assert.equal(answer.headers.get('cache-control'), 'no-store');
  assert.equal(answer.headers.get('referrer-policy'), 'no-referrer');
  assert.match(answer.headers.get('content-type') ?? '', /^text\/html/);
}

function assertKeyForm(answer: HttpAnswer, status: number): void {
  assert.equal(answer.status, status, answer.text);
  assertPageHeaders(answer);
  assert.match(answer.text, /<form method="post" action="\/admin">/);
  assert.match(answer.text, /<input id="key" name="key" type="password"/);
}

describe('the /admin dashboard', () => {
  let node: EpushProcess;
  let keyless: EpushProcess;
  let client: Api;

  before(async () => {
    [node, keyless] = await Promise.all([
      startEpush([
        '--api-key',
        `${FULL_KEY},${SCOPED_KEY};groups=app-b.,${READ_ONLY_KEY};read-only`,
        '--hold-seconds',
        '5',
        '--node-id',
        'admin-node',
      ]),
      startEpush(['--insecure-dev']),
    ]);
    client = api(node.url, FULL_KEY);
  });

  after(async () => {
    await Promise.all([node?.stop(), keyless?.stop()]);
  });

  test('without a key a browser gets 401 with the key form', async () => {
    const answer = await request('GET', `${node.url}/admin`, { headers: HTML });
    assertKeyForm(answer, 401);
    assert.equal(answer.headers.get('www-authenticate'), 'Bearer realm="epush"');
  });

  test('without a key a JSON client gets 401 with the JSON error shape', async () => {
    const answer = await request('GET', `${node.url}/admin`, {
      headers: { accept: 'application/json' },
    });
    assertError(answer, 401, 'unauthorized');
    assert.equal(answer.headers.get('www-authenticate'), 'Bearer realm="epush"');
  });

  test('a bearer key opens the page, which runs no inline script under a strict CSP', async () => {
    const answer = await request('GET', `${node.url}/admin`, {
      headers: { ...HTML, authorization: `Bearer ${FULL_KEY}` },
    });
    assert.equal(answer.status, 200, answer.text);
    assertPageHeaders(answer);
    assert.match(answer.text, /<script src="\/epush\.js"><\/script>/);
    assert.match(answer.text, /<script src="\/admin\/dashboard\.js"><\/script>/);
    assert.doesNotMatch(answer.text, /<script(?![^>]*\bsrc=)/, 'an inline script');
    assert.doesNotMatch(answer.text, /\sstyle=|<style|\son[a-z]+=/i, 'inline style or handler');
    assert.match(answer.text, /<table id="nodes">/);

    const wrong = await request('GET', `${node.url}/admin`, {
      headers: { ...HTML, authorization: 'Bearer not-a-key-of-this-node-000' },
    });
    assertKeyForm(wrong, 401);
    assert.match(wrong.text, /not valid/);
  });

  test('the script and stylesheet are served without a key', async () => {
    const script = await request('GET', `${node.url}/admin/dashboard.js`);
    assert.equal(script.status, 200);
    assert.match(script.headers.get('content-type') ?? '', /^text\/javascript/);
    assert.match(script.text, /admin\/session/);
    const style = await request('GET', `${node.url}/admin/dashboard.css`);
    assert.equal(style.status, 200);
    assert.match(style.headers.get('content-type') ?? '', /^text\/css/);
  });

  test('a wrong key in the form answers 401 with the form and a message, and sets no cookie', async () => {
    const { headers, body } = form('wrong-key-wrong-key-wrong');
    const response = await raw('POST', `${node.url}/admin`, headers, body);
    const text = await response.text();
    assert.equal(response.status, 401, text);
    assert.equal(response.headers.get('set-cookie'), null);
    assert.match(text, /That API key is not valid/);
    assert.match(text, /name="key"/);
  });

  test('the right key in the form answers 303 with a session cookie that holds no key and opens the page', async () => {
    const { headers, body } = form(FULL_KEY);
    const response = await raw('POST', `${node.url}/admin`, headers, body);
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), '/admin');
    const setCookie = response.headers.getSetCookie();
    assert.equal(setCookie.length, 1);
    const cookie = setCookie[0]!;
    assert.match(cookie, /^epush_admin=v1\.\d+\.[A-Za-z0-9_-]{43};/);
    assert.match(cookie, /; HttpOnly/);
    assert.match(cookie, /; SameSite=Strict/);
    assert.match(cookie, /; Path=\/admin(;|$)/);
    assert.match(cookie, /; Max-Age=43200(;|$)/);
    assert.doesNotMatch(cookie, /; Secure/, 'plain HTTP: no Secure');
    assert.ok(!cookie.includes(FULL_KEY), 'the cookie holds the key');
    const hexDigest = createHash('sha256').update(FULL_KEY).digest('hex');
    const b64Digest = createHash('sha256').update(FULL_KEY).digest('base64url');
    assert.ok(!cookie.includes(hexDigest) && !cookie.includes(b64Digest), 'the key digest');

    const value = cookie.split(';')[0]!;
    const expires = Number(value.split('.')[1]);
    const now = Math.floor(Date.now() / 1000);
    assert.ok(Math.abs(expires - (now + 12 * 3600)) < 60, `expires ${expires}, now ${now}`);

    const page = await request('GET', `${node.url}/admin`, { headers: { ...HTML, cookie: value } });
    assert.equal(page.status, 200, page.text);
    assertPageHeaders(page);
    assert.match(page.text, /id="node-rows"/);

    // Behind a TLS-terminating proxy the cookie is Secure.
    const proxied = await raw(
      'POST',
      `${node.url}/admin`,
      { ...headers, 'x-forwarded-proto': 'https' },
      body,
    );
    assert.equal(proxied.status, 303);
    assert.match(proxied.headers.getSetCookie()[0] ?? '', /; Secure/);
  });

  test('a tampered, expired or foreign session cookie is refused', async () => {
    const now = Math.floor(Date.now() / 1000);
    const good = signedCookie(FULL_KEY, now + 3600);
    const accepted = await request('GET', `${node.url}/admin`, {
      headers: { ...HTML, cookie: good },
    });
    assert.equal(accepted.status, 200, 'a cookie signed like the node signs must be accepted');

    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const flip = (at: number): string => {
      const index = alphabet.indexOf(good.at(at) ?? '');
      return (
        good.slice(0, at) + (alphabet[index ^ 1] ?? '') + (at === -1 ? '' : good.slice(at + 1))
      );
    };
    const cases: Record<string, string> = {
      tampered: flip(-2),
      // The MAC's last character carries two unused bits: this copy decodes to the same bytes.
      'same bytes, other text': flip(-1),
      'longer expiry, same mac': good.replace(`.${now + 3600}.`, `.${now + 7200}.`),
      expired: signedCookie(FULL_KEY, now - 10),
      'signed by a key this node does not have': signedCookie('some-other-key-000000000', now + 60),
      'far in the future': signedCookie(FULL_KEY, now + 30 * 24 * 3600),
      garbage: 'epush_admin=hello',
    };
    for (const [what, cookie] of Object.entries(cases)) {
      const answer = await request('GET', `${node.url}/admin`, { headers: { ...HTML, cookie } });
      assertKeyForm(answer, 401);
      assert.match(answer.text, /session has expired or is not valid/, what);
      const json = await request('GET', `${node.url}/admin`, {
        headers: { accept: 'application/json', cookie },
      });
      assertError(json, 401, 'unauthorized');
    }
  });

  test('a key limited to some groups is refused (403); a read-only key is enough', async () => {
    const bearer = await request('GET', `${node.url}/admin`, {
      headers: { accept: 'application/json', authorization: `Bearer ${SCOPED_KEY}` },
    });
    assertError(bearer, 403, 'forbidden');
    assert.match((bearer.body as { error: { message: string } }).error.message, /groups=/);

    const { headers, body } = form(SCOPED_KEY);
    const login = await raw('POST', `${node.url}/admin`, headers, body);
    assert.equal(login.status, 403);
    assert.deepEqual(login.headers.getSetCookie(), []);
    assert.match(await login.text(), /limited to some groups/);

    const readOnly = await request('GET', `${node.url}/admin`, {
      headers: { ...HTML, authorization: `Bearer ${READ_ONLY_KEY}` },
    });
    assert.equal(readOnly.status, 200, readOnly.text);
    const roLogin = await raw(
      'POST',
      `${node.url}/admin`,
      form(READ_ONLY_KEY).headers,
      form(READ_ONLY_KEY).body,
    );
    assert.equal(roLogin.status, 303);
  });

  test('the form takes only a bounded urlencoded body', async () => {
    const json = await request('POST', `${node.url}/admin`, { body: { key: FULL_KEY } });
    assertError(json, 415, 'unsupported_media_type');
    const big = await request('POST', `${node.url}/admin`, {
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `key=${'x'.repeat(5000)}`,
    });
    assertError(big, 413, 'body_too_large');
  });

  test('POST /admin/session needs the key, then mints a push ID in epush.admin with a snapshot', async () => {
    assertError(
      await request('POST', `${node.url}/admin/session`, { headers: { 'x-epush-admin': '1' } }),
      401,
      'unauthorized',
    );
    const cookie = signedCookie(FULL_KEY, Math.floor(Date.now() / 1000) + 600);
    // A cookie alone is what a cross-site form would carry: the page's header is required too.
    assertError(
      await request('POST', `${node.url}/admin/session`, { headers: { cookie } }),
      403,
      'forbidden',
    );
    assertError(
      await request('POST', `${node.url}/admin/session`, {
        headers: { 'x-epush-admin': '1', authorization: `Bearer ${SCOPED_KEY}` },
      }),
      403,
      'forbidden',
    );

    const answer = await request<SessionAnswer>('POST', `${node.url}/admin/session`, {
      headers: { 'x-epush-admin': '1', cookie },
    });
    assert.equal(answer.status, 201, answer.text);
    const { pushId, snapshot } = answer.body;
    assert.match(pushId, /^[A-Za-z0-9_-]{22,}$/);
    assert.ok((await client.members('epush.admin')).includes(pushId), 'in epush.admin');
    assert.equal(snapshot.group, 'epush.admin');
    assert.equal(snapshot.periodSeconds, 2);
    assert.equal(snapshot.backplane, 'memory');
    assert.deepEqual(
      snapshot.nodes.map((n) => n.id),
      ['admin-node'],
    );
    assert.equal(snapshot.sample.node, 'admin-node');
    assert.deepEqual(Object.keys(snapshot.sample).sort(), [
      'at',
      'backplane',
      'connections',
      'delivered',
      'listeners',
      'listening',
      'node',
      'openSockets',
      'published',
      'rssBytes',
    ]);
    assert.deepEqual(Object.keys(snapshot.sample.connections as object).sort(), [
      'long-poll',
      'sse',
      'websocket',
    ]);

    // A read-only key may open a session too (it only reads the cluster's figures).
    const readOnly = await request<SessionAnswer>('POST', `${node.url}/admin/session`, {
      headers: { 'content-type': 'application/json', authorization: `Bearer ${READ_ONLY_KEY}` },
      body: '{}',
    });
    assert.equal(readOnly.status, 201, readOnly.text);
  });

  test("a long-poll on the session's push ID receives the node's live figures", async () => {
    const listener = await client.mintPushId();
    await client.addMember('figures', listener);
    await client.notifyGroup('figures', { n: 1 });
    const session = await request<SessionAnswer>('POST', `${node.url}/admin/session`, {
      headers: { 'x-epush-admin': '1', authorization: `Bearer ${FULL_KEY}` },
    });
    assert.equal(session.status, 201, session.text);
    const started = Date.now();
    let cursor: string | null = null;
    let sample: Record<string, unknown> | undefined;
    while (sample === undefined && Date.now() - started < 8000) {
      const answer = await listen(node.url, [session.body.pushId], cursor);
      cursor = answer.cursor;
      const found = answer.notifications.find((n) => n.group === 'epush.admin');
      sample = found?.payload as Record<string, unknown> | undefined;
    }
    assert.ok(sample, 'no stats notification within 8 s');
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`);
    assert.equal(sample.node, 'admin-node');
    assert.ok((sample.published as number) >= 1, JSON.stringify(sample));
    assert.deepEqual(sample.connections, { 'long-poll': 1, sse: 0, websocket: 0 });
    assert.ok((sample.listeners as number) >= 1);
    assert.deepEqual(sample.backplane, {
      up: true,
      rttSeconds: (sample.backplane as { rttSeconds: number }).rttSeconds,
      leader: false,
    });
    assert.ok((sample.rssBytes as number) > 1_000_000);

    // The feed's own notifications are not counted as published by the API.
    const metrics = await request('GET', `${node.url}/metrics`);
    const published = [
      ...metrics.text.matchAll(/^epush_notifications_published_total\{[^}]*\} (\d+)/gm),
    ]
      .map((m) => Number(m[1]))
      .reduce((a, b) => a + b, 0);
    assert.equal(published, 1, metrics.text);
  });

  test('logout clears the cookie', async () => {
    const response = await raw('POST', `${node.url}/admin/logout`, HTML);
    assert.equal(response.status, 303);
    assert.equal(response.headers.get('location'), '/admin');
    const cookie = response.headers.getSetCookie()[0] ?? '';
    assert.match(cookie, /^epush_admin=; Path=\/admin; Max-Age=0; HttpOnly; SameSite=Strict/);
  });

  test('a keyless (--insecure-dev) node serves its dashboard to loopback peers', async () => {
    const page = await request('GET', `${keyless.url}/admin`, { headers: HTML });
    assert.equal(page.status, 200, page.text);
    const session = await request<SessionAnswer>('POST', `${keyless.url}/admin/session`, {
      headers: { 'x-epush-admin': '1' },
    });
    assert.equal(session.status, 201, session.text);
  });
});
