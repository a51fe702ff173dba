/**
 * A backplane connection that dies without a FIN or an RST (a host replaced behind the same
 * address, a lost NAT entry) heals by itself, for every network backplane (GitHub issue 16,
 * item 3). Per backplane: a private broker, a TcpFaultProxy in front of it, and two epush nodes
 * whose `--backplane` points at the proxy. A publisher notifies through both nodes the whole
 * time; then
 *
 * - a stall that ends (every connection holds its bytes, then the same connections carry on):
 *   readiness turns red, then green again within moments, nothing answered 202 is lost;
 * - the connections die for good while new ones pass: readiness turns red within 10 s, green
 *   again within 15 s (on new connections), no notify call outlives its 5 s timeout, a listen
 *   from the first cursor gets every notification answered 202, and a listener held on one node
 *   is woken by a notification published on the other.
 *
 * Each test prints a `silent-death {…}` line with the measured times.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import { PrivateNats } from '../../testbed/brokers/nats.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import {
  headCursor,
  listen,
  request,
  sleep,
  startEpush,
  until,
  type EpushProcess,
} from '../support/epush-process.js';
import { metricSample, requiredMetric } from '../support/metrics.js';
import { TcpFaultProxy } from '../support/tcp-fault-proxy.js';

const KEY = 'silent-death-key-0123456789';
/** The node's own command timeout (5 s) plus slack for a loaded 2-core machine. */
const NOTIFY_LIMIT_MS = 5000 + 1000;

interface Broker {
  readonly port: number;
  /** The `--backplane` URL for a node that reaches the broker at `address` (host:port). */
  backplaneUrl(address: string): string;
  stop(): Promise<void>;
}

interface Vendor {
  readonly name: string;
  readonly start: () => Promise<Broker>;
}

const VENDORS: readonly Vendor[] = [
  {
    name: 'Redis',
    start: async () => {
      const redis = await PrivateRedis.start();
      return {
        port: redis.port,
        backplaneUrl: (address) => `redis://${address}`,
        stop: () => redis.stop(),
      };
    },
  },
  {
    name: 'NATS JetStream',
    start: async () => {
      const nats = await PrivateNats.start();
      return {
        port: nats.port,
        backplaneUrl: (address) => `nats://${address}`,
        stop: () => nats.stop(),
      };
    },
  },
  {
    name: 'STOMP (ActiveMQ)',
    start: async () => {
      const broker = await PrivateActiveMq.start();
      const auth = `${encodeURIComponent(broker.user)}:${encodeURIComponent(broker.password)}`;
      return {
        port: broker.stompPort,
        backplaneUrl: (address) => `stomp://${auth}@${address}`,
        stop: () => broker.stop(),
      };
    },
  },
];

async function ready(node: EpushProcess): Promise<boolean> {
  const answer = await request('GET', `${node.url}/readyz`, {
    signal: AbortSignal.timeout(2000),
  }).catch(() => null);
  return answer?.status === 200;
}

async function listeners(node: EpushProcess): Promise<number> {
  return (await metricSample(node.url, 'epush_listeners')) ?? -1;
}

async function outages(node: EpushProcess): Promise<number> {
  return requiredMetric(node.url, 'epush_backplane_outages_total');
}

/** Publishers not stopped yet (a failed test leaves its own running; `after` stops it). */
const running = new Set<Publisher>();

/** Notifies one push ID through each node in turn, one call at a time, until stopped. */
class Publisher {
  readonly accepted: string[] = [];
  /** When each accepted notification was answered (Date.now()). */
  readonly acceptedAt: number[] = [];
  readonly refused = new Map<number, number>();
  slowestMs = 0;
  private running = true;
  private readonly done: Promise<void>;

  constructor(nodes: readonly EpushProcess[], pushId: string) {
    running.add(this);
    this.done = (async () => {
      for (let i = 0; this.running; i++) {
        const node = nodes[i % nodes.length]!;
        const started = Date.now();
        const answer = await request<{ id: string }>(
          'POST',
          `${node.url}/api/push-ids/${pushId}/notify`,
          {
            headers: { authorization: `Bearer ${KEY}` },
            body: { payload: { i } },
            // Far past the limit: a call that hangs shows as slow, it does not hang the test.
            signal: AbortSignal.timeout(NOTIFY_LIMIT_MS * 2),
          },
        ).catch(() => null);
        this.slowestMs = Math.max(this.slowestMs, Date.now() - started);
        const status = answer?.status ?? 0;
        if (status === 202 && answer) {
          this.accepted.push(answer.body.id);
          this.acceptedAt.push(Date.now());
        } else this.refused.set(status, (this.refused.get(status) ?? 0) + 1);
        await sleep(status === 202 ? 100 : 200);
      }
    })();
  }

  /**
   * Keeps publishing until a call answered 500 ms after `at` is accepted (or three call timeouts
   * pass; the test's assertion then reports it): a call sent before the healing may still be
   * waiting out its timeout when the link is back.
   */
  async acceptedAfter(at: number): Promise<void> {
    const deadline = Date.now() + NOTIFY_LIMIT_MS * 3;
    while (!this.acceptedAt.some((t) => t > at + 500) && Date.now() < deadline) await sleep(100);
  }

  async stop(): Promise<void> {
    this.running = false;
    running.delete(this);
    await this.done;
  }
}

/** Listens from `cursor` until every id in `expected` came (or 15 s pass); returns what came. */
async function collect(
  node: EpushProcess,
  pushId: string,
  cursor: string,
  expected: readonly string[],
): Promise<{ received: Set<string>; cursor: string }> {
  const received = new Set<string>();
  const deadline = Date.now() + 15_000;
  let at = cursor;
  while (Date.now() < deadline && !expected.every((id) => received.has(id))) {
    const answer = await listen(node.url, [pushId], at, { signal: AbortSignal.timeout(8000) });
    assert.notEqual(answer.reset, true, 'the cursor resumes (no reset)');
    for (const notification of answer.notifications) received.add(notification.id);
    at = answer.cursor;
  }
  return { received, cursor: at };
}

for (const vendor of VENDORS) {
  describe(`a ${vendor.name} connection that dies without closing`, () => {
    let broker: Broker;
    let proxy: TcpFaultProxy;
    let nodes: EpushProcess[] = [];

    before(async () => {
      broker = await vendor.start();
      proxy = await TcpFaultProxy.start('127.0.0.1', broker.port);
      // One at a time (the first STOMP node to subscribe becomes the sequencer).
      for (const id of ['n1', 'n2']) {
        nodes.push(
          await startEpush([
            '--backplane',
            broker.backplaneUrl(proxy.url),
            '--node-id',
            id,
            '--api-key',
            KEY,
            '--hold-seconds',
            '5',
            '--heartbeat-seconds',
            '1',
          ]),
        );
      }
    });

    after(async () => {
      await Promise.all([...running].map((publisher) => publisher.stop()));
      await Promise.all(nodes.map((node) => node.stop()));
      nodes = [];
      await proxy.stop();
      await broker.stop();
    });

    const bothReady = async (): Promise<boolean> =>
      (await Promise.all(nodes.map(ready))).every(Boolean);
    /**
     * Milliseconds until each node was seen red. A node that replaces its dead connection at
     * once is red for only milliseconds, less than one /readyz round trip on a busy machine:
     * its `epush_backplane_outages_total` going up past `before` (read before the fault) is seen
     * red too.
     */
    const eachRed = async (before: readonly number[]): Promise<number> =>
      Math.max(
        ...(await Promise.all(
          nodes.map((node, i) =>
            until(
              `${node.nodeId} is red`,
              async () => !(await ready(node)) || (await outages(node)) > before[i]!,
              10_000,
              25,
            ),
          ),
        )),
      );

    test('a stall that ends turns readiness red, then green again at once, and loses nothing answered 202', async () => {
      const [n1, n2] = nodes as [EpushProcess, EpushProcess];
      await until('both nodes are ready', bothReady, 30_000);
      const pushId = (
        await request<{ pushIds: string[] }>('POST', `${n1.url}/api/push-ids`, {
          headers: { authorization: `Bearer ${KEY}` },
        })
      ).body.pushIds[0]!;
      const from = await headCursor(n2.url);
      const publisher = new Publisher(nodes, pushId);
      await sleep(500);

      const outagesBefore = await Promise.all(nodes.map(outages));
      const stalledAt = Date.now();
      proxy.setMode('blackhole');
      const redMs = await eachRed(outagesBefore);
      proxy.setMode('pass');
      const greenMs = await until('both nodes are ready again', bothReady, 15_000);
      const healedAt = Date.now();
      await publisher.acceptedAfter(healedAt);
      await publisher.stop();

      const { received } = await collect(n2, pushId, from, publisher.accepted);
      const lost = publisher.accepted.filter((id) => !received.has(id));
      console.log(
        `silent-death ${JSON.stringify({
          backplane: vendor.name,
          fault: 'stall that ends',
          redAfterMs: redMs,
          greenAfterPassMs: greenMs,
          slowestNotifyMs: publisher.slowestMs,
          accepted: publisher.accepted.length,
          refused: Object.fromEntries(publisher.refused),
          lost: lost.length,
        })}`,
      );
      assert.deepEqual(lost, [], 'every notification answered 202 is delivered');
      assert.ok(
        publisher.acceptedAt.some((at) => at < stalledAt) &&
          publisher.acceptedAt.some((at) => at > healedAt),
        'notifications were accepted before and after the stall',
      );
      assert.ok(greenMs < 5000, `ready again ${greenMs} ms after the stall ended`);
      assert.ok(
        publisher.slowestMs <= NOTIFY_LIMIT_MS,
        `a notify call took ${publisher.slowestMs} ms`,
      );
    });

    test('connections that die for good are replaced: red within 10 s, green within 15 s, no notify past its timeout, nothing answered 202 lost', async () => {
      const [n1, n2] = nodes as [EpushProcess, EpushProcess];
      await until('both nodes are ready', bothReady, 30_000);
      const pushId = (
        await request<{ pushIds: string[] }>('POST', `${n1.url}/api/push-ids`, {
          headers: { authorization: `Bearer ${KEY}` },
        })
      ).body.pushIds[0]!;
      const from = await headCursor(n2.url);
      const publisher = new Publisher(nodes, pushId);
      await sleep(500);

      const outagesBefore = await Promise.all(nodes.map(outages));
      const killedAt = Date.now();
      const killed = proxy.killExistingSilently();
      const redMs = await eachRed(outagesBefore);
      const greenMs = await until('both nodes are ready again', bothReady, 15_000).catch(
        async (error: unknown) => {
          await publisher.stop();
          console.log(
            `silent-death ${JSON.stringify({
              backplane: vendor.name,
              fault: 'dead for good, new connections pass',
              connectionsKilled: killed,
              redAfterMs: redMs,
              greenAfterKillMs: null,
              slowestNotifyMs: publisher.slowestMs,
              accepted: publisher.accepted.length,
              refused: Object.fromEntries(publisher.refused),
            })}`,
          );
          throw error;
        },
      );
      const healedAt = Date.now();
      const healedMs = healedAt - killedAt;
      await publisher.acceptedAfter(healedAt);
      await publisher.stop();
      const accepted = publisher.accepted;

      // Every 202 is in the log: a listen from the first cursor on either node gets them all.
      const onN2 = await collect(n2, pushId, from, accepted);
      const onN1 = await collect(n1, pushId, from, accepted);
      const lost = accepted.filter((id) => !onN2.received.has(id) || !onN1.received.has(id));

      // The live fan-out works again: a listener held on n2 is woken by a notify through n1.
      const held = listen(n2.url, [pushId], onN2.cursor, { signal: AbortSignal.timeout(8000) });
      await until('the listen is held on n2', async () => (await listeners(n2)) >= 1);
      const sentAt = Date.now();
      const id = (
        await request<{ id: string }>('POST', `${n1.url}/api/push-ids/${pushId}/notify`, {
          headers: { authorization: `Bearer ${KEY}` },
        })
      ).body.id;
      const woken = await held;
      const crossNodeMs = Date.now() - sentAt;

      console.log(
        `silent-death ${JSON.stringify({
          backplane: vendor.name,
          fault: 'dead for good, new connections pass',
          connectionsKilled: killed,
          redAfterMs: redMs,
          greenAfterKillMs: healedMs,
          greenAfterRedMs: greenMs,
          slowestNotifyMs: publisher.slowestMs,
          accepted: accepted.length,
          refused: Object.fromEntries(publisher.refused),
          lost: lost.length,
          crossNodeMs,
          newConnections: proxy.openConnections,
        })}`,
      );
      assert.ok(killed >= 2, `the nodes' connections were killed (${killed})`);
      assert.ok(redMs <= 10_000, `red after ${redMs} ms`);
      assert.ok(healedMs <= 15_000, `green again ${healedMs} ms after the connections died`);
      assert.ok(
        publisher.slowestMs <= NOTIFY_LIMIT_MS,
        `a notify call took ${publisher.slowestMs} ms`,
      );
      assert.deepEqual(lost, [], 'every notification answered 202 is delivered on both nodes');
      assert.ok(
        publisher.acceptedAt.some((at) => at < killedAt) &&
          publisher.acceptedAt.some((at) => at > healedAt),
        'notifications were accepted before and after the fault',
      );
      assert.deepEqual(
        woken.notifications.map((n) => n.id),
        [id],
        'the listener held on n2 is woken by the notification published on n1',
      );
    });
  });
}
