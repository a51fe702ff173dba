/**
 * Signed listen tokens (`--listen-token-secret`, `--require-listen-tokens`, `--listen-token-ttl`)
 * against real nodes: minting through the API, and the one check every listen path shares (the
 * accept loop's keep-alive POST, node:http's chunked POST, SSE, WebSocket): 403 `forbidden`
 * naming the push ID and why, with no trace left by a refused listen.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { get } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { EpushApiClient } from '../../src/sdk/index.js';
import {
  api,
  listenRaw,
  parseRawResponse,
  rawExchange,
  request,
  runEpush,
  sleep,
  startEpush,
  unknownPushId,
  type Api,
  type EpushProcess,
  type HttpAnswer,
  type ListenAnswer,
} from '../support/epush-process.js';

const SECRET = 'listen-token-secret-current-0123456789';
const OLD_SECRET = 'listen-token-secret-previous-012345678';
const UNLISTED_SECRET = 'listen-token-secret-never-configured-00';
const KEY = 'listen-tokens-test-key-0123';
const READ_ONLY_KEY = 'listen-tokens-read-only-key-0123';
const TOKEN_SHAPE = /^v1\.\d+\.[A-Za-z0-9_-]{43}$/;

interface Forbidden {
  readonly error: { readonly code: string; readonly message: string; pushIds: string[] };
}

/** A token as the server signs it, crafted here with a known secret. */
function craft(secret: string, pushId: string, expires: number): string {
  const mac = createHmac('sha256', secret)
    .update(`epush-listen\n${pushId}\n${expires}`)
    .digest('base64url');
  return `v1.${expires}.${mac}`;
}

function inAnHour(): number {
  return Math.floor(Date.now() / 1000) + 3600;
}

function assertForbidden(answer: HttpAnswer, pushId: string, why: RegExp): void {
  assert.equal(answer.status, 403, answer.text);
  const body = answer.body as Forbidden;
  assert.equal(body.error.code, 'forbidden');
  assert.ok(body.error.message.includes(pushId), body.error.message);
  assert.match(body.error.message, why);
  assert.ok(body.error.pushIds.includes(pushId));
}

async function listeners(url: string): Promise<number> {
  const text = (await request('GET', `${url}/metrics`)).text;
  return Number(/^epush_listeners (\d+)/m.exec(text)?.[1] ?? NaN);
}

/** `POST /push/listen` written on a raw socket, Content-Length or chunked; the parsed answer. */
async function rawListen(
  node: EpushProcess,
  body: unknown,
  framing: 'content-length' | 'chunked',
): Promise<{ status: number; body: unknown }> {
  const json = JSON.stringify(body);
  const framed =
    framing === 'chunked'
      ? `Transfer-Encoding: chunked\r\n\r\n${Buffer.byteLength(json).toString(16)}\r\n${json}\r\n0\r\n\r\n`
      : `Content-Length: ${Buffer.byteLength(json)}\r\n\r\n${json}`;
  const exchange = await rawExchange(
    node.port,
    `POST /push/listen HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n${framed}`,
    1500,
  );
  const parsed = parseRawResponse(exchange.received);
  let text = parsed.body;
  if (parsed.headers.get('transfer-encoding') === 'chunked') {
    text = text.replace(/^[0-9a-f]+\r\n/, '').replace(/\r\n0\r\n\r\n$/, '');
  }
  return { status: parsed.status, body: JSON.parse(text) as unknown };
}

/** The status and (for an error) the body of `GET /push/sse?…`; a stream is closed at once. */
function sseStatus(url: string, query: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}/push/sse?${query}`, (res) => {
      if (res.statusCode === 200) {
        res.destroy();
        resolve({ status: 200, body: '' });
        return;
      }
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    req.on('error', reject);
  });
}

/** Opens `/push/ws`, sends one listen message, resolves with the first message back. */
async function wsFirstMessage(url: string, listen: unknown): Promise<unknown> {
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/push/ws`);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => {
        resolve();
      });
      ws.once('error', reject);
    });
    const first = new Promise<unknown>((resolve) => {
      ws.once('message', (data: Buffer) => {
        resolve(JSON.parse(data.toString('utf8')));
      });
    });
    ws.send(JSON.stringify({ listen }));
    return await first;
  } finally {
    ws.close();
  }
}

describe('listen tokens required (--require-listen-tokens)', () => {
  let node: EpushProcess;
  let app: Api;

  before(async () => {
    node = await startEpush([
      '--api-key',
      `${KEY},${READ_ONLY_KEY};read-only`,
      '--listen-token-secret',
      `${SECRET},${OLD_SECRET}`,
      '--require-listen-tokens',
      '--hold-seconds',
      '2',
    ]);
    app = api(node.url, KEY);
  });
  after(async () => {
    await node.stop();
  });

  /** A push ID with its token, minted through the API. */
  async function mint(): Promise<{ pushId: string; token: string }> {
    const answer = await app.call<{ pushIds: string[]; listenTokens: string[] }>(
      'POST',
      '/api/push-ids',
    );
    assert.equal(answer.status, 201);
    return { pushId: answer.body.pushIds[0] ?? '', token: answer.body.listenTokens[0] ?? '' };
  }

  /** The head cursor, through a listen on an unknown push ID with a crafted token. */
  async function head(): Promise<string> {
    const pushId = unknownPushId();
    const answer = await listenRaw(node.url, {
      pushIds: [pushId],
      cursor: null,
      listenTokens: [craft(SECRET, pushId, inAnHour())],
    });
    assert.equal(answer.status, 200, answer.text);
    return answer.body.cursor;
  }

  test('POST /api/push-ids answers a listen token per push ID, in the same order', async () => {
    const answer = await app.call<{ pushIds: string[]; listenTokens: string[] }>(
      'POST',
      '/api/push-ids',
      { body: { count: 3 } },
    );
    assert.equal(answer.status, 201);
    assert.deepEqual(Object.keys(answer.body).sort(), ['listenTokens', 'pushIds']);
    assert.equal(answer.body.listenTokens.length, 3);
    for (const [index, token] of answer.body.listenTokens.entries()) {
      assert.match(token, TOKEN_SHAPE);
      const expires = Number(token.split('.')[1]);
      assert.ok(Math.abs(expires - (Date.now() / 1000 + 86400)) < 60, 'default ttl: one day');
      assert.equal(token, craft(SECRET, answer.body.pushIds[index] ?? '', expires));
    }
  });

  test('a listen without a token is refused on the accept loop (keep-alive POST) and node:http (chunked)', async () => {
    const { pushId } = await mint();
    for (const framing of ['content-length', 'chunked'] as const) {
      const answer = await rawListen(node, { pushIds: [pushId], cursor: null }, framing);
      assertForbidden(
        { status: answer.status, body: answer.body } as HttpAnswer,
        pushId,
        /missing/,
      );
    }
    assertForbidden(
      await listenRaw(node.url, { pushIds: [pushId], cursor: null }),
      pushId,
      /missing/,
    );
  });

  test('a listen with its token is held and delivered, on both long-poll paths', async () => {
    const { pushId, token } = await mint();
    const cursor = await head();
    await app.notifyPushId(pushId, { n: 1 });
    for (const framing of ['content-length', 'chunked'] as const) {
      const answer = await rawListen(
        node,
        { pushIds: [pushId], cursor, listenTokens: [token] },
        framing,
      );
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const body = answer.body as ListenAnswer;
      assert.deepEqual(
        body.notifications.map((n) => n.payload),
        [{ n: 1 }],
      );
    }
  });

  test('an expired, a wrong-push-ID, a tampered or an unlisted-secret token is refused, naming why', async () => {
    const { pushId, token } = await mint();
    const other = await mint();
    const expired = craft(SECRET, pushId, Math.floor(Date.now() / 1000) - 5);
    const cases: [string, RegExp][] = [
      [expired, /expired/],
      [other.token, /does not match/],
      [`${token.slice(0, -2)}AA`, /does not match|malformed/],
      [craft(UNLISTED_SECRET, pushId, inAnHour()), /does not match/],
      ['v1.nope', /malformed/],
    ];
    for (const [bad, why] of cases) {
      assertForbidden(
        await listenRaw(node.url, { pushIds: [pushId], cursor: null, listenTokens: [bad] }),
        pushId,
        why,
      );
    }
    // One push ID of two without a valid token refuses the whole listen and names only it.
    const mixed = await listenRaw(node.url, {
      pushIds: [other.pushId, pushId],
      cursor: null,
      listenTokens: [other.token, null],
    });
    assertForbidden(mixed, pushId, /missing/);
    assert.deepEqual((mixed.body as unknown as Forbidden).error.pushIds, [pushId]);
  });

  test('a token minted with a tiny ttlSeconds expires', async () => {
    const { pushId } = await mint();
    const minted = await app.call<{ listenTokens: string[]; expiresAt: string }>(
      'POST',
      '/api/listen-tokens',
      { body: { pushIds: [pushId], ttlSeconds: 1 } },
    );
    assert.equal(minted.status, 200, minted.text);
    const [token] = minted.body.listenTokens;
    await sleep(Date.parse(minted.body.expiresAt) - Date.now() + 50);
    assertForbidden(
      await listenRaw(node.url, { pushIds: [pushId], cursor: null, listenTokens: [token] }),
      pushId,
      /expired/,
    );
  });

  test('rotation: a token signed with a listed older secret still verifies', async () => {
    const { pushId } = await mint();
    const cursor = await head();
    await app.notifyPushId(pushId, 'rotated');
    const answer = await listenRaw(node.url, {
      pushIds: [pushId],
      cursor,
      listenTokens: [craft(OLD_SECRET, pushId, inAnHour())],
    });
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(
      answer.body.notifications.map((n) => n.payload),
      ['rotated'],
    );
  });

  test('SSE takes the tokens as listenTokens=t1,t2 and refuses a stream without them', async () => {
    const a = await mint();
    const b = await mint();
    const refused = await sseStatus(node.url, `pushIds=${a.pushId},${b.pushId}`);
    assert.equal(refused.status, 403);
    const body = JSON.parse(refused.body) as Forbidden;
    assert.equal(body.error.code, 'forbidden');
    assert.deepEqual(body.error.pushIds, [a.pushId, b.pushId]);
    const wrongOrder = await sseStatus(
      node.url,
      `pushIds=${a.pushId},${b.pushId}&listenTokens=${b.token},${a.token}`,
    );
    assert.equal(wrongOrder.status, 403);
    const ok = await sseStatus(
      node.url,
      `pushIds=${a.pushId},${b.pushId}&listenTokens=${a.token},${b.token}`,
    );
    assert.equal(ok.status, 200);
  });

  test('WebSocket: a listen message without its token is answered forbidden; with it, delivered', async () => {
    const { pushId, token } = await mint();
    const refused = (await wsFirstMessage(node.url, {
      pushIds: [pushId],
      cursor: null,
    })) as Forbidden;
    assert.equal(refused.error.code, 'forbidden');
    assert.deepEqual(refused.error.pushIds, [pushId]);
    assert.match(refused.error.message, /missing/);
    const cursor = await head();
    await app.notifyPushId(pushId, 'ws');
    const answer = (await wsFirstMessage(node.url, {
      pushIds: [pushId],
      cursor,
      listenTokens: [token],
    })) as ListenAnswer;
    assert.deepEqual(
      answer.notifications.map((n) => n.payload),
      ['ws'],
    );
  });

  test('a refused listen leaves no trace: no listener, no replaced listen, the notification still reaches the valid one', async () => {
    const { pushId, token } = await mint();
    const cursor = await head();
    assert.equal(await listeners(node.url), 0);
    // A valid listen is held…
    const held = listenRaw(node.url, { pushIds: [pushId], cursor, listenTokens: [token] });
    await sleep(200);
    assert.equal(await listeners(node.url), 1);
    // …refused listens for the same push ID do not replace it, nor register anything.
    for (const listenTokens of [undefined, ['v1.1.x'], [craft(SECRET, pushId, 1)]]) {
      const refused = await listenRaw(node.url, { pushIds: [pushId], cursor: null, listenTokens });
      assert.equal(refused.status, 403);
    }
    assert.equal(await listeners(node.url), 1);
    await app.notifyPushId(pushId, 'still yours');
    const answer = await held;
    assert.equal(answer.status, 200);
    assert.equal(answer.body.replaced, undefined);
    assert.deepEqual(
      answer.body.notifications.map((n) => n.payload),
      ['still yours'],
    );
    await sleep(100);
    assert.equal(await listeners(node.url), 0);
    // From the old cursor, a later valid listen gets it too (nothing was consumed).
    const again = await listenRaw(node.url, { pushIds: [pushId], cursor, listenTokens: [token] });
    assert.deepEqual(
      again.body.notifications.map((n) => n.payload),
      ['still yours'],
    );
  });

  test('POST /api/listen-tokens mints fresh tokens, checks its input and needs write access', async () => {
    const { pushId } = await mint();
    const other = await mint();
    const answer = await app.call<{ listenTokens: string[]; expiresAt: string }>(
      'POST',
      '/api/listen-tokens',
      { body: { pushIds: [pushId, other.pushId], ttlSeconds: 600 } },
    );
    assert.equal(answer.status, 200, answer.text);
    assert.deepEqual(Object.keys(answer.body).sort(), ['expiresAt', 'listenTokens']);
    const expires = Date.parse(answer.body.expiresAt) / 1000;
    assert.ok(Math.abs(expires - (Date.now() / 1000 + 600)) < 5);
    assert.deepEqual(answer.body.listenTokens, [
      craft(SECRET, pushId, expires),
      craft(SECRET, other.pushId, expires),
    ]);
    const listened = await listenRaw(node.url, {
      pushIds: [pushId],
      cursor: null,
      listenTokens: answer.body.listenTokens.slice(0, 1),
    });
    assert.notEqual(listened.status, 403);

    const bad: [unknown, number, string][] = [
      [{}, 400, 'invalid_body'],
      [{ pushIds: [] }, 400, 'invalid_count'],
      [{ pushIds: Array.from({ length: 1001 }, () => pushId) }, 400, 'invalid_count'],
      [{ pushIds: ['nope'] }, 400, 'invalid_push_id'],
      [{ pushIds: [pushId], ttlSeconds: 0 }, 400, 'invalid_body'],
      [{ pushIds: [pushId], ttlSeconds: 1.5 }, 400, 'invalid_body'],
      [{ pushIds: [pushId], colour: 1 }, 400, 'invalid_body'],
    ];
    for (const [body, status, code] of bad) {
      const refused = await app.call<{ error: { code: string } }>('POST', '/api/listen-tokens', {
        body,
      });
      assert.equal(refused.status, status, JSON.stringify(body).slice(0, 80));
      assert.equal(refused.body.error.code, code);
    }
    const readOnly = await api(node.url, READ_ONLY_KEY).call<{ error: { code: string } }>(
      'POST',
      '/api/listen-tokens',
      { body: { pushIds: [pushId] } },
    );
    assert.equal(readOnly.status, 403);
    assert.equal(readOnly.body.error.code, 'forbidden');
    const keyless = await api(node.url).call('POST', '/api/listen-tokens', {
      body: { pushIds: [pushId] },
    });
    assert.equal(keyless.status, 401);
  });

  test('the Node SDK returns the tokens of createPushIdsWithTokens and mints with listenTokens()', async () => {
    const sdk = new EpushApiClient({ url: node.url, apiKey: KEY });
    try {
      const { pushIds, listenTokens } = await sdk.createPushIdsWithTokens(2);
      assert.equal(pushIds.length, 2);
      assert.equal(listenTokens?.length, 2);
      assert.equal((await sdk.createPushIds(1)).length, 1, 'createPushIds is unchanged');
      const fresh = await sdk.listenTokens(pushIds, 120);
      assert.equal(fresh.listenTokens.length, 2);
      assert.ok(Math.abs(Date.parse(fresh.expiresAt) - Date.now() - 120_000) < 5000);
      const answer = await listenRaw(node.url, {
        pushIds,
        cursor: null,
        listenTokens: fresh.listenTokens,
      });
      assert.notEqual(answer.status, 403, answer.text);
      await assert.rejects(sdk.listenTokens(['nope']), { code: 'invalid_argument' });
    } finally {
      await sdk.close();
    }
  });
});

describe('listen tokens optional (a secret, not required)', () => {
  let node: EpushProcess;

  before(async () => {
    node = await startEpush(['--insecure-dev', '--listen-token-secret', SECRET]);
  });
  after(async () => {
    await node.stop();
  });

  test('a listen without tokens is served; a token that is present must be valid', async () => {
    const pushId = unknownPushId(); // answered at once, under `expired`
    const plain = await listenRaw(node.url, { pushIds: [pushId], cursor: null });
    assert.equal(plain.status, 200, plain.text);
    const valid = await listenRaw(node.url, {
      pushIds: [pushId],
      cursor: null,
      listenTokens: [craft(SECRET, pushId, inAnHour())],
    });
    assert.equal(valid.status, 200, valid.text);
    assertForbidden(
      await listenRaw(node.url, {
        pushIds: [pushId],
        cursor: null,
        listenTokens: [craft(OLD_SECRET, pushId, inAnHour())],
      }),
      pushId,
      /does not match/,
    );
    const minted = await api(node.url).call<{ pushIds: string[]; listenTokens: string[] }>(
      'POST',
      '/api/push-ids',
    );
    assert.equal(minted.body.listenTokens.length, 1);
  });
});

describe('listen tokens off (no secret)', () => {
  let node: EpushProcess;

  before(async () => {
    node = await startEpush(['--insecure-dev']);
  });
  after(async () => {
    await node.stop();
  });

  test('the API answers as before and /api/listen-tokens is 404; listenTokens are ignored', async () => {
    const sdk = new EpushApiClient({ url: node.url, apiKey: KEY });
    try {
      assert.equal((await sdk.createPushIdsWithTokens()).listenTokens, null);
      await assert.rejects(sdk.listenTokens([unknownPushId()]), { code: 'not_found', status: 404 });
    } finally {
      await sdk.close();
    }
    const app = api(node.url);
    const minted = await app.call<Record<string, unknown>>('POST', '/api/push-ids');
    assert.deepEqual(Object.keys(minted.body), ['pushIds']);
    const off = await app.call<{ error: { code: string; message: string } }>(
      'POST',
      '/api/listen-tokens',
      { body: { pushIds: [unknownPushId()] } },
    );
    assert.equal(off.status, 404);
    assert.equal(off.body.error.code, 'not_found');
    assert.match(off.body.error.message, /--listen-token-secret/);
    const pushId = unknownPushId();
    const listened = await listenRaw(node.url, {
      pushIds: [pushId],
      cursor: null,
      listenTokens: ['anything'],
    });
    assert.equal(listened.status, 200);
    const shape = await listenRaw(node.url, {
      pushIds: [pushId],
      cursor: null,
      listenTokens: 'anything',
    });
    assert.equal(shape.status, 400);
  });

  test('--require-listen-tokens without a secret stops the start with exit 2 and one line', async () => {
    const result = await runEpush(['start', '--insecure-dev', '--require-listen-tokens']);
    assert.equal(result.code, 2);
    assert.match(
      result.stderr.trim(),
      /^[^\n]*--require-listen-tokens needs --listen-token-secret[^\n]*$/,
    );
  });
});
