/**
 * Load generator of the longpoll-fanout scenario. bench/run.ts starts it pinned to its own core
 * with `ulimit -n 20000`; it can also be run by hand against a running server:
 *
 *   node --import tsx bench/longpoll-fanout/generator.ts --port P --server-pid PID --out r.json
 *
 * Phases (each bounded in time, the whole run by --max-seconds):
 *  1. warm-up: a few listeners on another group get a few notifications, then go away;
 *  2. "fresh" memory sample; N push IDs minted and added to one group; "idle" memory sample;
 *  3. N listeners connect through the bench's listener pool (bench/peers/listener-pool.ts: one raw
 *     keep-alive socket each, --concurrency in flight, spread over
 *     127.0.0.1..127.0.0.K as source addresses) and send `POST /push/listen`; "held" sample;
 *  4. M times: wait until every listener is armed and the server is quiet, publish one group
 *     notification, wait for the N deliveries and for the server to be quiet again. Server CPU
 *     (/proc/<pid>/stat) and client CPU are read across that window, which holds the fan-out and
 *     the re-poll herd (listeners re-poll at once, like a browser, unless --repoll-delay-ms).
 * Then it writes the result, prints `DONE`, stops re-polling and waits for the server (stopped
 * by run.ts) to close the connections, and prints `SHUTDOWN {json}`.
 *
 * `--transport sse|websocket` (the stream-fanout scenario) holds the listeners as event streams
 * (GET /push/sse) or WebSockets (GET /push/ws, one listen message) instead: nothing is re-sent
 * after a delivery, the stream stays open and registered; everything else is the same.
 *
 * Beside it: generator-options.ts (flags), run-clock.ts (the time bound), api-setup.ts (mint,
 * members, publish), tally.ts (deliveries), server-probe.ts (server hook, memory, quiet waits,
 * gauges) and summary.ts (the result file).
 */
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { ApiClient } from '../lib/http-client.js';
import { cpuDeltaMs, readAllProcessTicks } from '../lib/procfs.js';
import { foreignCpuMs, kernelCpuMs, sample } from '../lib/quiet.js';
import { distribution, round, sleep, waitUntil } from '../lib/stats.js';
import { epushLongPoll } from '../peers/listen-epush-longpoll.js';
import { epushSse } from '../peers/listen-epush-sse.js';
import { epushWebSocket } from '../peers/listen-epush-ws.js';
import { ListenerPool, loopbackSources } from '../peers/listener-pool.js';
import { DEFAULT_HINTS, type ListenerProtocol } from '../peers/types.js';
import { addMembers, expectStatus, mintPushIds, publish } from './api-setup.js';
import { parseOptions } from './generator-options.js';
import { AbortRun, RunClock } from './run-clock.js';
import { phaseResult, ServerProbe } from './server-probe.js';
import { summarize, type RunState } from './summary.js';
import { messageIndex, Tally } from './tally.js';
import type { MessageResult, PhaseResult, ShutdownReport, Transport } from './types.js';

const MAX_RECONNECTS = 3;
/** A closed listener reconnects, and a refused listen is retried, after this long. */
const RETRY_MS = 500;
const SETUP_CONNECTIONS = 8;
const WARMUP_MESSAGES = 5;

const opts = parseOptions(process.argv.slice(2));
const startedAt = new Date();
const clock = new RunClock(opts.maxSeconds);
const budget = (ms: number, what: string): number => clock.budget(ms, what);
const log = (message: string): void => {
  clock.log(message);
};

// --- counters ------------------------------------------------------------------------------

const counters: Record<string, number> = {
  answers: 0,
  emptyAnswers: 0,
  reconnectAnswers: 0,
  replacedAnswers: 0,
  resetAnswers: 0,
  expiredAnswers: 0,
  reconnects: 0,
};
const errors: Record<string, number> = {};
const errorSamples: string[] = [];

function count(name: string): void {
  counters[name] = (counters[name] ?? 0) + 1;
}

function error(kind: string, detail: string): void {
  errors[kind] = (errors[kind] ?? 0) + 1;
  if (errorSamples.length < 30) errorSamples.push(`${kind}: ${detail}`.slice(0, 300));
}

const probe = new ServerProbe(opts, clock, error);
const phases: Record<string, PhaseResult> = {};

// --- listeners -----------------------------------------------------------------------------

const PROTOCOLS: Record<Transport, ListenerProtocol> = {
  'long-poll': epushLongPoll,
  sse: epushSse,
  websocket: epushWebSocket,
};

let firstRepollAt = Infinity;

/** The listeners of one tally, held through the bench's shared listener pool. */
function listenerPool(ids: readonly string[], group: string, tally: Tally): ListenerPool {
  // The last message index each listener got: a lower or equal one again is a duplicate.
  const lastK = new Int32Array(ids.length).fill(-1);
  return new ListenerPool({
    host: opts.host,
    port: opts.port,
    channel: group,
    protocol: PROTOCOLS[opts.transport ?? 'long-poll'],
    hints: DEFAULT_HINTS,
    identities: ids,
    sources: loopbackSources(opts.srcIps),
    concurrency: opts.concurrency,
    maxReconnects: MAX_RECONNECTS,
    repollDelayMs: opts.repollDelayMs,
    backoffMs: () => RETRY_MS,
    onDelivered: (index, payloads) => {
      const now = performance.now();
      counters.answers = (counters.answers ?? 0) + 1;
      if (payloads.length === 0) {
        count('emptyAnswers');
        return;
      }
      if (opts.repollDelayMs > 0) firstRepollAt = Math.min(firstRepollAt, now + opts.repollDelayMs);
      for (const payload of payloads) {
        const k = messageIndex(payload, tally.messages);
        if (k === null) {
          error('unknownPayload', payload.slice(0, 120));
        } else if (k <= lastK[index]!) {
          tally.duplicates += 1;
        } else {
          lastK[index] = k;
          tally.record(k, now);
        }
      }
    },
    onError: error,
    count,
  });
}

class ConnectTimeout extends Error {}

/** Opens every listener of the pool; false when `timeoutMs` passed before the last was opened. */
async function connectAll(pool: ListenerPool, timeoutMs: number): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  try {
    await pool.connectAll(() => {
      if (performance.now() > until) throw new ConnectTimeout();
    });
    return true;
  } catch (failure) {
    if (failure instanceof ConnectTimeout) return false;
    throw failure;
  }
}

// --- the run -------------------------------------------------------------------------------

async function warmUp(api: ApiClient, pool: readonly ApiClient[]): Promise<void> {
  if (opts.warmup === 0) return;
  const began = sample(opts.serverPid);
  const group = `${opts.group}-warmup`;
  const ids = await mintPushIds(api, opts.warmup, clock);
  await addMembers(pool, group, ids, clock);
  const tally = new Tally(WARMUP_MESSAGES, opts.warmup);
  const listeners = listenerPool(ids, group, tally);
  await connectAll(listeners, budget(15_000, 'the warm-up'));
  await waitUntil(() => listeners.armed === listeners.size, budget(10_000, 'the warm-up'));
  await probe.quiet('the warm-up');
  for (let k = 0; k < WARMUP_MESSAGES; k++) {
    await waitUntil(() => listeners.armed === listeners.size, budget(10_000, 'the warm-up'));
    const response = await publish(api, group, tally, k);
    expectStatus(response, 202, 'warm-up notify');
    await waitUntil(
      () => (tally.delivered[k] ?? 0) >= listeners.size,
      budget(10_000, 'the warm-up'),
    );
  }
  const got = Array.from(tally.delivered).reduce((a, b) => a + b, 0);
  // Close the warm-up listeners from this side; they must not count as held connections.
  await listeners.end(budget(10_000, 'the warm-up'));
  phases.warmup = phaseResult(began, sample(opts.serverPid));
  log(`warm-up: ${opts.warmup} listeners, ${got}/${WARMUP_MESSAGES * opts.warmup} delivered`);
}

async function run(state: RunState): Promise<void> {
  const api = await ApiClient.open(opts.host, opts.port);
  const pool = await Promise.all(
    Array.from({ length: SETUP_CONNECTIONS }, () => ApiClient.open(opts.host, opts.port)),
  );
  await warmUp(api, pool);

  await probe.memoryPoint('fresh');
  let began = sample(opts.serverPid);
  const ids = await mintPushIds(api, opts.n, clock);
  phases.pushIds = phaseResult(began, sample(opts.serverPid));
  began = sample(opts.serverPid);
  await addMembers(pool, opts.group, ids, clock);
  phases.members = phaseResult(began, sample(opts.serverPid));
  for (const client of pool) client.close();
  log(`minted ${ids.length} push IDs, added to group ${opts.group}`);
  await probe.memoryPoint('idle');

  const tally = new Tally(opts.m, opts.n);
  state.tally = tally;
  const listeners = listenerPool(ids, opts.group, tally);
  state.listeners = listeners;
  const armedOrFailed = (): boolean => listeners.armed + listeners.stats().failed >= opts.n;
  began = sample(opts.serverPid);
  const allSettled = await connectAll(
    listeners,
    budget(60_000 + opts.n * 5, 'connecting the listeners'),
  );
  const allArmed = await waitUntil(armedOrFailed, budget(30_000, 'arming the listeners'));
  const connectMs = performance.now() - began.server.at;
  const connectQuiet = await probe.quiet('the connect phase');
  phases.connect = phaseResult(began, connectQuiet.start);
  log(
    `connected: ${listeners.armed} armed, ${listeners.stats().failed} failed, in ` +
      `${(connectMs / 1000).toFixed(2)} s${allSettled && allArmed ? '' : ' (timed out)'}`,
  );
  if (listeners.armed === 0) throw new AbortRun('no listener could be armed');
  state.heldListeners = listeners.armed;
  await probe.memoryPoint('held');
  state.gauges = await probe.readGauges();
  log(
    `server gauges: ${state.gauges.listeners ?? '?'} listeners registered, connections ` +
      JSON.stringify(state.gauges.connections),
  );

  if (opts.profileFile !== null) {
    const started = await probe.hook({ cmd: 'prof-start' });
    log(
      started?.ok === true ? 'server CPU profiler started' : 'could not start the server profiler',
    );
  }
  for (let k = 0; k < opts.m; k++) {
    await waitUntil(armedOrFailed, budget(opts.deliveryTimeoutMs, `message ${k}`));
    if (opts.settleMs > 0) await sleep(budget(opts.settleMs, `message ${k}`));
    const before = await probe.quiet(`message ${k}`);
    const armedNow = listeners.armed;
    if (k === 0) state.armedAtFirstPublish = armedNow;
    firstRepollAt = Infinity;
    const othersBefore = readAllProcessTicks();
    const start = sample(opts.serverPid);
    const response = await publish(api, opts.group, tally, k);
    if (response.status !== 202) error(`publish:${response.status}`, response.body.slice(0, 200));
    await waitUntil(
      () => (tally.delivered[k] ?? 0) >= armedNow,
      budget(opts.deliveryTimeoutMs, `the deliveries of message ${k}`),
      5,
    );
    const after = await probe.quiet(`message ${k}`);
    probe.addForeign(othersBefore, readAllProcessTicks());
    const cpu = cpuDeltaMs(start.server, after.start.server);
    const sentAt = tally.sentAt[k]!;
    const delivered = tally.delivered[k]!;
    const message: MessageResult = {
      k,
      armed: armedNow,
      delivered,
      publishStatus: response.status,
      publishRttMs: round(response.doneAt - sentAt, 2),
      windowMs: round((tally.lastAt[k] ?? NaN) - sentAt, 2),
      cpuWindowMs: round(after.start.server.at - sentAt, 1),
      serverCpuStatMs: round(cpu.statMs, 1),
      serverCpuSchedMs: round(cpu.schedMs, 2),
      clientCpuMs: round((after.start.clientUs - start.clientUs) / 1000, 2),
      foreignCpuMs: round(foreignCpuMs(start, after.start), 0),
      kernelIrqMs: round(kernelCpuMs(start, after.start).irqMs, 0),
      stealMs: round(kernelCpuMs(start, after.start).stealMs, 0),
      quietBefore: before.quiet,
      quietAfter: after.quiet,
      repollInWindow: opts.repollDelayMs > 0 && firstRepollAt < after.start.server.at,
      latencyMs: distribution(tally.latencyOf(k)),
    };
    state.messages.push(message);
    if (delivered < armedNow) error('undelivered', `message ${k}: ${delivered}/${armedNow}`);
    log(
      `msg ${k}: ${delivered}/${armedNow} in ${message.windowMs} ms, server CPU ` +
        `${message.serverCpuStatMs} ms (sched ${message.serverCpuSchedMs}), client ` +
        `${message.clientCpuMs} ms, other processes ${message.foreignCpuMs} ms, p50 ${round(message.latencyMs.p50)} p99 ${round(message.latencyMs.p99)} ms`,
    );
  }
  if (opts.profileFile !== null) {
    const stopped = await probe.hook({ cmd: 'prof-stop', file: opts.profileFile }, 30_000);
    log(stopped?.ok === true ? `server CPU profile: ${opts.profileFile}` : 'no server profile');
  }
  api.close();
}

async function main(): Promise<void> {
  if (opts.port === 0 || opts.serverPid === 0) {
    process.stderr.write('generator: --port and --server-pid are required\n');
    process.exit(2);
  }
  const state: RunState = {
    listeners: null,
    tally: null,
    messages: [],
    armedAtFirstPublish: 0,
    heldListeners: 0,
    gauges: null,
  };
  let abortReason: string | null = null;
  try {
    await run(state);
  } catch (failure) {
    abortReason = failure instanceof Error ? failure.message : String(failure);
    log(`ABORTED: ${abortReason}`);
  }
  writeFileSync(
    opts.out,
    JSON.stringify(
      summarize(state, abortReason === null, abortReason, {
        opts,
        startedAt,
        phases,
        memoryPoints: probe.memoryPoints,
        counters,
        errors,
        errorSamples,
        foreignTop: probe.topForeign(5),
      }),
      null,
      2,
    ),
  );
  log(`result written to ${opts.out}`);

  // Let the server close the connections (run.ts stops it on DONE): server-side active closes
  // leave no TIME_WAIT on this side's ports, which the next run needs.
  state.listeners?.stop();
  const reconnectBefore = counters.reconnectAnswers ?? 0;
  const began = performance.now();
  process.stdout.write('DONE\n');
  const closed = (await state.listeners?.close(20_000)) ?? { closedByServer: 0, stillOpen: 0 };
  const report: ShutdownReport = {
    reconnectAnswers: (counters.reconnectAnswers ?? 0) - reconnectBefore,
    closedByServer: closed.closedByServer,
    stillOpen: closed.stillOpen,
    waitedMs: round(performance.now() - began),
  };
  process.stdout.write(`SHUTDOWN ${JSON.stringify(report)}\n`);
  process.exit(abortReason === null ? 0 : 1);
}

main().catch((failure: unknown) => {
  process.stderr.write(
    `generator: ${failure instanceof Error ? (failure.stack ?? failure.message) : String(failure)}\n`,
  );
  process.exit(1);
});
