/**
 * Load generator of the side-by-side scenario, for ONE target per process. The scenario starts it
 * pinned to CPU 1 with `ulimit -n 20000`; it starts the target's server stack itself (pinned to
 * CPU 0 by bench/peers), so that the publish and every delivery are timed on one monotonic clock:
 *
 *   node --import tsx bench/side-by-side/generator.ts --target nchan --n 1000 --out r.json …
 *
 * Phases, each bounded in time; the setup by 300 s, the measured phases by --max-seconds:
 *  1. start the stack; prepare the listeners (epush: mint push IDs, add them to the group);
 *     wait until the stack is quiet; "before" memory sample (RSS summed over the stack);
 *  2. N listeners connect (raw keep-alive sockets, spread over 127.0.0.1..127.0.0.K) and listen
 *     through the target's protocol; once all are armed and the stack is quiet: "held" sample;
 *  3. W warm-up then M measured notifications, one at a time: wait until every listener is armed,
 *     settle, wait for quiet, publish, wait for the deliveries, wait for quiet again. Server CPU
 *     is the stack's utime+stime across publish → quiet (fan-out plus re-poll herd).
 *  4. stop the stack (the server closes the connections), write the result, print DONE.
 */
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Args } from '../lib/args.js';
import { cpuDeltaMs, describeProcess, readKernelMemory, readMemory } from '../lib/procfs.js';
import { foreignCpuMs, kernelCpuMs, sample, waitQuiet, type Sample } from '../lib/quiet.js';
import { distribution, round, sleep, waitUntil } from '../lib/stats.js';
import { parseTargets, TARGETS } from '../peers/index.js';
import { ListenerPool, loopbackSources } from '../peers/listener-pool.js';
import { recordStackPids, runGenerator, startGeneratorStack } from '../peers/target-process.js';
import type { PeerStack } from '../peers/types.js';
import type { MemorySample, MessageResult, TargetResult } from './types.js';

const args = Args.parse(process.argv.slice(2), {
  target: 'string',
  n: 'number',
  m: 'number',
  'warmup-messages': 'number',
  'src-ips': 'number',
  concurrency: 'number',
  'max-seconds': 'number',
  'settle-ms': 'number',
  'server-cpu': 'number',
  channel: 'string',
  dir: 'string',
  out: 'string',
  'pids-file': 'string',
  'epush-cli': 'string',
  'epush-version': 'string',
});
const target = TARGETS[parseTargets(args.string('target', ''))[0]!];
const N = args.integer('n', 10_000, 1, 19_500);
const M = args.integer('m', 10, 1, 1000);
const W = args.integer('warmup-messages', 1, 0, 100);
const SRC_IPS = args.integer('src-ips', 4, 1, 250);
const CONCURRENCY = args.integer('concurrency', 256, 1, 10_000);
const MAX_SECONDS = args.number('max-seconds', 240, 10, 3600);
const SETTLE_MS = args.integer('settle-ms', 300 + Math.round(N / 10), 0, 600_000);
const serverCpuArg = args.integer('server-cpu', 0, -1, 1024);
const SERVER_CPU = serverCpuArg < 0 ? null : serverCpuArg;
const CHANNEL = args.string('channel', 'bench');
const DIR = resolve(args.string('dir', '.bench-out/side-by-side'));
const OUT = args.string('out', '.bench-out/side-by-side-result.json');
const PIDS_FILE = args.optionalString('pids-file');
// A collapsing peer (pushpin) is never quiet while its 502 retries go on: do not wait long.
const QUIET_TIMEOUT_MS = target.hints.tolerateUnarmed ? 8000 : 20_000;
const MAX_RECONNECTS = target.hints.tolerateUnarmed ? 50 : 3;

const began = performance.now();
/**
 * The stack's start and the listeners' preparation (epush: 10k push IDs and memberships, slow on
 * a busy box) are bounded by SETUP_SECONDS; --max-seconds bounds the measured phases after it.
 */
const SETUP_SECONDS = 300;
let deadline = began + SETUP_SECONDS * 1000;
const startedAt = new Date().toISOString();

function log(message: string): void {
  process.stderr.write(
    `[${target.id} +${((performance.now() - began) / 1000).toFixed(1)}s] ${message}\n`,
  );
}

class AbortRun extends Error {}

/** The smaller of `ms` and the time left; throws once the run's time is up. */
/** Once a notification is published, its measurement ends even when the time is up. */
function softBudget(ms: number): number {
  return Math.max(0, Math.min(ms, deadline - performance.now() - 1000));
}

function budget(ms: number, what: string): number {
  const left = deadline - performance.now();
  if (left <= 1000) throw new AbortRun(`--max-seconds reached before ${what}`);
  return Math.min(ms, left - 1000);
}

// --- counters ------------------------------------------------------------------------------

const counters: Record<string, number> = { answers: 0, emptyAnswers: 0, reconnects: 0 };
const errors: Record<string, number> = {};
const errorSamples: string[] = [];
const marks: string[] = [];

function count(name: string, by = 1): void {
  counters[name] = (counters[name] ?? 0) + by;
}

function error(kind: string, detail: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
  if (errorSamples.length < 30) errorSamples.push(`${kind}: ${detail}`.slice(0, 300));
}

// --- deliveries ----------------------------------------------------------------------------

const TOTAL = W + M;
const PAYLOAD = /sbs-(\d+)/;
const delivered = new Int32Array(TOTAL);
const duplicates = new Int32Array(TOTAL);
const latencies = Array.from({ length: TOTAL }, () => new Float64Array(N));
const sentAt = new Float64Array(TOTAL).fill(NaN);
const lastAt = new Float64Array(TOTAL).fill(NaN);

// --- listeners -----------------------------------------------------------------------------

let stack: PeerStack | null = null;
let pool: ListenerPool | null = null;
/** Which notifications each listener got: seen[index * TOTAL + k] (duplicates counted apart). */
const seen = new Uint8Array(N * TOTAL);

function onDelivered(index: number, payloads: readonly string[]): void {
  count('answers');
  if (payloads.length === 0) {
    count('emptyAnswers');
    return;
  }
  const now = performance.now();
  for (const payload of payloads) {
    const k = Number(PAYLOAD.exec(payload)?.[1] ?? NaN);
    if (!Number.isInteger(k) || k < 0 || k >= TOTAL) {
      error('unknown-payload', payload.slice(0, 80));
      continue;
    }
    if (seen[index * TOTAL + k] === 1) {
      duplicates[k] = duplicates[k]! + 1;
      continue;
    }
    seen[index * TOTAL + k] = 1;
    const i = delivered[k]!;
    delivered[k] = i + 1;
    if (i < N) latencies[k]![i] = now - sentAt[k]!;
    lastAt[k] = now;
  }
}

function armedCount(): number {
  return pool?.armed ?? 0;
}

// --- measuring ------------------------------------------------------------------------------

function memorySample(label: MemorySample['label'], pids: readonly number[]): MemorySample {
  const processes = pids.map((pid) => ({
    pid,
    command: describeProcess(pid, 60),
    rssKb: readMemory(pid).rssKb,
  }));
  return {
    label,
    rssKb: processes.reduce((sum, one) => sum + one.rssKb, 0),
    slabKb: readKernelMemory().slabKb,
    processes,
  };
}

async function quiet(what: string, soft = false): Promise<{ quiet: boolean; start: Sample }> {
  const pids = stack!.pids();
  const timeoutMs = soft ? softBudget(QUIET_TIMEOUT_MS) : budget(QUIET_TIMEOUT_MS, what);
  const result = await waitQuiet(pids, { timeoutMs });
  if (!result.quiet) {
    error('not-quiet', `the stack did not go quiet ${what}`);
    marks.push(`the stack did not go quiet ${what}`);
  }
  return { quiet: result.quiet, start: result.start };
}

async function publishOne(k: number, listenersAlive: () => number): Promise<MessageResult> {
  const want = listenersAlive();
  const allArmed = await waitUntil(
    () => armedCount() >= want,
    budget(target.hints.tolerateUnarmed ? 20_000 : 30_000, `notification ${k}`),
  );
  if (!allArmed) marks.push(`notification ${k}: ${armedCount()}/${want} armed at publish`);
  await sleep(budget(SETTLE_MS, `notification ${k}`));
  await quiet(`before notification ${k}`);
  const pids = stack!.pids();
  const from = sample(pids);
  const armedAtPublish = armedCount();
  sentAt[k] = performance.now();
  let publishStatus = 0;
  let publishMs = NaN;
  try {
    const response = await stack!.publish(`sbs-${k}`);
    publishMs = performance.now() - sentAt[k];
    publishStatus = response.status;
    if (!response.ok) error(`publish:${response.status}`, response.body.slice(0, 200));
  } catch (failure) {
    error('publish', (failure as Error).message);
  }
  const all = await waitUntil(
    () => delivered[k]! >= armedAtPublish,
    softBudget(target.hints.tolerateUnarmed ? 20_000 : 30_000 + N),
  );
  if (!all) {
    marks.push(`notification ${k}: ${delivered[k]}/${armedAtPublish} delivered within the timeout`);
  }
  const after = await quiet(`after notification ${k}`, true);
  const to = after.start;
  const cpu = cpuDeltaMs(from.server, to.server);
  const kernel = kernelCpuMs(from, to);
  const result: MessageResult = {
    index: k - W,
    armedAtPublish,
    delivered: delivered[k]!,
    duplicates: duplicates[k]!,
    publishStatus,
    publishMs: round(publishMs, 1),
    lastDeliveryMs: round(lastAt[k]! - sentAt[k], 1),
    cpuWindowMs: round(to.server.at - sentAt[k], 1),
    serverCpuMs: round(cpu.statMs, 1),
    serverCpuSchedMs: round(cpu.schedMs, 1),
    clientCpuMs: round((to.clientUs - from.clientUs) / 1000, 2),
    foreignCpuMs: round(foreignCpuMs(from, to), 0),
    irqMs: round(kernel.irqMs, 0),
    stealMs: round(kernel.stealMs, 0),
    quiet: after.quiet,
    latencyMs: roundDistribution(
      distribution(latencies[k]!.subarray(0, Math.min(N, delivered[k]!))),
    ),
  };
  log(
    `${k < W ? 'warm-up' : `#${k - W + 1}`}: ${result.delivered}/${armedAtPublish} delivered, ` +
      `server ${result.serverCpuMs} ms, last ${result.lastDeliveryMs} ms`,
  );
  return result;
}

function roundDistribution(d: ReturnType<typeof distribution>): ReturnType<typeof distribution> {
  return {
    count: d.count,
    min: round(d.min, 2),
    p50: round(d.p50, 2),
    p90: round(d.p90, 2),
    p99: round(d.p99, 2),
    max: round(d.max, 2),
    mean: round(d.mean, 2),
  };
}

// --- the run --------------------------------------------------------------------------------

async function run(): Promise<TargetResult> {
  const samples: MemorySample[] = [];
  const warmup: MessageResult[] = [];
  const messages: MessageResult[] = [];
  let abortReason: string | null = null;
  let connect = { ms: 0, armed: 0, serverCpuMs: 0 };
  let heldListeners = 0;
  let stackPids: number[] = [];
  let shutdown = { closedByServer: 0, stillOpen: 0, ms: 0 };

  log(`starting the stack (${N} listeners, ${M} notifications + ${W} warm-up)`);
  stack = await startGeneratorStack(
    target,
    {
      dir: DIR,
      cpu: SERVER_CPU,
      channel: CHANNEL,
      maxConnections: N,
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
    stackPids = running.pids();
    log(`${running.version}: pids ${stackPids.join(',')}, port ${running.port}`);
    await quiet('after start');
    samples.push(memorySample('fresh', running.pids()));
    const identities = await running.prepareListeners(N);
    await quiet('after preparing the listeners');
    deadline = performance.now() + MAX_SECONDS * 1000;
    samples.push(memorySample('before', running.pids()));
    const listeners = new ListenerPool({
      port: running.port,
      channel: CHANNEL,
      protocol: target.protocol,
      hints: target.hints,
      identities,
      sources: loopbackSources(SRC_IPS),
      concurrency: CONCURRENCY,
      maxReconnects: MAX_RECONNECTS,
      onDelivered,
      onError: error,
      count,
    });
    pool = listeners;

    const connectFrom = sample(running.pids());
    const connectStart = performance.now();
    await listeners.connectAll(() => budget(1000, 'the listeners connected'));
    const all = await waitUntil(
      () => listeners.armed >= N,
      budget(target.hints.tolerateUnarmed ? 30_000 : 120_000, 'all listeners armed'),
    );
    if (!all) marks.push(`only ${listeners.armed}/${N} listeners armed after the connect phase`);
    const connectQuiet = await quiet('after the connect phase');
    heldListeners = listeners.armed;
    connect = {
      ms: round(connectQuiet.start.server.at - connectStart, 0),
      armed: listeners.armed,
      serverCpuMs: round(cpuDeltaMs(connectFrom.server, connectQuiet.start.server).statMs, 0),
    };
    samples.push(memorySample('held', running.pids()));
    stackPids = running.pids();
    recordStackPids(running, PIDS_FILE);
    log(`held: ${listeners.armed}/${N} armed in ${connect.ms} ms`);

    for (let k = 0; k < TOTAL; k++) {
      const result = await publishOne(k, () =>
        target.hints.tolerateUnarmed ? listeners.alive() : N,
      );
      (k < W ? warmup : messages).push(result);
    }
  } catch (failure) {
    if (!(failure instanceof AbortRun)) throw failure;
    abortReason = failure.message;
    log(`ABORTED: ${abortReason}`);
  } finally {
    pool?.stop();
    const stopFrom = performance.now();
    await running.stop();
    const closed = (await pool?.close(5000)) ?? { closedByServer: 0, stillOpen: 0 };
    shutdown = { ...closed, ms: round(performance.now() - stopFrom, 0) };
  }

  const before = samples.find((s) => s.label === 'before');
  const held = samples.find((s) => s.label === 'held');
  // Every planned notification counts: one the run had no time for delivered nothing.
  const expected = N * M;
  const deliveredTotal = messages.reduce((sum, m) => sum + m.delivered, 0);
  const serverCpuMs = messages.reduce((sum, m) => sum + m.serverCpuMs, 0);
  const serverCpuSchedMs = messages.reduce((sum, m) => sum + m.serverCpuSchedMs, 0);
  const clientCpuMs = messages.reduce((sum, m) => sum + m.clientCpuMs, 0);
  const foreign = messages.reduce((sum, m) => sum + m.foreignCpuMs, 0);
  const windowMs = messages.reduce((sum, m) => sum + m.cpuWindowMs, 0);
  const irqMs = messages.reduce((sum, m) => sum + m.irqMs, 0);
  const perDelivery = (ms: number): number | null =>
    deliveredTotal === 0 ? null : round((ms * 1000) / deliveredTotal, 1);
  const perMessage = messages
    .filter((m) => m.delivered > 0)
    .map((m) => (m.serverCpuMs * 1000) / m.delivered);
  const allLatencies: number[] = [];
  for (let k = W; k < TOTAL; k++) {
    for (const value of latencies[k]!.subarray(0, Math.min(N, delivered[k]!)))
      allLatencies.push(value);
  }
  const medianPerMessage = distribution(perMessage).p50;
  return {
    target: target.id,
    label: target.label,
    peer: running.name,
    version: running.version,
    config: running.config,
    protocol: target.protocol.name,
    resumeToken: target.protocol.resumeToken,
    n: N,
    m: M,
    warmupMessages: W,
    srcIps: SRC_IPS,
    startedAt,
    finishedAt: new Date().toISOString(),
    completed: abortReason === null && messages.length === M,
    abortReason,
    marks,
    stackPids,
    memory: {
      samples,
      rssPerConnKb:
        before && held && heldListeners > 0
          ? round((held.rssKb - before.rssKb) / heldListeners, 1)
          : null,
      slabPerPairKb:
        before && held && heldListeners > 0
          ? round((held.slabKb - before.slabKb) / heldListeners, 1)
          : null,
      heldListeners,
    },
    connect,
    warmup,
    messages,
    totals: {
      expected,
      delivered: deliveredTotal,
      duplicates: messages.reduce((sum, m) => sum + m.duplicates, 0),
      serverCpuMs: round(serverCpuMs, 0),
      serverCpuSchedMs: round(serverCpuSchedMs, 0),
      serverUsPerDelivery: perDelivery(serverCpuMs),
      serverUsPerDeliverySched: perDelivery(serverCpuSchedMs),
      serverUsPerDeliveryMedian: Number.isFinite(medianPerMessage)
        ? round(medianPerMessage, 1)
        : null,
      clientCpuMs: round(clientCpuMs, 0),
      clientUsPerDelivery: perDelivery(clientCpuMs),
      latencyMs: roundDistribution(distribution(allLatencies)),
      foreignCpuMs: round(foreign, 0),
      foreignCpuPercent: windowMs > 0 ? round((foreign / windowMs) * 100, 1) : null,
      irqUsPerDelivery: perDelivery(irqMs),
      stealMs: round(
        messages.reduce((sum, m) => sum + m.stealMs, 0),
        0,
      ),
    },
    counters,
    errors,
    errorSamples,
    shutdown,
  };
}

runGenerator({
  run,
  out: OUT,
  hardStopMs: (MAX_SECONDS + SETUP_SECONDS + 60) * 1000,
  log,
  cleanUp: async () => {
    pool?.stop();
    await stack?.stop();
  },
});
