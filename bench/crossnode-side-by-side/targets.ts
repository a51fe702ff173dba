/**
 * The two clusters of the cross-node bench, each two nodes sharing one private redis-server:
 * epush (two nodes from dist, `--backplane redis://…`) and nginx + nchan (two instances with
 * `nchan_redis_pass`), started by the failover bench's helpers (bench/failover/epush-cluster.ts,
 * bench/failover/nchan-cluster.ts and its nchan.conf.template).
 */
import { spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import { EpushCluster } from '../failover/epush-cluster.js';
import { NchanCluster } from '../failover/nchan-cluster.js';
import { getText } from '../failover/cluster.js';
import { ApiClient } from '../lib/http-client.js';
import { epushLanes, nchanLanes, type LaneProtocol } from './lanes.js';

export type TargetName = 'epush' | 'nchan';

export interface Target {
  readonly name: TargetName;
  readonly protocol: LaneProtocol;
  /** Processes, versions and settings, for the report. */
  readonly description: string;
  /** Node A (publisher in the cross-node phase) and node B (every listener). */
  readonly ports: readonly [number, number];
  /** `count` fresh listener keys (push IDs minted through the API, or channel names). */
  keys(count: number, phase: string): Promise<string[]>;
  /** Listens (subscribers) the node on `port` holds now, or null when it does not say. */
  held(port: number): Promise<number | null>;
  /** Pids of the cluster's server processes and of its redis-server. */
  pids(): number[];
  shutdown(): Promise<void>;
}

/** `process_id` of the redis-server on `port` (INFO server), or null. */
export function redisPid(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    const done = (pid: number | null): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(pid);
    };
    const timer = setTimeout(() => {
      done(null);
    }, 2000);
    socket.setEncoding('utf8');
    socket.on('connect', () => socket.write('INFO server\r\n'));
    socket.on('data', (chunk: string) => {
      text += chunk;
      const match = /process_id:(\d+)/.exec(text);
      if (match) done(Number(match[1]));
    });
    socket.on('error', () => {
      done(null);
    });
  });
}

function metricValue(text: string | null, pattern: RegExp): number | null {
  const match = text === null ? null : pattern.exec(text);
  return match ? Number(match[1]) : null;
}

export function versions(): { nginx: string; nchan: string; redis: string } {
  const nginx = spawnSync('/usr/sbin/nginx', ['-v'], { encoding: 'utf8' });
  const nchan = spawnSync('dpkg-query', ['-W', '-f', '${Version}', 'libnginx-mod-nchan'], {
    encoding: 'utf8',
  });
  const redis = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return {
    nginx: (nginx.stderr ?? '').trim().replace('nginx version: ', '') || '?',
    nchan: nchan.status === 0 ? `libnginx-mod-nchan ${nchan.stdout.trim()}` : '?',
    redis: /v=(\S+)/.exec(redis.stdout ?? '')?.[1] ?? '?',
  };
}

export interface StartOptions {
  readonly serverRoot: string;
  readonly logDir: string;
  readonly runId: string;
}

export async function startEpush(options: StartOptions): Promise<Target> {
  const cluster = await EpushCluster.start({
    root: options.serverRoot,
    nodes: 2,
    logDir: options.logDir,
    runId: `${options.runId}-epush`,
    logLevel: 'warn',
    holdSeconds: 30,
    drainSeconds: 1,
  });
  const redis = await redisPid(cluster.redisPort);
  const [a, b] = cluster.ports;
  if (a === undefined || b === undefined) throw new Error('epush: two nodes expected');
  return {
    name: 'epush',
    protocol: epushLanes,
    description:
      '2 epush nodes (dist, `--backplane redis://…`, `--hold-seconds 30`, 1 process each) sharing one private redis-server',
    ports: [a, b],
    async keys(count) {
      const api = await ApiClient.open('127.0.0.1', a);
      try {
        const response = await api.request('POST', '/api/push-ids', { count });
        if (response.status !== 201) throw new Error(`mint: ${response.status} ${response.body}`);
        return (JSON.parse(response.body) as { pushIds: string[] }).pushIds;
      } finally {
        api.close();
      }
    },
    async held(port) {
      return metricValue(
        await getText(port, '/metrics', 2000),
        /^epush_listeners(?:\{[^}]*\})? (\S+)$/m,
      );
    },
    pids: () => [...cluster.pids(), ...(redis === null ? [] : [redis])],
    shutdown: () => cluster.shutdown(),
  };
}

export async function startNchan(options: StartOptions): Promise<Target> {
  const missing = NchanCluster.missing();
  if (missing !== null) throw new Error(`nchan cannot run: ${missing}`);
  const cluster = await NchanCluster.start({
    nodes: 2,
    logDir: options.logDir,
    runId: `${options.runId}-nchan`,
  });
  const redis = await redisPid(cluster.redisPort);
  const [a, b] = cluster.ports;
  if (a === undefined || b === undefined) throw new Error('nchan: two instances expected');
  const v = versions();
  return {
    name: 'nchan',
    protocol: nchanLanes,
    description:
      `2 × ${v.nginx} + nchan (${v.nchan}), 1 worker each, \`nchan_redis_pass\` to one shared private redis-server ` +
      '(bench/failover/nchan.conf.template: long-poll, multipart answers, resume by If-Modified-Since / If-None-Match)',
    ports: [a, b],
    keys(count, phase) {
      return Promise.resolve(Array.from({ length: count }, (_, i) => `xn${phase}${i}`));
    },
    async held(port) {
      return metricValue(await getText(port, '/nchan_status', 2000), /^subscribers: (\d+)$/m);
    },
    pids: () => [...cluster.pids(), ...(redis === null ? [] : [redis])],
    shutdown: () => cluster.shutdown(),
  };
}
