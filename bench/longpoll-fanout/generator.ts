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
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { performance } from 'node:perf_hooks';
import { Args } from '../lib/args.js';
import { ApiClient, type ApiResponse } from '../lib/http-client.js';
import {
  clkTck,
  cpuDeltaMs,
  describeProcess,
  readAllProcessTicks,
  readKernelMemory,
  readMemory,
} from '../lib/procfs.js';
import {
  foreignCpuMs,
  kernelCpuMs,
  sample,
  waitQuiet,
  type QuietResult,
  type Sample,
} from '../lib/quiet.js';
import { distribution, round, sleep, waitUntil } from '../lib/stats.js';
import {
  isTransport,
  TRANSPORTS,
  type GeneratorOptions,
  type GeneratorResult,
  type HeapPoint,
  type MemoryPoint,
  type MessageResult,
  type PhaseResult,
  type ServerGauges,
  type ShutdownReport,
  type Transport,
} from './types.js';
import { epushLongPoll } from '../peers/listen-epush-longpoll.js';
import { epushSse } from '../peers/listen-epush-sse.js';
import { epushWebSocket } from '../peers/listen-epush-ws.js';
import { ListenerPool, loopbackSources } from '../peers/listener-pool.js';
import { DEFAULT_HINTS, type ListenerProtocol } from '../peers/types.js';

const MAX_RECONNECTS = 3;
/** A closed listener reconnects, and a refused listen is retried, after this long. */
const RETRY_MS = 500;
const SETUP_CONNECTIONS = 8;
const WARMUP_MESSAGES = 5;

function parseOptions(argv: readonly string[]): GeneratorOptions {
  const args = Args.parse(argv, {
    host: 'string',
    port: 'number',
    'server-pid': 'number',
    n: 'number',
    m: 'number',
    'src-ips': 'number',
    concurrency: 'number',
    'max-seconds': 'number',
    'settle-ms': 'number',
    'repoll-delay-ms': 'number',
    warmup: 'number',
    heap: 'boolean',
    'stats-file': 'string',
    'control-file': 'string',
    'profile-file': 'string',
    group: 'string',
    'delivery-timeout-ms': 'number',
    'quiet-timeout-ms': 'number',
    'quiet-max-busy-ms': 'number',
    out: 'string',
    transport: 'string',
  });
  const transport = args.string('transport', 'long-poll');
  if (!isTransport(transport)) {
    throw new Error(`--transport must be one of ${TRANSPORTS.join(', ')} (got "${transport}")`);
  }
  const n = args.integer('n', 10_000, 1, 19_500);
  const statsFile = args.optionalString('stats-file') ?? null;
  const controlFile = args.optionalString('control-file') ?? null;
  return {
    host: args.string('host', '127.0.0.1'),
    port: args.integer('port', 0, 1, 65535),
    serverPid: args.integer('server-pid', 0, 1),
    n,
    m: args.integer('m', 10, 1, 10_000),
    srcIps: args.integer('src-ips', 4, 1, 250),
    concurrency: args.integer('concurrency', 256, 1, 10_000),
    maxSeconds: args.number('max-seconds', 300, 1, 86_400),
    settleMs: args.integer('settle-ms', 300 + Math.round(n / 10), 0, 600_000),
    repollDelayMs: args.integer('repoll-delay-ms', 0, 0, 600_000),
    warmup: args.integer('warmup', Math.min(200, n), 0, 1000),
    heap: args.boolean('heap', statsFile !== null) && statsFile !== null && controlFile !== null,
    statsFile,
    controlFile,
    profileFile: args.optionalString('profile-file') ?? null,
    group: args.string('group', 'bench'),
    deliveryTimeoutMs: args.integer('delivery-timeout-ms', 30_000 + n, 100, 3_600_000),
    quietTimeoutMs: args.integer('quiet-timeout-ms', 20_000, 500, 3_600_000),
    quietMaxBusyMs: args.number('quiet-max-busy-ms', 5, 0, 250),
    out: args.string('out', '.bench-out/generator-result.json'),
    transport,
  };
}

const opts = parseOptions(process.argv.slice(2));
const startedAt = new Date();
const deadline = performance.now() + opts.maxSeconds * 1000;

class AbortRun extends Error {}

function remainingMs(): number {
  return deadline - performance.now();
}

/** The smaller of `ms` and the time left; throws once the run's time is up. */
function budget(ms: number, what: string): number {
  const left = remainingMs();
  if (left <= 0) throw new AbortRun(`--max-seconds reached before ${what}`);
  return Math.min(ms, left);
}

function log(message: string): void {
  const t = ((performance.now() - (deadline - opts.maxSeconds * 1000)) / 1000).toFixed(1);
  process.stderr.write(`[gen +${t}s] ${message}\n`);
}

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

// --- deliveries ----------------------------------------------------------------------------

/** Deliveries of one set of messages (the warm-up has its own). */
class Tally {
  readonly delivered: Int32Array;
  readonly latencies: Float64Array[];
  readonly sentAt: Float64Array;
  readonly firstAt: Float64Array;
  readonly lastAt: Float64Array;
  duplicates = 0;

  constructor(
    readonly messages: number,
    private readonly capacity: number,
  ) {
    this.delivered = new Int32Array(messages);
    this.latencies = Array.from({ length: messages }, () => new Float64Array(capacity));
    this.sentAt = new Float64Array(messages).fill(NaN);
    this.firstAt = new Float64Array(messages).fill(NaN);
    this.lastAt = new Float64Array(messages).fill(NaN);
  }

  record(k: number, now: number): void {
    const i = this.delivered[k] ?? 0;
    this.delivered[k] = i + 1;
    if (i < this.capacity) this.latencies[k]![i] = now - this.sentAt[k]!;
    if (Number.isNaN(this.firstAt[k])) this.firstAt[k] = now;
    this.lastAt[k] = now;
  }

  latencyOf(k: number): Float64Array {
    return this.latencies[k]!.subarray(0, Math.min(this.capacity, this.delivered[k]!));
  }
}

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

/** `k` of a payload `{"k":…,"t":…}` this generator published, or null for anything else. */
function messageIndex(payload: string, messages: number): number | null {
  let k: unknown;
  try {
    const parsed: unknown = JSON.parse(payload);
    k = typeof parsed === 'object' && parsed !== null && 'k' in parsed ? parsed.k : null;
  } catch {
    return null;
  }
  return typeof k === 'number' && Number.isInteger(k) && k >= 0 && k < messages ? k : null;
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

// --- server-side measurement ---------------------------------------------------------------

interface HookAnswer {
  readonly seq: number;
  readonly ok?: boolean;
  readonly before?: NodeJS.MemoryUsage;
  readonly after?: NodeJS.MemoryUsage;
}

let hookSeq = 0;

/** Sends one command to bench/server-hook.mjs inside the server and waits for its answer. */
async function hook(
  command: Record<string, string>,
  timeoutMs = 10_000,
): Promise<HookAnswer | null> {
  if (opts.statsFile === null || opts.controlFile === null) return null;
  const file = opts.statsFile;
  const previous = hookSeq;
  const got: { answer: HookAnswer | null } = { answer: null };
  writeFileSync(opts.controlFile, JSON.stringify(command));
  process.kill(opts.serverPid, 'SIGUSR2');
  await waitUntil(
    () => {
      if (!existsSync(file)) return false;
      try {
        const parsed = JSON.parse(readFileSync(file, 'utf8')) as HookAnswer;
        if (parsed.seq > previous) got.answer = parsed;
      } catch {
        return false;
      }
      return got.answer !== null;
    },
    budget(timeoutMs, `the server hook (${command.cmd ?? '?'})`),
    25,
  );
  if (got.answer === null) {
    error('serverHook', `no answer to ${JSON.stringify(command)} in time`);
    return null;
  }
  hookSeq = got.answer.seq;
  return got.answer;
}

async function readHeap(): Promise<HeapPoint | null> {
  if (!opts.heap) return null;
  const answer = await hook({ cmd: 'heap' });
  if (!answer?.before || !answer.after) return null;
  return {
    rssBeforeGc: answer.before.rss,
    rssAfterGc: answer.after.rss,
    heapUsed: answer.after.heapUsed,
    heapTotal: answer.after.heapTotal,
    external: answer.after.external,
    arrayBuffers: answer.after.arrayBuffers,
  };
}

function quiet(what: string): Promise<QuietResult> {
  return waitQuiet(opts.serverPid, {
    timeoutMs: budget(opts.quietTimeoutMs, what),
    maxBusyMs: opts.quietMaxBusyMs,
  }).then((result) => {
    if (!result.quiet)
      error('notQuiet', `server not quiet after ${opts.quietTimeoutMs} ms (${what})`);
    return result;
  });
}

const memoryPoints: MemoryPoint[] = [];

async function memoryPoint(label: string): Promise<MemoryPoint> {
  const q = await quiet(`the ${label} memory sample`);
  const point: MemoryPoint = {
    label,
    quiet: q.quiet,
    quietWaitMs: round(q.waitedMs),
    process: readMemory(opts.serverPid),
    kernel: readKernelMemory(),
    heap: await readHeap(),
  };
  memoryPoints.push(point);
  log(
    `memory ${label}: RSS ${(point.process.rssKb / 1024).toFixed(1)} MB` +
      (point.heap ? `, heap ${(point.heap.heapUsed / 1048576).toFixed(1)} MB after GC` : '') +
      `, slab ${(point.kernel.slabKb / 1024).toFixed(1)} MB`,
  );
  return point;
}

const phases: Record<string, PhaseResult> = {};

/** CPU ticks of other processes during the publish windows, by pid (processes that existed at both ends). */
const foreignTicks = new Map<number, number>();

function addForeign(before: Map<number, number>, after: Map<number, number>): void {
  for (const [pid, ticks] of after) {
    if (pid === opts.serverPid || pid === process.pid) continue;
    const delta = ticks - (before.get(pid) ?? ticks);
    if (delta > 0) foreignTicks.set(pid, (foreignTicks.get(pid) ?? 0) + delta);
  }
}

function topForeign(count: number): { pid: number; cpuMs: number; command: string }[] {
  return [...foreignTicks.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([pid, ticks]) => ({
      pid,
      cpuMs: (ticks * 1000) / clkTck(),
      command: describeProcess(pid),
    }));
}

function phaseResult(from: Sample, to: Sample): PhaseResult {
  const cpu = cpuDeltaMs(from.server, to.server);
  return {
    ms: round(to.server.at - from.server.at),
    serverCpuStatMs: round(cpu.statMs),
    serverCpuSchedMs: round(cpu.schedMs),
    clientCpuMs: round((to.clientUs - from.clientUs) / 1000),
    foreignCpuMs: round(foreignCpuMs(from, to), 0),
  };
}

// --- setup ---------------------------------------------------------------------------------

function expectStatus(response: ApiResponse, status: number, what: string): void {
  if (response.status !== status) {
    throw new Error(`${what}: HTTP ${response.status} ${response.body.slice(0, 200)}`);
  }
}

async function mintPushIds(api: ApiClient, count: number): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < count) {
    const batch = Math.min(1000, count - ids.length);
    const response = await api.request('POST', '/api/push-ids', { count: batch });
    expectStatus(response, 201, 'POST /api/push-ids');
    const body = JSON.parse(response.body) as { pushIds?: unknown };
    if (!Array.isArray(body.pushIds) || body.pushIds.length !== batch) {
      throw new Error(`POST /api/push-ids returned ${response.body.slice(0, 200)}`);
    }
    for (const id of body.pushIds) ids.push(String(id));
    if (remainingMs() <= 0) throw new AbortRun('--max-seconds reached while minting push IDs');
  }
  return ids;
}

async function addMembers(
  pool: readonly ApiClient[],
  group: string,
  ids: readonly string[],
): Promise<void> {
  let next = 0;
  await Promise.all(
    pool.map(async (api) => {
      while (next < ids.length) {
        const id = ids[next++]!;
        const response = await api.request('PUT', `/api/groups/${group}/members/${id}`);
        expectStatus(response, 204, 'PUT member');
        if (remainingMs() <= 0) throw new AbortRun('--max-seconds reached while adding members');
      }
    }),
  );
}

async function publish(
  api: ApiClient,
  group: string,
  tally: Tally,
  k: number,
): Promise<ApiResponse> {
  // The write happens inside request(); epush fans out before it answers 202, so deliveries
  // can be parsed before the publish response: the send time is set first.
  const sentAt = performance.now();
  tally.sentAt[k] = sentAt;
  return api.request('POST', `/api/groups/${group}/notify`, {
    payload: { k, t: Math.round(sentAt * 1000) },
  });
}

// --- the run -------------------------------------------------------------------------------

async function warmUp(api: ApiClient, pool: readonly ApiClient[]): Promise<void> {
  if (opts.warmup === 0) return;
  const began = sample(opts.serverPid);
  const group = `${opts.group}-warmup`;
  const ids = await mintPushIds(api, opts.warmup);
  await addMembers(pool, group, ids);
  const tally = new Tally(WARMUP_MESSAGES, opts.warmup);
  const listeners = listenerPool(ids, group, tally);
  await connectAll(listeners, budget(15_000, 'the warm-up'));
  await waitUntil(() => listeners.armed === listeners.size, budget(10_000, 'the warm-up'));
  await quiet('the warm-up');
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

interface RunState {
  listeners: ListenerPool | null;
  tally: Tally | null;
  messages: MessageResult[];
  armedAtFirstPublish: number;
  /** Listeners armed when the "held" memory sample was taken. */
  heldListeners: number;
  gauges: ServerGauges | null;
}

/**
 * `epush_listeners` and `epush_connections{transport}` from GET /metrics: the server's own count
 * of what the generator holds (a WebSocket listen has no acknowledgement on the wire). Read
 * outside every CPU window (the quiet wait before each publish follows).
 */
async function readGauges(): Promise<ServerGauges> {
  let text: string;
  try {
    // /metrics is chunked, which the raw API client does not read: one plain node:http GET.
    text = await new Promise<string>((resolveText, reject) => {
      const request = httpGet(
        { host: opts.host, port: opts.port, path: '/metrics', agent: false, timeout: 10_000 },
        (response) => {
          const parts: Buffer[] = [];
          response.on('data', (part: Buffer) => parts.push(part));
          response.on('end', () => {
            if (response.statusCode === 200) resolveText(Buffer.concat(parts).toString('utf8'));
            else reject(new Error(`HTTP ${response.statusCode ?? '?'}`));
          });
          response.on('error', reject);
        },
      );
      request.on('timeout', () => request.destroy(new Error('timed out')));
      request.on('error', reject);
    });
  } catch (failure) {
    error('metrics', `GET /metrics: ${(failure as Error).message}`);
    return { listeners: null, connections: {} };
  }
  let listeners: number | null = null;
  const connections: Record<string, number> = {};
  for (const line of text.split('\n')) {
    const plain = /^epush_listeners(?:\{[^}]*\})? (\S+)$/.exec(line);
    if (plain) listeners = (listeners ?? 0) + Number(plain[1]);
    const byTransport = /^epush_connections\{[^}]*transport="([^"]+)"[^}]*\} (\S+)$/.exec(line);
    if (byTransport) {
      const name = byTransport[1]!;
      connections[name] = (connections[name] ?? 0) + Number(byTransport[2]);
    }
  }
  return { listeners, connections };
}

async function run(state: RunState): Promise<void> {
  const api = await ApiClient.open(opts.host, opts.port);
  const pool = await Promise.all(
    Array.from({ length: SETUP_CONNECTIONS }, () => ApiClient.open(opts.host, opts.port)),
  );
  await warmUp(api, pool);

  await memoryPoint('fresh');
  let began = sample(opts.serverPid);
  const ids = await mintPushIds(api, opts.n);
  phases.pushIds = phaseResult(began, sample(opts.serverPid));
  began = sample(opts.serverPid);
  await addMembers(pool, opts.group, ids);
  phases.members = phaseResult(began, sample(opts.serverPid));
  for (const client of pool) client.close();
  log(`minted ${ids.length} push IDs, added to group ${opts.group}`);
  await memoryPoint('idle');

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
  const connectQuiet = await quiet('the connect phase');
  phases.connect = phaseResult(began, connectQuiet.start);
  log(
    `connected: ${listeners.armed} armed, ${listeners.stats().failed} failed, in ` +
      `${(connectMs / 1000).toFixed(2)} s${allSettled && allArmed ? '' : ' (timed out)'}`,
  );
  if (listeners.armed === 0) throw new AbortRun('no listener could be armed');
  state.heldListeners = listeners.armed;
  await memoryPoint('held');
  state.gauges = await readGauges();
  log(
    `server gauges: ${state.gauges.listeners ?? '?'} listeners registered, connections ` +
      JSON.stringify(state.gauges.connections),
  );

  if (opts.profileFile !== null) {
    const started = await hook({ cmd: 'prof-start' });
    log(
      started?.ok === true ? 'server CPU profiler started' : 'could not start the server profiler',
    );
  }
  for (let k = 0; k < opts.m; k++) {
    await waitUntil(armedOrFailed, budget(opts.deliveryTimeoutMs, `message ${k}`));
    if (opts.settleMs > 0) await sleep(budget(opts.settleMs, `message ${k}`));
    const before = await quiet(`message ${k}`);
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
    const after = await quiet(`message ${k}`);
    addForeign(othersBefore, readAllProcessTicks());
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
    const stopped = await hook({ cmd: 'prof-stop', file: opts.profileFile }, 30_000);
    log(stopped?.ok === true ? `server CPU profile: ${opts.profileFile}` : 'no server profile');
  }
  api.close();
}

function summarize(
  state: RunState,
  completed: boolean,
  abortReason: string | null,
): GeneratorResult {
  const point = (label: string): MemoryPoint | undefined =>
    memoryPoints.find((p) => p.label === label);
  const fresh = point('fresh');
  const idle = point('idle');
  const held = point('held');
  const perConn = (a: number | undefined, b: number | undefined): number | null =>
    a === undefined || b === undefined || state.heldListeners === 0
      ? null
      : round((b - a) / state.heldListeners, 2);
  let delivered = 0;
  let serverStat = 0;
  let serverSched = 0;
  let client = 0;
  let foreign = 0;
  let irq = 0;
  let steal = 0;
  let windows = 0;
  for (const message of state.messages) {
    foreign += message.foreignCpuMs;
    irq += message.kernelIrqMs;
    steal += message.stealMs;
    windows += message.cpuWindowMs;
    delivered += message.delivered;
    serverStat += message.serverCpuStatMs;
    serverSched += message.serverCpuSchedMs;
    client += message.clientCpuMs;
  }
  const all: number[] = [];
  if (state.tally) {
    for (let k = 0; k < opts.m; k++) for (const value of state.tally.latencyOf(k)) all.push(value);
  }
  const perMessage = state.messages
    .filter((message) => message.delivered > 0)
    .map((message) => (message.serverCpuStatMs * 1000) / message.delivered);
  const perDelivery = (ms: number): number | null =>
    delivered === 0 ? null : round((ms * 1000) / delivered, 2);
  return {
    scenario: 'longpoll-fanout',
    options: opts,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    completed,
    abortReason,
    phases,
    listeners: {
      requested: opts.n,
      connected: state.listeners?.stats().everArmed ?? 0,
      failed: state.listeners?.stats().failed ?? 0,
      armedAtFirstPublish: state.armedAtFirstPublish,
      held: state.heldListeners,
    },
    memory: {
      points: memoryPoints,
      rssPerConnKb: perConn(idle?.process.rssKb, held?.process.rssKb),
      rssPerConnInclStateKb: perConn(fresh?.process.rssKb, held?.process.rssKb),
      heapPerConnKb:
        idle?.heap && held?.heap
          ? perConn(idle.heap.heapUsed / 1024, held.heap.heapUsed / 1024)
          : null,
      slabPerPairKb: perConn(idle?.kernel.slabKb, held?.kernel.slabKb),
    },
    messages: state.messages,
    serverGauges: state.gauges,
    totals: {
      expected: opts.n * opts.m,
      delivered,
      duplicates: state.tally?.duplicates ?? 0,
      serverCpuStatMs: round(serverStat, 1),
      serverCpuSchedMs: round(serverSched, 1),
      clientCpuMs: round(client, 1),
      serverUsPerDelivery: perDelivery(serverStat),
      serverUsPerDeliverySched: perDelivery(serverSched),
      serverUsPerDeliveryMedian:
        perMessage.length === 0 ? null : round(distribution(perMessage).p50, 2),
      clientUsPerDelivery: perDelivery(client),
      foreignCpuMs: round(foreign, 0),
      foreignCpuPercent: windows === 0 ? null : round((foreign / windows) * 100, 1),
      foreignTop: topForeign(5),
      kernelIrqUsPerDelivery: perDelivery(irq),
      stealMs: round(steal, 0),
      latencyMs: distribution(all),
    },
    counters,
    errors,
    errorSamples,
  };
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
    JSON.stringify(summarize(state, abortReason === null, abortReason), null, 2),
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
