/**
 * The server held-max measures: epush (`--workers W`, the memory backplane relayed over IPC) or
 * nginx + nchan (W workers, `reuseport`), started with the 20,000 fd limit, ready once it prints
 * its port; what it holds, and how one notification is published to every listener.
 */
import { freePort } from '../../testbed/free-port.js';
import { ApiClient } from '../lib/http-client.js';
import { onStdoutLine, openLog, spawnPinned, type Spawned } from '../lib/processes.js';
import { childPids } from '../lib/procfs.js';
import { sleep } from '../lib/stats.js';
import type { Preparation } from '../longpoll-fanout/scenario.js';
import { NGINX, writeNchanConfig } from './nchan.js';
import type { Target } from './types.js';
import { NOTIFY_GROUP, nowUs } from './run-support.js';

export interface ServerUnderTest {
  readonly target: Target;
  readonly spawned: Spawned;
  readonly port: number;
  readonly argv: readonly string[];
  /** The spawned process and its children. */
  pids(): number[];
  /** What the server says it holds (sum over workers), when it can tell. */
  held(): Promise<number | null>;
  /**
   * One notification to every listener: `id` names it in the logs, `key` is the payload the
   * listeners receive (what the generators record deliveries by).
   */
  publish(
    roundNo: number,
  ): Promise<{ status: number; id: string; key: string; rttMs: number; sentUs: number }>;
  close(): void;
}

export function waitForLine(
  spawned: Spawned,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  return new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms`));
    }, timeoutMs);
    onStdoutLine(spawned, (line) => {
      const match = pattern.exec(line);
      if (match) {
        clearTimeout(timer);
        resolveLine(match);
      }
    });
    void spawned.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited before it was ready (code ${code}, signal ${signal})`));
    });
  });
}

export async function startEpush(
  prepared: Preparation,
  workers: number,
  canarySeconds: number | null,
  logFile: string,
): Promise<ServerUnderTest> {
  const argv = [
    process.execPath,
    prepared.cli,
    'start',
    '--port',
    '0',
    '--insecure-dev',
    '--workers',
    String(workers),
    '--hold-seconds',
    '600',
    '--push-id-ttl',
    '3600',
    '--retention-seconds',
    '3600',
    '--log-level',
    'warn',
    '--idle-timeout-seconds',
    '900',
    '--headers-timeout-seconds',
    '600',
    '--body-timeout-seconds',
    '900',
    '--drain-seconds',
    '5',
    ...(canarySeconds === null ? [] : ['--canary-seconds', String(canarySeconds)]),
  ];
  const spawned = spawnPinned(null, argv, { cwd: prepared.serverRoot, log: openLog(logFile) });
  const match = await waitForLine(spawned, /^epush listening on (http:\/\/\S+)/, 60_000);
  const port = Number(new URL(match[1]!).port);
  const api = await ApiClient.open('127.0.0.1', port);
  return {
    target: 'epush',
    spawned,
    port,
    argv,
    pids: () => [spawned.pid, ...childPids(spawned.pid)],
    held: async () => {
      // Each worker is a node; /api/cluster gives the answering one live, the others as of
      // their last heartbeat.
      const answer = await api.request('GET', '/api/cluster');
      if (answer.status !== 200) return null;
      const body = JSON.parse(answer.body) as { nodes?: { connections?: number }[] };
      return (body.nodes ?? []).reduce((sum, node) => sum + (node.connections ?? 0), 0);
    },
    publish: async (roundNo) => {
      const sentUs = nowUs();
      const answer = await api.request(
        'POST',
        `/api/groups/${NOTIFY_GROUP}/notify`,
        { payload: `round-${roundNo}` },
        120_000,
      );
      let id = '';
      try {
        const parsed = (JSON.parse(answer.body) as { id?: unknown }).id;
        id = typeof parsed === 'string' ? parsed : '';
      } catch {
        id = '';
      }
      return {
        status: answer.status,
        id,
        key: `round-${roundNo}`,
        rttMs: answer.doneAt - answer.sentAt,
        sentUs,
      };
    },
    close: () => {
      api.close();
    },
  };
}

export async function startNchan(
  workers: number,
  dir: string,
  logFile: string,
): Promise<ServerUnderTest> {
  const port = await freePort();
  const conf = writeNchanConfig(dir, port, workers);
  const argv = [NGINX, '-p', dir, '-c', conf];
  const spawned = spawnPinned(null, argv, { log: openLog(logFile) });
  let api: ApiClient | null = null;
  for (let i = 0; i < 100 && api === null; i++) {
    await sleep(100);
    if (spawned.child.exitCode !== null) throw new Error(`nginx exited: see ${logFile}`);
    api = await ApiClient.open('127.0.0.1', port).catch(() => null);
  }
  if (api === null) throw new Error(`nginx did not listen on ${port}: see ${logFile}`);
  api.close();
  // A fresh connection per call: nginx may close an idle keep-alive connection meanwhile.
  const once = async <T>(use: (client: ApiClient) => Promise<T>): Promise<T> => {
    const client = await ApiClient.open('127.0.0.1', port);
    try {
      return await use(client);
    } finally {
      client.close();
    }
  };
  return {
    target: 'nchan',
    spawned,
    port,
    argv,
    pids: () => [spawned.pid, ...childPids(spawned.pid)],
    held: async () => {
      const answer = await once((client) => client.request('GET', '/nchan_status'));
      const match = /subscribers:\s*(\d+)/.exec(answer.body);
      return match ? Number(match[1]) : null;
    },
    publish: async (roundNo) => {
      const id = `round-${roundNo}`;
      const client = await ApiClient.open('127.0.0.1', port);
      const sentUs = nowUs();
      const answer = await client
        .request('POST', `/pub/${NOTIFY_GROUP}`, id, 120_000)
        .finally(() => {
          client.close();
        });
      // The API client sends the body as JSON: nchan delivers the quoted string.
      return {
        status: answer.status,
        id: JSON.stringify(id),
        key: JSON.stringify(id),
        rttMs: answer.doneAt - answer.sentAt,
        sentUs,
      };
    },
    close: () => undefined,
  };
}
