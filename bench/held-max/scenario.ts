/**
 * held-max: how many long-poll listeners the box holds at once, all woken by ONE group
 * notification (GitHub issue 8: at least 250,000 on 2 cores).
 *
 * One process holds at most ~19.9k sockets (fd limit 20,000) and one source address
 * gives 28,232 ephemeral ports, so the run is spread over processes:
 *  - the server: epush with `--workers W` (node:cluster, one port; the primary relays the memory
 *    backplane's log to every worker over IPC), W = ceil(N / 18,000), each process under
 *    `ulimit -n 20000`, not pinned (all cores);
 *  - G = ceil(N / 18,000) generator processes (bench/held-max/generator.ts), each with its own
 *    source addresses 127.0.(base+g).1.. so no two share a (source, destination) port space.
 * This process mints the N push IDs, adds them to one group, starts the generators, waits until
 * all N listens are held, samples memory, publishes ONE group notification, and collects every
 * delivery (with the publish instant on CLOCK_MONOTONIC, shared by all processes). Then
 * optionally more rounds once the listeners re-polled. Everything is bounded in time and every
 * process it started is stopped by pid, also on failure.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '../../testbed/free-port.js';
import { Args } from '../lib/args.js';
import { measuredFrom, writeBenchSection } from '../lib/docs.js';
import { ApiClient } from '../lib/http-client.js';
import {
  FD_LIMIT,
  onStdoutLine,
  openLog,
  spawnPinned,
  stopWithin,
  type Spawned,
} from '../lib/processes.js';
import {
  childPids,
  clkTck,
  fdCount,
  readCpu,
  readFdLimits,
  readKernelMemory,
  readMemory,
} from '../lib/procfs.js';
import { distribution, round, sleep } from '../lib/stats.js';
import { prepare, ROOT, waitForIdleBox, type Preparation } from '../longpoll-fanout/scenario.js';
import { NGINX, nchanAvailable, writeNchanConfig } from './nchan.js';
import { renderHeldMax } from './report.js';
import {
  isTarget,
  type DeliveryLine,
  type GeneratorCommand,
  type GeneratorLine,
  type ProgressLine,
  type Target,
} from './types.js';
import type {
  HeldMaxReport,
  MemorySample,
  ProcessFacts,
  RoundResult,
  TargetResult,
} from './result.js';

export const HELD_MAX_USAGE = `npm run bench -- held-max [flags]

  --n N                  listeners held on one group (default 20000)
  --targets LIST         epush, nchan or both (default epush)
  --workers W            server processes (default ceil(N / --per-process))
  --generators G         generator processes (default ceil(N / --per-process))
  --per-process P        connections per server worker and per generator (default 18000)
  --m M                  group notifications, one at a time, each once all re-polled (default 2)
  --concurrency C        connects in flight per generator (default 256)
  --src-base B           generator g binds 127.0.(B+g).1.. (default 1)
  --src-per-gen K        source addresses per generator (default 8: the kernel's port search in
                         bind() slows down as one address's ports fill up)
  --connect-rate R       new connections per second, all generators together (default 2000;
                         0 = only --concurrency bounds it)
  --canary-seconds S     epush --canary-seconds (default: epush's own, 1 s; the canary times
                         out after 3 periods and then the worker sends its listeners away)
  --repoll-delay-ms MS   re-poll this long after a delivery (default 0 = at once, browser-like)
  --max-seconds S        bound of the whole run, all targets (default 900)
  --no-build             do not run \`npm run build\` first
  --no-docs              do not update docs/benchmarks.md
`;

const NOTIFY_GROUP = 'bench';
const MINT_BATCH = 1000;
const API_CLIENTS = 8;
const API_DEPTH = 32;

function log(message: string): void {
  process.stderr.write(`[held-max ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

function nowUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

class Deadline {
  private readonly end: number;

  constructor(seconds: number) {
    this.end = Date.now() + seconds * 1000;
  }

  left(): number {
    return this.end - Date.now();
  }

  /** The smaller of `ms` and the time left; throws once the run's time is up. */
  budget(ms: number, what: string): number {
    const left = this.left();
    if (left <= 0) throw new Error(`--max-seconds reached before ${what}`);
    return Math.min(ms, left);
  }
}

function processFacts(pids: readonly number[]): ProcessFacts[] {
  return pids.map((pid) => {
    let rssKb: number | null = null;
    try {
      rssKb = readMemory(pid).rssKb;
    } catch {
      rssKb = null;
    }
    return { pid, rssKb, fds: fdCount(pid) };
  });
}

/** Summed CPU of `pids`: ticks (ms) and schedstat (ms); processes gone are skipped. */
function cpuOf(pids: readonly number[]): Map<number, { statMs: number; schedMs: number }> {
  const out = new Map<number, { statMs: number; schedMs: number }>();
  for (const pid of pids) {
    try {
      const cpu = readCpu(pid);
      out.set(pid, { statMs: (cpu.ticks * 1000) / clkTck(), schedMs: cpu.ns / 1e6 });
    } catch {
      // exited
    }
  }
  return out;
}

function cpuDelta(
  from: Map<number, { statMs: number; schedMs: number }>,
  to: Map<number, { statMs: number; schedMs: number }>,
): { statMs: number; schedMs: number; byPid: Record<number, number> } {
  let statMs = 0;
  let schedMs = 0;
  const byPid: Record<number, number> = {};
  for (const [pid, end] of to) {
    const start = from.get(pid) ?? { statMs: 0, schedMs: 0 };
    statMs += end.statMs - start.statMs;
    schedMs += end.schedMs - start.schedMs;
    byPid[pid] = Math.round(end.schedMs - start.schedMs);
  }
  return { statMs: Math.round(statMs), schedMs: Math.round(schedMs), byPid };
}

/** Waits until the server processes together use < `perWindowMs` of CPU in 2 windows of 500 ms. */
async function waitQuiet(
  pids: () => number[],
  timeoutMs: number,
): Promise<{ quiet: boolean; waitedMs: number }> {
  const began = Date.now();
  let idle = 0;
  let previous = cpuOf(pids());
  for (;;) {
    await sleep(500);
    const list = pids();
    const current = cpuOf(list);
    const busy = cpuDelta(previous, current).schedMs;
    const limit = 10 + 3 * list.length;
    idle = busy <= limit ? idle + 1 : 0;
    previous = current;
    if (idle >= 2) return { quiet: true, waitedMs: Date.now() - began };
    if (Date.now() - began >= timeoutMs) return { quiet: false, waitedMs: Date.now() - began };
  }
}

function memorySample(label: string, pids: readonly number[], quiet: boolean): MemorySample {
  const processes = processFacts(pids);
  const kernel = readKernelMemory();
  return {
    label,
    quiet,
    rssKb: processes.reduce((sum, p) => sum + (p.rssKb ?? 0), 0),
    processes,
    slabKb: kernel.slabKb,
    tcpInUse: kernel.tcpInUse,
    tcpTimeWait: kernel.tcpTimeWait,
  };
}

// --- the server under test -------------------------------------------------------------------

interface ServerUnderTest {
  readonly target: Target;
  readonly spawned: Spawned;
  readonly port: number;
  readonly argv: readonly string[];
  /** The spawned process and its children. */
  pids(): number[];
  /** What the server says it holds (sum over workers), when it can tell. */
  held(): Promise<number | null>;
  /**
   * One notification to every listener: `id` names it in the logs, `key` is the payload the
   * listeners receive (what the generators record deliveries by).
   */
  publish(
    roundNo: number,
  ): Promise<{ status: number; id: string; key: string; rttMs: number; sentUs: number }>;
  close(): void;
}

function waitForLine(
  spawned: Spawned,
  pattern: RegExp,
  timeoutMs: number,
): Promise<RegExpExecArray> {
  return new Promise((resolveLine, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`no line matching ${pattern} within ${timeoutMs} ms`));
    }, timeoutMs);
    onStdoutLine(spawned, (line) => {
      const match = pattern.exec(line);
      if (match) {
        clearTimeout(timer);
        resolveLine(match);
      }
    });
    void spawned.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited before it was ready (code ${code}, signal ${signal})`));
    });
  });
}

async function startEpush(
  prepared: Preparation,
  workers: number,
  canarySeconds: number | null,
  logFile: string,
): Promise<ServerUnderTest> {
  const argv = [
    process.execPath,
    prepared.cli,
    'start',
    '--port',
    '0',
    '--insecure-dev',
    '--workers',
    String(workers),
    '--hold-seconds',
    '600',
    '--push-id-ttl',
    '3600',
    '--retention-seconds',
    '3600',
    '--log-level',
    'warn',
    '--idle-timeout-seconds',
    '900',
    '--headers-timeout-seconds',
    '600',
    '--body-timeout-seconds',
    '900',
    '--drain-seconds',
    '5',
    ...(canarySeconds === null ? [] : ['--canary-seconds', String(canarySeconds)]),
  ];
  const spawned = spawnPinned(null, argv, { cwd: prepared.serverRoot, log: openLog(logFile) });
  const match = await waitForLine(spawned, /^epush listening on (http:\/\/\S+)/, 60_000);
  const port = Number(new URL(match[1]!).port);
  const api = await ApiClient.open('127.0.0.1', port);
  return {
    target: 'epush',
    spawned,
    port,
    argv,
    pids: () => [spawned.pid, ...childPids(spawned.pid)],
    held: async () => {
      // Each worker is a node; /api/cluster gives the answering one live, the others as of
      // their last heartbeat.
      const answer = await api.request('GET', '/api/cluster');
      if (answer.status !== 200) return null;
      const body = JSON.parse(answer.body) as { nodes?: { connections?: number }[] };
      return (body.nodes ?? []).reduce((sum, node) => sum + (node.connections ?? 0), 0);
    },
    publish: async (roundNo) => {
      const sentUs = nowUs();
      const answer = await api.request(
        'POST',
        `/api/groups/${NOTIFY_GROUP}/notify`,
        { payload: `round-${roundNo}` },
        120_000,
      );
      let id = '';
      try {
        const parsed = (JSON.parse(answer.body) as { id?: unknown }).id;
        id = typeof parsed === 'string' ? parsed : '';
      } catch {
        id = '';
      }
      return {
        status: answer.status,
        id,
        key: `round-${roundNo}`,
        rttMs: answer.doneAt - answer.sentAt,
        sentUs,
      };
    },
    close: () => {
      api.close();
    },
  };
}

async function startNchan(workers: number, dir: string, logFile: string): Promise<ServerUnderTest> {
  const port = await freePort();
  const conf = writeNchanConfig(dir, port, workers);
  const argv = [NGINX, '-p', dir, '-c', conf];
  const spawned = spawnPinned(null, argv, { log: openLog(logFile) });
  let api: ApiClient | null = null;
  for (let i = 0; i < 100 && api === null; i++) {
    await sleep(100);
    if (spawned.child.exitCode !== null) throw new Error(`nginx exited: see ${logFile}`);
    api = await ApiClient.open('127.0.0.1', port).catch(() => null);
  }
  if (api === null) throw new Error(`nginx did not listen on ${port}: see ${logFile}`);
  api.close();
  // A fresh connection per call: nginx may close an idle keep-alive connection meanwhile.
  const once = async <T>(use: (client: ApiClient) => Promise<T>): Promise<T> => {
    const client = await ApiClient.open('127.0.0.1', port);
    try {
      return await use(client);
    } finally {
      client.close();
    }
  };
  return {
    target: 'nchan',
    spawned,
    port,
    argv,
    pids: () => [spawned.pid, ...childPids(spawned.pid)],
    held: async () => {
      const answer = await once((client) => client.request('GET', '/nchan_status'));
      const match = /subscribers:\s*(\d+)/.exec(answer.body);
      return match ? Number(match[1]) : null;
    },
    publish: async (roundNo) => {
      const id = `round-${roundNo}`;
      const client = await ApiClient.open('127.0.0.1', port);
      const sentUs = nowUs();
      const answer = await client
        .request('POST', `/pub/${NOTIFY_GROUP}`, id, 120_000)
        .finally(() => {
          client.close();
        });
      // The API client sends the body as JSON: nchan delivers the quoted string.
      return {
        status: answer.status,
        id: JSON.stringify(id),
        key: JSON.stringify(id),
        rttMs: answer.doneAt - answer.sentAt,
        sentUs,
      };
    },
    close: () => undefined,
  };
}

// --- setup: push IDs and the group ------------------------------------------------------------

async function mintAndJoin(port: number, n: number, deadline: Deadline): Promise<string[]> {
  const clients = await Promise.all(
    Array.from({ length: API_CLIENTS }, () => ApiClient.open('127.0.0.1', port)),
  );
  try {
    const ids: string[] = [];
    let batches = Math.ceil(n / MINT_BATCH);
    const mint = async (client: ApiClient): Promise<void> => {
      while (batches > 0) {
        batches -= 1;
        const count = Math.min(MINT_BATCH, n - ids.length);
        if (count <= 0) return;
        const answer = await client.request('POST', '/api/push-ids', { count });
        if (answer.status !== 200 && answer.status !== 201)
          throw new Error(`POST /api/push-ids: ${answer.status} ${answer.body.slice(0, 200)}`);
        ids.push(...(JSON.parse(answer.body) as { pushIds: string[] }).pushIds);
      }
    };
    await Promise.all(clients.map(mint));
    ids.length = Math.min(ids.length, n);
    log(`minted ${ids.length} push IDs; adding them to group "${NOTIFY_GROUP}"`);
    let next = 0;
    let done = 0;
    let lastLog = Date.now();
    const join = async (client: ApiClient): Promise<void> => {
      while (next < ids.length) {
        deadline.budget(1, 'the group was complete');
        const batch = ids.slice(next, next + API_DEPTH);
        next += batch.length;
        const answers = await Promise.all(
          batch.map((id) => client.request('PUT', `/api/groups/${NOTIFY_GROUP}/members/${id}`)),
        );
        for (const answer of answers) {
          if (answer.status !== 204 && answer.status !== 200) {
            throw new Error(`PUT member: ${answer.status} ${answer.body.slice(0, 200)}`);
          }
        }
        done += batch.length;
        if (Date.now() - lastLog > 10_000) {
          lastLog = Date.now();
          log(`  ${done} / ${ids.length} members`);
        }
      }
    };
    await Promise.all(clients.map(join));
    return ids;
  } finally {
    for (const client of clients) client.close();
  }
}

// --- generators ------------------------------------------------------------------------------

class GeneratorProcess {
  progress: ProgressLine | null = null;
  readonly deliveries = new Map<number, DeliveryLine>();
  errorSamples: string[] = [];

  constructor(
    readonly index: number,
    readonly spawned: Spawned,
    readonly sources: string[],
    readonly listeners: number,
  ) {
    onStdoutLine(spawned, (line) => {
      let parsed: GeneratorLine;
      try {
        parsed = JSON.parse(line) as GeneratorLine;
      } catch {
        log(`generator ${index}: ${line.slice(0, 200)}`);
        return;
      }
      if (parsed.type === 'progress') this.progress = parsed;
      else if (parsed.type === 'delivery') this.deliveries.set(parsed.round, parsed);
      else this.errorSamples = parsed.samples;
    });
    spawned.child.stderr?.on('data', (chunk: Buffer) => {
      process.stderr.write(chunk);
    });
  }

  send(command: GeneratorCommand): void {
    const stdin = this.spawned.child.stdin;
    if (stdin && !stdin.destroyed) stdin.write(`${JSON.stringify(command)}\n`);
  }

  get alive(): boolean {
    return this.spawned.child.exitCode === null && this.spawned.child.signalCode === null;
  }
}

function totals(generators: readonly GeneratorProcess[]): {
  connected: number;
  armed: number;
  held: number;
  failed: number;
  notifications: number;
  open: number;
  reconnects: number;
  reconnectAnswers: number;
  refused: number;
  errors: Record<string, number>;
  cpuMs: number;
} {
  const out = {
    connected: 0,
    armed: 0,
    held: 0,
    failed: 0,
    notifications: 0,
    open: 0,
    reconnects: 0,
    reconnectAnswers: 0,
    refused: 0,
    errors: {} as Record<string, number>,
    cpuMs: 0,
  };
  for (const g of generators) {
    const p = g.progress;
    if (!p) continue;
    out.connected += p.connected;
    out.armed += p.armed;
    out.held += p.held;
    out.failed += p.failed;
    out.notifications += p.notifications;
    out.open += p.open;
    out.reconnects += p.reconnects;
    out.reconnectAnswers += p.reconnectAnswers;
    out.cpuMs += p.cpuMs;
    for (const [kind, count] of Object.entries(p.errors)) {
      out.errors[kind] = (out.errors[kind] ?? 0) + count;
      if (kind.startsWith('status:')) out.refused += count;
    }
  }
  return out;
}

/** Asks every generator for a fresh progress line and waits for it (up to `timeoutMs`). */
async function freshProgress(
  generators: readonly GeneratorProcess[],
  timeoutMs = 2000,
): Promise<void> {
  const before = generators.map((g) => g.progress);
  for (const g of generators) g.send({ cmd: 'progress' });
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (generators.every((g, i) => !g.alive || g.progress !== before[i])) return;
    await sleep(20);
  }
}

// --- one target ------------------------------------------------------------------------------

interface RunPlan {
  readonly id: string;
  readonly n: number;
  readonly m: number;
  readonly workers: number;
  readonly generators: number;
  readonly concurrency: number;
  readonly srcBase: number;
  readonly srcPerGen: number;
  readonly repollDelayMs: number;
  readonly connectRate: number;
  readonly canarySeconds: number | null;
  readonly outDir: string;
  readonly prepared: Preparation;
}

async function runTarget(target: Target, plan: RunPlan, deadline: Deadline): Promise<TargetResult> {
  const { n, m, workers } = plan;
  const runDir = join(plan.outDir, `${plan.id}-${target}`);
  mkdirSync(runDir, { recursive: true });
  const serverLog = join(runDir, 'server.log');
  const phases: Record<string, number> = {};
  const memory: MemorySample[] = [];
  const rounds: RoundResult[] = [];
  const generators: GeneratorProcess[] = [];
  let server: ServerUnderTest | null = null;
  let abortReason: string | null = null;
  let heldCount = 0;
  let serverHeld: number | null = null;
  let workerFacts: ProcessFacts[] = [];
  let serverFdLimit: { soft: number; hard: number } | null = null;
  let serverExit: { code: number | null; signal: string | null; forced: boolean } | null = null;
  let generatorCpuMs = 0;
  let errorsAtEnd: Record<string, number> = {};
  const errorSamples: string[] = [];
  const timeWaitAtStart = readKernelMemory().tcpTimeWait;
  const hardStop = setTimeout(
    () => {
      log('hard time limit reached: killing every process of this run');
      for (const g of generators) void stopWithin(g.spawned, 1000, 'SIGKILL');
      if (server) void stopWithin(server.spawned, 1000, 'SIGKILL');
    },
    Math.max(10_000, deadline.left() + 60_000),
  );
  try {
    // --- server ------------------------------------------------------------------------------
    let began = Date.now();
    server =
      target === 'epush'
        ? await startEpush(plan.prepared, workers, plan.canarySeconds, serverLog)
        : await startNchan(workers, join(runDir, 'nchan'), serverLog);
    const srv = server;
    phases.startMs = Date.now() - began;
    await sleep(1000);
    serverFdLimit = readFdLimits(srv.spawned.pid);
    log(
      `${target}: pid ${srv.spawned.pid} on 127.0.0.1:${srv.port}, ${srv.pids().length - 1} worker processes, fd limit ${serverFdLimit?.soft ?? '?'}`,
    );
    let quiet = await waitQuiet(() => srv.pids(), deadline.budget(30_000, 'fresh sample'));
    memory.push(memorySample('fresh', srv.pids(), quiet.quiet));

    // --- push IDs and the group ----------------------------------------------------------------
    let ids: string[] = [];
    if (target === 'epush') {
      began = Date.now();
      ids = await mintAndJoin(srv.port, n, deadline);
      phases.setupMs = Date.now() - began;
      log(`${n} push IDs minted and in the group in ${(phases.setupMs / 1000).toFixed(1)} s`);
      quiet = await waitQuiet(() => srv.pids(), deadline.budget(60_000, 'idle sample'));
      memory.push(memorySample('idle', srv.pids(), quiet.quiet));
    } else {
      memory.push({ ...memorySample('idle', srv.pids(), quiet.quiet) });
    }

    // --- generators ----------------------------------------------------------------------------
    began = Date.now();
    const share = Math.ceil(n / plan.generators);
    for (let g = 0; g < plan.generators; g++) {
      const from = g * share;
      const count = Math.min(share, n - from);
      if (count <= 0) break;
      const sources = Array.from(
        { length: plan.srcPerGen },
        (_, k) => `127.0.${plan.srcBase + g}.${k + 1}`,
      );
      const extra: string[] = [];
      if (target === 'epush') {
        const idsFile = join(runDir, `gen${g}.ids`);
        writeFileSync(idsFile, `${ids.slice(from, from + count).join('\n')}\n`);
        extra.push('--ids-file', idsFile);
      } else {
        extra.push('--n', String(count), '--channel', NOTIFY_GROUP);
      }
      const argv = [
        process.execPath,
        '--import',
        'tsx',
        join(ROOT, 'bench', 'held-max', 'generator.ts'),
        '--generator',
        String(g),
        '--target',
        target,
        '--port',
        String(srv.port),
        '--src-ips',
        sources.join(','),
        '--concurrency',
        String(plan.concurrency),
        '--repoll-delay-ms',
        String(plan.repollDelayMs),
        '--connect-rate',
        String(plan.connectRate / plan.generators),
        '--max-seconds',
        String(Math.ceil(deadline.left() / 1000) + 30),
        ...extra,
      ];
      const spawned = spawnPinned(null, argv, { cwd: ROOT, stdin: true });
      generators.push(new GeneratorProcess(g, spawned, sources, count));
    }
    log(`${generators.length} generators started (${share} listeners each at most)`);

    // --- wait until every listen is held -------------------------------------------------------
    const connectBudget = deadline.budget(60_000 + n * 2, 'all listeners were held');
    const connectEnd = Date.now() + connectBudget;
    let lastHeld = -1;
    let lastChange = Date.now();
    let lastLog = 0;
    for (;;) {
      await sleep(500);
      const t = totals(generators);
      if (t.held !== lastHeld) {
        lastHeld = t.held;
        lastChange = Date.now();
      }
      if (Date.now() - lastLog >= 5000) {
        lastLog = Date.now();
        const fds = processFacts(srv.pids().slice(1)).map((p) => p.fds ?? 0);
        log(
          `  connected ${t.connected}, armed ${t.armed}, held ${t.held}, failed ${t.failed}, reconnects ${t.reconnects}, ` +
            `server fds ${fds.join('/')}, errors ${JSON.stringify(t.errors)}`,
        );
      }
      if (t.held >= n) break;
      if (generators.some((g) => !g.alive)) throw new Error('a generator exited early');
      if (srv.spawned.child.exitCode !== null) throw new Error('the server exited');
      if (Date.now() > connectEnd) {
        abortReason = `only ${t.held} of ${n} listeners held after ${Math.round(connectBudget / 1000)} s`;
        break;
      }
      if (Date.now() - lastChange > 60_000 && t.held > 0) {
        abortReason = `held stuck at ${t.held} of ${n} for 60 s`;
        break;
      }
    }
    phases.connectMs = Date.now() - began;
    if (abortReason !== null) log(abortReason);
    quiet = await waitQuiet(() => srv.pids(), deadline.budget(60_000, 'held sample'));
    await freshProgress(generators);
    heldCount = totals(generators).held;
    memory.push(memorySample('held', srv.pids(), quiet.quiet));
    serverHeld = await srv.held().catch(() => null);
    workerFacts = processFacts(srv.pids());
    log(
      `${heldCount} held (server says ${serverHeld ?? '?'}) after ${(phases.connectMs / 1000).toFixed(1)} s; ` +
        `server RSS ${(memory.at(-1)!.rssKb / 1024).toFixed(0)} MiB; per process fds ${workerFacts.map((p) => p.fds).join('/')}`,
    );

    // --- rounds --------------------------------------------------------------------------------
    for (let k = 1; k <= m && heldCount > 0; k++) {
      await freshProgress(generators);
      const before = totals(generators);
      const pids = srv.pids();
      const cpuBefore = cpuOf(pids);
      const published = await srv.publish(k);
      const cpuAtAnswer = cpuOf(pids);
      log(
        `round ${k}: published (${published.status}, id ${published.id}) in ${published.rttMs.toFixed(0)} ms; ${before.armed} armed`,
      );
      const expected = before.armed;
      const deliveryEnd =
        Date.now() + deadline.budget(30_000 + n / 4, `the deliveries of round ${k}`);
      let got = 0;
      let lastGot = -1;
      let stallSince = Date.now();
      while (Date.now() < deliveryEnd) {
        await freshProgress(generators, 1000);
        got = totals(generators).notifications - before.notifications;
        if (got >= expected) break;
        if (got !== lastGot) {
          lastGot = got;
          stallSince = Date.now();
        } else if (Date.now() - stallSince > 15_000) break;
        await sleep(100);
      }
      const cpuDelivered = cpuOf(pids);
      const deliveredAtUs = nowUs();
      for (const g of generators) {
        g.send({ cmd: 'report', round: k, key: published.key, publishUs: published.sentUs });
      }
      const reportEnd = Date.now() + 20_000;
      while (generators.some((g) => g.alive && !g.deliveries.has(k)) && Date.now() < reportEnd) {
        await sleep(50);
      }
      const lines = generators
        .map((g) => g.deliveries.get(k))
        .filter((d): d is DeliveryLine => !!d);
      const latencies: number[] = [];
      let delivered = 0;
      let duplicates = 0;
      let foreign = 0;
      let firstUs = Infinity;
      let lastUs = -Infinity;
      for (const line of lines) {
        delivered += line.delivered;
        duplicates += line.duplicates;
        foreign += line.foreign;
        if (line.firstUs !== null) firstUs = Math.min(firstUs, line.firstUs);
        if (line.lastUs !== null) lastUs = Math.max(lastUs, line.lastUs);
        for (const ms of line.latenciesMs) latencies.push(ms);
        line.latenciesMs.length = 0;
      }
      const fanout = cpuDelta(cpuBefore, cpuDelivered);
      const toAnswer = cpuDelta(cpuBefore, cpuAtAnswer);
      const quietAfter = await waitQuiet(
        () => srv.pids(),
        deadline.budget(120_000, 'quiet after the round'),
      );
      const cpuQuiet = cpuOf(pids);
      await freshProgress(generators);
      const after = totals(generators);
      const herd = cpuDelta(cpuBefore, cpuQuiet);
      const result: RoundResult = {
        round: k,
        armedAtPublish: before.armed,
        heldAtPublish: before.held,
        publishStatus: published.status,
        publishRttMs: round(published.rttMs, 1),
        delivered,
        duplicates,
        foreign,
        publishToFirstMs: Number.isFinite(firstUs)
          ? round((firstUs - published.sentUs) / 1000, 1)
          : null,
        publishToLastMs: Number.isFinite(lastUs)
          ? round((lastUs - published.sentUs) / 1000, 1)
          : null,
        latencyMs: distribution(latencies),
        serverCpuToAnswerMs: toAnswer.schedMs,
        serverCpuFanoutMs: fanout.schedMs,
        serverCpuFanoutStatMs: fanout.statMs,
        fanoutWindowMs: round((deliveredAtUs - published.sentUs) / 1000, 0),
        serverCpuToQuietMs: herd.schedMs,
        quietAfter: quietAfter.quiet,
        quietWindowMs: round((nowUs() - published.sentUs) / 1000, 0),
        cpuByPidFanoutMs: fanout.byPid,
        refusedListens: after.refused - before.refused,
        reconnectAnswers: after.reconnectAnswers - before.reconnectAnswers,
      };
      rounds.push(result);
      log(
        `round ${k}: delivered ${delivered} / ${expected} (dups ${duplicates}), publish→last ${result.publishToLastMs ?? '–'} ms, ` +
          `p50 ${round(result.latencyMs.p50, 0)} p99 ${round(result.latencyMs.p99, 0)} ms, server CPU ${fanout.schedMs} ms ` +
          `(to quiet incl. re-polls ${herd.schedMs} ms); refused listens ${result.refusedListens}, reconnect answers ${result.reconnectAnswers}`,
      );
      if (k < m) {
        // Every listener re-polls (at once by default): wait for them all to be held again.
        const rearmEnd = Date.now() + deadline.budget(60_000 + n, `the re-polls after round ${k}`);
        while (Date.now() < rearmEnd) {
          await freshProgress(generators);
          if (totals(generators).held >= heldCount) break;
          await sleep(500);
        }
      }
    }
  } catch (failure) {
    abortReason ??= failure instanceof Error ? failure.message : String(failure);
    log(`${target}: ${abortReason}`);
  } finally {
    clearTimeout(hardStop);
    await freshProgress(generators).catch(() => undefined);
    const t = totals(generators);
    generatorCpuMs = t.cpuMs;
    errorsAtEnd = t.errors;
    if (server && workerFacts.length === 0) workerFacts = processFacts(server.pids());
    for (const g of generators) g.send({ cmd: 'finish' });
    if (server) {
      server.close();
      log(`${target}: stopping the server (pid ${server.spawned.pid})`);
      const stopSignal = target === 'nchan' ? 'SIGQUIT' : 'SIGTERM';
      serverExit = await stopWithin(server.spawned, 30_000, stopSignal);
      if (target === 'nchan') {
        for (const pid of childPids(server.spawned.pid)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
    }
    for (const g of generators) g.send({ cmd: 'stop' });
    await Promise.all(generators.map((g) => stopWithin(g.spawned, 10_000)));
    for (const g of generators) errorSamples.push(...g.errorSamples.slice(0, 5));
  }
  const byLabel = (label: string): MemorySample | undefined =>
    memory.find((s) => s.label === label);
  const held = byLabel('held');
  const idle = byLabel('idle');
  const fresh = byLabel('fresh');
  const perConn = (
    a: MemorySample | undefined,
    b: MemorySample | undefined,
    field: 'rssKb' | 'slabKb',
  ): number | null =>
    a && b && heldCount > 0 ? round(((a[field] - b[field]) * 1024) / heldCount / 1000, 2) : null;
  return {
    target,
    n,
    workers,
    generators: generators.length,
    sourceAddresses: generators.map((g) => g.sources.join(',')),
    held: heldCount,
    serverHeld,
    completed:
      abortReason === null && rounds.length === m && rounds.every((r) => r.delivered === heldCount),
    abortReason,
    phases,
    memory,
    rssPerConnKb: perConn(held, idle, 'rssKb'),
    rssPerConnInclStateKb: perConn(held, fresh, 'rssKb'),
    slabPerPairKb: perConn(held, idle, 'slabKb'),
    rounds,
    processes: workerFacts,
    serverArgv: server?.argv ?? [],
    serverFdLimit,
    serverExit,
    serverLog,
    serverNotableLog: notable(serverLog),
    generatorCpuMs,
    errors: errorsAtEnd,
    errorSamples,
    timeWaitAtStart,
  };
}

function notable(file: string): string[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('epush listening on')) continue;
    if (line.includes('--insecure-dev')) continue;
    if (lines.length < 40) lines.push(line.slice(0, 400));
  }
  return lines;
}

// --- entry point ----------------------------------------------------------------------------

export async function runHeldMax(argv: readonly string[]): Promise<number> {
  const args = Args.parse(argv, {
    n: 'number',
    targets: 'string',
    workers: 'number',
    generators: 'number',
    'per-process': 'number',
    m: 'number',
    concurrency: 'number',
    'src-base': 'number',
    'src-per-gen': 'number',
    'repoll-delay-ms': 'number',
    'connect-rate': 'number',
    'canary-seconds': 'number',
    'max-seconds': 'number',
    build: 'boolean',
    docs: 'boolean',
    help: 'boolean',
  });
  if (args.boolean('help', false)) {
    process.stdout.write(HELD_MAX_USAGE);
    return 0;
  }
  const n = args.integer('n', 20_000, 1, 2_000_000);
  const perProcess = args.integer('per-process', 18_000, 100, FD_LIMIT - 500);
  const workers = args.integer('workers', Math.ceil(n / perProcess), 1, 256);
  const generators = args.integer('generators', Math.ceil(n / perProcess), 1, 200);
  if (Math.ceil(n / generators) > FD_LIMIT - 500) {
    throw new Error(`${Math.ceil(n / generators)} listeners per generator do not fit its fd limit`);
  }
  const srcBase = args.integer('src-base', 1, 1, 254);
  const srcPerGen = args.integer('src-per-gen', 8, 1, 254);
  if (srcBase + generators - 1 > 254) throw new Error('--src-base + generators must stay ≤ 255');
  const targets = args
    .string('targets', 'epush')
    .split(',')
    .map((t) => t.trim());
  for (const target of targets) {
    if (!isTarget(target)) throw new Error(`unknown target "${target}" (epush, nchan)`);
  }
  if (targets.includes('nchan') && !nchanAvailable()) {
    throw new Error('nginx with libnginx-mod-nchan is not installed');
  }
  const m = args.integer('m', 2, 1, 20);
  const maxSeconds = args.number('max-seconds', 900, 30, 86_400);
  const docs = args.boolean('docs', true);
  const deadline = new Deadline(maxSeconds);
  const startedAt = new Date().toISOString();
  const prepared = prepare(args.boolean('build', true));
  const boxBusy = await waitForIdleBox(0);
  const id = `held-max-n${n}-${stamp()}`;
  const outDir = join(ROOT, '.bench-out');
  mkdirSync(outDir, { recursive: true });
  log(
    `N ${n}: ${workers} server workers, ${generators} generators × ≤${Math.ceil(n / generators)} listeners, ` +
      `sources 127.0.${srcBase}.1 … 127.0.${srcBase + generators - 1}.${srcPerGen}; targets ${targets.join(', ')}`,
  );
  const plan: RunPlan = {
    id,
    n,
    m,
    workers,
    generators,
    concurrency: args.integer('concurrency', 256, 1, 10_000),
    srcBase,
    srcPerGen,
    repollDelayMs: args.integer('repoll-delay-ms', 0, 0, 600_000),
    connectRate: args.number('connect-rate', 2000, 0, 1_000_000),
    canarySeconds: args.has('canary-seconds') ? args.integer('canary-seconds', 1, 1, 60) : null,
    outDir,
    prepared,
  };
  const results: TargetResult[] = [];
  for (const target of targets as Target[]) {
    if (results.length > 0) {
      // Let the previous target's sockets go (TIME_WAIT is on the server side, but be safe).
      await sleep(Math.min(5000, Math.max(0, deadline.left() - 30_000)));
    }
    if (deadline.left() < 30_000) {
      log(`no time left for ${target}`);
      break;
    }
    results.push(await runTarget(target, plan, deadline));
  }
  const report: HeldMaxReport = {
    scenario: 'held-max',
    id,
    startedAt,
    command: `npm run bench -- held-max ${argv.join(' ')}`.trim(),
    machine: prepared.machine,
    source: prepared.source,
    boxBusyPercentBefore: round(boxBusy, 1),
    options: {
      n,
      m,
      workers,
      generators,
      perProcess,
      srcBase,
      srcPerGen,
      concurrency: plan.concurrency,
      repollDelayMs: plan.repollDelayMs,
      connectRate: plan.connectRate,
      canarySeconds: plan.canarySeconds,
      maxSeconds,
    },
    results,
  };
  const rawFile = join(outDir, `${id}.json`);
  writeFileSync(rawFile, JSON.stringify(report, null, 2));
  log(`raw results: ${rawFile}`);
  const section = renderHeldMax(report);
  process.stdout.write(`\n${section}\n`);
  const ok = results.length > 0 && results.every((r) => r.completed);
  if (docs && results.some((r) => r.rounds.length > 0)) {
    const key = `n${n}-${targets.join('-')}`;
    writeBenchSection('held-max', key, section, measuredFrom(report.source, report.startedAt));
    log(`docs/benchmarks.md: section held-max:${key} written`);
  }
  return ok ? 0 : 1;
}
