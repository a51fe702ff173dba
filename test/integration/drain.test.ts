/**
 * SIGTERM drains (docs/protocol.md): held listens are answered with `reconnect` and their cursor, no new
 * listener is taken, and the process exits 0 within --drain-seconds.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import {
  api,
  headCursor,
  listen,
  parseRawResponse,
  request,
  sleep,
  startEpush,
  type EpushProcess,
  type ErrorBody,
  type ListenAnswer,
} from '../support/epush-process.js';

const started: EpushProcess[] = [];

async function start(flags: string[]): Promise<EpushProcess> {
  const node = await startEpush(flags);
  started.push(node);
  return node;
}

/** A request whose headers are sent now and whose body is sent later (or never). */
interface SlowRequest {
  readonly socket: Socket;
  sendBody(): void;
  /** Everything received until the server closed the connection. */
  readonly response: Promise<string>;
}

function slowRequest(port: number, method: string, path: string, body: string): SlowRequest {
  const socket = connect({ port, host: '127.0.0.1' });
  socket.setEncoding('latin1');
  let received = '';
  socket.on('data', (chunk: string) => (received += chunk));
  const response = new Promise<string>((resolve) => {
    socket.on('close', () => {
      resolve(received);
    });
    socket.on('error', () => undefined);
  });
  socket.write(
    `${method} ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n`,
  );
  return {
    socket,
    sendBody: () => socket.write(body),
    response,
  };
}

describe('drain on SIGTERM', { concurrency: true }, () => {
  after(async () => {
    await Promise.all(started.map((node) => node.stop()));
  });

  test('held listens are answered with reconnect and a cursor, late listens too, readyz turns 503, and the node exits 0', async () => {
    const node = await start(['--insecure-dev', '--hold-seconds', '30', '--drain-seconds', '5']);
    const client = api(node.url);
    const [a, b, c, d] = await client.mintPushIds(4);
    const from = await headCursor(node.url);
    const heldListens = [
      listen(node.url, [a!]),
      listen(node.url, [b!, c!], from),
      listen(node.url, [d!], from),
    ];
    // A listen whose request is in flight when the drain starts: its body comes afterwards.
    const late = slowRequest(
      node.port,
      'POST',
      '/push/listen',
      JSON.stringify({ pushIds: [a!], cursor: null }),
    );
    // A readiness probe whose headers are completed only after the drain has started.
    const probe = connect({ port: node.port, host: '127.0.0.1' });
    probe.setEncoding('latin1');
    let probeReceived = '';
    probe.on('data', (chunk: string) => (probeReceived += chunk));
    probe.on('error', () => undefined);
    const probeClosed = new Promise<void>((resolve) =>
      probe.on('close', () => {
        resolve();
      }),
    );
    probe.write('GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n');
    await sleep(500);

    const sigterm = Date.now();
    const exit = node.terminate();
    const answers: (ListenAnswer & { ms: number })[] = await Promise.all(heldListens);
    const answeredAfter = Date.now() - sigterm;
    assert.ok(answeredAfter < 2000, `held listens answered ${answeredAfter} ms after SIGTERM`);
    for (const answer of answers) {
      assert.equal(answer.reconnect, true, JSON.stringify(answer));
      assert.deepEqual(answer.notifications, []);
      assert.equal(typeof answer.cursor, 'string');
      assert.ok(answer.cursor.length > 0);
    }

    // While draining, a new connection gets no listener: refused, or told to reconnect.
    try {
      const fresh = await listen(node.url, [b!], from);
      assert.equal(fresh.reconnect, true, `a new listen was taken: ${JSON.stringify(fresh)}`);
    } catch (error) {
      const code = (error as { cause?: { code?: string } }).cause?.code;
      assert.ok(
        code === 'ECONNREFUSED' || code === 'ECONNRESET' || code === 'UND_ERR_SOCKET',
        `unexpected failure ${String(error)} (${code ?? 'no code'})`,
      );
    }

    probe.write('\r\n');
    await probeClosed;
    const readiness = parseRawResponse(probeReceived);
    assert.equal(readiness.status, 503, `/readyz while draining: ${probeReceived}`);
    assert.equal((JSON.parse(readiness.body) as ErrorBody).error.code, 'not_ready');

    late.sendBody();
    const raw = parseRawResponse(await late.response);
    assert.equal(raw.status, 200, raw.body);
    const lateAnswer = JSON.parse(raw.body) as ListenAnswer;
    assert.equal(lateAnswer.reconnect, true, raw.body);
    assert.equal(typeof lateAnswer.cursor, 'string');

    const { code, signal, ms } = await exit;
    assert.equal(signal, null);
    assert.equal(code, 0, node.stderr());
    assert.ok(ms < 5000, `exit took ${ms} ms, longer than --drain-seconds 5`);
  });

  test('a request that never completes does not keep the node past --drain-seconds', async () => {
    const node = await start(['--insecure-dev', '--drain-seconds', '1']);
    const stuck = slowRequest(node.port, 'POST', '/api/push-ids', '{"count": 1}');
    await sleep(300);
    const { code, ms } = await node.terminate();
    assert.equal(code, 0, node.stderr());
    assert.ok(ms >= 900, `exited after ${ms} ms, before --drain-seconds 1 let the request finish`);
    assert.ok(ms < 3000, `exit took ${ms} ms with --drain-seconds 1`);
    await stuck.response; // the node closed it
  });

  test('a node with nothing held exits 0 promptly on SIGTERM, and stops answering', async () => {
    const node = await start(['--insecure-dev', '--drain-seconds', '10']);
    assert.equal((await request('GET', `${node.url}/healthz`)).status, 200);
    const { code, ms } = await node.terminate();
    assert.equal(code, 0, node.stderr());
    assert.ok(ms < 2000, `exit took ${ms} ms with nothing to drain`);
    await assert.rejects(request('GET', `${node.url}/healthz`));
  });
});
