/**
 * Three (`nodes`) epush nodes from dist sharing one private redis-server, for the failover bench.
 * Listeners are push IDs in the group `failover`; a publish is a group notify with payload
 * `{"seq": k}`; a listen is `POST /push/listen` with the last cursor (bench/peers' epush long-poll).
 */
import { join } from 'node:path';
import type { WriteStream } from 'node:fs';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import { ApiClient } from '../lib/http-client.js';
import { onStdoutLine, openLog, spawnPinned, stopWithin, type Spawned } from '../lib/processes.js';
import { getText, type Cluster, type PublishRequest, type StopKind } from './cluster.js';
import { epushLongPoll } from '../peers/listen-epush-longpoll.js';

const GROUP = 'failover';

export interface EpushOptions {
  readonly root: string;
  readonly nodes: number;
  readonly logDir: string;
  readonly runId: string;
  readonly logLevel: string;
  readonly holdSeconds: number;
  readonly drainSeconds: number;
}

interface Node {
  readonly spawned: Spawned;
  readonly port: number;
  readonly log: WriteStream;
}

function startNode(options: EpushOptions, redisUrl: string, index: number): Promise<Node> {
  const logPath = join(options.logDir, `${options.runId}-epush-node${index}.log`);
  const log = openLog(logPath);
  const spawned = spawnPinned(
    null,
    [
      process.execPath,
      join(options.root, 'dist/src/cli/main.js'),
      'start',
      '--port',
      '0',
      '--insecure-dev',
      '--backplane',
      redisUrl,
      '--node-id',
      `failover-${index}`,
      '--log-level',
      options.logLevel,
      '--hold-seconds',
      String(options.holdSeconds),
      '--drain-seconds',
      String(options.drainSeconds),
      '--idle-timeout-seconds',
      '600',
    ],
    { cwd: options.root, log },
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      spawned.child.kill('SIGKILL');
      reject(new Error(`epush node ${index} did not start within 15 s (log: ${logPath})`));
    }, 15_000);
    onStdoutLine(spawned, (line) => {
      const match = /listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve({ spawned, port: Number(match[1]), log });
      }
    });
    void spawned.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`epush node ${index} exited (${code ?? signal}) before it was ready`));
    });
  });
}

export class EpushCluster implements Cluster {
  readonly target = 'epush';
  readonly protocol = epushLongPoll;
  readonly channel = GROUP;
  readonly logs: string[];

  private constructor(
    private readonly redis: PrivateRedis,
    private readonly nodes: Node[],
    readonly ports: readonly number[],
    readonly description: string,
    logs: string[],
  ) {
    this.logs = logs;
  }

  static async start(options: EpushOptions): Promise<EpushCluster> {
    const redis = await PrivateRedis.start();
    const started = await Promise.allSettled(
      Array.from({ length: options.nodes }, (_, i) => startNode(options, redis.url, i)),
    );
    const nodes = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
    const failed = started.find((s) => s.status === 'rejected');
    if (failed) {
      for (const node of nodes) node.spawned.child.kill('SIGKILL');
      await redis.stop();
      throw failed.reason;
    }
    const logs = Array.from({ length: options.nodes }, (_, i) =>
      join(options.logDir, `${options.runId}-epush-node${i}.log`),
    );
    return new EpushCluster(
      redis,
      nodes,
      nodes.map((n) => n.port),
      `${options.nodes} epush nodes (dist, --backplane redis, --hold-seconds ${options.holdSeconds}, ` +
        `--drain-seconds ${options.drainSeconds}), one private redis-server (no persistence)`,
      logs,
    );
  }

  async prepareListeners(n: number): Promise<string[]> {
    const port = this.ports[0] ?? 0;
    const api = await ApiClient.open('127.0.0.1', port);
    const keys: string[] = [];
    try {
      while (keys.length < n) {
        const count = Math.min(1000, n - keys.length);
        const response = await api.request('POST', '/api/push-ids', { count });
        if (response.status !== 201) throw new Error(`mint: ${response.status} ${response.body}`);
        keys.push(...(JSON.parse(response.body) as { pushIds: string[] }).pushIds);
      }
    } finally {
      api.close();
    }
    const clients = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        ApiClient.open('127.0.0.1', this.ports[i % this.ports.length] ?? port),
      ),
    );
    try {
      let next = 0;
      await Promise.all(
        clients.map(async (client) => {
          while (next < keys.length) {
            const key = keys[next++] ?? '';
            const response = await client.request('PUT', `/api/groups/${GROUP}/members/${key}`);
            if (response.status !== 204) {
              throw new Error(`member: ${response.status} ${response.body}`);
            }
          }
        }),
      );
    } finally {
      for (const client of clients) client.close();
    }
    return keys;
  }

  publishRequest(seq: number): PublishRequest {
    return { method: 'POST', path: `/api/groups/${GROUP}/notify`, body: { payload: { seq } } };
  }

  acceptedId(status: number, body: string): string | null {
    if (status !== 202) return null;
    return (JSON.parse(body) as { id: string }).id;
  }

  /** Pids of the node processes (for CPU accounting by other scenarios). */
  pids(): number[] {
    return this.nodes.map((node) => node.spawned.pid);
  }

  /** Port of the private redis-server the nodes share. */
  get redisPort(): number {
    return this.redis.port;
  }

  async heldListeners(): Promise<number | null> {
    let total = 0;
    for (const [i, port] of this.ports.entries()) {
      if (this.nodes[i]?.spawned.child.exitCode !== null) continue;
      const text = await getText(port, '/metrics');
      const match = text === null ? null : /^epush_listeners(?:\{[^}]*\})? (\S+)$/m.exec(text);
      if (!match) return null;
      total += Number(match[1]);
    }
    return total;
  }

  stopSignal(kind: StopKind): string {
    return kind === 'kill' ? 'SIGKILL' : 'SIGTERM (drain)';
  }

  stopNode(index: number, kind: StopKind): void {
    const node = this.nodes[index];
    if (!node) throw new Error(`no node ${index}`);
    process.kill(node.spawned.pid, kind === 'kill' ? 'SIGKILL' : 'SIGTERM');
  }

  async waitExit(index: number, ms: number): Promise<boolean> {
    const node = this.nodes[index];
    if (!node) return true;
    let timer: NodeJS.Timeout | undefined;
    const exited = await Promise.race([
      node.spawned.exited.then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(() => {
          resolve(false);
        }, ms);
      }),
    ]);
    clearTimeout(timer);
    return exited;
  }

  async shutdown(): Promise<void> {
    await Promise.all(this.nodes.map((node) => stopWithin(node.spawned, 3000, 'SIGKILL')));
    for (const node of this.nodes) node.log.end();
    await this.redis.stop();
  }
}
