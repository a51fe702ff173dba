/**
 * Load generator of the publish-throughput scenario, for ONE target per process (pinned to
 * CPU 1 by the scenario; the stack it starts is pinned to CPU 0 by bench/peers):
 *  1. start the stack, hold L listeners (default 100) on one channel through its protocol;
 *  2. a short unmeasured warm-up of publishes, then wait until the stack is quiet;
 *  3. C publishers (default 16), each on its own keep-alive connection, publish back to back for
 *     S seconds: accepted publishes per second, publish latency (request written → answer
 *     parsed), deliveries per second within the window;
 *  4. wait for the last deliveries and for the stack to be quiet: server CPU (every process of
 *     the stack) across the window and the drain, per accepted publish.
 */
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Args } from '../lib/args.js';
import { cpuDeltaMs } from '../lib/procfs.js';
import { sample, waitQuiet, type Sample } from '../lib/quiet.js';
import { distribution, round, sleep, waitUntil, type Distribution } from '../lib/stats.js';
import { parseTargets, TARGETS } from '../peers/index.js';
import { ListenerPool, loopbackSources } from '../peers/listener-pool.js';
import { runGenerator, startGeneratorStack } from '../peers/target-process.js';
import type { PeerStack, StackPublisher } from '../peers/types.js';

export interface ThroughputResult {
  readonly target: string;
  readonly label: string;
  readonly version: string;
  readonly listeners: number;
  readonly listenersHeld: number;
  readonly concurrency: number;
  readonly seconds: number;
  readonly completed: boolean;
  readonly abortReason: string | null;
  readonly marks: string[];
  readonly windowMs: number;
  readonly accepted: number;
  readonly refused: Record<string, number>;
  readonly publishesPerSec: number;
  readonly publishLatencyMs: Distribution;
  readonly deliveriesInWindow: number;
  readonly deliveriesPerSec: number;
  /** Deliveries after the drain, against accepted × listeners held (lossy protocols get fewer). */
  readonly deliveredTotal: number;
  readonly deliveryExpected: number;
  readonly serverCpuMs: number;
  readonly serverUsPerPublish: number | null;
  readonly serverUsPerDelivery: number | null;
  readonly clientCpuMs: number;
  readonly quiet: boolean;
  readonly errors: Record<string, number>;
  readonly errorSamples: string[];
}

const args = Args.parse(process.argv.slice(2), {
  target: 'string',
  listeners: 'number',
  seconds: 'number',
  concurrency: 'number',
  'src-ips': 'number',
  'max-seconds': 'number',
  'server-cpu': 'number',
  channel: 'string',
  dir: 'string',
  out: 'string',
  'pids-file': 'string',
  'epush-cli': 'string',
  'epush-version': 'string',
});
const target = TARGETS[parseTargets(args.string('target', ''))[0]!];
const L = args.integer('listeners', 100, 1, 19_000);
const SECONDS = args.number('seconds', 5, 0.5, 600);
const C = args.integer('concurrency', 16, 1, 1000);
const SRC_IPS = args.integer('src-ips', 4, 1, 250);
const MAX_SECONDS = args.number('max-seconds', 120, 10, 3600);
const serverCpuArg = args.integer('server-cpu', 0, -1, 1024);
const CHANNEL = args.string('channel', 'bench');
const DIR = resolve(args.string('dir', '.bench-out/publish-throughput'));
const OUT = args.string('out', '.bench-out/publish-throughput-result.json');
const PIDS_FILE = args.optionalString('pids-file');
const WARMUP_PUBLISHES = 200;
const PAYLOAD = /sbs-(\d+)/;

const began = performance.now();
const deadline = began + MAX_SECONDS * 1000;

function log(message: string): void {
  process.stderr.write(
    `[${target.id} +${((performance.now() - began) / 1000).toFixed(1)}s] ${message}\n`,
  );
}

class AbortRun extends Error {}

function budget(ms: number, what: string): number {
  const left = deadline - performance.now();
  if (left <= 1000) throw new AbortRun(`--max-seconds reached before ${what}`);
  return Math.min(ms, left - 1000);
}

const errors: Record<string, number> = {};
const errorSamples: string[] = [];
const marks: string[] = [];

function error(kind: string, detail: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
  if (errorSamples.length < 30) errorSamples.push(`${kind}: ${detail}`.slice(0, 300));
}

/** Deliveries of measured publishes (sequence ≥ firstMeasured). */
let firstMeasured = Number.MAX_SAFE_INTEGER;
let deliveries = 0;

function onDelivered(_index: number, payloads: readonly string[]): void {
  for (const payload of payloads) {
    const seq = Number(PAYLOAD.exec(payload)?.[1] ?? NaN);
    if (seq >= firstMeasured) deliveries += 1;
  }
}

let stack: PeerStack | null = null;
let pool: ListenerPool | null = null;

async function quiet(what: string): Promise<{ quiet: boolean; start: Sample }> {
  const result = await waitQuiet(stack!.pids(), { timeoutMs: budget(20_000, what) });
  if (!result.quiet) marks.push(`the stack did not go quiet ${what}`);
  return { quiet: result.quiet, start: result.start };
}

async function run(): Promise<ThroughputResult> {
  let abortReason: string | null = null;
  let measured: Omit<
    ThroughputResult,
    | 'target'
    | 'label'
    | 'version'
    | 'listeners'
    | 'listenersHeld'
    | 'concurrency'
    | 'seconds'
    | 'completed'
    | 'abortReason'
    | 'marks'
    | 'errors'
    | 'errorSamples'
  > | null = null;
  let held = 0;
  const publishers: StackPublisher[] = [];
  stack = await startGeneratorStack(
    target,
    {
      dir: DIR,
      cpu: serverCpuArg < 0 ? null : serverCpuArg,
      channel: CHANNEL,
      maxConnections: L + C,
      log,
    },
    {
      epushCli: args.optionalString('epush-cli'),
      epushVersion: args.optionalString('epush-version'),
      pidsFile: PIDS_FILE,
    },
  );
  const running = stack;
  try {
    const identities = await running.prepareListeners(L);
    const listeners = new ListenerPool({
      port: running.port,
      channel: CHANNEL,
      protocol: target.protocol,
      hints: target.hints,
      identities,
      sources: loopbackSources(SRC_IPS),
      concurrency: 256,
      maxReconnects: target.hints.tolerateUnarmed ? 50 : 3,
      onDelivered,
      onError: error,
      count: () => undefined,
    });
    pool = listeners;
    await listeners.connectAll(() => budget(1000, 'the listeners connected'));
    if (!(await waitUntil(() => listeners.armed >= L, budget(30_000, 'the listeners armed')))) {
      marks.push(`only ${listeners.armed}/${L} listeners armed`);
    }
    held = listeners.armed;
    for (let i = 0; i < C; i++) publishers.push(running.openPublisher());

    // Warm-up: JIT and connection setup, not measured.
    let seq = 0;
    await Promise.all(
      publishers.map(async (publisher) => {
        while (seq < WARMUP_PUBLISHES) await publisher.publish(`sbs-${seq++}`);
      }),
    );
    await sleep(500);
    await quiet('after the warm-up');

    firstMeasured = seq;
    const latencies: number[] = [];
    const refused: Record<string, number> = {};
    let accepted = 0;
    const from = sample(running.pids());
    const start = performance.now();
    const end = start + SECONDS * 1000;
    let deliveriesAtEnd = 0;
    await Promise.all(
      publishers.map(async (publisher) => {
        while (performance.now() < end) {
          const sentAt = performance.now();
          try {
            const result = await publisher.publish(`sbs-${seq++}`);
            if (result.ok) {
              accepted += 1;
              latencies.push(performance.now() - sentAt);
            } else {
              refused[`status:${result.status}`] = (refused[`status:${result.status}`] ?? 0) + 1;
            }
          } catch (failure) {
            error('publish', (failure as Error).message);
          }
        }
      }),
    );
    const windowMs = performance.now() - start;
    deliveriesAtEnd = deliveries;
    // Drain: until no delivery arrived for 1 s (at most 20 s), then until the stack is quiet.
    let last = deliveries;
    let stillAt = performance.now();
    while (performance.now() - stillAt < 1000 && performance.now() - start < windowMs + 20_000) {
      await sleep(100);
      if (deliveries !== last) {
        last = deliveries;
        stillAt = performance.now();
      }
    }
    const after = await quiet('after the publishes');
    const cpu = cpuDeltaMs(from.server, after.start.server);
    measured = {
      windowMs: round(windowMs, 0),
      accepted,
      refused,
      publishesPerSec: round((accepted * 1000) / windowMs, 0),
      publishLatencyMs: distribution(latencies),
      deliveriesInWindow: deliveriesAtEnd,
      deliveriesPerSec: round((deliveriesAtEnd * 1000) / windowMs, 0),
      deliveredTotal: deliveries,
      deliveryExpected: accepted * held,
      serverCpuMs: round(cpu.statMs, 0),
      serverUsPerPublish: accepted === 0 ? null : round((cpu.statMs * 1000) / accepted, 1),
      serverUsPerDelivery: deliveries === 0 ? null : round((cpu.statMs * 1000) / deliveries, 1),
      clientCpuMs: round((after.start.clientUs - from.clientUs) / 1000, 0),
      quiet: after.quiet,
    };
    log(
      `${accepted} publishes in ${round(windowMs, 0)} ms (${measured.publishesPerSec}/s), ` +
        `${deliveries} deliveries, server ${measured.serverUsPerPublish ?? '?'} µs/publish`,
    );
  } catch (failure) {
    if (!(failure instanceof AbortRun)) throw failure;
    abortReason = failure.message;
    log(`ABORTED: ${abortReason}`);
  } finally {
    for (const publisher of publishers) publisher.close();
    pool?.stop();
    await running.stop();
    await pool?.close(5000);
  }
  const empty = distribution([]);
  return {
    target: target.id,
    label: target.label,
    version: running.version,
    listeners: L,
    listenersHeld: held,
    concurrency: C,
    seconds: SECONDS,
    completed: abortReason === null && measured !== null,
    abortReason,
    marks,
    errors,
    errorSamples,
    ...(measured ?? {
      windowMs: 0,
      accepted: 0,
      refused: {},
      publishesPerSec: 0,
      publishLatencyMs: empty,
      deliveriesInWindow: 0,
      deliveriesPerSec: 0,
      deliveredTotal: 0,
      deliveryExpected: 0,
      serverCpuMs: 0,
      serverUsPerPublish: null,
      serverUsPerDelivery: null,
      clientCpuMs: 0,
      quiet: false,
    }),
  };
}

runGenerator({
  run,
  out: OUT,
  hardStopMs: (MAX_SECONDS + 60) * 1000,
  log,
  cleanUp: async () => {
    pool?.stop();
    await stack?.stop();
  },
});
