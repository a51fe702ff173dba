/**
 * The accept loop that serves `POST /push/listen` off the socket and hands every other
 * connection to node:http: both kinds of request on one keep-alive socket in either order,
 * pipelining, the framings it leaves to node:http, CORS, timeouts and disconnects.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { api, startEpush, type Api, type EpushProcess } from '../support/epush-process.js';

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A raw keep-alive HTTP/1.1 client: writes bytes, reads Content-Length responses in order. */
class RawClient {
  private readonly socket: Socket;
  private input = Buffer.alloc(0);
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.input = Buffer.concat([this.input, chunk]);
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  static open(port: number): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = connect(port, '127.0.0.1', () => {
        resolve(new RawClient(socket));
      });
      socket.once('error', reject);
    });
  }

  write(text: string): void {
    this.socket.write(text);
  }

  close(): void {
    this.socket.destroy();
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }

  private async waitFor(timeoutMs: number): Promise<void> {
    await Promise.race([
      new Promise<void>((resolve) => this.waiters.push(resolve)),
      sleep(timeoutMs),
    ]);
  }

  /** The next complete response, or null when none came within `timeoutMs`. */
  async response(timeoutMs = 5000): Promise<RawResponse | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.input.indexOf('\r\n\r\n');
      if (end >= 0) {
        const [statusLine, ...lines] = this.input.toString('latin1', 0, end).split('\r\n');
        const headers: Record<string, string> = {};
        for (const line of lines) {
          const colon = line.indexOf(':');
          headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
        }
        const length = Number(headers['content-length'] ?? 0);
        if (this.input.length >= end + 4 + length) {
          const body = this.input.toString('utf8', end + 4, end + 4 + length);
          this.input = this.input.subarray(end + 4 + length);
          return { status: Number(statusLine?.split(' ')[1]), headers, body };
        }
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.closed) return null;
      await this.waitFor(left);
    }
  }

  /** Resolves true once the server closed the connection, false after `timeoutMs`. */
  async closedWithin(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await this.waitFor(deadline - Date.now());
    return this.closed;
  }
}

function listenRequest(body: unknown, headers: Record<string, string> = {}): string {
  const text = JSON.stringify(body);
  const extra = Object.entries(headers)
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return `POST /push/listen HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n${extra}Content-Length: ${Buffer.byteLength(text)}\r\n\r\n${text}`;
}

function getRequest(path: string): string {
  return `GET ${path} HTTP/1.1\r\nHost: t\r\n\r\n`;
}

describe('the accept loop (long-poll off the socket, the rest to node:http)', () => {
  let node: EpushProcess;
  let client: Api;
  let strict: EpushProcess;

  before(async () => {
    [node, strict] = await Promise.all([
      startEpush(['--insecure-dev', '--hold-seconds', '2']),
      startEpush([
        '--insecure-dev',
        '--hold-seconds',
        '30',
        '--headers-timeout-seconds',
        '1',
        '--body-timeout-seconds',
        '2',
        '--idle-timeout-seconds',
        '2',
        '--cors-origins',
        'https://app.example.com',
      ]),
    ]);
    client = api(node.url);
  });

  after(async () => {
    await Promise.all([node?.stop(), strict?.stop()]);
  });

  test('a listen, then an API call, then a listen again on one keep-alive socket', async () => {
    const [pushId] = await client.mintPushIds(1);
    const raw = await RawClient.open(node.port);
    raw.write(listenRequest({ pushIds: [pushId], cursor: null }));
    await sleep(200);
    await client.notifyPushId(pushId!, { n: 1 });
    const first = await raw.response();
    assert.equal(first?.status, 200);
    assert.equal(first?.headers['content-type'], 'application/json; charset=utf-8');
    const answer = JSON.parse(first.body) as {
      notifications: { payload: unknown }[];
      cursor: string;
    };
    assert.deepEqual(
      answer.notifications.map((n) => n.payload),
      [{ n: 1 }],
    );
    raw.write(getRequest('/healthz'));
    const health = await raw.response();
    assert.equal(health?.status, 200, 'the API call on the socket the listen used');
    raw.write(listenRequest({ pushIds: [pushId], cursor: answer.cursor }));
    await sleep(200);
    await client.notifyPushId(pushId!, { n: 2 });
    const second = await raw.response();
    assert.equal(second?.status, 200, 'a listen on the socket node:http took over');
    assert.deepEqual(
      (JSON.parse(second.body) as { notifications: { payload: unknown }[] }).notifications.map(
        (n) => n.payload,
      ),
      [{ n: 2 }],
    );
    raw.close();
  });

  test('a listen pipelined behind nothing and an API call pipelined behind a held listen are answered in order', async () => {
    const [pushId] = await client.mintPushIds(1);
    const raw = await RawClient.open(node.port);
    raw.write(listenRequest({ pushIds: [pushId], cursor: null }) + getRequest('/healthz'));
    assert.equal(await raw.response(500), null, 'the listen is held, the API call waits behind it');
    await client.notifyPushId(pushId!, 'x');
    const listenAnswer = await raw.response();
    assert.equal(listenAnswer?.status, 200);
    assert.match(listenAnswer.body, /"payload":"x"/);
    const health = await raw.response();
    assert.equal(health?.status, 200);
    assert.doesNotMatch(health.body, /notifications/);
    raw.close();
  });

  test('framings the loop leaves to node:http are still served: chunked body, Connection: close, HTTP/1.0', async () => {
    const [pushId] = await client.mintPushIds(1);
    const body = JSON.stringify({ pushIds: [pushId], cursor: null });
    const chunked = await RawClient.open(node.port);
    chunked.write(
      `POST /push/listen HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
    );
    const held = await chunked.response(4000); // answered empty by the 2 s hold
    assert.equal(held?.status, 200);
    assert.match(held.body, /"notifications":\[\]/);
    chunked.close();

    const closing = await RawClient.open(node.port);
    closing.write(listenRequest({ pushIds: [pushId], cursor: null }, { Connection: 'close' }));
    const answered = await closing.response(4000);
    assert.equal(answered?.status, 200);
    assert.ok(await closing.closedWithin(2000), 'Connection: close is honoured');

    const old = await RawClient.open(node.port);
    old.write(
      `POST /push/listen HTTP/1.0\r\nHost: t\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
    assert.equal((await old.response(4000))?.status, 200);
  });

  test('bad listen bodies get the JSON error, and the socket serves the next request', async () => {
    const raw = await RawClient.open(node.port);
    raw.write(listenRequest({ pushIds: 'nope' }));
    const refused = await raw.response();
    assert.equal(refused?.status, 400);
    assert.equal(
      (JSON.parse(refused.body) as { error: { code: string } }).error.code,
      'invalid_body',
    );
    raw.write('POST /push/listen HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\n{"pus');
    const invalid = await raw.response();
    assert.equal(invalid?.status, 400);
    assert.match(invalid.body, /invalid_json/);
    raw.write(getRequest('/healthz'));
    assert.equal((await raw.response())?.status, 200);
    raw.close();
  });

  test('a listen body over the limit is refused with 413 (by node:http)', async () => {
    const raw = await RawClient.open(node.port);
    raw.write(
      `POST /push/listen HTTP/1.1\r\nHost: t\r\nContent-Length: 20000\r\n\r\n${'x'.repeat(20000)}`,
    );
    const refused = await raw.response();
    assert.equal(refused?.status, 413);
    assert.match(refused.body, /body_too_large/);
    raw.close();
  });

  test('CORS: an allowed origin is echoed, another one is refused (403) without it', async () => {
    const strictApi = api(strict.url);
    const [pushId] = await strictApi.mintPushIds(1);
    // Another origin may not listen at all: 403 before the body is looked at.
    for (const [origin, allowed, status] of [
      ['https://app.example.com', 'https://app.example.com', 400],
      ['https://evil.example.com', undefined, 403],
    ] as const) {
      const raw = await RawClient.open(strict.port);
      raw.write(listenRequest({ pushIds: [pushId, 'x'], cursor: null }, { Origin: origin }));
      const refused = await raw.response();
      assert.equal(refused?.status, status);
      assert.equal(refused?.headers['access-control-allow-origin'], allowed);
      assert.equal(refused?.headers.vary, 'Origin');
      raw.close();
    }
  });

  test('a request head that stalls is answered 408 after the headers timeout and closed', async () => {
    const raw = await RawClient.open(strict.port);
    raw.write('POST /push/listen HTTP/1.1\r\nHost: t\r\n');
    const answer = await raw.response(4000);
    assert.equal(answer?.status, 408);
    assert.match(answer.body, /request_timeout/);
    assert.ok(await raw.closedWithin(1000));
  });

  test('a body that stalls is answered 408 after the body timeout', async () => {
    const raw = await RawClient.open(strict.port);
    raw.write('POST /push/listen HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n{"pushIds":');
    const started = Date.now();
    const answer = await raw.response(5000);
    assert.equal(answer?.status, 408);
    assert.ok(Date.now() - started >= 1000, 'not before the body timeout');
  });

  test('an idle keep-alive socket is closed after the idle timeout; a held listen is not', async () => {
    const strictApi = api(strict.url);
    const [pushId] = await strictApi.mintPushIds(1);
    const idle = await RawClient.open(strict.port);
    const held = await RawClient.open(strict.port);
    held.write(listenRequest({ pushIds: [pushId], cursor: null }));
    assert.ok(await idle.closedWithin(4500), 'the idle socket was closed');
    assert.equal(held.closed, false, 'the held listen stays');
    await strictApi.notifyPushId(pushId!, 1);
    assert.equal((await held.response())?.status, 200);
    held.close();
  });

  test('open sockets and memory per connection are in the metrics', async () => {
    const gauge = async (name: string): Promise<number> => {
      const text = await (await fetch(`${node.url}/metrics`)).text();
      const match = new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text);
      assert.ok(match, `${name} is exported`);
      return Number(match[1]);
    };
    const before = await gauge('epush_open_sockets');
    const idle = await Promise.all(Array.from({ length: 50 }, () => RawClient.open(node.port)));
    await sleep(200);
    assert.ok((await gauge('epush_open_sockets')) >= before + 50);
    const perConnection = await gauge('epush_memory_per_connection_bytes');
    assert.ok(perConnection >= 0 && perConnection < 10 * 1024 * 1024, String(perConnection));
    for (const client of idle) client.close();
    await sleep(300);
    assert.ok((await gauge('epush_open_sockets')) <= before);
  });

  test('a listener that disconnects while held is dropped from the connection count', async () => {
    const [pushId] = await client.mintPushIds(1);
    const count = async (): Promise<number> => {
      const text = await (await fetch(`${node.url}/metrics`)).text();
      const match = /^epush_connections\{transport="long-poll"\} (\d+)/m.exec(text);
      return Number(match?.[1] ?? 0);
    };
    const baseline = await count();
    const raw = await RawClient.open(node.port);
    raw.write(listenRequest({ pushIds: [pushId], cursor: null }, { 'X-Probe': 'drop' }));
    await sleep(200);
    assert.equal(await count(), baseline + 1, 'held');
    raw.close();
    await sleep(300);
    assert.equal(await count(), baseline, 'dropped');
  });
});
