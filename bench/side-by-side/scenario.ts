/**
 * side-by-side: epush (long-poll, SSE, WebSocket) and its peers (nchan, Pushpin, Socket.IO, Faye)
 * measured one after the other in one command with the same method: N listeners on one channel,
 * M notifications one at a time, server CPU per delivery, RSS per held connection, latency. Each
 * target runs in its own generator process (CPU 1) that starts a fresh server stack (CPU 0) from
 * bench/peers and stops it by pid; this process only orders the targets, bounds them in time,
 * cleans up after a generator that died, and writes the raw JSON, the SVG charts and the docs.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ArgError, Args } from '../lib/args.js';
import { measuredFrom, writeBenchSection } from '../lib/docs.js';
import { machineInfo, sourceInfo } from '../lib/machine.js';
import { FD_LIMIT, hasTaskset } from '../lib/processes.js';
import { prepare, ROOT, waitForIdleBox } from '../longpoll-fanout/scenario.js';
import { parseTargets, TARGET_IDS, TARGETS, type TargetId } from '../peers/index.js';
import { runTargetProcess } from '../peers/target-process.js';
import { disturbed, renderSection, renderSummary, writeCharts } from './report.js';
import type { SideBySideRun, TargetResult } from './types.js';

export const SIDE_BY_SIDE_USAGE = `npm run bench -- side-by-side [flags]

  --targets LIST         comma-separated, run in this order (default ${TARGET_IDS.join(',')})
  --n N                  listeners on one channel, per target (default 10000, at most 19500: fd
                         limit ${FD_LIMIT} per process)
  --m M                  notifications, one at a time, per target (default 10)
  --warmup-messages W    unmeasured notifications before the M (default 1: JIT and first-use costs)
  --src-ips K            spread listeners over 127.0.0.1..127.0.0.K (default 4)
  --concurrency C        connects in flight (default 256; pushpin is also paced at 1000/s)
  --settle-ms MS         wait before each publish once all are armed (default 300 + N/10)
  --max-seconds S        bound of each target's measured phases (default 240; the setup has its
                         own 300 s; hard kill 90 s after both)
  --wait-idle-seconds S  before each target, wait up to S s for the machine to be idle
  --max-foreign-percent P  a target whose publish windows saw other processes use more than P% of
                         a core is "disturbed": docs/benchmarks.md is left alone (default 5)
  --allow-disturbed      write the docs anyway, with the disturbed rows marked
  --render FILE          rewrite the docs section and charts from a saved raw JSON, run nothing
  --no-build, --no-docs  as for longpoll-fanout
`;

const SERVER_CPU = 0;
const GENERATOR_CPU = 1;
const PORTS_PER_SOURCE_IP = 28_000;

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function writeOutputs(run: SideBySideRun, docs: boolean, key: string): void {
  const section = renderSection(run);
  process.stdout.write(`\n${section}\n\n${renderSummary(run)}\n`);
  if (!docs) return;
  writeCharts(run, join(ROOT, 'docs', 'bench'));
  writeBenchSection('side-by-side', key, section, measuredFrom(run.source, run.startedAt));
  log(`docs/benchmarks.md: section side-by-side:${key} written; charts in docs/bench/`);
}

function sectionKey(n: number, m: number, targets: readonly TargetId[]): string {
  const all = targets.length === TARGET_IDS.length;
  return `n${n}-m${m}${all ? '' : `-${targets.join('-')}`}`;
}

export async function runSideBySide(argv: readonly string[]): Promise<number> {
  const args = Args.parse(argv, {
    targets: 'string',
    n: 'number',
    m: 'number',
    'warmup-messages': 'number',
    'src-ips': 'number',
    concurrency: 'number',
    'settle-ms': 'number',
    'max-seconds': 'number',
    'wait-idle-seconds': 'number',
    'max-foreign-percent': 'number',
    'allow-disturbed': 'boolean',
    render: 'string',
    build: 'boolean',
    docs: 'boolean',
    help: 'boolean',
  });
  if (args.boolean('help', false)) {
    process.stdout.write(SIDE_BY_SIDE_USAGE);
    return 0;
  }
  const rendered = args.optionalString('render');
  if (rendered !== undefined) {
    const run = JSON.parse(readFileSync(rendered, 'utf8')) as SideBySideRun;
    const first = run.results[0];
    if (!first) throw new Error(`${rendered} holds no result`);
    writeOutputs(
      run,
      args.boolean('docs', true),
      sectionKey(
        first.n,
        first.m,
        run.results.map((r) => r.target),
      ),
    );
    return 0;
  }
  let targets: TargetId[];
  try {
    targets = parseTargets(args.string('targets', TARGET_IDS.join(',')));
  } catch (error) {
    throw new ArgError(`--targets: ${(error as Error).message}`);
  }
  const n = args.integer('n', 10_000, 1, 19_500);
  const m = args.integer('m', 10, 1, 1000);
  const srcIps = args.integer('src-ips', 4, 1, 250);
  if (Math.ceil(n / srcIps) > PORTS_PER_SOURCE_IP) {
    throw new ArgError(
      `--n ${n} over --src-ips ${srcIps} needs more than ${PORTS_PER_SOURCE_IP} ports per source address`,
    );
  }
  const maxSeconds = args.number('max-seconds', 240, 10, 3600);
  const waitIdleSeconds = args.number('wait-idle-seconds', 0, 0, 3600);
  const maxForeign = args.number('max-foreign-percent', 5, 0, 1000);
  const allowDisturbed = args.boolean('allow-disturbed', false);
  const docs = args.boolean('docs', true);
  const passThrough: string[] = [];
  for (const name of ['warmup-messages', 'concurrency', 'settle-ms']) {
    const value = args.optionalString(name);
    if (value !== undefined) passThrough.push(`--${name}`, value);
  }

  // Every package first: a missing one fails the run before anything starts, naming it.
  const versions = new Map<TargetId, string>();
  for (const id of targets) versions.set(id, TARGETS[id].packages());
  const needsEpush = targets.some((id) => id.startsWith('epush'));
  const prepared = needsEpush ? prepare(args.boolean('build', true)) : null;
  const command = `npm run bench -- side-by-side ${argv.join(' ')}`.trim();
  const startedIso = new Date().toISOString();
  const started = startedIso.replace(/[:.]/g, '-');
  const outDir = join(ROOT, '.bench-out');
  mkdirSync(outDir, { recursive: true });

  const results: TargetResult[] = [];
  const failed: SideBySideRun['failed'] = [];
  const boxBusy: Record<string, number> = {};
  for (const id of targets) {
    boxBusy[id] = Math.round((await waitForIdleBox(waitIdleSeconds)) * 10) / 10;
    log(`--- ${id}: ${n} listeners, ${m} notifications (${versions.get(id) ?? '?'}) ---`);
    const dir = join(outDir, `sbs-${id}-${started.slice(11, 19)}`);
    mkdirSync(dir, { recursive: true });
    const outcome = await runTargetProcess({
      script: join(ROOT, 'bench', 'side-by-side', 'generator.ts'),
      args: [
        '--target',
        id,
        '--n',
        String(n),
        '--m',
        String(m),
        '--src-ips',
        String(srcIps),
        '--server-cpu',
        String(hasTaskset() ? SERVER_CPU : -1),
        '--dir',
        dir,
        ...(prepared
          ? [
              '--epush-cli',
              prepared.cli,
              '--epush-version',
              `epush ${prepared.source.commit}${prepared.source.uncommitted.length > 0 ? '+' : ''}`,
            ]
          : []),
        ...passThrough,
      ],
      cpu: hasTaskset() ? GENERATOR_CPU : null,
      maxSeconds,
      // The generator's setup (stack start, push IDs) has its own 300 s bound.
      graceSeconds: 300 + 90,
      out: join(dir, 'result.json'),
      pidsFile: join(dir, 'pids.json'),
      log,
    });
    if (!('result' in outcome)) {
      log(`${id}: ${outcome.reason}`);
      failed.push({ target: id, reason: outcome.reason });
      continue;
    }
    const result = outcome.result as TargetResult;
    results.push(result);
    const t = result.totals;
    log(
      `${id}: ${t.delivered}/${t.expected} delivered, server ${t.serverUsPerDelivery ?? '?'} µs/delivery, ` +
        `RSS ${result.memory.rssPerConnKb ?? '?'} KB/conn, p50 ${t.latencyMs.p50} ms` +
        (result.completed ? '' : ` (INCOMPLETE: ${result.abortReason ?? result.marks.join('; ')})`),
    );
  }
  if (results.length === 0) return 1;

  const rawFile = join(outDir, `side-by-side-n${n}-m${m}-${started}.json`);
  const run: SideBySideRun = {
    scenario: 'side-by-side',
    startedAt: startedIso,
    command,
    machine: prepared?.machine ?? machineInfo(),
    source: prepared?.source ?? sourceInfo(ROOT),
    pinned: hasTaskset(),
    serverCpu: SERVER_CPU,
    generatorCpu: GENERATOR_CPU,
    boxBusyPercentBefore: boxBusy,
    maxForeignPercent: maxForeign,
    results,
    failed,
    rawFile: relative(ROOT, rawFile),
  };
  writeFileSync(rawFile, JSON.stringify(run, null, 2));
  log(`raw results: ${rawFile}`);

  const noisy = results.filter((result) => disturbed(result, maxForeign));
  for (const result of noisy) {
    log(
      `${result.target}: other processes used ${result.totals.foreignCpuPercent ?? '?'}% of a core in its publish windows`,
    );
  }
  const blocked = noisy.length > 0 && !allowDisturbed;
  writeOutputs(run, docs && !blocked, sectionKey(n, m, targets));
  if (docs && blocked) {
    log(
      `over --max-foreign-percent ${maxForeign}: docs/benchmarks.md left unchanged (rerun on an idle box, ` +
        `or --allow-disturbed, or --render ${relative(ROOT, rawFile)} --allow-disturbed later)`,
    );
    return 3;
  }
  return failed.length > 0 ? 1 : 0;
}
