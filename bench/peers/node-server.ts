/** Starts one of the small Node peer servers in bench/peers/servers/, pinned, on a private port. */
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { openLog, spawnPinned, type Spawned } from '../lib/processes.js';
import { freePort } from '../../testbed/free-port.js';
import { isAlive } from '../lib/procfs.js';
import { Publisher, publisherOn, stopPids } from './stack.js';
import type { PeerStack, PublishResult, StackOptions } from './types.js';

export interface NodeServer {
  readonly spawned: Spawned;
  readonly port: number;
  stop(): Promise<void>;
}

export async function startNodeServer(
  script: string,
  env: Record<string, string>,
  cpu: number | null,
  logFile: string,
): Promise<NodeServer> {
  const port = await freePort();
  const log = openLog(logFile);
  const spawned = spawnPinned(
    cpu,
    [process.execPath, join(import.meta.dirname, 'servers', script)],
    {
      env: { ...process.env, ...env, PORT: String(port) },
      log,
    },
  );
  const stop = async (): Promise<void> => {
    await stopPids([spawned.pid], 10_000);
    await new Promise<void>((done) => {
      log.end(done);
    });
  };
  try {
    await new Promise<void>((done, fail) => {
      const timer = setTimeout(() => {
        fail(new Error(`${script} did not print "listening" within 15 s (log: ${logFile})`));
      }, 15_000);
      const stdout = spawned.child.stdout;
      if (stdout) {
        createInterface({ input: stdout }).on('line', (line) => {
          if (line.startsWith('listening ')) {
            clearTimeout(timer);
            done();
          }
        });
      }
      void spawned.exited.then(({ code, signal }) => {
        clearTimeout(timer);
        fail(new Error(`${script} exited (${code ?? signal}) before listening (log: ${logFile})`));
      });
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { spawned, port, stop };
}

/**
 * A whole stack around one Node peer server that publishes with `POST /publish` (200 = accepted)
 * and whose listeners all listen on the channel itself (Socket.IO, Faye).
 */
export async function startNodeServerStack(
  options: StackOptions,
  server: {
    readonly name: string;
    readonly version: string;
    readonly script: string;
    readonly env: Record<string, string>;
    readonly logName: string;
    readonly config: string;
  },
): Promise<PeerStack> {
  const running = await startNodeServer(
    server.script,
    server.env,
    options.cpu,
    join(options.dir, server.logName),
  );
  const api = new Publisher(running.port);
  const publishOn = async (client: Publisher, payload: string): Promise<PublishResult> => {
    const response = await client.request('POST', '/publish', payload);
    return { status: response.status, ok: response.status === 200, body: response.body };
  };
  return {
    name: server.name,
    version: server.version,
    port: running.port,
    config: server.config,
    pids: () => (isAlive(running.spawned.pid) ? [running.spawned.pid] : []),
    prepareListeners: (n) => Promise.resolve(Array.from({ length: n }, () => options.channel)),
    publish: (payload) => publishOn(api, payload),
    openPublisher: () => publisherOn(running.port, publishOn),
    async stop() {
      api.close();
      await running.stop();
    },
  };
}
