/**
 * Hostile input to the streaming transports (docs/protocol.md) of one real node:
 *
 * - `GET /push/ws`: arbitrary messages (text, binary, invalid JSON, wrong shapes, over the 16 KiB
 *   message limit) are answered with the HTTP API's error object and the same code
 *   `POST /push/listen` gives the same listen, the socket stays open and serves a valid listen
 *   afterwards; an oversized message closes it with 1009; arbitrary handshakes get 101 or a JSON
 *   4xx (403 `forbidden_origin` for an origin outside --cors-origins);
 * - `GET /push/sse`: arbitrary query strings and Last-Event-ID headers are answered exactly as
 *   `POST /push/listen` answers the same listen (status and code) before the stream starts, and
 *   an accepted stream starts with `retry: 1000` and events whose `id:` is their cursor.
 *
 * The node is alive after every case. `FUZZ_SEED=<n>` reproduces a run.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { WebSocket, type RawData } from 'ws';
import { decodeCursor } from '../../src/core/cursor.js';
import {
  headCursor,
  listenRaw,
  startEpush,
  type EpushProcess,
  type HttpAnswer,
} from '../support/epush-process.js';
import { assertAlive } from '../support/expect.js';
import {
  FUZZ_SEED,
  FuzzCounter,
  anyJsonArb,
  assertErrorShape,
  assertWellFormed,
  badPushIdArb,
  fuzzParameters,
  garbageBodyArb,
  requestBytes,
  sendRaw,
  unknownPushIdArb,
  wrongTypeArb,
} from './fuzz-support.js';

const KEY = 'fuzz-ws-sse-key-0123456789abcdef';
const APP_ORIGIN = 'https://app.example.com';
const MAX_MESSAGE = 16 * 1024;
const RUNS = Number(process.env.FUZZ_RUNS_STREAMS ?? 250);

let node: EpushProcess;
let currentCursor = '';

// --- a small WebSocket client -------------------------------------------------------------------

class WsClient {
  readonly messages: string[] = [];
  close: { code: number; reason: string } | null = null;
  private waiters: (() => void)[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData) => {
      this.messages.push(
        Buffer.isBuffer(data)
          ? data.toString('utf8')
          : Array.isArray(data)
            ? Buffer.concat(data).toString('utf8')
            : Buffer.from(data).toString('utf8'),
      );
      this.wake();
    });
    ws.on('close', (code: number, reason: Buffer) => {
      this.close = { code, reason: reason.toString('utf8') };
      this.wake();
    });
    ws.on('error', () => {
      this.wake();
    });
  }

  static open(headers: Record<string, string> = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${node.port}/push/ws`, { headers });
      const client = new WsClient(ws);
      ws.once('open', () => {
        resolve(client);
      });
      ws.once('error', reject);
    });
  }

  /** Waits until `count` messages arrived or the socket closed, at most `ms`. */
  async until(check: () => boolean, ms: number, what: string): Promise<void> {
    const deadline = Date.now() + ms;
    while (!check()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  end(): void {
    this.ws.terminate();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }
}

/** A listen answer: `{notifications: [], cursor, expired: []}` plus optional flags. */
function assertListenAnswer(text: string, what: string): Record<string, unknown> {
  const answer = JSON.parse(text) as Record<string, unknown>;
  assert.ok(Array.isArray(answer.notifications), `${what}: ${text}`);
  assert.equal(typeof answer.cursor, 'string', `${what}: ${text}`);
  assert.ok(decodeCursor(answer.cursor as string) !== null, `${what}: ${text}`);
  assert.ok(Array.isArray(answer.expired), `${what}: ${text}`);
  return answer;
}

/** Status and error code of `POST /push/listen` for this listen value (null: 200). */
async function listenVerdict(listen: unknown): Promise<{ status: number; code: string | null }> {
  const answer: HttpAnswer = await listenRaw(node.url, JSON.stringify(listen), {
    headers: { 'content-type': 'application/json' },
  });
  if (answer.status === 200) {
    assertListenAnswer(answer.text, 'POST /push/listen');
    return { status: 200, code: null };
  }
  return { status: answer.status, code: assertErrorShape(answer.text, answer.status, 'listen') };
}

/** Mostly `usual` (4 in 5), else `unusual`: hostile cases close to the valid ones. */
function mostly<T>(usual: fc.Arbitrary<T>, unusual: fc.Arbitrary<T>): fc.Arbitrary<T> {
  return fc.oneof({ weight: 4, arbitrary: usual }, { weight: 1, arbitrary: unusual });
}

// --- generators -----------------------------------------------------------------------------------

/** Listen values: valid ones on never-minted push IDs, and every kind of broken one. */
const listenValueArb: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 2,
    arbitrary: fc.record({
      pushIds: fc.array(unknownPushIdArb, { minLength: 1, maxLength: 5 }),
      cursor: fc.constantFrom(null, 'current', 'zzz-5'),
    }),
  },
  fc.record(
    {
      pushIds: fc.oneof(
        fc.array(unknownPushIdArb, { minLength: 1, maxLength: 5 }),
        fc.array(fc.oneof(unknownPushIdArb, badPushIdArb), { maxLength: 8 }),
        fc.array(unknownPushIdArb, { minLength: 101, maxLength: 200 }),
        wrongTypeArb('array'),
      ),
      cursor: fc.oneof(
        fc.constant(null),
        fc.constant(undefined),
        fc.constant('current'),
        fc.constantFrom('zzz-5', 'abc-0', 'a-zzzzzzzzzzz', 'A-1', '-', ''),
        fc.string({ maxLength: 30 }),
        wrongTypeArb('string'),
      ),
    },
    { requiredKeys: [] },
  ),
  anyJsonArb.filter((v) => JSON.stringify(v).length < 8000),
);

function withCurrentCursor(value: unknown): unknown {
  if (
    typeof value === 'object' &&
    value !== null &&
    (value as { cursor?: unknown }).cursor === 'current'
  )
    return { ...value, cursor: currentCursor };
  return value;
}

type Message = { kind: 'text'; text: string; listen?: unknown } | { kind: 'binary'; bytes: Buffer };

const messageArb: fc.Arbitrary<Message> = fc.oneof(
  {
    weight: 5,
    arbitrary: listenValueArb.map((listen) => ({ kind: 'text' as const, text: '', listen })),
  },
  {
    weight: 2,
    arbitrary: fc
      .oneof(
        fc.string({ maxLength: 200 }),
        fc.string({ unit: 'grapheme', maxLength: 100 }),
        fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
        fc.constantFrom(
          '',
          '{',
          'null',
          '[]',
          '{"listen"}',
          '{"listen":null}',
          '{"listen":{}}',
          '{"LISTEN":{}}',
          '"listen"',
        ),
        fc.integer({ min: 1, max: 5000 }).map((d) => `{"listen":${'['.repeat(d)}${']'.repeat(d)}}`),
      )
      .map((text) => ({ kind: 'text' as const, text })),
  },
  { weight: 1, arbitrary: garbageBodyArb.map((bytes) => ({ kind: 'binary' as const, bytes })) },
  {
    weight: 1,
    arbitrary: fc
      .integer({ min: MAX_MESSAGE + 1, max: 80 * 1024 })
      .map((n) => ({ kind: 'text' as const, text: `{"listen":{"pushIds":["${'a'.repeat(n)}"]}}` })),
  },
);

function messageText(message: Message & { kind: 'text' }): string {
  if (message.listen === undefined) return message.text;
  return JSON.stringify({ listen: withCurrentCursor(message.listen) });
}

/** What the node must answer a text message with, from POST /push/listen as the oracle. */
async function expectedForText(
  text: string,
): Promise<{ status: number; code: string | null } | 'too-big'> {
  if (Buffer.byteLength(text) > MAX_MESSAGE) return 'too-big';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { status: 400, code: 'invalid_json' };
  }
  if (typeof parsed !== 'object' || parsed === null || !('listen' in parsed))
    return { status: 400, code: 'invalid_body' };
  const listen = parsed.listen;
  // A value this process cannot re-serialize (nested too deep) is judged on the raw text.
  try {
    JSON.stringify(listen);
  } catch {
    return { status: 400, code: null };
  }
  return listenVerdict(listen);
}

// --- the tests ------------------------------------------------------------------------------------

describe('hostile input to the streaming transports', () => {
  before(async () => {
    node = await startEpush([
      '--api-key',
      KEY,
      '--hold-seconds',
      '30',
      '--cors-origins',
      `${APP_ORIGIN},https://other.example.com`,
    ]);
    currentCursor = await headCursor(node.url);
  });

  after(async () => {
    await node?.stop();
  });

  test('WebSocket: arbitrary messages get the error object (or a listen answer); the socket stays usable', async (t: TestContext) => {
    const counter = new FuzzCounter();
    const outcomes = new Map<string, number>();
    await fc.assert(
      fc.asyncProperty(messageArb, async (message) => {
        counter.runs += 1;
        const client = await WsClient.open();
        try {
          const text = message.kind === 'text' ? messageText(message) : '';
          const what =
            message.kind === 'text' ? text.slice(0, 300) : `binary ${message.bytes.length} bytes`;
          const expected =
            message.kind === 'binary'
              ? Buffer.byteLength(message.bytes) > MAX_MESSAGE
                ? 'too-big'
                : { status: 400, code: 'invalid_body' }
              : await expectedForText(text);
          counter.requests += 1;
          client.ws.send(message.kind === 'text' ? text : message.bytes, {
            binary: message.kind === 'binary',
          });
          if (expected === 'too-big') {
            await client.until(() => client.close !== null, 3000, `a close after ${what}`);
            assert.equal(client.close?.code, 1009, what);
            outcomes.set('closed 1009', (outcomes.get('closed 1009') ?? 0) + 1);
            return;
          }
          await client.until(() => client.messages.length > 0, 3000, `an answer to ${what}`);
          const answer = client.messages[0]!;
          if (expected.status === 200) {
            assertListenAnswer(answer, what);
            outcomes.set('listen answer', (outcomes.get('listen answer') ?? 0) + 1);
          } else {
            const code = assertErrorShape(answer, expected.status, what);
            if (expected.code !== null) assert.equal(code, expected.code, what);
            outcomes.set(code, (outcomes.get(code) ?? 0) + 1);
          }
          // The socket is still open and takes a valid listen.
          assert.equal(client.close, null, `the socket closed after ${what}`);
          const probe = `probe${'p'.repeat(16)}${counter.runs}`;
          client.ws.send(JSON.stringify({ listen: { pushIds: [probe], cursor: null } }));
          await client.until(
            () => client.messages.some((m) => m.includes(`"expired":["${probe}"]`)),
            3000,
            `the probe listen after ${what}`,
          );
        } finally {
          client.end();
        }
        await assertAlive(node);
      }),
      fuzzParameters(RUNS),
    );
    t.diagnostic(counter.summary('WebSocket messages'));
    t.diagnostic(`WebSocket outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  });

  test('WebSocket: a burst of broken messages on one socket is answered one for one, in order', async (t: TestContext) => {
    const counter = new FuzzCounter();
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.string({ maxLength: 100 }).filter((s) => {
              try {
                JSON.parse(s);
                return false;
              } catch {
                return true;
              }
            }),
            fc
              .jsonValue({ maxDepth: 2 })
              .filter((v) => typeof v !== 'object' || v === null || !('listen' in v))
              .map((v) => JSON.stringify(v)),
          ),
          { minLength: 1, maxLength: 30 },
        ),
        async (texts) => {
          counter.runs += 1;
          counter.requests += texts.length;
          const client = await WsClient.open({ origin: APP_ORIGIN });
          try {
            for (const text of texts) client.ws.send(text);
            await client.until(() => client.messages.length >= texts.length, 5000, 'every answer');
            texts.forEach((text, i) => {
              const expected = (() => {
                try {
                  JSON.parse(text);
                  return 'invalid_body';
                } catch {
                  return 'invalid_json';
                }
              })();
              assert.equal(assertErrorShape(client.messages[i]!, 400, text), expected, text);
            });
            assert.equal(client.close, null);
          } finally {
            client.end();
          }
          await assertAlive(node);
        },
      ),
      fuzzParameters(Math.ceil(RUNS / 3)),
    );
    t.diagnostic(counter.summary('WebSocket bursts (requests = messages)'));
  });

  test('WebSocket handshake: arbitrary upgrade requests get 101 or a JSON 4xx', async (t: TestContext) => {
    const counter = new FuzzCounter();
    let switched = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.record({
          method: mostly(fc.constant('GET'), fc.constantFrom('POST', 'PUT', 'OPTIONS', 'HEAD')),
          path: mostly(
            fc.constantFrom('/push/ws', '/push/ws?x=1'),
            fc.constantFrom('/push/ws/', '/push/WS', '/push/ws%20', '/push/listen', '/ws'),
          ),
          origin: fc.oneof(
            fc.constant(undefined),
            fc.constantFrom(APP_ORIGIN, 'https://other.example.com'),
            fc.oneof(
              fc.constantFrom('https://evil.example', 'null', 'http://app.example.com'),
              fc.string({ unit: fc.constantFrom(...Array.from('abcdefgh:/.-')), maxLength: 30 }),
            ),
          ),
          version: mostly(fc.constant('13'), fc.constantFrom('8', '0', '14', 'x', '', undefined)),
          key: mostly(
            fc
              .uint8Array({ minLength: 16, maxLength: 16 })
              .map((b) => Buffer.from(b).toString('base64')),
            fc.oneof(
              fc.constant(undefined),
              fc.string({ unit: fc.constantFrom(...Array.from('ABCabc012+/=')), maxLength: 30 }),
            ),
          ),
          upgrade: mostly(
            fc.constantFrom('websocket', 'WebSocket'),
            fc.constantFrom('h2c', 'foo', ''),
          ),
          connection: mostly(
            fc.constantFrom('Upgrade', 'upgrade, keep-alive'),
            fc.constantFrom('keep-alive', 'close'),
          ),
          extensions: mostly(
            fc.constant(undefined),
            fc.constantFrom('permessage-deflate', 'x-bogus; q=1', ';;;'),
          ),
          protocol: mostly(fc.constant(undefined), fc.constantFrom('chat', 'a,b', ' ', 'a b')),
        }),
        async (h) => {
          counter.runs += 1;
          counter.requests += 1;
          const headers: [string, string][] = [
            ['Connection', h.connection],
            ['Upgrade', h.upgrade],
          ];
          if (h.origin !== undefined) headers.push(['Origin', h.origin]);
          if (h.version !== undefined) headers.push(['Sec-WebSocket-Version', h.version]);
          if (h.key !== undefined) headers.push(['Sec-WebSocket-Key', h.key]);
          if (h.extensions !== undefined) headers.push(['Sec-WebSocket-Extensions', h.extensions]);
          if (h.protocol !== undefined) headers.push(['Sec-WebSocket-Protocol', h.protocol]);
          const parts = {
            method: h.method,
            target: h.path,
            headers,
            body: Buffer.alloc(0),
            contentLength: 'none' as const,
          };
          const result = await sendRaw(node.port, requestBytes(parts), {
            waitMs: 3000,
            answers: 1,
            head: h.method === 'HEAD',
          });
          const what = requestBytes(parts).toString('latin1');
          const response = result.responses[0];
          assert.ok(response, `no answer to:\n${what}`);
          const isUpgrade = /upgrade/i.test(h.connection) && h.upgrade !== '';
          const forbidden =
            h.origin !== undefined && ![APP_ORIGIN, 'https://other.example.com'].includes(h.origin);
          const wsPath = /^\/push\/ws(\?|$)/.test(h.path);
          if (response.status === 101) {
            switched += 1;
            assert.ok(isUpgrade && wsPath && !forbidden && h.method === 'GET', what);
            return;
          }
          if (isUpgrade && wsPath && forbidden) {
            // docs/protocol.md: upgrades from an origin outside --cors-origins get 403.
            assert.equal(response.status, 403, what);
            assertWellFormed(response, h.method === 'HEAD', what);
            // (A HEAD's answer has no body to read; the refusal is written whole regardless.)
            if (h.method !== 'HEAD') {
              assert.equal(
                assertErrorShape(response.body.toString('utf8'), 403, what),
                'forbidden_origin',
              );
            }
          } else {
            assertWellFormed(response, h.method === 'HEAD', what);
          }
          await assertAlive(node);
        },
      ),
      fuzzParameters(RUNS),
    );
    t.diagnostic(`${counter.summary('WebSocket handshakes')}; ${switched} switched to WebSocket`);
  });

  test('SSE: any query and Last-Event-ID are answered as POST /push/listen answers the same listen', async (t: TestContext) => {
    const counter = new FuzzCounter();
    const outcomes = new Map<string, number>();
    const idArb = fc.oneof(
      unknownPushIdArb,
      badPushIdArb.filter((s) => !s.includes(',')),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.record(
          {
            pushIds: fc.oneof(
              {
                weight: 3,
                arbitrary: fc
                  .array(unknownPushIdArb, { minLength: 1, maxLength: 6 })
                  .map((ids) => ids.join(',')),
              },
              fc.array(idArb, { maxLength: 6 }).map((ids) => ids.join(',')),
              fc
                .array(unknownPushIdArb, { minLength: 101, maxLength: 150 })
                .map((ids) => ids.join(',')),
              fc.constantFrom('', ',', ',,,', 'a,,b'),
            ),
            cursor: fc.oneof(
              { weight: 3, arbitrary: fc.constant('current') },
              fc.constantFrom('zzz-5', 'abc-0', 'a-zzzzzzzzzzz', 'A-1', '-', ''),
              fc.string({ maxLength: 30 }),
            ),
            lastEventId: fc.oneof(
              fc.constant('current'),
              fc.constantFrom('zzz-5', 'bad', 'a-zzzzzzzzzzz'),
              fc.string({
                unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
                maxLength: 30,
              }),
            ),
            extra: fc.string({ maxLength: 20 }),
          },
          { requiredKeys: ['pushIds'] },
        ),
        async (q) => {
          counter.runs += 1;
          const cursor = q.cursor === 'current' ? currentCursor : q.cursor;
          const lastEventId = q.lastEventId === 'current' ? currentCursor : q.lastEventId;
          const params = new URLSearchParams();
          params.set('pushIds', q.pushIds);
          if (cursor !== undefined) params.set('cursor', cursor);
          if (q.extra !== undefined) params.set(q.extra, 'x');
          const target = `/push/sse?${params.toString()}`;
          const headers: [string, string][] = [];
          if (lastEventId !== undefined && lastEventId !== '')
            headers.push(['Last-Event-ID', lastEventId]);
          // The equivalent listen (docs/protocol.md: Last-Event-ID wins over cursor).
          const url = new URL(target, 'http://x');
          const rawIds = url.searchParams.get('pushIds') ?? '';
          const ids = rawIds === '' ? [] : rawIds.split(','); // an empty entry is a bad push ID
          const effective =
            lastEventId !== undefined && lastEventId !== ''
              ? lastEventId
              : url.searchParams.get('cursor');
          const verdict = await listenVerdict({
            pushIds: ids,
            cursor: effective === '' ? null : effective,
          });
          counter.requests += 2;
          const parts = {
            method: 'GET',
            target,
            headers,
            body: Buffer.alloc(0),
            contentLength: 'none' as const,
          };
          const result = await sendRaw(node.port, requestBytes(parts), { waitMs: 3000 });
          const what = requestBytes(parts).toString('latin1');
          const response = result.responses[0];
          assert.ok(response, `no answer to:\n${what}`);
          assertWellFormed(response, false, what);
          assert.equal(
            response.status,
            verdict.status,
            `${what}\n${response.body.toString('utf8').slice(0, 300)}`,
          );
          if (verdict.status !== 200) {
            assert.equal(
              assertErrorShape(response.body.toString('utf8'), verdict.status, what),
              verdict.code,
              what,
            );
            outcomes.set(verdict.code ?? '', (outcomes.get(verdict.code ?? '') ?? 0) + 1);
          } else {
            assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/, what);
            const body = response.body.toString('utf8');
            assert.ok(body.startsWith('retry: 1000\n\n'), `${what}\n${body.slice(0, 200)}`);
            const events = body.split('\n\n').filter((block) => block.includes('data: '));
            assert.ok(events.length >= 1, `${what}\n${body.slice(0, 300)}`);
            for (const block of events) {
              const id = /^id: (.*)$/m.exec(block)?.[1];
              const data = /^data: (.*)$/m.exec(block)?.[1] ?? '';
              const answer = assertListenAnswer(data, what);
              assert.equal(id, answer.cursor, `${what}: event id is not its cursor`);
            }
            // Every push ID of the stream was never minted: the stream reports and ends.
            assert.ok(result.closed, `${what}: the stream of expired push IDs did not end`);
            outcomes.set('stream', (outcomes.get('stream') ?? 0) + 1);
          }
          await assertAlive(node);
        },
      ),
      fuzzParameters(RUNS),
    );
    t.diagnostic(counter.summary('SSE queries (requests = SSE + the POST /push/listen oracle)'));
    t.diagnostic(`SSE outcomes: ${JSON.stringify(Object.fromEntries(outcomes))}`);
  });

  test('SSE: raw, unencoded and oversized query strings get a stream or a JSON 4xx', async (t: TestContext) => {
    const counter = new FuzzCounter();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string({
            unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
            maxLength: 300,
          }),
          fc.constantFrom(
            'pushIds=%zz',
            'pushIds=%00%00',
            'pushIds&pushIds',
            '&&&',
            'pushIds=a&pushIds=b',
            'cursor=%FF',
          ),
          fc.integer({ min: 4000, max: 30_000 }).map((n) => `pushIds=${'a'.repeat(n)}`),
        ),
        async (query) => {
          counter.runs += 1;
          counter.requests += 1;
          const parts = {
            method: 'GET',
            target: `/push/sse?${query}`,
            headers: [],
            body: Buffer.alloc(0),
            contentLength: 'none' as const,
          };
          const result = await sendRaw(node.port, requestBytes(parts), { waitMs: 3000 });
          const response = result.responses[0];
          assert.ok(response, `no answer to ?${query.slice(0, 200)}`);
          assertWellFormed(response, false, `?${query.slice(0, 200)}`);
          await assertAlive(node);
        },
      ),
      fuzzParameters(RUNS),
    );
    t.diagnostic(counter.summary('SSE raw queries'));
  });

  // --- known defects, minimal reproductions ------------------------------------------------------

  test('D1: a WebSocket upgrade to /push/ws with bad handshake headers gets the JSON error shape', async () => {
    // `ws` used to refuse this itself, as text/html (D1); epush checks the handshake first.
    const result = await sendRaw(
      node.port,
      Buffer.from(
        'GET /push/ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n',
      ),
    );
    const response = result.responses[0];
    assert.ok(response);
    assertWellFormed(response, false, 'upgrade without Sec-WebSocket-Key');
  });

  test('seed', (t: TestContext) => {
    t.diagnostic(`seed ${FUZZ_SEED}`);
  });
});
