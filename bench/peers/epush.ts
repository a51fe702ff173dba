/**
 * epush as a bench stack: one node from dist/ (memory backplane, `--insecure-dev`, loopback
 * only), holds long enough that no hold expiry or heartbeat falls inside a run. Listeners need
 * push IDs in the group, so prepareListeners mints them and adds the memberships.
 */
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { openLog, spawnPinned, type Spawned } from '../lib/processes.js';
import { isAlive } from '../lib/procfs.js';
import { Publisher, publisherOn, stopPids } from './stack.js';
import type { PeerStack, PublishResult, StackOptions } from './types.js';

export const EPUSH_HOLD_SECONDS = 300;
const MINT_BATCH = 1000;
const MEMBER_CONNECTIONS = 8;

function waitForListening(server: Spawned, timeoutMs: number): Promise<number> {
  return new Promise((done, fail) => {
    const timer = setTimeout(() => {
      fail(new Error(`epush printed no "epush listening" line within ${timeoutMs} ms`));
    }, timeoutMs);
    const stdout = server.child.stdout;
    if (!stdout) throw new Error('epush has no stdout');
    createInterface({ input: stdout }).on('line', (line) => {
      const match = /^epush listening on http:\/\/[^:]+:(\d+)/.exec(line);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        done(Number(match[1]));
      }
    });
    void server.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      fail(new Error(`epush exited (${code ?? signal}) before listening`));
    });
  });
}

function expectOk(what: string, status: number, body: string, ...ok: number[]): void {
  if (!ok.includes(status)) throw new Error(`${what}: ${status} ${body.slice(0, 200)}`);
}

export async function startEpush(options: StackOptions): Promise<PeerStack> {
  const cli = options.epushCli;
  if (cli === undefined) throw new Error('startEpush needs epushCli (dist/src/cli/main.js)');
  const argv = [
    process.execPath,
    cli,
    'start',
    '--port',
    '0',
    '--insecure-dev',
    '--hold-seconds',
    String(EPUSH_HOLD_SECONDS),
    '--log-level',
    'warn',
    '--idle-timeout-seconds',
    '600',
    '--headers-timeout-seconds',
    '600',
    '--body-timeout-seconds',
    '600',
    '--drain-seconds',
    '5',
  ];
  const log = openLog(join(options.dir, 'epush.log'));
  const server = spawnPinned(options.cpu, argv, { log });
  let port: number;
  try {
    port = await waitForListening(server, 20_000);
  } catch (error) {
    await stopPids([server.pid], 2000);
    throw error;
  }
  const api = new Publisher(port);
  const group = options.channel;
  const notify = async (client: Publisher, payload: string): Promise<PublishResult> => {
    const response = await client.request('POST', `/api/groups/${group}/notify`, { payload });
    return { status: response.status, ok: response.status === 202, body: response.body };
  };
  return {
    name: 'epush',
    version: options.epushVersion ?? 'epush',
    port,
    config:
      `node dist/src/cli/main.js start --port 0 --insecure-dev --hold-seconds ${EPUSH_HOLD_SECONDS} ` +
      '--idle-timeout-seconds 600 --headers-timeout-seconds 600 --body-timeout-seconds 600 (memory backplane, 1 process)',
    pids: () => (isAlive(server.pid) ? [server.pid] : []),
    async prepareListeners(n) {
      const ids: string[] = [];
      while (ids.length < n) {
        const count = Math.min(MINT_BATCH, n - ids.length);
        const response = await api.request('POST', '/api/push-ids', { count });
        expectOk('POST /api/push-ids', response.status, response.body, 201, 200);
        ids.push(...(JSON.parse(response.body) as { pushIds: string[] }).pushIds);
      }
      const clients = Array.from({ length: MEMBER_CONNECTIONS }, () => new Publisher(port));
      let next = 0;
      await Promise.all(
        clients.map(async (client) => {
          while (next < ids.length) {
            const id = ids[next++]!;
            const response = await client.request('PUT', `/api/groups/${group}/members/${id}`);
            expectOk('PUT member', response.status, response.body, 200, 201, 204);
          }
          client.close();
        }),
      );
      return ids;
    },
    publish: (payload) => notify(api, payload),
    openPublisher: () => publisherOn(port, notify),
    async stop() {
      api.close();
      // SIGTERM drains: held listens are answered with `reconnect` and the server closes the
      // connections itself (its TIME_WAIT, not the generator's ports).
      await stopPids([server.pid], 20_000);
      await new Promise<void>((done) => {
        log.end(done);
      });
    },
  };
}
