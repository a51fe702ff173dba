/**
 * longpoll-fanout: N long-polls held on one group, then M group notifications one at a time.
 * Starts a fresh epush server on CPU 0 and the generator on CPU 1, collects the generator's
 * measurements, stops both, and writes `.bench-out/*.json` and a section of docs/benchmarks.md.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Args } from '../lib/args.js';
import { hotSpots, type HotSpot } from '../lib/cpuprofile.js';
import { measuredFrom, writeBenchSection } from '../lib/docs.js';
import { machineInfo, sourceInfo, type MachineInfo, type SourceInfo } from '../lib/machine.js';
import {
  FD_LIMIT,
  hasTaskset,
  onStdoutLine,
  openLog,
  spawnPinned,
  stopWithin,
  type Spawned,
} from '../lib/processes.js';
import { clkTck, readFdLimits, readKernelMemory, readSystemBusyTicks } from '../lib/procfs.js';
import { sleep } from '../lib/stats.js';
import { renderSection } from './report.js';
import type { GeneratorResult, ShutdownReport, Transport } from './types.js';

export interface ServerInfo {
  readonly argv: readonly string[];
  readonly pid: number;
  readonly url: string;
  readonly cpu: number | null;
  readonly fdLimit: { soft: number; hard: number } | null;
  readonly exit: { code: number | null; signal: string | null; forced: boolean } | null;
  /** Log lines at warn level or above (pino level ≥ 40) and anything on stderr. */
  readonly notableLog: string[];
  readonly logFile: string;
}

export interface RunReport extends GeneratorResult {
  readonly command: string;
  readonly machine: MachineInfo;
  readonly source: SourceInfo;
  readonly pinned: boolean;
  readonly generatorCpu: number | null;
  readonly generatorFdLimit: { soft: number; hard: number } | null;
  readonly timeWaitAtStart: number;
  /** Whole-machine CPU use (% of one core) over 2 s before the run started. */
  readonly boxBusyPercentBefore: number | null;
  readonly server: ServerInfo;
  readonly shutdown: ShutdownReport | null;
  readonly profile: { file: string; totalMs: number; idleMs: number; spots: HotSpot[] } | null;
  readonly rawFile: string;
}

export const ROOT = resolve(import.meta.dirname, '..', '..');
const SERVER_CPU = 0;
const GENERATOR_CPU = 1;
const PORTS_PER_SOURCE_IP = 28_000;

export const USAGE = `npm run bench -- [longpoll-fanout] [flags]
       npm run bench -- render .bench-out/<run>.json   (rewrite that run's docs section)

  --n N                  listeners held on one group (default 10000, at most 19500: fd limit ${FD_LIMIT})
  --m M                  group notifications, one at a time (default 10)
  --src-ips K            spread listeners over 127.0.0.1..127.0.0.K (default 4)
  --max-seconds S        bound of the whole run (default 300)
  --concurrency C        connects in flight (default 256)
  --settle-ms MS         wait before each publish once all are armed (default 300 + N/10)
  --repoll-delay-ms MS   re-poll this long after each answer (default 0 = at once, browser-like)
  --warmup W             warm-up listeners on another group, 5 notifications (default min(200, N))
  --hold-seconds S       server --hold-seconds (default 120)
  --wait-idle-seconds S  first wait up to S s for the machine to be idle (< 10% of a core for
                         3 windows of 2 s; default 0 = only measure and warn)
  --max-foreign-percent P  leave docs/benchmarks.md alone when other processes used more than P%
                         of a core during the publish windows (default 5)
  --no-heap              do not preload bench/server-hook.mjs (no JS heap figures)
  --no-build             do not run \`npm run build\` first
  --no-docs              do not update docs/benchmarks.md
  --server-prof          profile the server (V8 CPU profiler, publish phase only) and print its hot
                         spots; implies --no-docs unless --docs is given (profiling inflates CPU)
`;

function flags(argv: readonly string[]): Args {
  return Args.parse(argv, {
    n: 'number',
    m: 'number',
    'src-ips': 'number',
    'max-seconds': 'number',
    concurrency: 'number',
    'settle-ms': 'number',
    'repoll-delay-ms': 'number',
    warmup: 'number',
    'hold-seconds': 'number',
    'wait-idle-seconds': 'number',
    'max-foreign-percent': 'number',
    heap: 'boolean',
    build: 'boolean',
    docs: 'boolean',
    'server-prof': 'boolean',
    help: 'boolean',
  });
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-').replace(/Z$/, 'Z');
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Whole-machine busy CPU over `ms`, as % of one core. */
async function boxBusyPercent(ms: number): Promise<number> {
  const before = readSystemBusyTicks();
  await sleep(ms);
  return (((readSystemBusyTicks() - before) * 1000) / clkTck() / ms) * 100;
}

function waitForListening(server: Spawned, timeoutMs: number): Promise<string> {
  return new Promise((resolveUrl, reject) => {
    const timer = setTimeout(() => {
      reject(new Error(`the server printed no "epush listening" line within ${timeoutMs} ms`));
    }, timeoutMs);
    onStdoutLine(server, (line) => {
      const match = /^epush listening on (http:\/\/\S+)/.exec(line);
      if (match?.[1] !== undefined) {
        clearTimeout(timer);
        resolveUrl(match[1]);
      }
    });
    void server.exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited before listening (code ${code}, signal ${signal})`));
    });
  });
}

function notableLines(logFile: string): string[] {
  if (!existsSync(logFile)) return [];
  const lines: string[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (line.trim() === '' || line.startsWith('epush listening on')) continue;
    let level = 100;
    try {
      const parsed = JSON.parse(line) as { level?: unknown; msg?: unknown };
      if (typeof parsed.level === 'number') level = parsed.level;
      if (parsed.msg === '--insecure-dev: the application API needs no key on this node') continue;
    } catch {
      level = 100; // not pino JSON: stderr or a crash
    }
    if (level >= 40 && lines.length < 50) lines.push(line.slice(0, 500));
  }
  return lines;
}

/** `npm run bench -- render FILE.json`: rewrites a run's docs section from its raw JSON. */
export function renderLongpollFanout(argv: readonly string[]): Promise<number> {
  const [file] = argv;
  if (file === undefined) throw new Error('render needs the path of a raw .bench-out/*.json file');
  const report = JSON.parse(readFileSync(file, 'utf8')) as RunReport;
  const { n, m, repollDelayMs } = report.options;
  const key = `n${n}-m${m}${repollDelayMs > 0 ? `-defer${repollDelayMs}` : ''}`;
  writeBenchSection(
    'longpoll-fanout',
    key,
    renderSection(report, ROOT),
    measuredFrom(report.source, report.startedAt),
  );
  log(`docs/benchmarks.md: section longpoll-fanout:${key} rewritten from ${file}`);
  return Promise.resolve(0);
}

/** What the machine and the code are, once per command (a build first unless `build` is false). */
export interface Preparation {
  readonly source: SourceInfo;
  readonly machine: MachineInfo;
  /** The epush checkout whose dist/ the server runs (this one unless --server-root). */
  readonly serverRoot: string;
  readonly cli: string;
}

/**
 * `serverRoot` is the epush checkout to build and run (default: this one). Another checkout, e.g.
 * a `git worktree` of HEAD, measures a known commit while this work tree has edits in progress.
 */
export function prepare(build: boolean, serverRoot: string = ROOT): Preparation {
  const root = resolve(serverRoot);
  if (build) {
    log(`npm run build${root === ROOT ? '' : ` (in ${root})`}`);
    const result = spawnSync('npm', ['run', 'build', '--silent'], { cwd: root, stdio: 'inherit' });
    if (result.status !== 0) throw new Error('npm run build failed');
  }
  const cli = join(root, 'dist', 'src', 'cli', 'main.js');
  if (!existsSync(cli)) throw new Error(`${cli} is missing: run npm run build`);
  const machine = machineInfo();
  if (!hasTaskset())
    log('WARNING: taskset does not work here; server and generator are not pinned');
  if (machine.nproc < 2) log('WARNING: fewer than 2 CPUs; server and generator share a core');
  return { source: sourceInfo(root), machine, serverRoot: root, cli };
}

/**
 * Whole-machine CPU use (% of one core) over 2 s; with `waitIdleSeconds` > 0 it first waits up
 * to that long for three 2 s windows in a row under 10% (test suites pause between files).
 */
export async function waitForIdleBox(waitIdleSeconds: number): Promise<number> {
  let boxBusy = await boxBusyPercent(2000);
  const waitUntilMs = Date.now() + waitIdleSeconds * 1000;
  let idleStreak = boxBusy <= 10 ? 1 : 0;
  for (let round = 0; waitIdleSeconds > 0 && idleStreak < 3 && Date.now() < waitUntilMs; round++) {
    if (round % 15 === 0 && boxBusy > 10) {
      log(`the machine is busy (${boxBusy.toFixed(0)}% of a core): waiting for it to go idle`);
    }
    boxBusy = await boxBusyPercent(2000);
    idleStreak = boxBusy <= 10 ? idleStreak + 1 : 0;
  }
  if (boxBusy > 10) {
    log(`WARNING: other processes use ${boxBusy.toFixed(0)}% of a core; figures will be disturbed`);
  }
  return boxBusy;
}

/** One server + generator run: the fan-out of one transport against a fresh epush node. */
export interface FanoutRun {
  readonly id: string;
  readonly n: number;
  readonly m: number;
  readonly srcIps: number;
  readonly maxSeconds: number;
  readonly holdSeconds: number;
  readonly repollDelayMs: number;
  readonly heap: boolean;
  readonly prof: boolean;
  readonly transport: Transport;
  /** Passed to the generator as given (`--concurrency`, `--settle-ms`, `--warmup`). */
  readonly generatorFlags: readonly string[];
  readonly command: string;
  readonly prepared: Preparation;
  readonly boxBusy: number;
}

/**
 * Starts a fresh server (CPU 0) and the generator (CPU 1), waits for the generator, stops both
 * and writes the raw `.bench-out/<id>.json`. Null when the generator wrote no result.
 */
export async function runFanoutOnce(run: FanoutRun): Promise<RunReport | null> {
  const { id, n, m, srcIps, maxSeconds, holdSeconds, repollDelayMs, heap, prof } = run;
  if (Math.ceil(n / srcIps) > PORTS_PER_SOURCE_IP) {
    throw new Error(
      `--n ${n} over --src-ips ${srcIps} needs more than ${PORTS_PER_SOURCE_IP} ports per source address`,
    );
  }
  const outDir = join(ROOT, '.bench-out');
  mkdirSync(outDir, { recursive: true });
  const statsFile = join(outDir, `${id}.hook-answer.json`);
  const controlFile = join(outDir, `${id}.hook-command.json`);
  const useHook = heap || prof;
  const generatorOut = join(outDir, `${id}.generator.json`);
  const serverLogFile = join(outDir, `${id}.server.log`);
  const profileFile = join(outDir, `${id}.server.cpuprofile`);
  const timeWaitAtStart = readKernelMemory().tcpTimeWait;
  if (timeWaitAtStart > 10_000) {
    log(`note: ${timeWaitAtStart} TIME_WAIT sockets from earlier runs hold ephemeral ports`);
  }

  // --- server ----------------------------------------------------------------------------
  const serverArgv = [
    process.execPath,
    ...(heap ? ['--expose-gc'] : []),
    ...(useHook ? [`--import=${pathToFileURL(join(ROOT, 'bench', 'server-hook.mjs')).href}`] : []),
    run.prepared.cli,
    'start',
    '--port',
    '0',
    '--insecure-dev',
    '--hold-seconds',
    String(holdSeconds),
    '--log-level',
    'warn',
    '--idle-timeout-seconds',
    '600',
    '--headers-timeout-seconds',
    '600',
    '--body-timeout-seconds',
    '600',
    '--drain-seconds',
    '5',
  ];
  const serverLog = openLog(serverLogFile);
  const server = spawnPinned(SERVER_CPU, serverArgv, {
    cwd: run.prepared.serverRoot,
    env: { ...process.env, BENCH_STATS_FILE: statsFile, BENCH_CONTROL_FILE: controlFile },
    log: serverLog,
  });
  let generator: Spawned | null = null;
  let serverExit: ServerInfo['exit'] = null;
  let shutdown: ShutdownReport | null = null;
  let serverUrl = '';
  let serverFdLimit: ServerInfo['fdLimit'] = null;
  let generatorFdLimit: RunReport['generatorFdLimit'] = null;
  let generatorExit: { code: number | null; signal: NodeJS.Signals | null } = {
    code: null,
    signal: null,
  };
  const hardStop = setTimeout(
    () => {
      log(`hard time limit (${maxSeconds + 90} s) reached: killing the generator and the server`);
      if (generator) void stopWithin(generator, 2000, 'SIGKILL');
      void stopWithin(server, 2000, 'SIGKILL');
    },
    (maxSeconds + 90) * 1000,
  );
  try {
    serverUrl = await waitForListening(server, 15_000);
    const port = Number(new URL(serverUrl).port);
    serverFdLimit = readFdLimits(server.pid);
    log(
      `${run.transport}: server pid ${server.pid} on ${serverUrl}, CPU ${SERVER_CPU}, fd limit ${serverFdLimit?.soft ?? '?'}`,
    );
    if (serverFdLimit !== null && serverFdLimit.soft < n + 200) {
      throw new Error(`the server's fd limit ${serverFdLimit.soft} is below N + 200`);
    }

    // --- generator -------------------------------------------------------------------------
    const generatorArgv = [
      process.execPath,
      '--import',
      'tsx',
      join(ROOT, 'bench', 'longpoll-fanout', 'generator.ts'),
      '--port',
      String(port),
      '--server-pid',
      String(server.pid),
      '--transport',
      run.transport,
      '--n',
      String(n),
      '--m',
      String(m),
      '--src-ips',
      String(srcIps),
      '--max-seconds',
      String(maxSeconds),
      '--repoll-delay-ms',
      String(repollDelayMs),
      '--out',
      generatorOut,
      ...(useHook ? ['--stats-file', statsFile, '--control-file', controlFile] : []),
      ...(heap ? [] : ['--no-heap']),
      // The profiler's sampling thread alone uses ~12-15 ms per 250 ms window.
      ...(prof ? ['--profile-file', profileFile, '--quiet-max-busy-ms', '30'] : []),
      ...run.generatorFlags,
    ];
    generator = spawnPinned(GENERATOR_CPU, generatorArgv, { cwd: ROOT });
    generator.child.stderr?.pipe(process.stderr, { end: false });
    const running = generator;
    const stopping: { done: Promise<unknown> | null } = { done: null };
    onStdoutLine(running, (line) => {
      if (line === 'DONE') {
        generatorFdLimit ??= readFdLimits(running.pid);
        log(
          'generator done: stopping the server (it answers held listens and closes the connections)',
        );
        stopping.done = stopWithin(server, 20_000).then((exit) => {
          serverExit = exit;
        });
      } else if (line.startsWith('SHUTDOWN ')) {
        shutdown = JSON.parse(line.slice('SHUTDOWN '.length)) as ShutdownReport;
      }
    });
    setTimeout(() => {
      generatorFdLimit ??= readFdLimits(running.pid);
    }, 2000).unref();
    generatorExit = await running.exited;
    if (stopping.done !== null) await stopping.done;
  } finally {
    clearTimeout(hardStop);
    if (generator && generator.child.exitCode === null) await stopWithin(generator, 5000);
    if (server.child.exitCode === null && server.child.signalCode === null) {
      serverExit = await stopWithin(server, 20_000);
    }
    await new Promise<void>((done) => {
      serverLog.end(done);
    });
  }

  if (!existsSync(generatorOut)) {
    log(
      `the generator wrote no result (exit ${generatorExit.code ?? generatorExit.signal}); server log: ${serverLogFile}`,
    );
    return null;
  }
  const result = JSON.parse(readFileSync(generatorOut, 'utf8')) as GeneratorResult;
  let profile: RunReport['profile'] = null;
  if (prof && existsSync(profileFile)) profile = { file: profileFile, ...hotSpots(profileFile) };
  const rawFile = join(outDir, `${id}.json`);
  const report: RunReport = {
    ...result,
    command: run.command,
    machine: run.prepared.machine,
    source: run.prepared.source,
    pinned: hasTaskset(),
    generatorCpu: hasTaskset() ? GENERATOR_CPU : null,
    generatorFdLimit,
    timeWaitAtStart,
    boxBusyPercentBefore: Math.round(run.boxBusy * 10) / 10,
    server: {
      argv: serverArgv,
      pid: server.pid,
      url: serverUrl,
      cpu: hasTaskset() ? SERVER_CPU : null,
      fdLimit: serverFdLimit,
      exit: serverExit,
      notableLog: notableLines(serverLogFile),
      logFile: serverLogFile,
    },
    shutdown,
    profile,
    rawFile,
  };
  writeFileSync(rawFile, JSON.stringify(report, null, 2));
  rmSync(generatorOut, { force: true });
  rmSync(statsFile, { force: true });
  rmSync(controlFile, { force: true });
  log(`raw results: ${rawFile}`);
  return report;
}

/** Prints a profiled run's hot spots (self time) on stdout. */
export function printHotSpots(report: RunReport, top = 25): void {
  const { profile } = report;
  if (!profile) return;
  process.stdout.write(
    `\nServer hot spots, ${report.options.transport ?? 'long-poll'} (self time, ${profile.totalMs} ms non-idle):\n`,
  );
  for (const spot of profile.spots.slice(0, top)) {
    process.stdout.write(
      `  ${spot.percent.toFixed(1).padStart(5)}%  ${spot.selfMs.toFixed(0).padStart(6)} ms  ${spot.name}\n`,
    );
  }
}

export async function runLongpollFanout(argv: readonly string[]): Promise<number> {
  const args = flags(argv);
  if (args.boolean('help', false)) {
    process.stdout.write(USAGE);
    return 0;
  }
  const n = args.integer('n', 10_000, 1, 19_500);
  const m = args.integer('m', 10, 1, 10_000);
  const srcIps = args.integer('src-ips', 4, 1, 250);
  const maxSeconds = args.number('max-seconds', 300, 10, 86_400);
  const holdSeconds = args.integer('hold-seconds', 120, 1, 3600);
  const repollDelayMs = args.integer('repoll-delay-ms', 0, 0, 600_000);
  const heap = args.boolean('heap', true);
  const prof = args.boolean('server-prof', false);
  const docs = args.boolean('docs', !prof);
  const generatorFlags: string[] = [];
  for (const name of ['concurrency', 'settle-ms', 'warmup']) {
    const value = args.optionalString(name);
    if (value !== undefined) generatorFlags.push(`--${name}`, value);
  }
  const prepared = prepare(args.boolean('build', true));
  const boxBusy = await waitForIdleBox(args.number('wait-idle-seconds', 0, 0, 3600));
  const report = await runFanoutOnce({
    id: `longpoll-fanout-n${n}-m${m}${repollDelayMs > 0 ? `-defer${repollDelayMs}` : ''}-${stamp()}`,
    n,
    m,
    srcIps,
    maxSeconds,
    holdSeconds,
    repollDelayMs,
    heap,
    prof,
    transport: 'long-poll',
    generatorFlags,
    command: `npm run bench -- ${argv.join(' ')}`.trim(),
    prepared,
    boxBusy,
  });
  if (report === null) return 1;
  const result = report;

  const section = renderSection(report, ROOT);
  process.stdout.write(`\n${section}\n`);
  printHotSpots(report);
  if (!result.completed) {
    log(`run did not complete (${result.abortReason ?? '?'}); docs/benchmarks.md left unchanged`);
    return 1;
  }
  const maxForeign = args.number('max-foreign-percent', 5, 0, 1000);
  const foreign = result.totals.foreignCpuPercent ?? 0;
  if (foreign > 5) {
    for (const other of result.totals.foreignTop) {
      log(`  other process ${other.pid}: ${other.cpuMs} ms  ${other.command}`);
    }
  }
  if (docs && foreign > maxForeign) {
    log(
      `other processes used ${foreign}% of a core during the publish windows (over ` +
        `--max-foreign-percent ${maxForeign}): docs/benchmarks.md left unchanged; rerun on an idle box`,
    );
    return 3;
  }
  if (docs) {
    const key = `n${n}-m${m}${repollDelayMs > 0 ? `-defer${repollDelayMs}` : ''}`;
    writeBenchSection(
      'longpoll-fanout',
      key,
      section,
      measuredFrom(report.source, report.startedAt),
    );
    log(`docs/benchmarks.md: section longpoll-fanout:${key} written`);
  }
  return 0;
}
