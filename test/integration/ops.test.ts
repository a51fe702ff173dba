/**
 * Operations (docs/protocol.md /healthz, /readyz, §3 /api/cluster), socket timeouts, and robustness: a
 * node fed garbage answers 4xx and keeps serving.
 */
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  api,
  eventually,
  headCursor,
  listen,
  listenRaw,
  parseRawResponse,
  rawExchange,
  request,
  sleep,
  startEpush,
  unknownPushId,
  type Api,
  type EpushProcess,
} from '../support/epush-process.js';
import { assertError } from '../support/expect.js';

/** The cluster directory is refreshed by a heartbeat every 5 s. */
const HEARTBEAT_WAIT_MS = 7000;

describe('operations and robustness', { concurrency: true }, () => {
  /** Plain node for ops endpoints and garbage. */
  let plain: EpushProcess;
  /** hold-seconds 10, for counting held listens in /api/cluster. */
  let counting: EpushProcess;
  /** Short socket timeouts: headers 1 s, body 2 s, idle 1 s; hold-seconds 4. */
  let timeouts: EpushProcess;
  let plainApi: Api;

  before(async () => {
    [plain, counting, timeouts] = await Promise.all([
      startEpush(['--insecure-dev', '--hold-seconds', '2']),
      startEpush(['--insecure-dev', '--hold-seconds', '10', '--node-id', 'counting-node']),
      startEpush([
        '--insecure-dev',
        '--hold-seconds',
        '4',
        '--headers-timeout-seconds',
        '1',
        '--body-timeout-seconds',
        '2',
        '--idle-timeout-seconds',
        '1',
      ]),
    ]);
    plainApi = api(plain.url);
  });

  after(async () => {
    await Promise.all([plain, counting, timeouts].map((node) => node?.stop()));
  });

  describe('health and readiness', { concurrency: true }, () => {
    test('GET /healthz answers 200 without a key', async () => {
      const answer = await request('GET', `${plain.url}/healthz`);
      assert.equal(answer.status, 200);
    });

    test('GET /readyz answers 200 on a started memory node', async () => {
      const answer = await request('GET', `${plain.url}/readyz`);
      assert.equal(answer.status, 200, answer.text);
    });

    test('HEAD /healthz answers 200 with no body', async () => {
      const answer = await request('HEAD', `${plain.url}/healthz`);
      assert.equal(answer.status, 200);
      assert.equal(answer.text, '');
    });
  });

  describe('cluster view', { concurrency: true }, () => {
    test('/api/cluster lists this node with a connections count that follows held listens', async () => {
      const client = api(counting.url);
      const pushIds = await client.mintPushIds(3);
      const nodes = await client.cluster();
      assert.deepEqual(
        nodes.map((n) => n.id),
        ['counting-node'],
      );
      assert.equal(nodes[0]!.connections, 0);

      const abort = new AbortController();
      const held = [
        listen(counting.url, [pushIds[0]!], null, { signal: abort.signal }),
        listen(counting.url, [pushIds[1]!, pushIds[2]!], null, { signal: abort.signal }),
      ];
      for (const pending of held) pending.catch(() => undefined);
      const whileHeld = await eventually(
        async () => {
          const [self] = await client.cluster();
          return self?.connections === 2 ? self : undefined;
        },
        HEARTBEAT_WAIT_MS,
        'connections to reach 2 while two listens are held',
        250,
      );
      assert.equal(whileHeld.id, 'counting-node');

      abort.abort();
      await eventually(
        async () => {
          const [self] = await client.cluster();
          return self?.connections === 0 ? self : undefined;
        },
        HEARTBEAT_WAIT_MS,
        'connections to fall back to 0 once the listens are gone',
        250,
      );
    });
  });

  describe('socket timeouts', { concurrency: true }, () => {
    test('a socket that sends nothing is closed after headers-timeout-seconds', async () => {
      const exchange = await rawExchange(timeouts.port, '', 6000);
      assert.equal(exchange.closed, true, 'the idle socket is still open after 6 s');
      assert.ok(exchange.ms >= 900, `closed after ${exchange.ms} ms, before the 1 s timeout`);
      assert.ok(exchange.ms < 3500, `closed after ${exchange.ms} ms`);
    });

    test('a socket that never finishes its headers is answered 408 and closed after headers-timeout-seconds', async () => {
      const exchange = await rawExchange(
        timeouts.port,
        'GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ',
        6000,
      );
      assert.equal(exchange.closed, true);
      assert.ok(exchange.ms >= 900 && exchange.ms < 3500, `closed after ${exchange.ms} ms`);
      assert.equal(parseRawResponse(exchange.received).status, 408, exchange.received);
    });

    test('a request whose body never completes is closed after body-timeout-seconds', async () => {
      const exchange = await rawExchange(
        timeouts.port,
        'POST /api/push-ids HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'Content-Length: 100\r\n\r\n{"count":',
        8000,
      );
      assert.equal(exchange.closed, true, 'the stalled request is still open after 8 s');
      assert.ok(exchange.ms >= 1800, `closed after ${exchange.ms} ms, before the 2 s body timeout`);
      assert.ok(exchange.ms < 4500, `closed after ${exchange.ms} ms`);
      assert.ok(!exchange.received.includes(' 201 '), 'the incomplete request was served');
    });

    test('a long-poll held longer than body-timeout-seconds is answered normally after hold-seconds', async () => {
      const pushId = await api(timeouts.url).mintPushId();
      const answer = await listen(timeouts.url, [pushId]);
      assert.ok(answer.ms >= 3500, `answered after ${answer.ms} ms, before the 4 s hold`);
      assert.deepEqual(answer.notifications, []);
      assert.equal(answer.reconnect, undefined);
    });

    test('a long-poll held past body-timeout-seconds is still woken by a notification', async () => {
      const client = api(timeouts.url);
      const pushId = await client.mintPushId();
      const pending = listen(timeouts.url, [pushId]);
      await sleep(2800);
      const id = await client.notifyPushId(pushId, 'late');
      const answer = await pending;
      assert.deepEqual(answer.notifications, [{ id, pushId, group: null, payload: 'late' }]);
    });

    test('an idle keep-alive connection is closed after idle-timeout-seconds', async () => {
      const exchange = await rawExchange(
        timeouts.port,
        'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n',
        6000,
      );
      assert.equal(parseRawResponse(exchange.received).status, 200, exchange.received);
      assert.equal(exchange.closed, true, 'the keep-alive socket is still open after 6 s');
      assert.ok(exchange.ms >= 900 && exchange.ms < 3500, `closed after ${exchange.ms} ms`);
    });

    test('a keep-alive connection reused within idle-timeout-seconds serves the next request', async () => {
      // Two requests on one socket, 500 ms apart (under the 1 s idle timeout): both answered.
      const exchange = await new Promise<string>((resolve, reject) => {
        const socket = connect({ port: timeouts.port, host: '127.0.0.1' });
        let received = '';
        socket.setEncoding('latin1');
        socket.on('data', (chunk: string) => (received += chunk));
        socket.on('error', reject);
        socket.on('connect', () => {
          socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
          setTimeout(() => {
            socket.write('GET /readyz HTTP/1.1\r\nHost: x\r\n\r\n');
            setTimeout(() => {
              socket.destroy();
              resolve(received);
            }, 300);
          }, 500);
        });
      });
      assert.equal(exchange.match(/HTTP\/1\.1 200/g)?.length, 2, exchange);
    });
  });

  describe('garbage', { concurrency: true }, () => {
    const malformed: readonly [string, string, number][] = [
      ['a request line that is not HTTP', 'GARBAGE\r\n\r\n', 400],
      ['an unknown HTTP version', 'GET /healthz HTTP/9.9\r\n\r\n', 400],
      [
        'a header name with a space',
        'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n',
        400,
      ],
      [
        'both Content-Length and Transfer-Encoding',
        'POST /api/push-ids HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n' +
          'Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        400,
      ],
      [
        'a negative Content-Length',
        'POST /api/push-ids HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n',
        400,
      ],
      ['a NUL byte in the path', 'GET /heal\u0000thz HTTP/1.1\r\nHost: x\r\n\r\n', 400],
      [
        'raw non-ASCII bytes in the path',
        'GET /api/groups/caf\u00e9/members HTTP/1.1\r\nHost: x\r\n\r\n',
        400,
      ],
      [
        'a TLS hello on the plain port',
        '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003',
        400,
      ],
      [
        'a header over the size limit',
        `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(100_000)}\r\n\r\n`,
        431,
      ],
    ];
    for (const [what, raw, status] of malformed) {
      test(`${what} is answered ${status} with a JSON body and the connection is closed`, async () => {
        const exchange = await rawExchange(plain.port, Buffer.from(raw, 'latin1'), 3000);
        const response = parseRawResponse(exchange.received);
        assert.equal(response.status, status, exchange.received.slice(0, 300));
        assert.equal(exchange.closed, true);
        const body = JSON.parse(response.body) as { error: { code: string; message: string } };
        assert.equal(typeof body.error.code, 'string');
        assert.equal(typeof body.error.message, 'string');
      });
    }

    test('listen bodies of the wrong JSON types are refused with the matching 400 code', async () => {
      const cases: [unknown, string][] = [
        [[], 'invalid_body'],
        [42, 'invalid_body'],
        ['pushIds', 'invalid_body'],
        [null, 'invalid_body'],
        [{}, 'invalid_body'],
        [{ pushIds: 'AAAAAAAAAAAAAAAAAAAAAA' }, 'invalid_body'],
        [{ pushIds: 5 }, 'invalid_body'],
        [{ pushIds: { a: 'AAAAAAAAAAAAAAAAAAAAAA' } }, 'invalid_body'],
        [{ pushIds: null }, 'invalid_body'],
        [{ pushIds: true }, 'invalid_body'],
        [{ pushIds: [5] }, 'invalid_push_id'],
        [{ pushIds: [null] }, 'invalid_push_id'],
        [{ pushIds: [{ id: 'AAAAAAAAAAAAAAAAAAAAAA' }] }, 'invalid_push_id'],
        [{ pushIds: [['AAAAAAAAAAAAAAAAAAAAAA']] }, 'invalid_push_id'],
        [{ pushIds: ['AAAAAAAAAAAAAAAAAAAAAA'], cursor: 12 }, 'invalid_cursor'],
        [{ pushIds: ['AAAAAAAAAAAAAAAAAAAAAA'], cursor: { epoch: 'a' } }, 'invalid_cursor'],
        [{ pushIds: ['AAAAAAAAAAAAAAAAAAAAAA'], cursor: false }, 'invalid_cursor'],
      ];
      for (const [body, code] of cases) {
        const answer = await listenRaw(plain.url, JSON.stringify(body), {
          headers: { 'content-type': 'application/json' },
        });
        assertError(answer, 400, code);
      }
    });

    test('listen bodies that are not JSON are refused with 400 invalid_json', async () => {
      for (const text of ['{', 'pushIds=a', '{"pushIds": [}', '\uFEFF{}x', 'nul']) {
        assertError(
          await listenRaw(plain.url, text, { headers: { 'content-type': 'application/json' } }),
          400,
          'invalid_json',
        );
      }
    });

    test('a listen with a deeply nested pushIds value is refused with 400, not a server error', async () => {
      const depth = 7000; // 14 KB: under the listen body limit
      const body = `{"pushIds":${'['.repeat(depth)}${']'.repeat(depth)}}`;
      const answer = await listenRaw(plain.url, body, {
        headers: { 'content-type': 'application/json' },
      });
      assertError(answer, 400, 'invalid_push_id');
    });

    test('a notify payload nested 30000 deep is refused with a 4xx, not a server error', async () => {
      const pushId = await plainApi.mintPushId();
      const depth = 30_000; // 60 KB: under the body limit
      const answer = await plainApi.call('POST', `/api/push-ids/${pushId}/notify`, {
        body: `{"payload":${'['.repeat(depth)}${']'.repeat(depth)}}`,
        headers: { 'content-type': 'application/json' },
      });
      assert.ok(
        answer.status >= 400 && answer.status < 500,
        `expected a 4xx, got ${answer.status} ${answer.text}`,
      );
      assert.equal(typeof (answer.body as { error?: { code?: unknown } }).error?.code, 'string');
    });

    test('API bodies of the wrong JSON types are refused with 400', async () => {
      const pushId = await plainApi.mintPushId();
      const cases: [string, string, unknown, string][] = [
        ['POST', '/api/push-ids', { count: { n: 1 } }, 'invalid_count'],
        ['POST', '/api/push-ids', { count: [1, 2] }, 'invalid_count'],
        ['POST', '/api/push-ids', 'null', 'invalid_body'],
        ['POST', '/api/push-ids', '[{"count":1}]', 'invalid_body'],
        ['POST', `/api/push-ids/${pushId}/notify`, '"payload"', 'invalid_body'],
        ['POST', `/api/push-ids/${pushId}/notify`, 'true', 'invalid_body'],
        ['POST', '/api/groups/g/notify', { payload: 1, group: 'g' }, 'invalid_body'],
      ];
      for (const [method, path, body, code] of cases) {
        const answer = await plainApi.call(method, path, {
          body: typeof body === 'string' ? body : JSON.stringify(body),
          headers: { 'content-type': 'application/json' },
        });
        assertError(answer, 400, code);
      }
    });

    test('unicode group names, escaped or not, are refused with 400 invalid_group_name', async () => {
      const pushId = await plainApi.mintPushId();
      for (const name of ['grüppe', '✓', '日本語', 'emoji🚀', 'tab\tname', 'new\nline']) {
        const path = `/api/groups/${encodeURIComponent(name)}`;
        assertError(
          await plainApi.call('PUT', `${path}/members/${pushId}`),
          400,
          'invalid_group_name',
        );
        assertError(await plainApi.call('POST', `${path}/notify`), 400, 'invalid_group_name');
        assertError(await plainApi.call('GET', `${path}/members`), 400, 'invalid_group_name');
      }
    });

    test('after all the garbage the node still runs and delivers notifications', async () => {
      // Runs alongside the garbage tests above; give them a moment to hit the node first.
      await sleep(1500);
      assert.equal(plain.child.exitCode, null, `the node exited:\n${plain.stderr()}`);
      assert.equal((await request('GET', `${plain.url}/healthz`)).status, 200);
      assert.equal((await request('GET', `${plain.url}/readyz`)).status, 200);
      const pushId = await plainApi.mintPushId();
      await plainApi.addMember('still-alive', pushId);
      const from = await headCursor(plain.url);
      const id = await plainApi.notifyGroup('still-alive', 'yes');
      const answer = await listen(plain.url, [pushId], from);
      assert.deepEqual(answer.notifications, [
        { id, pushId, group: 'still-alive', payload: 'yes' },
      ]);
      const expired = await listen(plain.url, [unknownPushId()]);
      assert.equal(expired.expired.length, 1);
    });
  });
});
