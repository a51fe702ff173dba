/**
 * epush embedded in a host application (docs/embedding.md): mounted under a base path in
 * node:http, Express 5, Fastify 5 and Koa 3, each started on a free port in this process. The
 * host's own routes and WebSocket endpoint keep working; every browser transport under the base
 * path receives notifications sent through the in-process API and the HTTP API; the in-process
 * API refuses bad input with the HTTP API's codes; close() drains like SIGTERM.
 */
import assert from 'node:assert/strict';
import {
  createServer,
  get,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import Fastify from 'fastify';
import Koa from 'koa';
import { WebSocket, WebSocketServer } from 'ws';
import { createEpush, type EmbeddedEpush } from '../../src/index.js';
import { ConfigError } from '../../src/config/load-config.js';
import { EpushError } from '../../src/core/errors.js';
import { createLogger } from '../../src/observability/logger.js';
import { assertError } from '../support/expect.js';
import {
  api,
  headCursor,
  request,
  sleep,
  unknownPushId,
  type ListenAnswer,
} from '../support/epush-process.js';

const BASE = '/push-server';
const API_KEY = 'embedding-test-key-0123456789';
const HOLD_SECONDS = 10;

/** A host application with epush mounted, listening on a free loopback port. */
interface RunningHost {
  readonly url: string;
  close(): Promise<void>;
}

/** The host's own behaviour, the same in every framework: its routes answer in plain text. */
const HOST_404 = 'host: no such page';

async function hostRoute(
  epush: EmbeddedEpush,
  framework: string,
  path: string,
): Promise<{ status: number; body: string }> {
  const url = new URL(path, 'http://host.invalid');
  if (url.pathname === '/hello') return { status: 200, body: `hello from ${framework}` };
  if (url.pathname === '/notify') {
    // The application's own route notifies through the in-process API.
    const { id } = await epush.notifyGroup(url.searchParams.get('group') ?? '', { from: 'host' });
    return { status: 202, body: id };
  }
  return { status: 404, body: HOST_404 };
}

function listening(server: Server): Promise<string> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve(`http://127.0.0.1:${port}`);
    });
  });
}

/** The host's own WebSocket endpoint at /app/ws (an echo), next to epush's. */
function hostWebSockets(server: Server): void {
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    if (req.url !== '/app/ws') return;
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data, isBinary) => {
        ws.send(data, { binary: isBinary });
      });
    });
  });
}

async function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
}

type Mount = (epush: EmbeddedEpush, framework: string) => Promise<RunningHost>;

const FRAMEWORKS: Record<string, Mount> = {
  'node:http': async (epush, framework) => {
    const server = createServer((req, res) => {
      epush.handler(req, res, () => {
        void hostRoute(epush, framework, req.url ?? '/').then(({ status, body }) => {
          res.writeHead(status, { 'content-type': 'text/plain', 'x-host': framework });
          res.end(body);
        });
      });
    });
    epush.attach(server);
    hostWebSockets(server);
    const url = await listening(server);
    return { url, close: () => closeServer(server) };
  },

  express: async (epush, framework) => {
    const app = express();
    // A body parser mounted before epush: epush takes the body it parsed from req.body.
    app.use(express.json());
    app.use(epush.handler);
    app.use((req, res, next) => {
      hostRoute(epush, framework, req.originalUrl).then(({ status, body }) => {
        res.status(status).set('x-host', framework).type('text/plain').send(body);
      }, next);
    });
    const server = createServer(app);
    epush.attach(server);
    hostWebSockets(server);
    const url = await listening(server);
    return { url, close: () => closeServer(server) };
  },

  fastify: async (epush, framework) => {
    const app = Fastify();
    // Before routing's body parsing: epush's requests leave Fastify's lifecycle here.
    app.addHook('onRequest', async (request, reply) => {
      if (!epush.owns(request.raw)) return;
      reply.hijack();
      epush.handler(request.raw, reply.raw);
    });
    app.addHook('preClose', async () => {
      await epush.close();
    });
    app.get('/hello', async (request, reply) => {
      const { status, body } = await hostRoute(epush, framework, request.url);
      return reply.code(status).header('x-host', framework).type('text/plain').send(body);
    });
    app.get('/notify', async (request, reply) => {
      const { status, body } = await hostRoute(epush, framework, request.url);
      return reply.code(status).header('x-host', framework).type('text/plain').send(body);
    });
    app.setNotFoundHandler(async (_request, reply) => {
      return reply.code(404).header('x-host', framework).type('text/plain').send(HOST_404);
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    epush.attach(app.server);
    hostWebSockets(app.server);
    const { port } = app.server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      close: async () => {
        app.server.closeAllConnections();
        await app.close();
      },
    };
  },

  koa: async (epush, framework) => {
    const app = new Koa();
    app.use(async (ctx, next) => {
      if (!epush.owns(ctx.req)) {
        await next();
        return;
      }
      ctx.respond = false; // epush writes to ctx.res itself, possibly much later
      epush.handler(ctx.req, ctx.res);
    });
    app.use(async (ctx) => {
      const { status, body } = await hostRoute(epush, framework, ctx.url);
      ctx.status = status;
      ctx.type = 'text/plain';
      ctx.set('x-host', framework);
      ctx.body = body;
    });
    const callback = app.callback();
    const server = createServer((req, res) => {
      void callback(req, res);
    });
    epush.attach(server);
    hostWebSockets(server);
    const url = await listening(server);
    return { url, close: () => closeServer(server) };
  },
};

// --- browser-side clients ----------------------------------------------------------------------

/** A long-poll that must answer 200 within the hold time (plus slack), else it fails. */
function listen(
  url: string,
  pushIds: string[],
  cursor: string | null = null,
  timeoutMs = HOLD_SECONDS * 1000 + 5000,
): Promise<ListenAnswer & { ms: number; status: number }> {
  return request<ListenAnswer>('POST', `${url}/push/listen`, {
    body: { pushIds, cursor },
    signal: AbortSignal.timeout(timeoutMs),
  }).then((answer) => {
    assert.equal(answer.status, 200, `POST ${url}/push/listen: ${answer.status} ${answer.text}`);
    return { ...answer.body, ms: answer.ms, status: answer.status };
  });
}

/** Reads `GET …/push/sse` until an event carries a notification; resolves with that answer. */
function sseFirstNotification(
  url: string,
  pushId: string,
  opened: () => void,
): Promise<ListenAnswer> {
  return new Promise((resolve, reject) => {
    const req = get(`${url}/push/sse?pushIds=${pushId}`, { agent: false }, (res) => {
      if (
        res.statusCode !== 200 ||
        !/^text\/event-stream/.test(res.headers['content-type'] ?? '')
      ) {
        reject(new Error(`GET ${url}/push/sse: ${res.statusCode} ${res.headers['content-type']}`));
        res.resume();
        return;
      }
      res.setEncoding('utf8');
      let buffer = '';
      let first = true;
      res.on('data', (chunk: string) => {
        buffer += chunk;
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = block
            .split('\n')
            .filter((line) => line.startsWith('data:'))
            .map((line) => line.slice(5).trim())
            .join('\n');
          if (data === '') continue;
          const answer = JSON.parse(data) as ListenAnswer;
          if (first) {
            first = false;
            opened();
          }
          if (answer.notifications.length > 0) {
            resolve(answer);
            req.destroy();
            return;
          }
        }
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
    setTimeout(() => {
      reject(new Error('no notification on the SSE stream within 5 s'));
      req.destroy();
    }, 5000).unref();
  });
}

/** Opens a WebSocket and waits for it to be open (or refused). */
function openWebSocket(url: string): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { handshakeTimeout: 5000 });
    ws.once('open', () => {
      resolve(ws);
    });
    ws.once('unexpected-response', (_req, res) => {
      reject(new Error(`WebSocket ${url} refused: ${res.statusCode}`));
    });
    ws.once('error', reject);
  });
}

function nextMessage(ws: WebSocket, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no ${what} within 5 s`));
    }, 5000);
    ws.once('message', (data: Buffer) => {
      clearTimeout(timer);
      resolve(data.toString('utf8'));
    });
  });
}

async function expectEpushError(
  promise: Promise<unknown>,
  code: string,
  what: string,
): Promise<void> {
  await assert.rejects(
    promise,
    (error: unknown) => {
      assert.ok(error instanceof EpushError, `${what}: not an EpushError: ${String(error)}`);
      assert.equal(error.code, code, `${what}: ${error.code} ${error.message}`);
      return true;
    },
    what,
  );
}

// --- the scenario, for each framework ----------------------------------------------------------

for (const [framework, mount] of Object.entries(FRAMEWORKS)) {
  describe(`epush embedded in ${framework} under ${BASE}`, { timeout: 60_000 }, () => {
    let epush: EmbeddedEpush;
    let host: RunningHost;
    let push: string;

    before(async () => {
      epush = createEpush({
        basePath: BASE,
        apiKey: API_KEY,
        holdSeconds: HOLD_SECONDS,
        drainSeconds: 3,
        logger: createLogger('warn', `embedded-${framework}`),
      });
      host = await mount(epush, framework);
      push = `${host.url}${BASE}`;
      await epush.start();
    });

    after(async () => {
      await epush.close();
      await host.close();
    });

    test('the host keeps its own routes, paths and WebSocket endpoint; epush serves its client and readiness under the base path', async () => {
      const hello = await request('GET', `${host.url}/hello`);
      assert.equal(hello.status, 200);
      assert.equal(hello.text, `hello from ${framework}`);

      // Paths epush has no route for reach the host, under the base path or not.
      for (const path of [
        `${BASE}/not-epush`,
        `${BASE}/push/nothing`,
        '/push/listen',
        '/api/cluster',
      ]) {
        const answer = await request('GET', `${host.url}${path}`);
        assert.equal(answer.status, 404, `${path}: ${answer.status} ${answer.text}`);
        assert.equal(answer.headers.get('x-host'), framework, `${path} did not reach the host`);
        assert.equal(answer.text, HOST_404, path);
      }

      // epush's own paths, with its own JSON answers.
      const ready = await request<{ status: string }>('GET', `${push}/readyz`);
      assert.equal(ready.status, 200, ready.text);
      assert.deepEqual(ready.body, { status: 'ready' });
      assert.deepEqual(epush.readiness(), { ready: true, reason: null });
      const wrongMethod = await request('DELETE', `${push}/push/listen`);
      assertError(wrongMethod, 405, 'method_not_allowed');
      const client = await request('GET', `${push}/epush.js`);
      assert.equal(client.status, 200, `${push}/epush.js: ${client.status}`);
      assert.match(client.headers.get('content-type') ?? '', /^text\/javascript/);
      assert.match(client.text, /EPush/);
      const unauthorized = await request('GET', `${push}/api/cluster`);
      assertError(unauthorized, 401, 'unauthorized');

      // The host's WebSocket endpoint is the host's: epush leaves the upgrade alone.
      const echo = await openWebSocket(`${host.url.replace('http', 'ws')}/app/ws`);
      const echoed = nextMessage(echo, 'echo');
      echo.send('ping from the test');
      assert.equal(await echoed, 'ping from the test');
      echo.close();
    });

    test('a long-poll under the base path receives a notification from the in-process API and one from the HTTP API under the base path', async () => {
      const [pushId] = await epush.createPushIds();
      assert.ok(pushId !== undefined);
      await epush.addMember('room.lp', pushId);
      assert.deepEqual(await epush.members('room.lp'), [pushId]);

      // From the head cursor: the notification reaches the listen however late it arrives.
      const first = listen(push, [pushId], await headCursor(push));
      await sleep(200); // the listen is held before the notification is sent
      const { id } = await epush.notifyGroup('room.lp', { n: 1, via: 'in-process' });
      const answer = await first;
      assert.ok(answer.ms < HOLD_SECONDS * 1000 - 1000, `answered after ${answer.ms} ms`);
      assert.deepEqual(answer.notifications, [
        { id, pushId, group: 'room.lp', payload: { n: 1, via: 'in-process' } },
      ]);

      const second = listen(push, [pushId], answer.cursor);
      await sleep(200);
      const viaHttp = await api(push, API_KEY).notifyGroup('room.lp', { n: 2, via: 'http' });
      const answer2 = await second;
      assert.deepEqual(answer2.notifications, [
        { id: viaHttp, pushId, group: 'room.lp', payload: { n: 2, via: 'http' } },
      ]);

      // The host's own route notifies through the in-process API.
      const third = listen(push, [pushId], answer2.cursor);
      await sleep(200);
      const viaRoute = await request('GET', `${host.url}/notify?group=room.lp`);
      assert.equal(viaRoute.status, 202, viaRoute.text);
      const answer3 = await third;
      assert.deepEqual(answer3.notifications, [
        { id: viaRoute.text, pushId, group: 'room.lp', payload: { from: 'host' } },
      ]);
    });

    test('an SSE stream under the base path receives a notification', async () => {
      const [pushId] = await epush.createPushIds(1);
      let opened!: () => void;
      const isOpen = new Promise<void>((resolve) => (opened = resolve));
      const received = sseFirstNotification(push, pushId!, opened);
      await isOpen;
      const { id } = await epush.notifyPushId(pushId!, 'over sse');
      const answer = await received;
      assert.deepEqual(answer.notifications, [{ id, pushId, group: null, payload: 'over sse' }]);
    });

    test(`a WebSocket at ${BASE}/push/ws receives a notification`, async () => {
      const [pushId] = await epush.createPushIds(1);
      await epush.addMember('room.ws', pushId!);
      const ws = await openWebSocket(`${push.replace('http', 'ws')}/push/ws`);
      try {
        const first = nextMessage(ws, 'first WebSocket answer');
        // An unknown push ID next to ours makes the server answer at once (expired): the listen
        // is registered when that answer arrives.
        ws.send(JSON.stringify({ listen: { pushIds: [pushId, unknownPushId()], cursor: null } }));
        const opening = JSON.parse(await first) as ListenAnswer;
        assert.equal(opening.expired.length, 1, JSON.stringify(opening));
        const delivered = nextMessage(ws, 'notification on the WebSocket');
        const { id } = await epush.notifyGroup('room.ws', [1, 2, 3]);
        const answer = JSON.parse(await delivered) as ListenAnswer;
        assert.deepEqual(answer.notifications, [
          { id, pushId, group: 'room.ws', payload: [1, 2, 3] },
        ]);
      } finally {
        ws.close();
      }
    });

    test('the in-process API refuses bad input with the codes the HTTP API answers', async () => {
      const http = api(push, API_KEY);
      const [pushId] = await epush.createPushIds();
      const cases: [string, () => Promise<unknown>, string, string, string, unknown?][] = [
        [
          'bad group',
          () => epush.notifyGroup('bad group!'),
          'invalid_group_name',
          'POST',
          `/api/groups/${encodeURIComponent('bad group!')}/notify`,
        ],
        [
          'bad push ID',
          () => epush.addMember('g', 'short'),
          'invalid_push_id',
          'PUT',
          '/api/groups/g/members/short',
        ],
        [
          'count 0',
          () => epush.createPushIds(0),
          'invalid_count',
          'POST',
          '/api/push-ids',
          { count: 0 },
        ],
        [
          'count 1001',
          () => epush.createPushIds(1001),
          'invalid_count',
          'POST',
          '/api/push-ids',
          { count: 1001 },
        ],
        [
          'unknown push ID',
          () => epush.notifyPushId(unknownPushId()),
          'push_id_not_found',
          'POST',
          `/api/push-ids/${unknownPushId()}/notify`,
        ],
        [
          'payload over 64 KiB',
          () => epush.notifyPushId(pushId!, 'x'.repeat(65_600)),
          'payload_too_large',
          'POST',
          `/api/push-ids/${pushId}/notify`,
          { payload: 'x'.repeat(65_600) },
        ],
      ];
      for (const [what, call, code, method, path, body] of cases) {
        await expectEpushError(call(), code, `in-process: ${what}`);
        const answer = await http.call(method, path, body === undefined ? {} : { body });
        assert.equal(
          (answer.body as { error?: { code?: string } } | undefined)?.error?.code,
          code,
          `HTTP: ${what}: ${answer.status} ${answer.text}`,
        );
      }
      // What only a caller in the process can send: not a JSON value.
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      await expectEpushError(epush.notifyPushId(pushId!, cycle), 'invalid_body', 'a cycle');
      await expectEpushError(
        epush.notifyPushId(pushId!, () => 1),
        'invalid_body',
        'a function',
      );
    });

    test('close() answers a held listen with reconnect and its cursor, and closes WebSockets', async () => {
      const [pushId, wsPushId] = await epush.createPushIds(2);
      const held = listen(push, [pushId!], null, 5000);
      const ws = await openWebSocket(`${push.replace('http', 'ws')}/push/ws`);
      const wsClosed = new Promise<number>((resolve) =>
        ws.once('close', (code) => {
          resolve(code);
        }),
      );
      ws.send(JSON.stringify({ listen: { pushIds: [wsPushId], cursor: null } }));
      await sleep(300);
      const started = Date.now();
      const closing = epush.close();
      const answer = await held;
      assert.equal(answer.reconnect, true, JSON.stringify(answer));
      assert.deepEqual(answer.notifications, []);
      assert.ok(answer.cursor.length > 0);
      assert.ok(Date.now() - started < 2000, `answered ${Date.now() - started} ms after close()`);
      assert.equal(await wsClosed, 1012);
      await closing;
      assert.equal(epush.readiness().ready, false);
      // The host still serves its own routes; epush's answer it is not ready.
      const hello = await request('GET', `${host.url}/hello`);
      assert.equal(hello.status, 200);
      const ready = await request('GET', `${push}/readyz`);
      assertError(ready, 503, 'not_ready');
    });
  });
}

describe('createEpush options', () => {
  test('bad options fail with the flags table’s one-line messages, and basePath is checked', () => {
    const cases: [Parameters<typeof createEpush>[0], RegExp][] = [
      [
        { holdSeconds: 0 },
        /^createEpush: holdSeconds \(--hold-seconds\) must be an integer from 1 to 3600 \(got "0"\)$/,
      ],
      [{ apiKey: 'short' }, /apiKey \(--api-key\) needs keys of at least 16 characters/],
      [{ corsOrigins: ['ftp://x'] }, /corsOrigins \(--cors-origins\)/],
      [{ backplane: 'kafka://x' }, /backplane \(--backplane\) must be memory or/],
      [{ port: 80 } as never, /port is not an option of an embedded epush/],
      [{ nope: 1 } as never, /unknown option "nope"/],
      [{ basePath: 'no-slash' }, /basePath must be "" or a path like \/push-server/],
      [{ basePath: '/a/../b' }, /basePath/],
    ];
    for (const [options, message] of cases) {
      assert.throws(
        () => createEpush(options),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError, String(error));
          assert.match(error.message, message);
          return true;
        },
      );
    }
  });

  test('without an API key the application API is not served over HTTP but in-process, and basePath "/" mounts at the root', async () => {
    const epush = createEpush({ basePath: '/', logger: createLogger('silent', 'embedded-nokey') });
    assert.equal(epush.basePath, '');
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      epush.handler(req, res, () => {
        res.writeHead(418, { 'x-host': 'plain' });
        res.end();
      });
    });
    const url = await listening(server);
    await epush.start();
    try {
      const [pushId] = await epush.createPushIds(2);
      assert.equal(typeof pushId, 'string');
      const apiCall = await request('POST', `${url}/api/push-ids`);
      assert.equal(apiCall.status, 418, 'the API was served without a key');
      // Without `next`, the handler answers epush's JSON 404.
      const bare = createServer((req, res) => {
        epush.handler(req, res);
      });
      const bareUrl = await listening(bare);
      assertError(await request('GET', `${bareUrl}/elsewhere`), 404, 'not_found');
      await closeServer(bare);
      assert.equal((await request('GET', `${url}/healthz`)).status, 200);
    } finally {
      await epush.close();
      await closeServer(server);
    }
  });
});
