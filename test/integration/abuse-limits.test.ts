/**
 * Abuse limits (issue 9, item 4), over real sockets: every limit is a flag, every refusal has a
 * clear answer (the JSON error shape, `Retry-After` where waiting helps) and is counted in
 * `epush_rejected_requests_total{reason}`.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  api,
  parseRawResponse,
  request,
  sleep,
  startEpush,
  type Api,
  type EpushProcess,
} from '../support/epush-process.js';

interface RawAnswer {
  readonly status: number;
  readonly headers: Map<string, string>;
  readonly body: string;
}

/** A TCP connection from `localAddress`, open once the handshake is done. */
function openSocket(port: number, localAddress = '127.0.0.1'): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => {
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/**
 * Connects, writes `data` (if any) and reads until the server closes: the one answer of a
 * refused (or `Connection: close`) exchange.
 */
function exchange(
  port: number,
  data: string,
  localAddress = '127.0.0.1',
): Promise<RawAnswer & { closed: boolean }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => {
      if (data !== '') socket.write(data);
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within 5 s; got ${Buffer.concat(chunks).toString('latin1')}`));
    }, 5000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ ...parseRawResponse(Buffer.concat(chunks).toString('latin1')), closed: true });
    });
  });
}

const GET = (path: string): string =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`;

function errorCode(answer: { body: string }): string {
  return (JSON.parse(answer.body) as { error: { code: string; message: string } }).error.code;
}

async function rejected(url: string, reason: string): Promise<number> {
  const metrics = await request('GET', `${url}/metrics`);
  const match = new RegExp(
    `^epush_rejected_requests_total\\{reason="${reason}"\\} (\\d+)`,
    'm',
  ).exec(metrics.text);
  return Number(match?.[1] ?? 0);
}

/** Closes `sockets` and waits until the server has seen them go. */
async function closeAll(sockets: Socket[]): Promise<void> {
  await Promise.all(
    sockets.map(
      (socket) =>
        new Promise<void>((resolve) => {
          socket.once('close', () => {
            resolve();
          });
          socket.destroy();
        }),
    ),
  );
  await sleep(100);
}

describe('--max-connections', () => {
  let node: EpushProcess;
  const idle: Socket[] = [];

  before(async () => {
    node = await startEpush(['--insecure-dev', '--max-connections', '5']);
  });
  after(async () => {
    for (const socket of idle) socket.destroy();
    await node.stop();
  });

  test('past the limit a connection gets 503 too_many_connections with Retry-After, and is closed', async () => {
    for (let i = 0; i < 4; i++) idle.push(await openSocket(node.port));
    await sleep(100);
    // 4 idle + this probe = 5: the node is full, readiness says so (the probe itself is served).
    const full = await exchange(node.port, GET('/readyz'));
    assert.equal(full.status, 503, full.body);
    assert.equal(errorCode(full), 'not_ready');
    assert.match(full.body, /connection limit/);

    idle.push(await openSocket(node.port));
    await sleep(100);
    const refused = await exchange(node.port, '');
    assert.equal(refused.status, 503);
    assert.match(refused.headers.get('content-type') ?? '', /^application\/json/);
    assert.equal(errorCode(refused), 'too_many_connections');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After');
    assert.equal(refused.headers.get('connection'), 'close');
    assert.ok(refused.closed);
    // A request sent at once is refused the same way (its bytes do not reset the answer away).
    const withRequest = await exchange(node.port, GET('/healthz'));
    assert.equal(withRequest.status, 503);
    assert.equal(errorCode(withRequest), 'too_many_connections');

    // One slot frees: a new connection is served again.
    await closeAll(idle.splice(0, 1));
    const served = await exchange(node.port, GET('/healthz'));
    assert.equal(served.status, 200, served.body);
    // Two free: readiness is green again.
    await closeAll(idle.splice(0, 1));
    const ready = await exchange(node.port, GET('/readyz'));
    assert.equal(ready.status, 200, ready.body);

    await closeAll(idle.splice(0));
    assert.equal(await rejected(node.url, 'too_many_connections'), 2);
    assert.match(node.stderr(), /connection limit reached/);
  });
});

describe('--max-connections-per-ip', () => {
  let node: EpushProcess;
  const open: Socket[] = [];

  before(async () => {
    node = await startEpush(['--insecure-dev', '--max-connections-per-ip', '2']);
  });
  after(async () => {
    for (const socket of open) socket.destroy();
    await node.stop();
  });

  test('caps the connections of one peer address, not of another', async () => {
    open.push(await openSocket(node.port, '127.0.0.1'), await openSocket(node.port, '127.0.0.1'));
    await sleep(100);
    const refused = await exchange(node.port, GET('/healthz'), '127.0.0.1');
    assert.equal(refused.status, 429, refused.body);
    assert.equal(errorCode(refused), 'rate_limited');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1, 'Retry-After');
    assert.equal(refused.headers.get('connection'), 'close');

    const other = await exchange(node.port, GET('/healthz'), '127.0.0.2');
    assert.equal(other.status, 200, other.body);

    await closeAll(open.splice(0, 1));
    const again = await exchange(node.port, GET('/healthz'), '127.0.0.1');
    assert.equal(again.status, 200, again.body);

    await closeAll(open.splice(0));
    assert.equal(await rejected(node.url, 'per_ip_connection_limit'), 1);
  });
});

/** One keep-alive connection that sends listens and reads their Content-Length answers. */
class ListenSocket {
  private input = Buffer.alloc(0);
  private wake: (() => void) | null = null;

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.input = Buffer.concat([this.input, chunk]);
      this.wake?.();
    });
    socket.on('error', () => undefined);
  }

  static async open(port: number): Promise<ListenSocket> {
    return new ListenSocket(await openSocket(port));
  }

  /** `chunked`: sent with Transfer-Encoding, which the accept loop leaves to node:http. */
  async listen(
    pushIds: string[],
    cursor: string | null,
    chunked = false,
  ): Promise<{ status: number; body: string }> {
    const body = JSON.stringify({ pushIds, cursor });
    const framing = chunked
      ? `Transfer-Encoding: chunked\r\n\r\n${Buffer.byteLength(body).toString(16)}\r\n${body}\r\n0\r\n\r\n`
      : `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    this.socket.write(
      `POST /push/listen HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n${framing}`,
    );
    for (;;) {
      const text = this.input.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end >= 0) {
        const length = Number(/content-length: *(\d+)/i.exec(text.slice(0, end))?.[1] ?? NaN);
        if (text.length >= end + 4 + length) {
          const raw = this.input.subarray(0, end + 4 + length).toString('utf8');
          this.input = this.input.subarray(end + 4 + length);
          const parsed = parseRawResponse(raw);
          return { status: parsed.status, body: parsed.body };
        }
      }
      await new Promise<void>((resolve) => {
        this.wake = resolve;
      });
    }
  }

  close(): void {
    this.socket.destroy();
  }
}

describe('listen storms, header and payload limits', () => {
  const STORM_REQUESTS = 3;
  const BACKOFF_MS = 400;
  let node: EpushProcess;
  let client: Api;

  before(async () => {
    node = await startEpush([
      '--insecure-dev',
      '--hold-seconds',
      '5',
      '--listen-storm-requests',
      String(STORM_REQUESTS),
      '--listen-storm-interval-ms',
      '300',
      '--listen-storm-backoff-ms',
      String(BACKOFF_MS),
      '--max-header-kb',
      '2',
      '--max-payload-kb',
      '1',
    ]);
    client = api(node.url);
  });
  after(async () => {
    await node.stop();
  });

  for (const path of ['the accept loop', 'node:http'] as const) {
    test(`a client that keeps re-polling from a stale cursor is slowed to one answer per back-off, losing nothing (${path})`, async () => {
      const before = await rejected(node.url, 'listen_storm');
      const pushId = await client.mintPushId();
      const socket = await ListenSocket.open(node.port);
      const chunked = path === 'node:http';
      // A backlog behind a cursor: every listen from that cursor is answered at once.
      const start = JSON.parse(
        (await socket.listen(['never-minted-storm-start-xx'], null, chunked)).body,
      ) as { cursor: string };
      for (let n = 0; n < 3; n++) await client.notifyPushId(pushId, { n });
      const answeredAt: number[] = [];
      interface Answer {
        notifications: { payload: { n: number } }[];
        cursor: string;
      }
      let last: Answer | null = null;
      for (let i = 0; i < STORM_REQUESTS + 4; i++) {
        const answer = await socket.listen([pushId], start.cursor, chunked);
        assert.equal(answer.status, 200, answer.body);
        last = JSON.parse(answer.body) as Answer;
        answeredAt.push(Date.now());
      }
      // The same backlog every time, nothing lost or reordered.
      assert.deepEqual(
        last?.notifications.map((n) => n.payload.n),
        [0, 1, 2],
      );
      const gaps = answeredAt.slice(1).map((at, i) => at - (answeredAt[i] as number));
      const slowed = gaps.slice(STORM_REQUESTS + 1);
      assert.ok(slowed.length > 0, `gaps ${gaps.join(',')}`);
      for (const gap of slowed) assert.ok(gap >= BACKOFF_MS * 0.8, `gaps ${gaps.join(',')}`);
      assert.ok((await rejected(node.url, 'listen_storm')) > before);
      // Resuming from the answer's cursor is progress: served at once again.
      await client.notifyPushId(pushId, { n: 3 });
      const resumed = await socket.listen([pushId], last.cursor, chunked);
      assert.deepEqual(
        (
          JSON.parse(resumed.body) as { notifications: { payload: { n: number } }[] }
        ).notifications.map((n) => n.payload.n),
        [3],
      );
      socket.close();
    });

    test(`a busy client whose cursor advances with every answer is never slowed (${path})`, async () => {
      const before = await rejected(node.url, 'listen_storm');
      const pushId = await client.mintPushId();
      const socket = await ListenSocket.open(node.port);
      const COUNT = 30;
      const received: number[] = [];
      let cursor: string | null = null;
      const publisher = (async () => {
        await sleep(150);
        for (let n = 0; n < COUNT; n++) {
          await client.notifyPushId(pushId, { n });
          await sleep(10);
        }
      })();
      let first = true;
      while (received.length < COUNT) {
        const answer = await socket.listen([pushId], cursor, path === 'node:http' && first);
        first = false;
        assert.equal(answer.status, 200, answer.body);
        const body = JSON.parse(answer.body) as {
          notifications: { payload: { n: number } }[];
          cursor: string;
        };
        cursor = body.cursor;
        for (const notification of body.notifications) received.push(notification.payload.n);
      }
      await publisher;
      socket.close();
      assert.deepEqual(
        received,
        Array.from({ length: COUNT }, (_, n) => n),
      );
      assert.equal(await rejected(node.url, 'listen_storm'), before, 'no listen was delayed');
    });
  }

  test('a delayed listen without a cursor still gets what was published during its delay', async () => {
    const pushId = await client.mintPushId();
    const socket = await ListenSocket.open(node.port);
    // Storm with empty answers: a never-minted push ID is answered at once (expired).
    const stranger = 'never-minted-storm-xxxxxxxx';
    for (let i = 0; i <= STORM_REQUESTS; i++) await socket.listen([stranger], null);
    const started = Date.now();
    const delayed = socket.listen([pushId], null);
    await sleep(100);
    await client.notifyPushId(pushId, { during: 'delay' });
    const answer = await delayed;
    const body = JSON.parse(answer.body) as { notifications: { payload: unknown }[] };
    assert.ok(Date.now() - started >= BACKOFF_MS * 0.8, 'delayed');
    assert.deepEqual(
      body.notifications.map((n) => n.payload),
      [{ during: 'delay' }],
    );
    socket.close();
  });

  test('a request head over --max-header-kb gets 431 JSON, on the listen path and on node:http', async () => {
    const pad = `X-Pad: ${'a'.repeat(3000)}\r\n`;
    const listenBody = '{"pushIds":["never-minted-xxxxxxxxxxxx"],"cursor":null}';
    const listen = await exchange(
      node.port,
      `POST /push/listen HTTP/1.1\r\nHost: x\r\n${pad}Content-Length: ${listenBody.length}\r\n\r\n${listenBody}`,
    );
    assert.equal(listen.status, 431, listen.body);
    assert.equal(errorCode(listen), 'headers_too_large');
    const cluster = await exchange(
      node.port,
      `GET /api/cluster HTTP/1.1\r\nHost: x\r\n${pad}Connection: close\r\n\r\n`,
    );
    assert.equal(cluster.status, 431, cluster.body);
    assert.equal(errorCode(cluster), 'headers_too_large');
    // Under the limit both are served.
    const small = await request('GET', `${node.url}/api/cluster`, {
      headers: { 'x-pad': 'a'.repeat(1000) },
    });
    assert.equal(small.status, 200, small.text);
    assert.ok((await rejected(node.url, 'headers_too_large')) >= 2);
  });

  test('a payload over --max-payload-kb gets 413', async () => {
    const pushId = await client.mintPushId();
    const fits = await client.call('POST', `/api/push-ids/${pushId}/notify`, {
      body: { payload: 'a'.repeat(1000) },
    });
    assert.equal(fits.status, 202, fits.text);
    const over = await client.call('POST', `/api/push-ids/${pushId}/notify`, {
      body: { payload: 'a'.repeat(1100) },
    });
    assert.equal(over.status, 413, over.text);
    assert.equal((over.body as { error: { code: string } }).error.code, 'payload_too_large');
    const farOver = await client.call('POST', `/api/groups/g/notify`, {
      body: { payload: 'a'.repeat(20_000) },
    });
    assert.equal(farOver.status, 413, farOver.text);
  });
});
