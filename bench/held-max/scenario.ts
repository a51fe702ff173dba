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
 *
 * This file reads the flags and runs the targets; one target's run is run-target.ts, with
 * server-under-test.ts, group-setup.ts, generator-process.ts, server-cpu.ts and run-support.ts.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Args } from '../lib/args.js';
import { measuredFrom, writeBenchSection } from '../lib/docs.js';
import { FD_LIMIT } from '../lib/processes.js';
import { round, sleep } from '../lib/stats.js';
import { prepare, ROOT, waitForIdleBox } from '../longpoll-fanout/scenario.js';
import { nchanAvailable } from './nchan.js';
import { renderHeldMax } from './report.js';
import { isTarget, type Target } from './types.js';
import type { HeldMaxReport, TargetResult } from './result.js';
import { Deadline, log, stamp } from './run-support.js';
import { runTarget, type RunPlan } from './run-target.js';

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
