/** Starts one of the small Node peer servers in bench/peers/servers/, pinned, on a private port. */
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { openLog, spawnPinned, type Spawned } from '../lib/processes.js';
import { freePort, stopPids } from './stack.js';

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
