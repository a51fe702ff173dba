import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { killOnExit } from '../../testbed/kill-on-exit.js';
import { requiredMetric } from './metrics.js';

export interface DemoProcess {
  readonly pushUrl: string;
  readonly appsUrl: string;
  readonly apiKey: string;
  readonly child: ChildProcess;
  /** Calls the push node's application API with the demo's key. */
  api(method: string, path: string, body?: unknown): Promise<unknown>;
  /** One sample of the push node's /metrics, by series (`name{labels}`); throws when missing. */
  metric(nameWithLabels: string): Promise<number>;
  stop(): Promise<void>;
}

const API_KEY = 'e2e-demo-key-0123456789';

/** Starts `epush demo` from source on free ports; resolves when both servers are ready. */
export async function startDemo(extraArgs: string[] = []): Promise<DemoProcess> {
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'demo',
      '--port',
      '0',
      '--demo-port',
      '0',
      '--ticker-ms',
      '0',
      '--api-key',
      API_KEY,
      '--log-level',
      'warn',
      ...extraArgs,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  killOnExit(child);
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const lines = createInterface({ input: child.stdout });
  const { pushUrl, appsUrl } = await new Promise<{ pushUrl: string; appsUrl: string }>(
    (resolve, reject) => {
      let push = '';
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`epush demo did not start within 15 s; stderr:\n${stderr}`));
      }, 15_000);
      lines.on('line', (line) => {
        const listening = /^epush listening on (\S+) /.exec(line);
        if (listening) push = listening[1]!;
        const demo = /^epush demo: open (\S+)\//.exec(line);
        if (demo && push) {
          clearTimeout(timer);
          resolve({ pushUrl: push, appsUrl: demo[1]! });
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`epush demo exited with ${code}; stderr:\n${stderr}`));
      });
    },
  );

  async function api(method: string, path: string, body?: unknown): Promise<unknown> {
    const response = await fetch(pushUrl + path, {
      method,
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok)
      throw new Error(`${method} ${path}: ${response.status} ${await response.text()}`);
    return response.status === 204 ? null : response.json();
  }

  const metric = (series: string): Promise<number> => requiredMetric(pushUrl, series);

  async function stop(): Promise<void> {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await exited;
  }

  return { pushUrl, appsUrl, apiKey: API_KEY, child, api, metric, stop };
}

/**
 * Listener connections the server holds, whatever the transport (the browser picks WebSocket,
 * SSE or long-poll; docs/protocol.md's "one connection" counts any of them).
 */
export async function listenerConnections(demo: DemoProcess): Promise<number> {
  let total = 0;
  for (const transport of ['long-poll', 'sse', 'websocket']) {
    total += await demo.metric(`epush_connections{transport="${transport}"}`);
  }
  return total;
}

/** `samples` readings of the held listener connections, `everyMs` apart. */
export async function sampleConnections(
  demo: DemoProcess,
  samples = 6,
  everyMs = 200,
): Promise<number[]> {
  const values: number[] = [];
  for (let i = 0; i < samples; i += 1) {
    if (i > 0) await new Promise((resolve) => setTimeout(resolve, everyMs));
    values.push(await listenerConnections(demo));
  }
  return values;
}

/** A direct notification the test published. */
export interface Published {
  /** The notification id the API answered. */
  readonly id: string;
  readonly pushId: string;
  /** Its sequence number in this publisher (in the payload). */
  readonly n: number;
  /** `Date.now()` when the notify call was sent. */
  readonly at: number;
}

export interface Publisher {
  /** Stops publishing, waits for the round in flight and returns everything published. */
  stop(): Promise<Published[]>;
}

/**
 * Publishes one direct notification to each of `pushIds` every `everyMs` until stopped, with
 * the payload `{tag, n}`. A failed notify call fails the publisher (reported by `stop()`).
 */
export function startPublishing(
  demo: DemoProcess,
  pushIds: readonly string[],
  tag: string,
  everyMs = 50,
): Publisher {
  const published: Published[] = [];
  let stopped = false;
  const loop = (async () => {
    for (let n = 0; !stopped; n += 1) {
      const at = Date.now();
      const ids = await Promise.all(
        pushIds.map(
          async (pushId) =>
            (await demo.api('POST', `/api/push-ids/${pushId}/notify`, {
              payload: { tag, n },
            })) as { id: string },
        ),
      );
      ids.forEach(({ id }, i) => published.push({ id, pushId: pushIds[i]!, n, at }));
      const wait = everyMs - (Date.now() - at);
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return published;
    },
  };
}
