/**
 * The Node SDK (src/sdk) against real nodes and small local HTTP servers: every call, errors,
 * local validation, the retry policy (what is retried, what is never sent twice), failover
 * between nodes, notifyMany and connection reuse.
 */
import assert from 'node:assert/strict';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { after, before, describe, test } from 'node:test';
import {
  EpushApiClient,
  EpushClientError,
  MAX_PAYLOAD_BYTES,
  type EpushClientOptions,
  type NotifyItem,
} from '../../src/sdk/index.js';
import {
  headCursor,
  listen,
  startEpush,
  unknownPushId,
  type Delivery,
  type EpushProcess,
} from '../support/epush-process.js';
import { freePort } from '../../testbed/free-port.js';

const KEY = 'sdk-integration-key-0123456789';
/** Retries without noticeable waits (Retry-After still wins when the server sends one). */
const FAST = { baseDelayMs: 1, maxDelayMs: 2 } as const;
const VALID_PUSH_ID = 'AAAAAAAAAAAAAAAAAAAAAA';

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
}

interface LocalServer {
  readonly url: string;
  /** Every request, complete with its body, in arrival order. */
  readonly requests: Seen[];
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

type Handler = (
  req: IncomingMessage,
  res: ServerResponse,
  seen: Seen,
  n: number,
) => void | Promise<void>;

/** A node:http server on 127.0.0.1 that reads each request whole, then hands it to `handle`. */
async function localServer(handle: Handler, port = 0): Promise<LocalServer> {
  const requests: Seen[] = [];
  let connections = 0;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const seen: Seen = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      requests.push(seen);
      Promise.resolve(handle(req, res, seen, requests.length)).catch((error: unknown) => {
        res.destroy(error as Error);
      });
    });
  });
  server.on('connection', () => {
    connections += 1;
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : 0;
  return {
    url: `http://127.0.0.1:${bound}`,
    requests,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** A local server that passes every request on to `target` (an epush node) and counts. */
function countingProxy(target: string): Promise<LocalServer> {
  return localServer(async (req, res, seen) => {
    const headers: Record<string, string> = {};
    for (const name of ['authorization', 'content-type', 'idempotency-key']) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const answer = await fetch(target + seen.url, {
      method: seen.method,
      headers,
      ...(seen.body === '' ? {} : { body: seen.body }),
    });
    const body = Buffer.from(await answer.arrayBuffer());
    const out: Record<string, string> = {};
    for (const name of ['content-type', 'retry-after']) {
      const value = answer.headers.get(name);
      if (value !== null) out[name] = value;
    }
    res.writeHead(answer.status, out).end(body);
  });
}

function sendError(res: ServerResponse, status: number, code: string, retryAfter?: string): void {
  res
    .writeHead(status, {
      'content-type': 'application/json',
      ...(retryAfter === undefined ? {} : { 'retry-after': retryAfter }),
    })
    .end(JSON.stringify({ error: { code, message: `stub says ${code}` } }));
}

function sendAccepted(res: ServerResponse, id: string): void {
  res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ id }));
}

/** Resolves with the EpushClientError the promise rejects with (fails if it resolves). */
async function failure(promise: Promise<unknown>): Promise<EpushClientError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof EpushClientError, `not an EpushClientError: ${String(error)}`);
    return error;
  }
  assert.fail('the call succeeded');
}

async function refusedUrl(): Promise<string> {
  return `http://127.0.0.1:${await freePort()}`;
}

describe('Node SDK', { concurrency: true }, () => {
  let node: EpushProcess;
  const clients: EpushApiClient[] = [];
  const servers: LocalServer[] = [];

  /** A client closed after the suite. */
  const client = (options: EpushClientOptions): EpushApiClient => {
    const created = new EpushApiClient(options);
    clients.push(created);
    return created;
  };
  const server = async (started: Promise<LocalServer>): Promise<LocalServer> => {
    const local = await started;
    servers.push(local);
    return local;
  };

  before(async () => {
    node = await startEpush(['--api-key', KEY, '--hold-seconds', '2']);
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(servers.map((s) => s.close()));
    await node?.stop();
  });

  test('every call works against a real node', async () => {
    const epush = client({ url: node.url, apiKey: KEY });
    const one = await epush.createPushIds();
    assert.equal(one.length, 1);
    const ids = await epush.createPushIds(3);
    assert.equal(ids.length, 3);
    assert.equal(new Set([...one, ...ids]).size, 4);
    const a = ids[0]!;
    const b = ids[1]!;

    await epush.addMember('sdk.all-calls', a);
    await epush.addMember('sdk.all-calls', b);
    await epush.addMember('sdk.all-calls', b); // idempotent
    assert.deepEqual((await epush.members('sdk.all-calls')).sort(), [a, b].sort());

    const cursor = await headCursor(node.url);
    const toGroup = await epush.notifyGroup('sdk.all-calls', { hello: 'group' });
    const toA = await epush.notifyPushId(a, { hello: 'a' });
    const bare = await epush.notifyPushId(a);
    assert.equal(new Set([toGroup.id, toA.id, bare.id]).size, 3);

    const seen: Delivery[] = [];
    let at = cursor;
    while (seen.filter((d) => d.pushId === a).length < 3) {
      const answer = await listen(node.url, [a], at);
      seen.push(...answer.notifications);
      at = answer.cursor;
    }
    assert.deepEqual(
      seen.map((d) => [d.id, d.group, d.payload]),
      [
        [toGroup.id, 'sdk.all-calls', { hello: 'group' }],
        [toA.id, null, { hello: 'a' }],
        [bare.id, null, null],
      ],
    );

    const presence = await epush.presence(a);
    assert.equal(presence.pushId, a);
    // Listening or idle depends on when the node wrote the listens above (within 250 ms).
    assert.ok(['listening', 'idle'].includes(presence.state), presence.state);
    assert.ok(!Number.isNaN(Date.parse(presence.since)));
    assert.deepEqual(presence.groups, ['sdk.all-calls']);
    const groupPresence = await epush.groupPresence('sdk.all-calls');
    assert.equal(groupPresence.members, 2);
    assert.ok(groupPresence.listening.every((pushId) => pushId === a));

    await epush.removeMember('sdk.all-calls', b);
    await epush.removeMember('sdk.all-calls', b); // idempotent
    assert.deepEqual(await epush.members('sdk.all-calls'), [a]);

    const nodes = await epush.cluster();
    assert.deepEqual(
      nodes.map((n) => n.id),
      [node.nodeId],
    );
    assert.equal(typeof nodes[0]!.connections, 'number');
    assert.ok(!Number.isNaN(Date.parse(nodes[0]!.startedAt)));
    assert.ok(!Number.isNaN(Date.parse(nodes[0]!.lastSeen)));

    await epush.close();
    const closed = await failure(epush.members('sdk.all-calls'));
    assert.equal(closed.code, 'client_closed');
  });

  test('a wrong key is a 401 unauthorized error, sent once', async () => {
    const proxy = await server(countingProxy(node.url));
    const epush = client({ url: proxy.url, apiKey: 'not-the-key', retries: FAST });
    const error = await failure(epush.createPushIds());
    assert.equal(error.status, 401);
    assert.equal(error.code, 'unauthorized');
    assert.equal(error.message, 'The API key is not valid.');
    assert.equal(error.attempts, 1);
    assert.equal(proxy.requests.length, 1);
    assert.equal(proxy.requests[0]!.headers.authorization, 'Bearer not-the-key');
  });

  test('notify to an unknown push ID is 404 push_id_not_found and not retried', async () => {
    const proxy = await server(countingProxy(node.url));
    const epush = client({ url: proxy.url, apiKey: KEY, retries: { attempts: 5, ...FAST } });
    const error = await failure(epush.notifyPushId(unknownPushId(), { x: 1 }));
    assert.equal(error.status, 404);
    assert.equal(error.code, 'push_id_not_found');
    assert.match(error.message, /unknown or expired/);
    assert.equal(error.retryAfterMs, null);
    assert.equal(proxy.requests.length, 1);
  });

  test('bad arguments throw invalid_argument before any request; the limits match the server', async () => {
    const proxy = await server(countingProxy(node.url));
    const epush = client({ url: proxy.url, apiKey: KEY });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad: [string, () => Promise<unknown>][] = [
      ['count 0', () => epush.createPushIds(0)],
      ['count 1001', () => epush.createPushIds(1001)],
      ['count 1.5', () => epush.createPushIds(1.5)],
      ['group with a space', () => epush.members('bad group')],
      ['group of 201 chars', () => epush.members('g'.repeat(201))],
      ['empty group', () => epush.notifyGroup('', 1)],
      ['short push ID', () => epush.addMember('g', 'short')],
      ['push ID with a slash', () => epush.removeMember('g', `${VALID_PUSH_ID}/x`)],
      ['push ID of 65 chars', () => epush.notifyPushId('p'.repeat(65))],
      ['cyclic payload', () => epush.notifyGroup('g', cyclic)],
      ['BigInt payload', () => epush.notifyGroup('g', { n: 1n })],
      ['function payload', () => epush.notifyGroup('g', () => 1)],
      ['payload over 64 KiB', () => epush.notifyGroup('g', 'x'.repeat(MAX_PAYLOAD_BYTES - 1))],
      ['notifyMany concurrency 0', () => epush.notifyMany([], { concurrency: 0 })],
    ];
    for (const [what, call] of bad) {
      const error = await failure(call());
      assert.equal(error.code, 'invalid_argument', what);
      assert.equal(error.status, null, what);
      assert.equal(error.attempts, 0, what);
    }
    assert.equal(proxy.requests.length, 0, 'an invalid call reached the server');

    const badOptions: [string, () => EpushApiClient][] = [
      ['no url', () => new EpushApiClient({ apiKey: KEY } as unknown as EpushClientOptions)],
      [
        'url and urls',
        () =>
          new EpushApiClient({
            url: node.url,
            urls: [node.url],
            apiKey: KEY,
          } as unknown as EpushClientOptions),
      ],
      ['empty urls', () => new EpushApiClient({ urls: [], apiKey: KEY })],
      ['not a URL', () => new EpushApiClient({ url: 'push.internal:8080x', apiKey: KEY })],
      ['ftp URL', () => new EpushApiClient({ url: 'ftp://push.internal', apiKey: KEY })],
      ['empty key', () => new EpushApiClient({ url: node.url, apiKey: '' })],
      ['key with a space', () => new EpushApiClient({ url: node.url, apiKey: 'a b' })],
      [
        'attempts 0',
        () => new EpushApiClient({ url: node.url, apiKey: KEY, retries: { attempts: 0 } }),
      ],
      ['connections 0', () => new EpushApiClient({ url: node.url, apiKey: KEY, connections: 0 })],
      ['timeout -1', () => new EpushApiClient({ url: node.url, apiKey: KEY, timeoutMs: -1 })],
    ];
    for (const [what, make] of badOptions) {
      assert.throws(make, (error: unknown) => {
        assert.ok(error instanceof EpushClientError, what);
        assert.equal(error.code, 'invalid_argument', what);
        return true;
      });
    }

    // The edges the server accepts are accepted here too.
    const [pushId] = await epush.createPushIds(1000);
    const atLimit = 'x'.repeat(MAX_PAYLOAD_BYTES - 2); // 65536 bytes with its quotes
    assert.ok((await epush.notifyPushId(pushId!, atLimit)).id);
    const longGroup = `A-z0.9_:~${'g'.repeat(191)}`;
    assert.equal(longGroup.length, 200);
    await epush.addMember(longGroup, pushId!);
    assert.deepEqual(await epush.members(longGroup), [pushId]);
    assert.equal(proxy.requests.length, 4);
  });

  test('503 is retried, honouring a Retry-After larger than the backoff', async () => {
    const stub = await server(
      localServer((_req, res, _seen, n) => {
        if (n <= 2) sendError(res, 503, 'backplane_unavailable', '1');
        else sendAccepted(res, 'stub-id-1');
      }),
    );
    const epush = client({ url: stub.url, apiKey: KEY, retries: { attempts: 5, ...FAST } });
    const started = Date.now();
    const result = await epush.notifyPushId(VALID_PUSH_ID, { n: 1 });
    const ms = Date.now() - started;
    assert.deepEqual(result, { id: 'stub-id-1' });
    assert.equal(stub.requests.length, 3);
    assert.ok(ms >= 1900, `two Retry-After: 1 should take 2 s, took ${ms} ms`);
    for (const seen of stub.requests) {
      assert.equal(seen.method, 'POST');
      assert.equal(seen.url, `/api/push-ids/${VALID_PUSH_ID}/notify`);
      assert.equal(seen.headers.authorization, `Bearer ${KEY}`);
      assert.equal(seen.headers['content-type'], 'application/json');
      assert.equal(seen.body, '{"payload":{"n":1}}');
      assert.equal(seen.headers['idempotency-key'], stub.requests[0]!.headers['idempotency-key']);
    }
  });

  test('429 is retried', async () => {
    const stub = await server(
      localServer((_req, res, _seen, n) => {
        if (n === 1) sendError(res, 429, 'rate_limited', '0');
        else sendAccepted(res, 'stub-id-2');
      }),
    );
    const epush = client({ url: stub.url, apiKey: KEY, retries: FAST });
    assert.deepEqual(await epush.notifyGroup('g'), { id: 'stub-id-2' });
    assert.equal(stub.requests.length, 2);
    assert.equal(stub.requests[1]!.body, '', 'a notify without payload sends no body');
  });

  test('a node that always answers 503 fails the call after `attempts` requests', async () => {
    const stub = await server(
      localServer((_req, res) => {
        sendError(res, 503, 'backplane_unavailable', '0');
      }),
    );
    const epush = client({ url: stub.url, apiKey: KEY, retries: { attempts: 3, ...FAST } });
    const error = await failure(epush.notifyGroup('g', 1));
    assert.equal(error.status, 503);
    assert.equal(error.code, 'backplane_unavailable');
    assert.equal(error.message, 'stub says backplane_unavailable');
    assert.equal(error.retryAfterMs, 0);
    assert.equal(error.attempts, 3);
    assert.equal(stub.requests.length, 3);
  });

  test('with urls, a 503 moves the retry to the next node', async () => {
    const down = await server(
      localServer((_req, res) => {
        sendError(res, 503, 'draining', '0');
      }),
    );
    const up = await server(
      localServer((_req, res) => {
        sendAccepted(res, 'stub-id-3');
      }),
    );
    const epush = client({
      urls: [down.url, up.url],
      apiKey: KEY,
      retries: { attempts: 2, ...FAST },
    });
    assert.deepEqual(await epush.notifyGroup('g'), { id: 'stub-id-3' });
    assert.equal(down.requests.length, 1);
    assert.equal(up.requests.length, 1);
  });

  test('a notify whose answer was lost (dropped connection) is sent again with the same Idempotency-Key', async () => {
    const stub = await server(
      localServer((req, res, _seen, n) => {
        if (n % 2 === 1)
          req.socket.destroy(); // read the whole request, then vanish
        else sendAccepted(res, `stub-id-${n}`);
      }),
    );
    const epush = client({ url: stub.url, apiKey: KEY, retries: { attempts: 4, ...FAST } });
    assert.deepEqual(await epush.notifyGroup('g', { once: true }), { id: 'stub-id-2' });
    assert.equal(stub.requests.length, 2);
    const [first, second] = stub.requests;
    assert.match(String(first!.headers['idempotency-key']), /^[0-9a-f-]{36}$/);
    assert.equal(second!.headers['idempotency-key'], first!.headers['idempotency-key']);
    assert.equal(second!.body, first!.body);

    // The caller's own key is sent as is; each call without one gets a new random one.
    await epush.notifyPushId(VALID_PUSH_ID, 1, { idempotencyKey: 'order-42:shipped' });
    assert.equal(stub.requests[2]!.headers['idempotency-key'], 'order-42:shipped');
    assert.equal(stub.requests[3]!.headers['idempotency-key'], 'order-42:shipped');
    await epush.notifyPushId(VALID_PUSH_ID, 1);
    assert.notEqual(
      stub.requests[4]!.headers['idempotency-key'],
      first!.headers['idempotency-key'],
    );
    const bad = await failure(epush.notifyGroup('g', 1, { idempotencyKey: 'no spaces' }));
    assert.equal(bad.code, 'invalid_argument');
    assert.equal(stub.requests.length, 6, 'an invalid key is refused before sending');
  });

  test('a notify that times out or meets a 502 / 504 is retried with its key; a 500 is not', async () => {
    const stub = await server(
      localServer((_req, res, _seen, n) => {
        if (n === 1) return; // never answers: a timeout
        if (n === 2) res.writeHead(502).end('bad gateway');
        else if (n === 3) res.writeHead(504).end('gateway timeout');
        else if (n === 4) sendAccepted(res, 'stub-id-4');
        else sendError(res, 500, 'internal');
      }),
    );
    const epush = client({
      url: stub.url,
      apiKey: KEY,
      timeoutMs: 300,
      retries: { attempts: 5, ...FAST },
    });
    assert.deepEqual(await epush.notifyPushId(VALID_PUSH_ID, 1), { id: 'stub-id-4' });
    assert.equal(new Set(stub.requests.map((r) => r.headers['idempotency-key'])).size, 1);
    const error = await failure(epush.notifyGroup('g', 1));
    assert.equal(error.status, 500);
    assert.equal(error.attempts, 1);
  });

  test('against a real node: a notify whose answer was lost is retried and published once; history reads it back', async () => {
    // The proxy forwards the first request to the node, then drops the answer.
    let forwarded = 0;
    const lossy = await server(
      localServer(async (req, res, seen) => {
        const headers: Record<string, string> = {};
        for (const name of ['authorization', 'content-type', 'idempotency-key']) {
          const value = req.headers[name];
          if (typeof value === 'string') headers[name] = value;
        }
        const answer = await fetch(node.url + seen.url, {
          method: seen.method,
          headers,
          ...(seen.body === '' ? {} : { body: seen.body }),
        });
        const body = Buffer.from(await answer.arrayBuffer());
        forwarded += 1;
        if (forwarded === 1) req.socket.destroy();
        else res.writeHead(answer.status, { 'content-type': 'application/json' }).end(body);
      }),
    );
    const group = `sdk.once.${Date.now()}`;
    const epush = client({ url: lossy.url, apiKey: KEY, retries: { attempts: 3, ...FAST } });
    const { id } = await epush.notifyGroup(group, { n: 1 });
    assert.equal(forwarded, 2, 'sent twice');
    const direct = client({ url: node.url, apiKey: KEY });
    const page = await direct.groupHistory(group);
    assert.deepEqual(
      page.notifications.map((n) => [n.id, n.group, n.pushId, n.payload]),
      [[id, group, null, { n: 1 }]],
      'published once, under the id the retry answered',
    );
    assert.equal(page.reset, false);
    const second = await direct.notifyGroup(group, { n: 2 });
    const after = await direct.groupHistory(group, { since: page.cursor, limit: 10 });
    assert.deepEqual(
      after.notifications.map((n) => n.id),
      [second.id],
    );
    const [pushId] = await direct.createPushIds();
    await direct.notifyPushId(pushId!, 'hi');
    const mine = await direct.pushIdHistory(pushId!, { limit: 1 });
    assert.deepEqual(
      mine.notifications.map((n) => [n.pushId, n.payload]),
      [[pushId, 'hi']],
    );
    assert.equal(
      (await failure(direct.groupHistory(group, { limit: 0 }))).code,
      'invalid_argument',
    );
    assert.equal((await failure(direct.pushIdHistory(unknownPushId()))).code, 'push_id_not_found');
  });

  test('a refused connection is retried, for a notify too: on the next of `urls`', async () => {
    const proxy = await server(countingProxy(node.url));
    const epush = client({
      urls: [await refusedUrl(), proxy.url],
      apiKey: KEY,
      retries: { attempts: 2, ...FAST },
    });
    // The first call starts on urls[0], which refuses; the retry goes to urls[1].
    const [pushId] = await client({ url: node.url, apiKey: KEY }).createPushIds();
    const { id } = await epush.notifyPushId(pushId!, 'via failover');
    assert.ok(id);
    assert.equal(proxy.requests.length, 1);
  });

  test('a refused connection is retried on the same node until it listens', async () => {
    const port = await freePort();
    const epush = client({
      url: `http://127.0.0.1:${port}`,
      apiKey: KEY,
      retries: { attempts: 20, baseDelayMs: 50, maxDelayMs: 100 },
    });
    const pending = epush.notifyGroup('g', 'late');
    await new Promise((resolve) => setTimeout(resolve, 300));
    const late = await server(
      localServer((_req, res) => {
        sendAccepted(res, 'stub-id-4');
      }, port),
    );
    assert.deepEqual(await pending, { id: 'stub-id-4' });
    assert.equal(late.requests.length, 1);
  });

  test('notifyMany: 200 items with invalid ones, results in input order, valid ones delivered', async () => {
    const setup = client({ url: node.url, apiKey: KEY });
    const [a, b] = (await setup.createPushIds(2)) as string[] as [string, string];
    const group = 'sdk.many';
    await setup.addMember(group, a);
    const cursor = await headCursor(node.url);

    const proxy = await server(countingProxy(node.url));
    const epush = client({ url: proxy.url, apiKey: KEY, connections: 4 });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const items: NotifyItem[] = Array.from({ length: 200 }, (_, i) =>
      i % 2 === 0 ? { group, payload: { i } } : { pushId: b, payload: { i } },
    );
    const invalid = new Map<number, string>([
      [7, 'invalid_argument'],
      [50, 'invalid_argument'],
      [99, 'push_id_not_found'],
      [120, 'invalid_argument'],
      [150, 'invalid_argument'],
      [199, 'invalid_argument'],
    ]);
    items[7] = { group: 'bad group!' };
    items[50] = { pushId: 'short' };
    items[99] = { pushId: unknownPushId(), payload: { i: 99 } };
    items[120] = { group, payload: cyclic };
    items[150] = { group, pushId: b } as unknown as NotifyItem;
    items[199] = { pushId: b, payload: 'x'.repeat(MAX_PAYLOAD_BYTES) };

    const results = await epush.notifyMany(items, { concurrency: 16 });
    assert.equal(results.length, 200);
    const expected = new Map<string, { pushId: string; group: string | null; i: number }>();
    results.forEach((result, i) => {
      const code = invalid.get(i);
      if (code !== undefined) {
        assert.equal(result.ok, false, `item ${i} should fail`);
        if (!result.ok) assert.equal(result.error.code, code, `item ${i}`);
        return;
      }
      assert.ok(result.ok, `item ${i}: ${result.ok ? '' : result.error.message}`);
      expected.set(result.id, {
        pushId: i % 2 === 0 ? a : b,
        group: i % 2 === 0 ? group : null,
        i,
      });
    });
    assert.equal(expected.size, 194, 'ids are not unique');
    // Only the valid items and the unknown push ID reached the server.
    assert.equal(proxy.requests.length, 195);
    assert.ok(proxy.connections() <= 4, `${proxy.connections()} connections`);

    const delivered = new Map<string, Delivery>();
    let at = cursor;
    const deadline = Date.now() + 15_000;
    while (delivered.size < expected.size && Date.now() < deadline) {
      const answer = await listen(node.url, [a, b], at);
      for (const delivery of answer.notifications) delivered.set(delivery.id, delivery);
      at = answer.cursor;
    }
    assert.equal(delivered.size, expected.size);
    for (const [id, want] of expected) {
      const got = delivered.get(id);
      assert.ok(got, `notification ${id} (item ${want.i}) was not delivered`);
      assert.equal(got.pushId, want.pushId);
      assert.equal(got.group, want.group);
      assert.deepEqual(got.payload, { i: want.i });
    }
  });

  test('keep-alive: 50 calls use at most `connections` sockets', async () => {
    const sequential = await server(countingProxy(node.url));
    const one = client({ url: sequential.url, apiKey: KEY, connections: 2 });
    for (let i = 0; i < 50; i++) await one.members('sdk.keep-alive');
    assert.equal(sequential.requests.length, 50);
    assert.ok(sequential.connections() <= 2, `${sequential.connections()} sockets for 50 calls`);

    const parallel = await server(countingProxy(node.url));
    const four = client({ url: parallel.url, apiKey: KEY, connections: 4 });
    await Promise.all(Array.from({ length: 50 }, () => four.members('sdk.keep-alive')));
    assert.equal(parallel.requests.length, 50);
    assert.ok(parallel.connections() <= 4, `${parallel.connections()} sockets for 50 calls`);
  });
});
