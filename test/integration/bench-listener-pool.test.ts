/**
 * The bench's listener pool (bench/peers/listener-pool.ts) with and without moves, against two
 * small real HTTP servers that answer `POST /push/listen` like epush nodes: a listener sent away
 * (`reconnect`), whose node dies, or whose listen goes unanswered moves to its next target and
 * listens on from its cursor there; without moves it stays on its node (what every other bench
 * generator gets); a listener whose every target refuses backs off and gives up. The nchan
 * long-poll protocol (no nginx here): a multipart answer delivers each message, and a 410 (a
 * graceful nginx stop) moves the listener on with its Last-Modified/Etag position.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, it } from 'node:test';
import { epushLongPoll } from '../../bench/peers/listen-epush-longpoll.js';
import { nchanLongPoll } from '../../bench/peers/listen-nchan.js';
import { ListenerPool, type PoolMove, type PoolOptions } from '../../bench/peers/listener-pool.js';
import { DEFAULT_HINTS } from '../../bench/peers/types.js';
import { freePort } from '../../testbed/free-port.js';

const PUSH_ID = 'bench-pool-listener';

interface Listen {
  /** epush: the listen's cursor (null: from now, or an nchan GET). */
  readonly cursor: string | null;
  /** nchan: the resume headers of the poll. */
  readonly ifModifiedSince: string | undefined;
  readonly res: ServerResponse;
}

/** A fake epush node: records every listen; the test answers them (or not). */
class FakeNode {
  readonly listens: Listen[] = [];
  private waiters: (() => void)[] = [];

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(): Promise<FakeNode> {
    const server = createServer({ keepAliveTimeout: 60_000 });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const node = new FakeNode(server, (server.address() as AddressInfo).port);
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      req.on('end', () => {
        const cursor = body === '' ? null : (JSON.parse(body) as { cursor: string | null }).cursor;
        node.listens.push({ cursor, ifModifiedSince: req.headers['if-modified-since'], res });
        for (const wake of node.waiters.splice(0)) wake();
      });
    });
    return node;
  }

  /** Resolves once `count` listens have arrived (fails the test after 5 s). */
  async listened(count: number): Promise<Listen> {
    const until = Date.now() + 5000;
    while (this.listens.length < count) {
      assert.ok(Date.now() < until, `${count} listens expected, ${this.listens.length} arrived`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
    return this.listens[count - 1]!;
  }

  static answer(listen: Listen, body: object): void {
    const text = JSON.stringify(body);
    // Content-Length, not chunked: the bench's raw response parser reads what epush sends.
    listen.res
      .writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(text),
      })
      .end(text);
  }

  /** An answer with its own status, headers and body (nchan's). */
  static reply(listen: Listen, status: number, headers: Record<string, string>, body = ''): void {
    listen.res
      .writeHead(status, { ...headers, 'content-length': Buffer.byteLength(body) })
      .end(body);
  }

  /** Dies: every connection reset, the port closed. */
  async kill(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
    });
  }
}

interface Seen {
  readonly moves: PoolMove[];
  readonly delivered: { payloads: readonly string[]; ids: readonly (string | null)[] }[];
  readonly errors: string[];
  readonly delays: number[];
  readonly counted: string[];
}

let pools: ListenerPool[] = [];
let nodes: FakeNode[] = [];

afterEach(async () => {
  for (const pool of pools) pool.destroy();
  await Promise.all(nodes.map((node) => node.kill().catch(() => undefined)));
  pools = [];
  nodes = [];
});

async function startNodes(): Promise<[FakeNode, FakeNode]> {
  const a = await FakeNode.start();
  const b = await FakeNode.start();
  nodes.push(a, b);
  return [a, b];
}

function pool(targets: readonly number[], moves: boolean, extra: Partial<PoolOptions> = {}) {
  const seen: Seen = { moves: [], delivered: [], errors: [], delays: [], counted: [] };
  const options: PoolOptions = {
    targets: () => targets,
    ...(moves
      ? {
          moves: {
            delayMs: (failures: number) => {
              seen.delays.push(failures);
              return failures === 0 ? 0 : 20;
            },
            requestTimeoutMs: 60_000,
          },
        }
      : {}),
    channel: 'unused',
    protocol: epushLongPoll,
    hints: { ...DEFAULT_HINTS, retryBaseMs: 20, retryMaxMs: 40 },
    identities: [PUSH_ID],
    sources: ['127.0.0.1'],
    concurrency: 4,
    maxReconnects: 10,
    onDelivered: (_i, payloads, ids) => {
      seen.delivered.push({ payloads, ids: ids ?? [] });
    },
    onError: (kind) => {
      seen.errors.push(kind);
    },
    count: (name) => {
      seen.counted.push(name);
    },
    onMoved: (_i, move) => {
      seen.moves.push(move);
    },
    ...extra,
  };
  const created = new ListenerPool(options);
  pools.push(created);
  return { pool: created, seen };
}

const NOTIFICATION = { id: 'n1', pushId: PUSH_ID, payload: { seq: 1 } };

describe('bench listener pool', () => {
  it('with moves, a listener answered `reconnect` listens on at its next target from its cursor', async () => {
    const [a, b] = await startNodes();
    const { pool: listeners, seen } = pool([a.port, b.port], true);
    await listeners.connectAll(() => undefined);
    FakeNode.answer(await a.listened(1), { notifications: [], cursor: 'c-1', reconnect: true });
    const moved = await b.listened(1);
    assert.equal(moved.cursor, 'c-1');
    assert.deepEqual(
      seen.moves.map((m) => [m.from, m.to, m.reason]),
      [[a.port, b.port, 'reconnect']],
    );
    assert.equal(listeners.portOf(0), b.port);
    FakeNode.answer(moved, { notifications: [NOTIFICATION], cursor: 'c-2' });
    assert.equal((await b.listened(2)).cursor, 'c-2');
    assert.deepEqual(seen.delivered.at(-1), { payloads: ['{"seq":1}'], ids: ['n1'] });
    assert.equal(a.listens.length, 1, 'it left the node that sent it away');
    assert.deepEqual(seen.errors, []);
  });

  it('without moves (every other generator), a `reconnect` answer is re-polled on the same node', async () => {
    const [a, b] = await startNodes();
    const { pool: listeners, seen } = pool([a.port, b.port], false);
    await listeners.connectAll(() => undefined);
    FakeNode.answer(await a.listened(1), { notifications: [], cursor: 'c-1', reconnect: true });
    assert.equal((await a.listened(2)).cursor, 'c-1');
    assert.equal(b.listens.length, 0);
    assert.deepEqual(seen.moves, []);
    assert.deepEqual(seen.counted, ['reconnectAnswers'], 'on the same socket: no reconnect');
  });

  it('with moves, a listener whose node dies moves at once to the next one', async () => {
    const [a, b] = await startNodes();
    const { pool: listeners, seen } = pool([a.port, b.port], true);
    await listeners.connectAll(() => undefined);
    FakeNode.answer(await a.listened(1), { notifications: [NOTIFICATION], cursor: 'c-1' });
    await a.listened(2);
    await a.kill();
    assert.equal((await b.listened(1)).cursor, 'c-1');
    assert.equal(seen.moves.length, 1);
    assert.equal(seen.moves[0]?.to, b.port);
    assert.notEqual(seen.moves[0]?.reason, 'reconnect');
    assert.deepEqual(seen.delays, [0], 'the first move after a good answer is immediate');
    assert.deepEqual(seen.errors, [], 'a dead node is what the failover bench measures');
  });

  it('with moves, an unanswered listen counts as a failure after requestTimeoutMs', async () => {
    const [a, b] = await startNodes();
    const { pool: listeners, seen } = pool([a.port, b.port], true, {
      moves: { delayMs: () => 0, requestTimeoutMs: 300 },
    });
    await listeners.connectAll(() => undefined);
    await a.listened(1);
    await b.listened(1);
    assert.equal(seen.moves[0]?.reason, 'timeout');
  });

  it('with moves, a listener no target accepts backs off, failure after failure, then gives up', async () => {
    const ports = [await freePort(), await freePort()];
    const { pool: listeners, seen } = pool(ports, true, { maxReconnects: 4 });
    await listeners.connectAll(() => undefined);
    const until = Date.now() + 5000;
    while (listeners.stats().failed === 0 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.equal(listeners.stats().failed, 1);
    assert.deepEqual(seen.delays, [0, 1, 2, 3], 'the back-off grows with failures in a row');
    assert.deepEqual(
      seen.moves.map((m) => m.to),
      [ports[1], ports[0], ports[1], ports[0]],
      'it goes round its targets',
    );
    assert.ok(seen.moves.every((m) => m.reason.startsWith('socket:')));
    assert.deepEqual(seen.errors, ['gave-up']);
  });
  it('with moves, nchan long-poll: a multipart answer delivers each message; a 410 moves it on with its position', async () => {
    const [a, b] = await startNodes();
    const { pool: listeners, seen } = pool([a.port, b.port], true, { protocol: nchanLongPoll });
    await listeners.connectAll(() => undefined);
    const parts = ['{"seq":1}', '{"seq":2}'];
    const multipart = parts.map((p) => `--XB\r\nContent-Type: text/plain\r\n\r\n${p}\r\n`).join('');
    FakeNode.reply(
      await a.listened(1),
      200,
      {
        'content-type': 'multipart/mixed; boundary=XB',
        'last-modified': 'Mon, 07 Dec 2026 01:00:00 GMT',
        etag: '7',
      },
      `${multipart}--XB--\r\n`,
    );
    assert.equal((await a.listened(2)).ifModifiedSince, 'Mon, 07 Dec 2026 01:00:00 GMT');
    assert.deepEqual(seen.delivered.at(-1)?.payloads, parts);
    // A graceful nginx stop answers held subscribers 410 Gone.
    FakeNode.reply(a.listens[1]!, 410, { connection: 'close' });
    assert.equal((await b.listened(1)).ifModifiedSince, 'Mon, 07 Dec 2026 01:00:00 GMT');
    assert.deepEqual(
      seen.moves.map((m) => [m.to, m.reason]),
      [[b.port, 'status:410']],
    );
    assert.deepEqual(seen.errors, []);
  });
});
