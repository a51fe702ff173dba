/**
 * The streaming browser transports (docs/protocol.md) against real nodes: `GET /push/sse` and
 * `GET /push/ws` carry exactly the objects `POST /push/listen` answers, with long-poll's cursor
 * semantics (exact resume, heartbeats carrying the advanced cursor, expiry, drain), the same
 * input errors, connection metrics, the slow-consumer budget (--stream-budget-kb) that loses
 * nothing, and cross-node delivery over Redis.
 */
import assert from 'node:assert/strict';
import { get, type IncomingHttpHeaders } from 'node:http';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { WebSocket, type RawData } from 'ws';
import { decodeCursor } from '../../src/core/cursor.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import {
  api,
  headCursor,
  listen,
  listenRaw,
  parseRawResponse,
  rawExchange,
  request,
  sleep,
  startEpush,
  unknownPushId,
  until,
  type Api,
  type Delivery,
  type EpushProcess,
  type ErrorBody,
  type HttpAnswer,
  type ListenAnswer,
} from '../support/epush-process.js';
import { assertError } from '../support/expect.js';
import { metricSample } from '../support/metrics.js';

const APP_ORIGIN = 'https://app.example.com';
const CORS_ORIGINS = `${APP_ORIGIN},https://other.example.com`;
const KEY = 'streaming-test-key-0123456789';

// --- SSE client ------------------------------------------------------------------------------

interface SseEvent {
  /** The `id:` line. */
  readonly id: string | undefined;
  /** The `data:` line, parsed. */
  readonly answer: ListenAnswer;
  readonly data: string;
  /** When it arrived (Date.now()). */
  readonly at: number;
}

/** One `GET /push/sse` read with node:http; events are parsed as they arrive. */
class SseClient {
  /** Every block (`\n\n`-terminated) in order, as raw text. */
  readonly blocks: string[] = [];
  readonly events: SseEvent[] = [];
  ended = false;
  readonly done: Promise<void>;
  private buffer = '';

  constructor(
    readonly status: number,
    readonly headers: IncomingHttpHeaders,
    private readonly destroy: () => void,
    body: NodeJS.ReadableStream,
  ) {
    body.setEncoding('utf8');
    body.on('data', (chunk: string) => {
      this.buffer += chunk;
      for (;;) {
        const end = this.buffer.indexOf('\n\n');
        if (end === -1) break;
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        this.blocks.push(block);
        const event = parseSseBlock(block);
        if (event) this.events.push(event);
      }
    });
    this.done = new Promise((resolve) => {
      const finish = (): void => {
        this.ended = true;
        resolve();
      };
      body.on('end', finish);
      body.on('close', finish);
      body.on('error', finish);
    });
  }

  /** Every notification of every event so far, in order. */
  notifications(): Delivery[] {
    return this.events.flatMap((event) => event.answer.notifications);
  }

  /** The `id:` of the last event so far. */
  lastId(): string {
    const id = this.events.at(-1)?.id;
    assert.ok(id !== undefined, 'no event yet');
    return id;
  }

  async waitForNotifications(count: number, timeoutMs = 5000): Promise<Delivery[]> {
    await until(
      `${count} notifications on the SSE stream (got ${this.notifications().length})`,
      () => Promise.resolve(this.notifications().length >= count),
      timeoutMs,
      20,
    );
    return this.notifications();
  }

  async waitForEvents(count: number, timeoutMs = 5000): Promise<SseEvent[]> {
    await until(
      `${count} SSE events (got ${this.events.length})`,
      () => Promise.resolve(this.events.length >= count),
      timeoutMs,
      20,
    );
    return this.events;
  }

  async waitForEnd(timeoutMs = 5000): Promise<void> {
    await until('the SSE stream ends', () => Promise.resolve(this.ended), timeoutMs, 20);
  }

  close(): void {
    this.destroy();
  }
}

/** Parses one SSE block; null for a block without `data:` (e.g. `retry:` alone). */
function parseSseBlock(block: string): SseEvent | null {
  let id: string | undefined;
  const data: string[] = [];
  for (const line of block.split('\n')) {
    if (line.startsWith('id:')) id = line.slice(3).replace(/^ /, '');
    else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
  }
  if (data.length === 0) return null;
  const text = data.join('\n');
  return { id, data: text, answer: JSON.parse(text) as ListenAnswer, at: Date.now() };
}

/** Opens `GET /push/sse?<query>`; asserts 200 and returns the open stream. */
function openSse(
  url: string,
  query: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<SseClient> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}/push/sse?${query}`, { headers, agent: false }, (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => {
          reject(new Error(`GET /push/sse?${query}: ${res.statusCode} ${body}`));
        });
        return;
      }
      resolve(
        new SseClient(
          res.statusCode,
          res.headers,
          () => {
            req.destroy();
          },
          res,
        ),
      );
    });
    req.on('error', reject);
  });
}

const openStreams: { close(): void }[] = [];

async function sse(
  url: string,
  query: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<SseClient> {
  const client = await openSse(url, query, headers);
  openStreams.push(client);
  return client;
}

/** An SSE request that must be refused: answered as a whole, never left hanging. */
function sseRefused(
  url: string,
  query: string,
  headers: Readonly<Record<string, string>> = {},
): Promise<HttpAnswer<ErrorBody>> {
  return request<ErrorBody>('GET', `${url}/push/sse?${query}`, {
    headers,
    signal: AbortSignal.timeout(3000),
  });
}

// --- WebSocket client ------------------------------------------------------------------------

interface WsMessage {
  readonly value: unknown;
  readonly at: number;
}

class WsClient {
  readonly messages: WsMessage[] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  closeCode: number | null = null;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data: RawData) => {
      const text = Array.isArray(data)
        ? Buffer.concat(data).toString('utf8')
        : Buffer.from(data as Buffer).toString('utf8');
      this.messages.push({ value: JSON.parse(text) as unknown, at: Date.now() });
    });
    ws.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      ws.on('close', (code: number, reason: Buffer) => {
        this.closeCode = code;
        resolve({ code, reason: reason.toString('utf8') });
      });
    });
  }

  static open(url: string, origin?: string): Promise<WsClient> {
    const ws = new WebSocket(
      `${url.replace(/^http/, 'ws')}/push/ws`,
      origin === undefined ? {} : { origin },
    );
    const client = new WsClient(ws);
    openStreams.push({
      close: () => {
        ws.terminate();
      },
    });
    return new Promise((resolve, reject) => {
      ws.once('open', () => {
        resolve(client);
      });
      ws.once('error', reject);
    });
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  listen(pushIds: readonly string[], cursor: string | null): void {
    this.send({ listen: { pushIds, cursor } });
  }

  /** Messages that are listen answers (they have a cursor). */
  answers(): ListenAnswer[] {
    return this.messages
      .map((m) => m.value)
      .filter((v): v is ListenAnswer => typeof v === 'object' && v !== null && 'cursor' in v);
  }

  errors(): ErrorBody[] {
    return this.messages
      .map((m) => m.value)
      .filter((v): v is ErrorBody => typeof v === 'object' && v !== null && 'error' in v);
  }

  notifications(): Delivery[] {
    return this.answers().flatMap((answer) => answer.notifications);
  }

  async waitForNotifications(count: number, timeoutMs = 5000): Promise<Delivery[]> {
    await until(
      `${count} notifications on the WebSocket (got ${this.notifications().length})`,
      () => Promise.resolve(this.notifications().length >= count),
      timeoutMs,
      20,
    );
    return this.notifications();
  }

  async waitForMessages(count: number, timeoutMs = 5000): Promise<WsMessage[]> {
    await until(
      `${count} WebSocket messages (got ${this.messages.length})`,
      () => Promise.resolve(this.messages.length >= count),
      timeoutMs,
      20,
    );
    return this.messages;
  }
}

// --- helpers ---------------------------------------------------------------------------------

function seqOf(cursor: string | undefined): number {
  const position = decodeCursor(cursor ?? '');
  assert.ok(position, `not a cursor: ${String(cursor)}`);
  return position.seq;
}

/** One sample of the node's /metrics; 0 when the series has no sample yet (an unused counter). */
async function metric(url: string, series: string): Promise<number> {
  return (await metricSample(url, series)) ?? 0;
}

/** A listen answer object: exactly the fields of docs/protocol.md (plus the optional flags). */
function assertAnswerShape(answer: unknown): void {
  assert.ok(typeof answer === 'object' && answer !== null, JSON.stringify(answer));
  const keys = Object.keys(answer).filter((k) => !['reconnect', 'reset', 'replaced'].includes(k));
  assert.deepEqual(keys.sort(), ['cursor', 'expired', 'notifications'], JSON.stringify(answer));
  const { cursor, notifications, expired } = answer as ListenAnswer;
  assert.ok(decodeCursor(cursor), `bad cursor ${cursor}`);
  assert.ok(Array.isArray(notifications));
  assert.ok(Array.isArray(expired));
  for (const n of notifications) {
    assert.deepEqual(Object.keys(n).sort(), ['group', 'id', 'payload', 'pushId']);
  }
}

/** Long-polls from `cursor` until `want` deliveries were collected; fails instead of holding. */
async function collectByLongPoll(
  url: string,
  pushIds: readonly string[],
  cursor: string,
  want: number,
): Promise<Delivery[]> {
  const got: Delivery[] = [];
  let from = cursor;
  while (got.length < want) {
    const answer = await listen(url, pushIds, from, { signal: AbortSignal.timeout(5000) }).catch(
      (error: unknown) => {
        throw new Error(`after ${got.length} of ${want} deliveries the next listen held`, {
          cause: error,
        });
      },
    );
    got.push(...answer.notifications);
    from = answer.cursor;
  }
  return got;
}

const UPGRADE_HEADERS =
  'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n' +
  'Sec-WebSocket-Version: 13\r\n';

function upgradeRequest(path: string, origin?: string): string {
  return (
    `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n${UPGRADE_HEADERS}` +
    `${origin === undefined ? '' : `Origin: ${origin}\r\n`}\r\n`
  );
}

/** Sends `data` on a new connection; resolves with the response head, then hangs up. */
function responseHead(port: number, data: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no response head within ${timeoutMs} ms: ${JSON.stringify(received)}`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(received);
    };
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.includes('\r\n\r\n')) done();
    });
    socket.on('close', done);
    socket.on('error', () => undefined);
    socket.write(data);
  });
}

/** The inputs POST /push/listen refuses, as an SSE query, a WS listen and a long-poll body. */
function badInputs(): { name: string; query: string; listen: unknown }[] {
  const many = Array.from({ length: 101 }, (_, i) => `p${String(i).padStart(21, '0')}`);
  const good = unknownPushId();
  return [
    { name: 'no push IDs', query: '', listen: { pushIds: [], cursor: null } },
    { name: 'no pushIds field', query: 'cursor=', listen: { cursor: null } },
    { name: '101 push IDs', query: `pushIds=${many.join(',')}`, listen: { pushIds: many } },
    { name: 'a bad push ID', query: `pushIds=${good},short`, listen: { pushIds: [good, 'short'] } },
    {
      name: 'a bad cursor',
      query: `pushIds=${good}&cursor=not-a-cursor!`,
      listen: { pushIds: [good], cursor: 'not-a-cursor!' },
    },
  ];
}

// --- the suite -------------------------------------------------------------------------------

describe('streaming transports', { concurrency: true }, () => {
  /** hold-seconds 1 (a heartbeat every second), two allowed origins. */
  let main: EpushProcess;
  /** push-id-ttl 2 (1 is flaky on a loaded machine: minting and listening may be 1 s apart). */
  let ttl: EpushProcess;
  /** Its own node: connection counts are not disturbed by the other tests. */
  let counts: EpushProcess;
  let mainApi: Api;

  before(async () => {
    [main, ttl, counts] = await Promise.all([
      startEpush(['--insecure-dev', '--hold-seconds', '1', '--cors-origins', CORS_ORIGINS]),
      startEpush(['--insecure-dev', '--hold-seconds', '1', '--push-id-ttl', '2']),
      startEpush(['--insecure-dev', '--hold-seconds', '2']),
    ]);
    mainApi = api(main.url);
  });

  after(async () => {
    for (const stream of openStreams) stream.close();
    await Promise.all([main, ttl, counts].map((node) => node?.stop()));
  });

  describe('SSE', { concurrency: true }, () => {
    test('200 text/event-stream with CORS and retry first; direct and group notifications arrive as listen answers whose id is the cursor', async () => {
      const pushId = await mainApi.mintPushId();
      await mainApi.addMember('sse.room', pushId);
      const from = await headCursor(main.url);
      const stream = await sse(main.url, `pushIds=${pushId}&cursor=${from}`, {
        origin: APP_ORIGIN,
      });
      assert.equal(stream.status, 200);
      assert.match(String(stream.headers['content-type']), /^text\/event-stream/);
      assert.equal(stream.headers['access-control-allow-origin'], APP_ORIGIN);
      await until('the retry line', () => Promise.resolve(stream.blocks.length > 0), 3000, 20);
      assert.match(stream.blocks[0]!, /^retry: \d+$/, `first block: ${stream.blocks[0]}`);
      // Then at once an empty answer with the starting cursor (the stream is seen to flow).
      const [opening] = await stream.waitForEvents(1, 3000);
      assert.deepEqual(opening!.answer, { notifications: [], cursor: from, expired: [] });
      assert.equal(opening!.id, from);

      const direct = await mainApi.notifyPushId(pushId, { text: 'direct', n: 1 });
      const group = await mainApi.notifyGroup('sse.room', ['g', 2]);
      const got = await stream.waitForNotifications(2);
      assert.deepEqual(got, [
        { id: direct, pushId, group: null, payload: { text: 'direct', n: 1 } },
        { id: group, pushId, group: 'sse.room', payload: ['g', 2] },
      ]);
      for (const event of stream.events) {
        assertAnswerShape(JSON.parse(event.data));
        assert.equal(event.id, event.answer.cursor, `id: ${event.id} for ${event.data}`);
      }
      // The same notifications as the long-poll answer for the same push ID and cursor.
      const longPoll = await listen(main.url, [pushId], from);
      assert.deepEqual(longPoll.notifications, got);
      // The cursor of the event that carried the last one resumes after it.
      const carrier = stream.events.find((e) => e.answer.notifications.some((x) => x.id === group));
      assert.ok(carrier?.id !== undefined);
      const rest = await listen(main.url, [pushId], carrier.id, {
        signal: AbortSignal.timeout(3000),
      });
      assert.deepEqual(rest.notifications, []);
      stream.close();
    });

    test('without a cursor the stream opens at once with an empty answer carrying the head, and hears what follows', async () => {
      const pushId = await mainApi.mintPushId();
      const before = await headCursor(main.url);
      const stream = await sse(main.url, `pushIds=${pushId}`);
      const [opening] = await stream.waitForEvents(1, 3000);
      assert.deepEqual(opening!.answer.notifications, []);
      assert.equal(opening!.id, opening!.answer.cursor);
      assert.ok(seqOf(opening!.id) >= seqOf(before), 'the opening cursor is older than the head');
      const id = await mainApi.notifyPushId(pushId, 'after the opening');
      assert.deepEqual(
        (await stream.waitForNotifications(1)).map((n) => n.id),
        [id],
      );
      // Resuming from the opening cursor gets the same: nothing was published in between.
      const resumed = await listen(main.url, [pushId], opening!.id);
      assert.deepEqual(
        resumed.notifications.map((n) => n.id),
        [id],
      );
      stream.close();
    });

    test('CORS: an origin not in --cors-origins may not listen: 403 forbidden_origin, no allow-origin header', async () => {
      const refused = await request('GET', `${main.url}/push/sse?pushIds=${unknownPushId()}`, {
        headers: { origin: 'https://evil.example.com' },
      });
      assertError(refused, 403, 'forbidden_origin');
      assert.equal(refused.headers.get('access-control-allow-origin'), null);
    });

    test('heartbeat: with nothing published an empty answer arrives every ~second, its cursor advanced past events for other push IDs', async () => {
      const [mine, other] = await mainApi.mintPushIds(2);
      const stream = await sse(main.url, `pushIds=${mine}`);
      await stream.waitForEvents(2, 3000); // the opening event, then the first heartbeat
      // Published right after a heartbeat, so the next one (~1 s later) follows it for sure.
      await mainApi.notifyPushId(other!, 'not for this listener');
      const head = await headCursor(main.url);
      const publishedAt = Date.now();
      await stream.waitForEvents(5, 5000);
      const events = stream.events;
      for (const event of events) {
        assert.deepEqual(event.answer.notifications, [], event.data);
        assert.deepEqual(event.answer.expired, []);
        assert.equal(event.id, event.answer.cursor);
        assertAnswerShape(event.answer);
      }
      const next = events[2]!;
      assert.ok(next.at - publishedAt > 300, 'the heartbeat came too soon after the publish');
      assert.ok(
        seqOf(next.id) >= seqOf(head),
        `the first heartbeat after the publish carries ${next.id}, behind the head ${head}`,
      );
      for (let i = 2; i < events.length; i++) {
        const gap = events[i]!.at - events[i - 1]!.at;
        assert.ok(gap > 600 && gap < 2500, `heartbeats ${gap} ms apart with --hold-seconds 1`);
        assert.ok(seqOf(events[i]!.id) >= seqOf(events[i - 1]!.id), 'a heartbeat went back');
      }
      stream.close();
    });

    test('resume with Last-Event-ID or ?cursor= gets exactly what followed, in order; Last-Event-ID wins over ?cursor', async () => {
      const pushId = await mainApi.mintPushId();
      const from = await headCursor(main.url);
      const first = await sse(main.url, `pushIds=${pushId}&cursor=${from}`);
      const a1 = await mainApi.notifyPushId(pushId, 'a1');
      const a2 = await mainApi.notifyPushId(pushId, 'a2');
      assert.deepEqual(
        (await first.waitForNotifications(2)).map((n) => n.id),
        [a1, a2],
      );
      const lastId = first.lastId();
      first.close();
      await first.done;
      const later = [
        await mainApi.notifyPushId(pushId, 'b1'),
        await mainApi.notifyPushId(pushId, 'b2'),
        await mainApi.notifyPushId(pushId, 'b3'),
      ];
      const resumes: [string, string, Record<string, string>][] = [
        ['Last-Event-ID', `pushIds=${pushId}`, { 'last-event-id': lastId }],
        ['?cursor=', `pushIds=${pushId}&cursor=${lastId}`, {}],
        ['both', `pushIds=${pushId}&cursor=${from}`, { 'last-event-id': lastId }],
      ];
      for (const [how, query, headers] of resumes) {
        const stream = await sse(main.url, query, headers);
        await stream.waitForNotifications(3);
        await stream.waitForEvents(stream.events.length + 1, 3000); // a heartbeat: nothing more
        assert.deepEqual(
          stream.notifications().map((n) => n.id),
          later,
          `resumed with ${how}`,
        );
        assert.deepEqual(
          stream.notifications().map((n) => n.payload),
          ['b1', 'b2', 'b3'],
        );
        stream.close();
        await stream.done;
      }
    });

    test('bad input is refused with the JSON error and status of POST /push/listen', async () => {
      for (const { name, query, listen: body } of badInputs()) {
        const longPoll = await listenRaw<ErrorBody>(main.url, body);
        assert.ok(longPoll.status >= 400 && longPoll.status < 500, `${name}: ${longPoll.text}`);
        const refused = await sseRefused(main.url, query, { origin: APP_ORIGIN });
        assertError(refused, longPoll.status, longPoll.body.error.code);
        assert.equal(refused.headers.get('access-control-allow-origin'), APP_ORIGIN, name);
      }
      // A bad Last-Event-ID is a bad cursor too.
      const longPoll = await listenRaw<ErrorBody>(main.url, {
        pushIds: [unknownPushId()],
        cursor: 'garbage',
      });
      assertError(longPoll, 400, 'invalid_cursor');
      assertError(
        await sseRefused(main.url, `pushIds=${unknownPushId()}`, { 'last-event-id': 'garbage' }),
        400,
        'invalid_cursor',
      );
    });

    test('drain: the open stream gets an answer with reconnect and its cursor, then ends; the node exits 0', async () => {
      const node = await startEpush(['--insecure-dev', '--hold-seconds', '30']);
      try {
        const pushId = await api(node.url).mintPushId();
        const stream = await sse(node.url, `pushIds=${pushId}`);
        await until('the stream is registered', async () => {
          return (await metric(node.url, 'epush_listeners')) === 1;
        });
        const sigterm = Date.now();
        const exit = node.terminate();
        await stream.waitForEnd(3000);
        const endedAfter = Date.now() - sigterm;
        assert.ok(endedAfter < 2000, `the stream ended ${endedAfter} ms after SIGTERM`);
        // The opening event, then the reconnect answer.
        assert.equal(stream.events.length, 2, stream.blocks.join(' | '));
        const answer = stream.events[1];
        assert.equal(answer!.answer.reconnect, true, answer!.data);
        assert.equal(answer!.answer.cursor, stream.events[0]!.answer.cursor);
        assert.deepEqual(answer!.answer.notifications, []);
        assert.equal(answer!.id, answer!.answer.cursor);
        assert.ok(decodeCursor(answer!.answer.cursor));
        const { code, signal } = await exit;
        assert.equal(signal, null);
        assert.equal(code, 0, node.stderr());
      } finally {
        await node.stop();
      }
    });

    test('expiry: a push ID unknown from the start is reported under expired and, none left, the stream ends', async () => {
      const stranger = unknownPushId();
      const stream = await sse(ttl.url, `pushIds=${stranger}`);
      await stream.waitForEnd(3000);
      // The opening event, then the answer that reports the push ID.
      assert.equal(stream.events.length, 2, stream.blocks.join(' | '));
      assert.deepEqual(stream.events[1]!.answer.expired, [stranger]);
      assert.deepEqual(stream.events[1]!.answer.notifications, []);
      assert.equal(stream.events[1]!.id, stream.events[1]!.answer.cursor);
    });

    test('expiry: with a live push ID beside the unknown one, the stream reports it and goes on; an open stream keeps its push ID alive past --push-id-ttl', async () => {
      const client = api(ttl.url);
      const live = await client.mintPushId();
      const stranger = unknownPushId();
      const stream = await sse(ttl.url, `pushIds=${live},${stranger}`);
      await stream.waitForEvents(2, 3000);
      assert.deepEqual(stream.events[0]!.answer.expired, []);
      assert.deepEqual(stream.events[1]!.answer.expired, [stranger]);
      await sleep(5000); // two and a half TTLs, with the stream open
      assert.equal(stream.ended, false);
      const id = await client.notifyPushId(live, 'still alive');
      assert.deepEqual(
        (await stream.waitForNotifications(1)).map((n) => n.id),
        [id],
      );
      assert.deepEqual(
        stream.events.slice(2).flatMap((e) => e.answer.expired),
        [],
        'the held push ID expired',
      );
      stream.close();
    });
  });

  describe('WebSocket', { concurrency: true }, () => {
    test('a listen message is answered with listen answers as JSON text: direct, group, and heartbeats', async () => {
      const pushId = await mainApi.mintPushId();
      await mainApi.addMember('ws.room', pushId);
      const from = await headCursor(main.url);
      const ws = await WsClient.open(main.url, APP_ORIGIN);
      ws.listen([pushId], from);
      const direct = await mainApi.notifyPushId(pushId, { via: 'ws' });
      const group = await mainApi.notifyGroup('ws.room', 7);
      assert.deepEqual(await ws.waitForNotifications(2), [
        { id: direct, pushId, group: null, payload: { via: 'ws' } },
        { id: group, pushId, group: 'ws.room', payload: 7 },
      ]);
      const before = ws.messages.length;
      await ws.waitForMessages(before + 2, 4000);
      const beats = ws.answers().slice(-2);
      for (const beat of beats) assert.deepEqual(beat.notifications, []);
      for (const message of ws.messages) assertAnswerShape(message.value);
      const cursors = ws.answers().map((a) => seqOf(a.cursor));
      for (let i = 1; i < cursors.length; i++) assert.ok(cursors[i]! >= cursors[i - 1]!);
      const gap = ws.messages.at(-1)!.at - ws.messages.at(-2)!.at;
      assert.ok(gap > 600 && gap < 2500, `heartbeats ${gap} ms apart`);
      assert.equal(ws.ws.readyState, WebSocket.OPEN);
      ws.ws.close();
    });

    test('a second listen message replaces the first: the old push ID is no longer heard, the new one is, the socket stays open', async () => {
      const [oldId, newId] = await mainApi.mintPushIds(2);
      const ws = await WsClient.open(main.url);
      ws.listen([oldId!], await headCursor(main.url));
      const first = await mainApi.notifyPushId(oldId!, 'old-1');
      await ws.waitForNotifications(1);
      ws.listen([newId!], await headCursor(main.url));
      await sleep(300);
      const lost = await mainApi.notifyPushId(oldId!, 'old-2');
      const heard = await mainApi.notifyPushId(newId!, 'new-1');
      await ws.waitForNotifications(2);
      await ws.waitForMessages(ws.messages.length + 1, 3000); // a heartbeat after it
      assert.deepEqual(
        ws.notifications().map((n) => n.id),
        [first, heard],
        `old-2 (${lost}) arrived after the listen was replaced`,
      );
      assert.deepEqual(ws.errors(), []);
      assert.ok(ws.answers().every((a) => a.replaced !== true));
      assert.equal(ws.ws.readyState, WebSocket.OPEN);
      ws.ws.close();
    });

    test('invalid messages are answered with the error object and codes of POST /push/listen; the socket and its listen stay', async () => {
      const pushId = await mainApi.mintPushId();
      const ws = await WsClient.open(main.url);
      ws.listen([pushId], await headCursor(main.url));
      const cases: { name: string; message: string; code: string }[] = [];
      const notJson = await listenRaw<ErrorBody>(main.url, '{"pushIds": [');
      cases.push({ name: 'not JSON', message: '{"listen": ', code: notJson.body.error.code });
      cases.push({ name: 'no listen', message: '{"hello": 1}', code: 'invalid_body' });
      const notObject = await listenRaw<ErrorBody>(main.url, '"x"');
      cases.push({
        name: 'listen not an object',
        message: '{"listen": "x"}',
        code: notObject.body.error.code,
      });
      for (const { name, listen: body } of badInputs()) {
        const longPoll = await listenRaw<ErrorBody>(main.url, body);
        cases.push({
          name,
          message: JSON.stringify({ listen: body }),
          code: longPoll.body.error.code,
        });
      }
      for (const [i, { name, message, code }] of cases.entries()) {
        ws.send(message);
        await until(
          `the error for ${name}`,
          () => Promise.resolve(ws.errors().length > i),
          3000,
          20,
        );
        const error = ws.errors()[i]!;
        assert.deepEqual(Object.keys(error), ['error'], name);
        assert.deepEqual(Object.keys(error.error).sort(), ['code', 'message'], name);
        assert.equal(error.error.code, code, `${name}: ${JSON.stringify(error)}`);
        assert.ok(error.error.message.length > 0);
      }
      assert.deepEqual(
        cases.map((c) => c.code),
        [
          'invalid_json',
          'invalid_body',
          'invalid_body',
          'invalid_body',
          'invalid_body',
          'too_many_push_ids',
          'invalid_push_id',
          'invalid_cursor',
        ],
      );
      ws.ws.send(Buffer.from('{"listen": {}}'), { binary: true });
      await until('the error for a binary message', () =>
        Promise.resolve(ws.errors().length > cases.length),
      );
      assert.equal(ws.errors()[cases.length]!.error.code, 'invalid_body');
      assert.equal(ws.ws.readyState, WebSocket.OPEN);
      // The listen sent before the bad messages still delivers.
      const id = await mainApi.notifyPushId(pushId, 'after the errors');
      assert.deepEqual(
        (await ws.waitForNotifications(1)).map((n) => n.id),
        [id],
      );
      // And a new valid listen works on the same socket.
      const other = await mainApi.mintPushId();
      ws.listen([other], await headCursor(main.url));
      const next = await mainApi.notifyPushId(other, 'new listen');
      assert.deepEqual(
        (await ws.waitForNotifications(2)).map((n) => n.id),
        [id, next],
      );
      ws.ws.close();
    });

    test('resume on a new socket with the last cursor: exactly what followed, nothing repeated', async () => {
      const pushId = await mainApi.mintPushId();
      const first = await WsClient.open(main.url);
      first.listen([pushId], await headCursor(main.url));
      const a = [
        await mainApi.notifyPushId(pushId, 'a1'),
        await mainApi.notifyPushId(pushId, 'a2'),
      ];
      assert.deepEqual(
        (await first.waitForNotifications(2)).map((n) => n.id),
        a,
      );
      const last = first.answers().at(-1)!.cursor;
      first.ws.close();
      await first.closed;
      const b = [
        await mainApi.notifyPushId(pushId, 'b1'),
        await mainApi.notifyPushId(pushId, 'b2'),
        await mainApi.notifyPushId(pushId, 'b3'),
      ];
      const second = await WsClient.open(main.url);
      second.listen([pushId], last);
      await second.waitForNotifications(3);
      await second.waitForMessages(second.messages.length + 1, 3000);
      assert.deepEqual(
        second.notifications().map((n) => n.id),
        b,
      );
      second.ws.close();
    });

    test('drain: a reconnect answer, then the socket is closed with 1012; the node exits 0', async () => {
      const node = await startEpush(['--insecure-dev', '--hold-seconds', '30']);
      try {
        const pushId = await api(node.url).mintPushId();
        const ws = await WsClient.open(node.url);
        ws.listen([pushId], null);
        await until('the listen is registered', async () => {
          return (await metric(node.url, 'epush_listeners')) === 1;
        });
        const exit = node.terminate();
        const { code } = await ws.closed;
        assert.equal(code, 1012);
        assert.equal(ws.messages.length, 1, JSON.stringify(ws.messages));
        const answer = ws.answers()[0]!;
        assert.equal(answer.reconnect, true, JSON.stringify(answer));
        assert.deepEqual(answer.notifications, []);
        assert.ok(decodeCursor(answer.cursor));
        assert.equal((await exit).code, 0, node.stderr());
      } finally {
        await node.stop();
      }
    });

    test('upgrade: an origin outside --cors-origins gets 403 forbidden_origin, another path 404; allowed or no origin opens', async () => {
      const forbidden = parseRawResponse(
        (await rawExchange(main.port, upgradeRequest('/push/ws', 'https://evil.example.com'), 3000))
          .received,
      );
      assert.equal(forbidden.status, 403);
      assert.match(forbidden.headers.get('content-type') ?? '', /^application\/json/);
      assert.equal((JSON.parse(forbidden.body) as ErrorBody).error.code, 'forbidden_origin');

      const elsewhere = parseRawResponse(
        (await rawExchange(main.port, upgradeRequest('/push/other', APP_ORIGIN), 3000)).received,
      );
      assert.equal(elsewhere.status, 404);
      assert.equal((JSON.parse(elsewhere.body) as ErrorBody).error.code, 'not_found');

      for (const origin of [APP_ORIGIN, undefined]) {
        const head = await responseHead(main.port, upgradeRequest('/push/ws', origin));
        assert.equal(parseRawResponse(head).status, 101, `${String(origin)}: ${head}`);
      }
      await assert.rejects(WsClient.open(main.url, 'https://evil.example.com'), /403/);
    });
  });

  describe('slow consumers (--stream-budget-kb 16)', { concurrency: true }, () => {
    const PAD = 'x'.repeat(30_000);
    const MAX_PUBLISHES = 800;

    /**
     * Publishes ~30 KB notifications to `pushId` until the node counts a slow-consumer
     * disconnect for `transport`; resolves with their ids.
     */
    async function flood(node: EpushProcess, pushId: string, transport: string): Promise<string[]> {
      const client = api(node.url);
      const series = `epush_slow_consumer_disconnects_total{transport="${transport}"}`;
      const ids: string[] = [];
      for (let i = 0; i < MAX_PUBLISHES; i++) {
        ids.push(await client.notifyPushId(pushId, { i, pad: PAD }));
        if (i % 10 === 9 && (await metric(node.url, series)) >= 1) return ids;
      }
      assert.fail(`no slow-consumer disconnect after ${MAX_PUBLISHES} notifications of 30 KB`);
    }

    function assertExactlyOnce(received: Delivery[], resumed: Delivery[], ids: string[]): void {
      const all = [...received, ...resumed].map((n) => n.id);
      assert.equal(new Set(all).size, all.length, 'a notification was delivered twice');
      assert.deepEqual(all, ids, 'a notification was lost or reordered');
      for (const [i, n] of [...received, ...resumed].entries()) {
        assert.deepEqual(n.payload, { i, pad: PAD });
      }
    }

    test('WebSocket: a peer that stops reading is closed (4008), counted, and resumes from its last cursor with nothing lost', async () => {
      const node = await startEpush([
        '--insecure-dev',
        '--hold-seconds',
        '30',
        '--stream-budget-kb',
        '16',
      ]);
      try {
        assert.equal(await metric(node.url, 'epush_stream_budget_bytes'), 16 * 1024);
        const pushId = await api(node.url).mintPushId();
        const from = await headCursor(node.url);
        const ws = await WsClient.open(node.url);
        ws.listen([pushId], from);
        await until('the listen is registered', async () => {
          return (await metric(node.url, 'epush_listeners')) === 1;
        });
        const socket = (ws.ws as unknown as { _socket: Socket })._socket;
        socket.pause();
        const ids = await flood(node, pushId, 'websocket');
        await until('the slow websocket peer is no longer counted', async () => {
          return (
            (await metric(node.url, 'epush_connections{transport="websocket"}')) === 0 &&
            (await metric(node.url, 'epush_outbound_queued_bytes')) === 0
          );
        });
        socket.resume();
        const { code } = await ws.closed;
        assert.ok(code === 4008 || code === 1006, `closed with ${code}`);
        const received = ws.notifications();
        const last = ws.answers().at(-1)?.cursor ?? from;
        assert.ok(received.length < ids.length, 'the peer took everything: no test');
        const resumed = await collectByLongPoll(
          node.url,
          [pushId],
          last,
          ids.length - received.length,
        );
        assertExactlyOnce(received, resumed, ids);
      } finally {
        await node.stop();
      }
    });

    test('SSE: a peer that stops reading is cut, counted, and resumes from its last event id with nothing lost', async () => {
      const node = await startEpush([
        '--insecure-dev',
        '--hold-seconds',
        '30',
        '--stream-budget-kb',
        '16',
      ]);
      try {
        const pushId = await api(node.url).mintPushId();
        const from = await headCursor(node.url);
        // HTTP/1.0: the body is not chunked, so what the socket received is the event stream.
        const socket: Socket = connect({ port: node.port, host: '127.0.0.1' });
        const chunks: Buffer[] = [];
        socket.on('data', (chunk: Buffer) => chunks.push(chunk));
        socket.on('error', () => undefined);
        const closed = new Promise<void>((resolve) =>
          socket.on('close', () => {
            resolve();
          }),
        );
        socket.write(
          `GET /push/sse?pushIds=${pushId}&cursor=${from} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n`,
        );
        await until('the stream is registered', async () => {
          return (await metric(node.url, 'epush_listeners')) === 1;
        });
        socket.pause();
        const ids = await flood(node, pushId, 'sse');
        await until('the slow sse peer is no longer counted', async () => {
          return (
            (await metric(node.url, 'epush_connections{transport="sse"}')) === 0 &&
            (await metric(node.url, 'epush_outbound_queued_bytes')) === 0
          );
        });
        socket.resume();
        await closed;
        const raw = parseRawResponse(Buffer.concat(chunks).toString('utf8'));
        assert.equal(raw.status, 200);
        const blocks = raw.body.split('\n\n');
        blocks.pop(); // an event cut short was never dispatched
        const events = blocks.map(parseSseBlock).filter((e) => e !== null);
        const received = events.flatMap((e) => e.answer.notifications);
        const last = events.at(-1)?.id ?? from;
        assert.ok(received.length < ids.length, 'the peer took everything: no test');
        const resumed = await collectByLongPoll(
          node.url,
          [pushId],
          last,
          ids.length - received.length,
        );
        assertExactlyOnce(received, resumed, ids);
      } finally {
        await node.stop();
      }
    });
  });

  test('metrics: epush_connections counts open SSE streams and WebSockets, back to 0 once they close', async () => {
    const url = counts.url;
    const sseSeries = 'epush_connections{transport="sse"}';
    const wsSeries = 'epush_connections{transport="websocket"}';
    assert.equal(await metric(url, sseSeries), 0);
    assert.equal(await metric(url, wsSeries), 0);
    const [a, b, c] = await api(url).mintPushIds(3);
    const streams = [await sse(url, `pushIds=${a}`), await sse(url, `pushIds=${b}`)];
    const sockets = [await WsClient.open(url), await WsClient.open(url)];
    sockets[0]!.listen([c!], null);
    await until('2 SSE streams and 2 WebSockets are counted', async () => {
      return (await metric(url, sseSeries)) === 2 && (await metric(url, wsSeries)) === 2;
    });
    // A heartbeat does not change the count.
    await streams[0]!.waitForEvents(2, 4000);
    assert.equal(await metric(url, sseSeries), 2);
    streams[0]!.close();
    sockets[1]!.ws.close();
    await until('one of each closed', async () => {
      return (await metric(url, sseSeries)) === 1 && (await metric(url, wsSeries)) === 1;
    });
    // A stream the server ends (its only push ID is unknown) is not counted either.
    const ended = await sse(url, `pushIds=${unknownPushId()}`);
    await ended.waitForEnd();
    streams[1]!.close();
    sockets[0]!.ws.terminate();
    await until('all closed', async () => {
      return (await metric(url, sseSeries)) === 0 && (await metric(url, wsSeries)) === 0;
    });
    await until('nothing is held', async () => (await metric(url, 'epush_listeners')) === 0);
    assert.equal(await metric(url, 'epush_outbound_queued_bytes'), 0);
  });
});

describe('streaming across nodes (Redis backplane)', () => {
  let redis: PrivateRedis;
  let nodes: EpushProcess[];

  before(async () => {
    redis = await PrivateRedis.start();
    nodes = await Promise.all(
      ['sa', 'sb'].map((id) =>
        startEpush([
          '--backplane',
          redis.url,
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
  });

  after(async () => {
    for (const stream of openStreams) stream.close();
    await Promise.all((nodes ?? []).map((node) => node.stop()));
    await redis?.stop();
  });

  test('an SSE stream on node B receives a group notification published on node A, and resumes on A', async () => {
    const [a, b] = nodes as [EpushProcess, EpushProcess];
    const onA = api(a.url, KEY);
    const pushId = await onA.mintPushId();
    await onA.addMember('cross.room', pushId);
    const stream = await sse(b.url, `pushIds=${pushId}&cursor=${await headCursor(b.url)}`);
    const sent = Date.now();
    const id = await onA.notifyGroup('cross.room', { from: 'A' });
    assert.deepEqual(await stream.waitForNotifications(1, 3000), [
      { id, pushId, group: 'cross.room', payload: { from: 'A' } },
    ]);
    assert.ok(Date.now() - sent < 2000, `arrived ${Date.now() - sent} ms after the publish`);
    const lastId = stream.lastId();
    stream.close();
    await stream.done;
    const next = await api(b.url, KEY).notifyPushId(pushId, 'next');
    const resumed = await sse(a.url, `pushIds=${pushId}`, { 'last-event-id': lastId });
    assert.deepEqual(
      (await resumed.waitForNotifications(1, 3000)).map((n) => n.id),
      [next],
    );
    resumed.close();
  });

  test('a WebSocket on node A receives a direct notification published on node B', async () => {
    const [a, b] = nodes as [EpushProcess, EpushProcess];
    const pushId = await api(b.url, KEY).mintPushId();
    const ws = await WsClient.open(a.url);
    ws.listen([pushId], await headCursor(a.url));
    const id = await api(b.url, KEY).notifyPushId(pushId, 'B to A');
    assert.deepEqual(
      (await ws.waitForNotifications(1, 3000)).map((n) => n.id),
      [id],
    );
    ws.ws.close();
  });
});
