/**
 * Several nginx + nchan instances sharing one private redis-server (bench/failover/nchan.conf.template),
 * the peer of the failover bench. Listeners are long-poll subscribers of one channel; a publish
 * is `POST /pub/failover` with body `{"seq": k}`; a re-poll carries If-Modified-Since and
 * If-None-Match from the last answer, on whichever instance the subscriber is now.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../testbed/free-port.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import { ApiClient } from '../lib/http-client.js';
import { spawnPinned, stopWithin, type Spawned } from '../lib/processes.js';
import { childPids } from '../lib/procfs.js';
import { sleep } from '../lib/stats.js';
import {
  getText,
  pidGone,
  signalPid,
  type Cluster,
  type PublishRequest,
  type StopKind,
} from './cluster.js';
import { nchanLongPoll } from '../peers/listen-nchan.js';

const CHANNEL = 'failover';
const NGINX = '/usr/sbin/nginx';
const MODULE = '/usr/lib/nginx/modules/ngx_nchan_module.so';
const TEMPLATE = fileURLToPath(new URL('./nchan.conf.template', import.meta.url));

export interface NchanOptions {
  readonly nodes: number;
  readonly logDir: string;
  readonly runId: string;
}

interface Instance {
  readonly spawned: Spawned;
  readonly port: number;
  readonly dir: string;
  /** Worker pids, read after start (a SIGKILL of the master alone leaves them serving). */
  workers: number[];
}

async function startInstance(
  options: NchanOptions,
  redisPort: number,
  index: number,
): Promise<Instance> {
  const dir = mkdtempSync(join(tmpdir(), `epush-failover-nchan${index}-`));
  for (const sub of ['tmp_body', 'tmp_proxy', 'tmp_fcgi', 'tmp_uwsgi', 'tmp_scgi']) {
    mkdirSync(join(dir, sub));
  }
  const port = await freePort();
  const config = readFileSync(TEMPLATE, 'utf8')
    .replaceAll('@DIR@', dir)
    .replaceAll('@PORT@', String(port))
    .replaceAll('@REDIS_PORT@', String(redisPort));
  writeFileSync(join(dir, 'nginx.conf'), config);
  const spawned = spawnPinned(null, [NGINX, '-p', `${dir}/`, '-c', join(dir, 'nginx.conf')], {});
  const deadline = Date.now() + 10_000;
  for (;;) {
    if (spawned.child.exitCode !== null) {
      const log = existsSync(join(dir, 'error.log'))
        ? readFileSync(join(dir, 'error.log'), 'utf8')
        : '';
      throw new Error(`nginx ${index} exited at start: ${log.slice(-500)}`);
    }
    try {
      const api = await ApiClient.open('127.0.0.1', port, 1000);
      const response = await api.request('GET', '/nchan_status', undefined, 2000);
      api.close();
      if (response.status === 200) break;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) {
      await stopWithin(spawned, 2000, 'SIGKILL');
      throw new Error(`nginx ${index} did not answer on ${port} within 10 s`);
    }
    await sleep(50);
  }
  return { spawned, port, dir, workers: childPids(spawned.pid) };
}

export class NchanCluster implements Cluster {
  readonly target = 'nchan';
  readonly protocol = nchanLongPoll;
  readonly channel = CHANNEL;
  readonly logs: string[] = [];

  private constructor(
    private readonly redis: PrivateRedis,
    private readonly instances: Instance[],
    readonly ports: readonly number[],
    readonly description: string,
    private readonly options: NchanOptions,
  ) {}

  /** Why nchan cannot run here (missing package), or null. */
  static missing(): string | null {
    if (!existsSync(NGINX)) return `${NGINX} is missing (Debian package nginx)`;
    if (!existsSync(MODULE)) return `${MODULE} is missing (Debian package libnginx-mod-nchan)`;
    return null;
  }

  static async start(options: NchanOptions): Promise<NchanCluster> {
    const redis = await PrivateRedis.start();
    const instances: Instance[] = [];
    try {
      for (let i = 0; i < options.nodes; i++)
        instances.push(await startInstance(options, redis.port, i));
    } catch (error) {
      await Promise.all(instances.map((instance) => stopInstance(instance)));
      await redis.stop();
      throw error;
    }
    const version = spawnSync(NGINX, ['-v'], { encoding: 'utf8' })
      .stderr.trim()
      .replace('nginx version: ', '');
    return new NchanCluster(
      redis,
      instances,
      instances.map((i) => i.port),
      `${options.nodes} × ${version} + nchan 1.3.6 (1 worker each, \`nchan_redis_pass\` to one private redis-server, ` +
        'long-poll with `nchan_longpoll_multipart_response on`, `worker_shutdown_timeout 10s`)',
      options,
    );
  }

  prepareListeners(n: number): Promise<string[]> {
    return Promise.resolve(Array.from({ length: n }, (_, i) => `sub-${i}`));
  }

  publishRequest(seq: number): PublishRequest {
    return { method: 'POST', path: `/pub/${CHANNEL}`, body: { seq } };
  }

  acceptedId(status: number): string | null {
    return status === 201 || status === 202 ? '' : null;
  }

  /** Pids of every nginx master and its workers (for CPU accounting by other scenarios). */
  pids(): number[] {
    return this.instances.flatMap((instance) => [
      instance.spawned.pid,
      ...childPids(instance.spawned.pid),
    ]);
  }

  /** Port of the private redis-server the instances share. */
  get redisPort(): number {
    return this.redis.port;
  }

  async heldListeners(): Promise<number | null> {
    let total = 0;
    for (const instance of this.instances) {
      if (instance.spawned.child.exitCode !== null) continue;
      const text = await getText(instance.port, '/nchan_status');
      const match = text === null ? null : /^subscribers: (\d+)$/m.exec(text);
      if (!match) return null;
      total += Number(match[1]);
    }
    return total;
  }

  stopSignal(kind: StopKind): string {
    return kind === 'kill' ? 'SIGKILL (master and worker)' : 'SIGQUIT (graceful)';
  }

  stopNode(index: number, kind: StopKind): void {
    const instance = this.instances[index];
    if (!instance) throw new Error(`no nginx ${index}`);
    instance.workers = [...new Set([...instance.workers, ...childPids(instance.spawned.pid)])];
    if (kind === 'kill') {
      // The master first, so that it cannot start a new worker; then its workers.
      signalPid(instance.spawned.pid, 'SIGKILL');
      for (const pid of instance.workers) signalPid(pid, 'SIGKILL');
    } else {
      signalPid(instance.spawned.pid, 'SIGQUIT');
    }
  }

  async waitExit(index: number, ms: number): Promise<boolean> {
    const instance = this.instances[index];
    if (!instance) return true;
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (instance.spawned.child.exitCode !== null || instance.spawned.child.signalCode !== null) {
        if (instance.workers.every(pidGone)) return true;
      }
      await sleep(50);
    }
    return false;
  }

  async shutdown(): Promise<void> {
    for (const [i, instance] of this.instances.entries()) {
      const log = join(instance.dir, 'error.log');
      if (existsSync(log)) {
        const copy = join(this.options.logDir, `${this.options.runId}-nchan${i}-error.log`);
        writeFileSync(copy, readFileSync(log));
        this.logs.push(copy);
      }
    }
    await Promise.all(this.instances.map((instance) => stopInstance(instance)));
    await this.redis.stop();
  }
}

async function stopInstance(instance: Instance): Promise<void> {
  instance.workers = [...new Set([...instance.workers, ...childPids(instance.spawned.pid)])];
  await stopWithin(instance.spawned, 3000, 'SIGTERM');
  for (const pid of instance.workers) if (!pidGone(pid)) signalPid(pid, 'SIGKILL');
  rmSync(instance.dir, { recursive: true, force: true });
}
