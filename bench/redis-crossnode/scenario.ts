/**
 * `npm run bench -- redis-crossnode`: what a Redis, NATS JetStream or ActiveMQ (STOMP) cluster
 * adds to delivery, side by side in one run.
 *
 * Two nodes share one private redis-server (A and B), two share one private nats-server with
 * JetStream (C and D), two share one private ActiveMQ over STOMP (E and F), and one runs alone
 * (M, memory backplane). A listener holds
 * `POST /push/listen` on B (or D); a direct notification is published on B (D) (same node), on
 * A (C) (cross-node), or on M with the listener on M (no backplane hop at all). Latency is
 * publish-request sent → listen answer parsed, measured in this process on one clock, one
 * notification at a time. Throughput: C keep-alive API connections publish as fast as they can
 * for T seconds through A (Redis), C (NATS) and M (memory). Every phase is bounded in time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import { PrivateNats } from '../../testbed/brokers/nats.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import { Args } from '../lib/args.js';
import { measuredFrom, writeBenchSection } from '../lib/docs.js';
import { ApiClient } from '../lib/http-client.js';
import { machineInfo, sourceInfo } from '../lib/machine.js';
import { distribution, round, sleep, type Distribution } from '../lib/stats.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const REDIS_USAGE = `npm run bench -- redis-crossnode [--rounds 1000] [--seconds 5] [--concurrency 16] [--no-docs]
`;

interface Node {
  readonly child: ChildProcess;
  readonly port: number;
}

function startNode(args: string[]): Promise<Node> {
  const child = spawn(
    process.execPath,
    [
      join(ROOT, 'dist/src/cli/main.js'),
      'start',
      '--port',
      '0',
      '--insecure-dev',
      '--log-level',
      'warn',
      '--hold-seconds',
      '60',
      ...args,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error('node did not start within 15 s'));
    }, 15_000);
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(chunk);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]) });
      }
    });
    child.once('exit', (code) => {
      reject(new Error(`node exited with ${code}`));
    });
  });
}

async function api(port: number): Promise<ApiClient> {
  const client = await ApiClient.open('127.0.0.1', port);
  return client;
}

async function mint(client: ApiClient): Promise<string> {
  const response = await client.request('POST', '/api/push-ids', { count: 1 });
  if (response.status !== 201) throw new Error(`mint: ${response.status} ${response.body}`);
  return (JSON.parse(response.body) as { pushIds: string[] }).pushIds[0]!;
}

/** One listen held on `listener`, then one notify on `publisher`: the latency of each round (ms). */
async function latency(
  publishPort: number,
  listenPort: number,
  rounds: number,
  deadline: number,
): Promise<number[]> {
  const publisher = await api(publishPort);
  const listener = await api(listenPort);
  const pushId = await mint(await api(listenPort));
  let cursor: string | null = null;
  const samples: number[] = [];
  for (let round = 0; round < rounds && Date.now() < deadline; round++) {
    const answer = listener.request('POST', '/push/listen', { pushIds: [pushId], cursor }, 10_000);
    await sleep(3); // let the listen register before publishing
    const publish = await publisher.request('POST', `/api/push-ids/${pushId}/notify`, {
      payload: round,
    });
    if (publish.status !== 202) throw new Error(`notify: ${publish.status} ${publish.body}`);
    const response = await answer;
    const body = JSON.parse(response.body) as { notifications: unknown[]; cursor: string };
    if (body.notifications.length !== 1)
      throw new Error(`expected one notification, got ${response.body}`);
    cursor = body.cursor;
    samples.push(response.doneAt - publish.sentAt);
  }
  publisher.close();
  listener.close();
  return samples;
}

/** Notifications per second accepted (202) by `port` with `concurrency` connections for `seconds`. */
async function throughput(port: number, concurrency: number, seconds: number): Promise<number> {
  const setup = await api(port);
  const pushId = await mint(setup);
  setup.close();
  const end = performance.now() + seconds * 1000;
  let accepted = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      const client = await api(port);
      while (performance.now() < end) {
        const response = await client.request('POST', `/api/push-ids/${pushId}/notify`, {
          payload: 'x',
        });
        if (response.status === 202) accepted += 1;
      }
      client.close();
    }),
  );
  return accepted / ((performance.now() - started) / 1000);
}

function row(name: string, d: Distribution): string {
  return `| ${name} | ${d.count} | ${round(d.p50, 2)} | ${round(d.p90, 2)} | ${round(d.p99, 2)} | ${round(d.max, 2)} |`;
}

export async function runRedisCrossnode(argv: readonly string[]): Promise<number> {
  const args = Args.parse(argv, {
    rounds: 'number',
    seconds: 'number',
    concurrency: 'number',
    docs: 'boolean',
  });
  const rounds = args.integer('rounds', 1000, 10, 100_000);
  const seconds = args.number('seconds', 5, 1, 60);
  const concurrency = args.integer('concurrency', 16, 1, 256);
  const startedAt = new Date();
  const deadline = startedAt.getTime() + 240_000;
  const redis = await PrivateRedis.start();
  const nats = await PrivateNats.start();
  const activemq = await PrivateActiveMq.start();
  const nodes: Node[] = [];
  try {
    // E starts first so that it is the STOMP sequencer (the first exclusive consumer).
    const e = await startNode(['--backplane', activemq.url, '--node-id', 'bench-e']);
    nodes.push(e);
    const [a, b, c, d, f, m] = await Promise.all([
      startNode(['--backplane', redis.url, '--node-id', 'bench-a']),
      startNode(['--backplane', redis.url, '--node-id', 'bench-b']),
      startNode(['--backplane', nats.url, '--node-id', 'bench-c']),
      startNode(['--backplane', nats.url, '--node-id', 'bench-d']),
      startNode(['--backplane', activemq.url, '--node-id', 'bench-f']),
      startNode(['--node-id', 'bench-m']),
    ]);
    nodes.push(a, b, c, d, f, m);
    // Warm-up: JIT and connections.
    await latency(a.port, b.port, 100, deadline);
    await latency(c.port, d.port, 100, deadline);
    await latency(e.port, f.port, 100, deadline);
    await latency(m.port, m.port, 100, deadline);
    const memory = distribution(await latency(m.port, m.port, rounds, deadline));
    const sameNode = distribution(await latency(b.port, b.port, rounds, deadline));
    const crossNode = distribution(await latency(a.port, b.port, rounds, deadline));
    const natsSameNode = distribution(await latency(d.port, d.port, rounds, deadline));
    const natsCrossNode = distribution(await latency(c.port, d.port, rounds, deadline));
    const stompSameNode = distribution(await latency(f.port, f.port, rounds, deadline));
    const stompCrossNode = distribution(await latency(e.port, f.port, rounds, deadline));
    const memoryRate = await throughput(m.port, concurrency, seconds);
    const redisRate = await throughput(a.port, concurrency, seconds);
    const natsRate = await throughput(c.port, concurrency, seconds);
    const stompRate = await throughput(f.port, concurrency, seconds);

    const machine = machineInfo();
    const source = sourceInfo(ROOT);
    const command =
      `npm run bench -- redis-crossnode ${argv.filter((x) => x !== '--no-docs').join(' ')}`.trim();
    const report = `### redis-crossnode — ${new Date().toISOString().slice(0, 10)}

Command: \`${command}\` (commit ${source.commit}${source.uncommitted.length > 0 ? ', with uncommitted changes' : ''}).
Machine: ${machine.nproc} × ${machine.cpuModel}, ${machine.memGiB} GiB, ${machine.kernel}, Node ${machine.node},
redis-server 7 (private, no persistence), nats-server 2.9 (private, JetStream, file storage), ActiveMQ 5.17 (private, STOMP with tcpNoDelay, KahaDB). Nodes, brokers and the generator share the machine's cores (not pinned).

Delivery latency, one notification at a time (ms, publish request sent → listen answer parsed):

| path | rounds | p50 | p90 | p99 | max |
| --- | --- | --- | --- | --- | --- |
${row('memory backplane, same node', memory)}
${row('Redis, publish and listen on the same node', sameNode)}
${row('Redis, publish on A, listen on B (cross-node)', crossNode)}
${row('NATS JetStream, publish and listen on the same node', natsSameNode)}
${row('NATS JetStream, publish on C, listen on D (cross-node)', natsCrossNode)}
${row('ActiveMQ over STOMP, publish and listen on F (not the sequencer)', stompSameNode)}
${row('ActiveMQ over STOMP, publish on E (the sequencer), listen on F (cross-node)', stompCrossNode)}

Added by crossing nodes through Redis: p50 **${round(crossNode.p50 - sameNode.p50, 2)} ms**, p99 ${round(crossNode.p99 - sameNode.p99, 2)} ms
(against the same-node Redis path); against the memory backplane: p50 ${round(crossNode.p50 - memory.p50, 2)} ms, p99 ${round(crossNode.p99 - memory.p99, 2)} ms.
Through NATS JetStream, against the memory backplane: p50 **${round(natsCrossNode.p50 - memory.p50, 2)} ms**, p99 ${round(natsCrossNode.p99 - memory.p99, 2)} ms.
Through ActiveMQ over STOMP, against the memory backplane: p50 **${round(stompCrossNode.p50 - memory.p50, 2)} ms**, p99 ${round(stompCrossNode.p99 - memory.p99, 2)} ms.

Publish throughput (${concurrency} keep-alive API connections, ${seconds} s, direct notifications, 202s per second):
memory **${Math.round(memoryRate)}/s**, Redis **${Math.round(redisRate)}/s**, NATS JetStream **${Math.round(natsRate)}/s**, ActiveMQ over STOMP (through F) **${Math.round(stompRate)}/s**.
`;
    process.stdout.write(report);
    if (args.boolean('docs', true)) {
      writeBenchSection(
        'redis-crossnode',
        `r${rounds}-c${concurrency}`,
        report,
        measuredFrom(source, startedAt),
      );
    }
    return 0;
  } finally {
    for (const node of nodes) node.child.kill('SIGKILL');
    await Promise.all([redis.stop(), nats.stop(), activemq.stop()]);
  }
}
