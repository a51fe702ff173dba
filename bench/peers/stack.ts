/**
 * Helpers shared by the peer modules: package versions (a missing package fails loudly, naming
 * it), readiness and stopping by pid. Free ports come from testbed/, processes from lib/procfs.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { ApiClient, type ApiResponse } from '../lib/http-client.js';
import { isAlive } from '../lib/procfs.js';
import { sleep } from '../lib/stats.js';
import type { PublishResult, StackPublisher } from './types.js';

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const HOST = '127.0.0.1';

/** `pkg version` from dpkg; throws naming the package when it is not installed. */
export function dpkgVersion(pkg: string): string {
  const result = spawnSync('dpkg-query', ['-W', '-f', '${Status}|${Version}', pkg], {
    encoding: 'utf8',
  });
  const [status, version] = (result.stdout ?? '').split('|');
  if (result.status !== 0 || status !== 'install ok installed' || !version) {
    throw new Error(
      `Debian package "${pkg}" is not installed (apt-get install ${pkg}); the side-by-side run needs it`,
    );
  }
  return `${pkg} ${version}`;
}

/** `pkg version` from node_modules; throws naming the package when it is missing. */
export function npmVersion(pkg: string): string {
  try {
    const json = JSON.parse(
      readFileSync(join(ROOT, 'node_modules', pkg, 'package.json'), 'utf8'),
    ) as { version?: string };
    return `${pkg} ${json.version ?? '?'}`;
  } catch {
    throw new Error(`npm package "${pkg}" is missing from node_modules (a devDependency)`);
  }
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port. */
export async function waitForPort(
  port: number,
  timeoutMs: number,
  what: string,
  alive: () => boolean = () => true,
): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!alive()) throw new Error(`${what} exited before listening on ${HOST}:${port}`);
    const ok = await new Promise<boolean>((done) => {
      const socket = connect({ host: HOST, port }, () => {
        socket.destroy();
        done(true);
      });
      socket.once('error', () => {
        done(false);
      });
    });
    if (ok) return;
    if (Date.now() > until) throw new Error(`${what} did not listen on ${HOST}:${port} in time`);
    await sleep(100);
  }
}

/**
 * Sends `signal` to each pid (only the ones given: the stack's own), waits up to `ms` for all to
 * be gone, then SIGKILLs the survivors. Never signals anything else.
 */
export async function stopPids(
  pids: readonly number[],
  ms: number,
  signal: NodeJS.Signals = 'SIGTERM',
): Promise<number[]> {
  for (const pid of pids) {
    try {
      process.kill(pid, signal);
    } catch {
      // already gone
    }
  }
  const until = Date.now() + ms;
  while (Date.now() < until && pids.some(isAlive)) await sleep(50);
  const forced = pids.filter(isAlive);
  for (const pid of forced) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return forced;
}

/** A StackPublisher on its own connection, from a peer's publish-over-a-connection function. */
export function publisherOn(
  port: number,
  publish: (api: Publisher, payload: string) => Promise<PublishResult>,
): StackPublisher {
  const api = new Publisher(port);
  return {
    publish: (payload) => publish(api, payload),
    close: () => {
      api.close();
    },
  };
}

/** A keep-alive API connection that reconnects once when the previous one failed. */
export class Publisher {
  private client: ApiClient | null = null;

  constructor(
    private readonly port: number,
    private readonly timeoutMs = 30_000,
  ) {}

  async request(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    for (let attempt = 0; ; attempt++) {
      this.client ??= await ApiClient.open(HOST, this.port);
      try {
        return await this.client.request(method, path, body, this.timeoutMs);
      } catch (error) {
        this.client.close();
        this.client = null;
        if (attempt >= 1) throw error;
      }
    }
  }

  close(): void {
    this.client?.close();
    this.client = null;
  }
}
