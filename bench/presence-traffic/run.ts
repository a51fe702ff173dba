/**
 * Backplane traffic of held listeners (docs/benchmarks.md, "Presence traffic"): one node over a
 * private Redis holds N long-poll listeners (default 10,000), re-polling like browsers; Redis's
 * `INFO commandstats` is read before and after a quiet minute, and the calls per held listener
 * per minute are printed by command. Run it against two builds to isolate what one adds:
 *
 *   node --import tsx bench/presence-traffic/run.ts                       # this checkout's dist/
 *   node --import tsx bench/presence-traffic/run.ts --main /other/dist/src/cli/main.js
 *
 * Bounded: at most --n listeners (≤ 15,000), one measured window of --seconds (≤ 300).
 */
import { spawn } from 'node:child_process';
import { Agent, request } from 'node:http';
import { createConnection } from 'node:net';
import { fileURLToPath } from 'node:url';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import { Args } from '../lib/args.js';

const args = Args.parse(process.argv.slice(2), { n: 'number', seconds: 'number', main: 'string' });
const N = args.integer('n', 10_000, 1, 15_000);
const SECONDS = args.integer('seconds', 60, 5, 300);
const MAIN = args.string(
  'main',
  fileURLToPath(new URL('../../dist/src/cli/main.js', import.meta.url)),
);
const KEY = 'presence-traffic-bench-key-0123456789';
const agent = new Agent({ keepAlive: true, maxSockets: Infinity });

function post(url: string, body: unknown, key?: string): Promise<{ status: number; text: string }> {
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(url, {
      method: 'POST',
      agent,
      headers: {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(payload),
        ...(key ? { authorization: `Bearer ${key}` } : {}),
      },
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        resolve({ status: res.statusCode ?? 0, text });
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** `INFO commandstats` of the private Redis: calls per command. */
function commandStats(port: number): Promise<Map<string, number>> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\r\n') && text.length > 0 && /\r\n$/.test(text)) {
        const header = /^\$(\d+)\r\n/.exec(text);
        if (header && text.length >= header[0].length + Number(header[1]) + 2) {
          socket.end();
          const stats = new Map<string, number>();
          for (const match of text.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) {
            stats.set(match[1]!, Number(match[2]));
          }
          resolve(stats);
        }
      }
    });
    socket.on('error', reject);
    socket.write('INFO commandstats\r\n');
  });
}

const redis = await PrivateRedis.start();
const port = Number(new URL(redis.url).port);
const node = spawn(
  process.execPath,
  [MAIN, 'start', '--port', '0', '--backplane', redis.url, '--api-key', KEY, '--log-level', 'warn'],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const url = await new Promise<string>((resolve, reject) => {
  let out = '';
  node.stdout.setEncoding('utf8');
  node.stdout.on('data', (chunk: string) => {
    out += chunk;
    const match = /epush listening on (http:\/\/\S+)/.exec(out);
    if (match) resolve(match[1]!);
  });
  node.once('exit', (code) => {
    reject(new Error(`the node exited with ${String(code)}`));
  });
});

try {
  const pushIds: string[] = [];
  while (pushIds.length < N) {
    const count = Math.min(1000, N - pushIds.length);
    const answer = await post(`${url}/api/push-ids`, { count }, KEY);
    pushIds.push(...(JSON.parse(answer.text) as { pushIds: string[] }).pushIds);
  }
  let running = true;
  const loops = pushIds.map(async (pushId) => {
    let cursor: string | null = null;
    while (running) {
      const answer: { status: number; text: string } | null = await post(`${url}/push/listen`, {
        pushIds: [pushId],
        cursor,
      }).catch(() => null);
      if (answer?.status === 200) cursor = (JSON.parse(answer.text) as { cursor: string }).cursor;
      else await new Promise((resolve) => setTimeout(resolve, 500));
    }
  });
  // Held once the node counts them; then a settling pause for the first writes.
  const deadline = Date.now() + 120_000;
  for (;;) {
    const metrics = await fetch(`${url}/metrics`).then((r) => r.text());
    const held = Number(/^epush_listeners (\d+)/m.exec(metrics)?.[1] ?? 0);
    if (held >= N * 0.99) break;
    if (Date.now() > deadline) throw new Error(`only ${held} of ${N} listeners held`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  await new Promise((resolve) => setTimeout(resolve, 10_000));
  const before = await commandStats(port);
  await new Promise((resolve) => setTimeout(resolve, SECONDS * 1000));
  const after = await commandStats(port);
  const rows: [string, number, number][] = [];
  let total = 0;
  for (const [command, calls] of after) {
    const delta = calls - (before.get(command) ?? 0) - (command === 'info' ? 1 : 0);
    if (delta <= 0) continue;
    total += delta;
    rows.push([command, delta, (delta / N) * (60 / SECONDS)]);
  }
  rows.sort((a, b) => b[1] - a[1]);
  console.log(`build: ${MAIN}`);
  console.log(`${N} held long-poll listeners (--hold-seconds 25), ${SECONDS} s measured`);
  for (const [command, calls, perListener] of rows) {
    console.log(
      `  ${command.padEnd(28)} ${String(calls).padStart(8)} calls  ${perListener.toFixed(4)} per listener per minute`,
    );
  }
  console.log(
    `  ${'total'.padEnd(28)} ${String(total).padStart(8)} calls  ${((total / N) * (60 / SECONDS)).toFixed(4)} per listener per minute`,
  );
  running = false;
  node.kill('SIGKILL');
  agent.destroy();
  await Promise.race([Promise.all(loops), new Promise((resolve) => setTimeout(resolve, 2000))]);
} finally {
  node.kill('SIGKILL');
  await redis.stop();
}
process.exit(0);
