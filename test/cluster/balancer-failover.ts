/**
 * Issue 5's failover scenario, run behind each real load balancer (nginx, HAProxy, Apache httpd)
 * from its template in deploy/: 3 nodes over a private persistent Redis, CLIENTS long-poll
 * clients through the balancer, continuous publishing (a group notification to every client
 * every GROUP_EVERY_MS plus direct notifications in between), and three events:
 *
 *   1. SIGKILL one node; it comes back on the same port a moment later (a crash and restart);
 *   2. SIGTERM another: it drains and must exit 0 within --drain-seconds;
 *   3. Redis SIGKILLed and restarted under the cluster.
 *
 * Every notification the API accepted (202) must reach every client it was addressed to, once.
 * The recovery time of an event is when every client has again received a notification
 * published after it, measured from the event; the same figure at a quiet moment (the
 * baseline) shows what publishing cadence and delivery alone cost.
 */
import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import { api, sleep, startEpush, until, type EpushProcess } from '../support/epush-process.js';
import { Balancer, type BalancerKind } from '../support/load-balancer.js';

const KEY = 'failover-test-key-0123456789';
const CLIENTS = 300;
const GROUP = 'everyone';
const GROUP_EVERY_MS = 200;
const DIRECT_EVERY_MS = 50;
const DRAIN_SECONDS = 5;
/** How long publishing goes on after each event before the next. */
const SETTLE_MS = 3000;

interface ListenBody {
  notifications: { id: string }[];
  cursor: string;
  reconnect?: boolean;
  reset?: boolean;
  expired?: string[];
}

interface Accepted {
  readonly id: string;
  /** Addressees: every client for a group notification, one for a direct one. */
  readonly to: readonly number[] | 'all';
  /** When the notify request was sent. */
  readonly sentAt: number;
}

const failureKinds = new Map<string, number>();
/** Every duplicate with the client's last answers, to tell how it happened. */
const duplicateReports: string[] = [];
/** The scenario's current phase, to tell which event a failure belongs to. */
let phase = 'start';
function countFailure(why: string): void {
  const key = `${phase}: ${why}`;
  failureKinds.set(key, (failureKinds.get(key) ?? 0) + 1);
}

/**
 * 300 clients re-polling at once through global fetch cost the test process more CPU than the
 * cluster under test, which would skew every timing: plain node:http with a keep-alive agent.
 */
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

interface Answer<T> {
  readonly status: number;
  readonly text: string;
  readonly body: T | undefined;
}

function post<T>(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Answer<T>> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
          ...headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: T | undefined;
          try {
            parsed = JSON.parse(text) as T;
          } catch {
            parsed = undefined;
          }
          resolve({ status: res.statusCode ?? 0, text, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** One browser-like long-poll loop through the balancer. */
class Client {
  readonly arrivals = new Map<string, number>();
  duplicates = 0;
  /** Answers that were not 200 (502, 503, 504…) or network errors: what a browser would see. */
  failures = 0;
  resets = 0;
  expired = 0;
  private cursor: string | null = null;
  private failuresInRow = 0;
  /** The last answers (phase, cursor sent -> cursor received, ids), for failure reports. */
  private readonly history: string[] = [];
  private reconnectsInRow = 0;
  /** Answers flagged `reconnect` (a draining node, or one cut from its backplane). */
  reconnects = 0;

  constructor(
    readonly index: number,
    readonly pushId: string,
  ) {}

  async run(url: string, running: () => boolean): Promise<void> {
    while (running()) {
      let networkError = '';
      const answer = await post<ListenBody>(`${url}/push/listen`, {
        pushIds: [this.pushId],
        cursor: this.cursor,
      }).catch((error: unknown) => {
        networkError = (error as { code?: string }).code ?? String(error);
        return null;
      });
      if (!running()) break;
      if (answer?.status !== 200 || !Array.isArray(answer.body?.notifications)) {
        this.failures += 1;
        this.failuresInRow += 1;
        const why = answer
          ? `${answer.status} ${answer.text.slice(0, 80)}`
          : `network ${networkError}`;
        countFailure(why);
        // Like the browser client: full-jitter exponential backoff, so a cluster-wide outage
        // does not turn into a retry storm.
        await sleep(Math.random() * Math.min(4000, 100 * 2 ** this.failuresInRow));
        continue;
      }
      this.failuresInRow = 0;
      // Like the browser client: the first `reconnect` in a row is followed at once, the next
      // ones back off (a node cut from its backplane answers every listen with it).
      if (answer.body.reconnect) {
        this.reconnectsInRow += 1;
        this.reconnects += 1;
        if (this.reconnectsInRow > 1) {
          await sleep(Math.random() * Math.min(4000, 100 * 2 ** this.reconnectsInRow));
        }
      } else this.reconnectsInRow = 0;
      const now = Date.now();
      const ids = answer.body.notifications.map((n) => n.id);
      this.history.push(
        `${phase} ${this.cursor ?? 'null'} -> ${answer.body.cursor} [${ids.join(',')}]`,
      );
      if (this.history.length > 8) this.history.shift();
      for (const id of ids) {
        if (this.arrivals.has(id)) {
          this.duplicates += 1;
          duplicateReports.push(
            `client ${this.index}: ${id} again; last answers:\n  ${this.history.join('\n  ')}`,
          );
        } else this.arrivals.set(id, now);
      }
      if (answer.body.reset) this.resets += 1;
      if (answer.body.expired?.length) this.expired += 1;
      this.cursor = answer.body.cursor;
    }
  }
}

/** Publishes until stopped; keeps what the API accepted. */
class Publisher {
  readonly accepted: Accepted[] = [];
  refused = 0;
  private running = true;
  private readonly loops: Promise<void>[];

  constructor(url: string, clients: readonly Client[]) {
    const notify = async (path: string, to: Accepted['to']): Promise<void> => {
      const sentAt = Date.now();
      const answer = await post<{ id: string }>(
        url + path,
        { payload: { sentAt } },
        { authorization: `Bearer ${KEY}` },
      ).catch(() => null);
      if (answer?.status === 202 && answer.body) {
        this.accepted.push({ id: answer.body.id, to, sentAt });
      } else {
        this.refused += 1;
        const why = answer ? `api ${answer.status} ${answer.text.slice(0, 80)}` : 'api network';
        countFailure(why);
      }
    };
    this.loops = [
      this.every(GROUP_EVERY_MS, () => notify(`/api/groups/${GROUP}/notify`, 'all')),
      this.every(DIRECT_EVERY_MS, (n) => {
        const target = clients[n % clients.length]!;
        return notify(`/api/push-ids/${target.pushId}/notify`, [target.index]);
      }),
    ];
  }

  private async every(ms: number, work: (n: number) => Promise<void>): Promise<void> {
    for (let n = 0; this.running; n++) {
      const started = Date.now();
      await work(n);
      await sleep(Math.max(0, ms - (Date.now() - started)));
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    await Promise.all(this.loops);
  }
}

/**
 * Milliseconds from `at` until every client had received a group notification sent at or after
 * `at`; NaN when some client never did.
 */
function recoveryAfter(at: number, accepted: readonly Accepted[], clients: readonly Client[]) {
  const after = accepted.filter((a) => a.to === 'all' && a.sentAt >= at).map((a) => a.id);
  let worst = 0;
  for (const client of clients) {
    let first = Infinity;
    for (const id of after) first = Math.min(first, client.arrivals.get(id) ?? Infinity);
    worst = Math.max(worst, first - at);
  }
  return Number.isFinite(worst) ? worst : NaN;
}

export function describeFailoverBehind(kind: BalancerKind): void {
  describe(`${CLIENTS} long-poll clients behind ${kind} (deploy/ template), 3 nodes over Redis`, () => {
    let redis: PrivateRedis;
    const nodes: EpushProcess[] = [];
    let balancer: Balancer;

    const nodeFlags = (id: string, port: number): string[] => [
      '--backplane',
      redis.url,
      '--node-id',
      id,
      '--api-key',
      KEY,
      '--port',
      String(port),
      '--hold-seconds',
      '20',
      '--heartbeat-seconds',
      '1',
      '--drain-seconds',
      String(DRAIN_SECONDS),
    ];

    before(async () => {
      redis = await PrivateRedis.start({ persistent: true });
      for (const id of ['a', 'b', 'c']) nodes.push(await startEpush(nodeFlags(id, 0)));
      balancer = await Balancer.start(
        kind,
        nodes.map((node) => node.port),
      ).catch(async (error: unknown) => {
        // e.g. the balancer's package is missing: stop what started, or this file never exits.
        await Promise.all(nodes.map((node) => node.stop()));
        await redis.stop();
        throw error;
      });
    });

    after(async () => {
      await balancer.stop();
      await Promise.all(nodes.map((node) => node.stop()));
      await redis.stop();
    });

    test('SIGKILL, drain and a Redis restart lose no accepted notification and deliver none twice', async () => {
      const client = api(balancer.url, KEY);
      const pushIds: string[] = [];
      while (pushIds.length < CLIENTS) {
        pushIds.push(...(await client.mintPushIds(Math.min(100, CLIENTS - pushIds.length))));
      }
      for (let i = 0; i < CLIENTS; i += 50) {
        await Promise.all(pushIds.slice(i, i + 50).map((id) => client.addMember(GROUP, id)));
      }
      const clients = pushIds.map((pushId, index) => new Client(index, pushId));
      let listening = true;
      const loops = clients.map((c) => c.run(balancer.url, () => listening));
      const heldAllMs = await until(
        `the cluster holds all ${CLIENTS} listens`,
        async () => {
          // Counted on a node directly: the balancer may be the thing that is stuck.
          const seen = await api(nodes[2]!.url, KEY)
            .cluster()
            .catch(() => []);
          return seen.reduce((sum, node) => sum + node.connections, 0) >= CLIENTS;
        },
        20_000,
      );

      const publisher = new Publisher(balancer.url, clients);
      const events: Record<string, number> = {};
      await sleep(SETTLE_MS);
      phase = 'steady';
      events.baseline = Date.now();
      await sleep(SETTLE_MS);

      // 1. A crash: SIGKILL, then the node comes back on the same port.
      const [a, b] = nodes;
      phase = 'sigkill';
      events.sigkill = Date.now();
      await a!.stop();
      await sleep(1000);
      nodes[0] = await startEpush(nodeFlags('a2', a!.port));
      await sleep(SETTLE_MS);

      // 2. A rolling-deploy step: SIGTERM drains, the process exits 0 in time.
      phase = 'drain';
      events.drain = Date.now();
      const drained = await b!.terminate();
      assert.equal(drained.code, 0, `the drained node exited with ${drained.code}`);
      assert.ok(
        drained.ms <= DRAIN_SECONDS * 1000 + 1000,
        `drain took ${drained.ms} ms, more than --drain-seconds ${DRAIN_SECONDS}`,
      );
      await sleep(SETTLE_MS);

      // 3. The broker goes away and comes back (persistent: what was accepted was stored).
      phase = 'redisRestart';
      const redisDown = Date.now();
      await redis.restart();
      events.redisRestart = Date.now();
      // Asked of each node directly: how long the nodes themselves take to serve again.
      const nodesReadyMs = await until(
        'every node is ready again after the Redis restart',
        async () => {
          const ready = await Promise.all(
            [nodes[0]!, nodes[2]!].map((node) =>
              fetch(`${node.url}/readyz`).then(
                (r) => r.ok,
                () => false,
              ),
            ),
          );
          return ready.every(Boolean);
        },
        15_000,
        20,
      );
      await sleep(SETTLE_MS + 2000 - nodesReadyMs);

      await publisher.stop();
      const accepted = publisher.accepted;
      const missing = (): number =>
        accepted.reduce((sum, n) => {
          const to = n.to === 'all' ? clients : n.to.map((i) => clients[i]!);
          return sum + to.filter((c) => !c.arrivals.has(n.id)).length;
        }, 0);
      const settled = await until('every accepted notification has arrived', () =>
        Promise.resolve(missing() === 0),
      ).catch(() => -1);
      listening = false;
      agent.destroy(); // ends the held listens now rather than at the hold time
      await Promise.all(loops);

      const deliveries = accepted.reduce(
        (sum, n) => sum + (n.to === 'all' ? CLIENTS : n.to.length),
        0,
      );
      const sum = (pick: (c: Client) => number): number =>
        clients.reduce((total, c) => total + pick(c), 0);
      const recovery = Object.fromEntries(
        Object.entries(events).map(([name, at]) => [name, recoveryAfter(at, accepted, clients)]),
      );
      const report = {
        balancer: kind,
        clients: CLIENTS,
        heldAllMs,
        accepted: accepted.length,
        refused: publisher.refused,
        deliveries,
        lost: missing(),
        duplicates: sum((c) => c.duplicates),
        clientVisibleFailures: sum((c) => c.failures),
        reconnects: sum((c) => c.reconnects),
        resets: sum((c) => c.resets),
        recoveryMs: recovery,
        drainMs: drained.ms,
        redisDownMs: events.redisRestart - redisDown,
        nodesReadyMs,
        settledMs: settled,
        failureKinds: Object.fromEntries(failureKinds),
      };
      console.log(`failover ${JSON.stringify(report)}`);

      if (duplicateReports.length > 0) console.log(duplicateReports.slice(0, 3).join('\n'));
      if (report.lost > 0) console.log(`${kind} log:\n${balancer.log().slice(-5000)}`);
      // Publishing went on through every event (how much depends on the machine's speed).
      for (const [name, at] of Object.entries(events)) {
        const after = accepted.filter((a) => a.to === 'all' && a.sentAt >= at).length;
        assert.ok(after >= 3, `only ${after} group notifications accepted after ${name}`);
      }
      assert.equal(report.lost, 0, `${report.lost} of ${deliveries} deliveries lost`);
      assert.equal(report.duplicates, 0, 'notifications delivered twice');
      assert.equal(report.resets, 0, 'a client was told to reset (its cursor was lost)');
      assert.equal(
        sum((c) => c.expired),
        0,
        'a push ID expired',
      );
      for (const [name, ms] of Object.entries(recovery)) {
        assert.ok(!Number.isNaN(ms), `after ${name}, some client never received again`);
      }
    });
  });
}
