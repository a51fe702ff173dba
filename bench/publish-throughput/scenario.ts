/**
 * publish-throughput: for each target (bench/peers), L listeners held (default 100) while C
 * concurrent keep-alive publishers (default 16) publish back to back for S seconds: accepted
 * publishes per second, deliveries per second, server CPU per publish, publish latency. Each
 * target runs in its own generator process (CPU 1) with a fresh stack (CPU 0), as side-by-side.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ArgError, Args } from '../lib/args.js';
import { measuredFrom, writeBenchSection } from '../lib/docs.js';
import { fmt, int } from '../lib/format.js';
import { machineInfo, sourceInfo, type MachineInfo, type SourceInfo } from '../lib/machine.js';
import { hasTaskset } from '../lib/processes.js';
import { renderBarChart } from '../lib/svg-chart.js';
import { prepare, ROOT, waitForIdleBox } from '../longpoll-fanout/scenario.js';
import { parseTargets, TARGET_IDS, TARGETS, type TargetId } from '../peers/index.js';
import { runTargetProcess } from '../peers/target-process.js';
import type { ThroughputResult } from './generator.js';

export const PUBLISH_THROUGHPUT_USAGE = `npm run bench -- publish-throughput [flags]

  --targets LIST         comma-separated, run in this order (default ${TARGET_IDS.join(',')})
  --listeners L          listeners held on one channel while publishing (default 100)
  --concurrency C        publishers, each on its own keep-alive connection (default 16)
  --seconds S            publishing time per target (default 5)
  --max-seconds S        bound of each target's run (default 120)
  --wait-idle-seconds S  before each target, wait up to S s for the machine to be idle
  --render FILE          rewrite the docs section and charts from a saved raw JSON, run nothing
  --no-build, --no-docs  as for longpoll-fanout
`;

interface ThroughputRun {
  readonly scenario: 'publish-throughput';
  readonly startedAt: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly source: SourceInfo;
  readonly pinned: boolean;
  readonly boxBusyPercentBefore: Record<string, number>;
  readonly results: ThroughputResult[];
  readonly failed: { readonly target: TargetId; readonly reason: string }[];
  readonly rawFile: string;
}

const SERVER_CPU = 0;
const GENERATOR_CPU = 1;

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function date(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function renderSection(run: ThroughputRun): string {
  const first = run.results[0]!;
  const { machine } = run;
  const lines: string[] = [];
  lines.push(
    `### publish-throughput: ${first.listeners} listeners, ${first.concurrency} publishers, ${first.seconds} s`,
  );
  lines.push('');
  lines.push(
    `Run ${date(run.startedAt)}, epush ${run.source.commit}${run.source.uncommitted.length > 0 ? ' plus uncommitted changes' : ''}. ` +
      `Machine: ${machine.nproc} vCPU, ${machine.cpuModel}, ${machine.memGiB} GiB; Node ${machine.node}; ${machine.kernel}. ` +
      (run.pinned ? 'Each stack pinned to CPU 0, its generator to CPU 1.' : 'NOT pinned.'),
  );
  lines.push('');
  lines.push('```');
  lines.push(run.command);
  lines.push('```');
  lines.push('');
  lines.push(
    '| target | accepted publishes/s | refused | deliveries/s | delivered / accepted × held | server CPU µs/publish | publish p50 / p99 ms | errors |',
  );
  lines.push('|---|---|---|---|---|---|---|---|');
  for (const r of run.results) {
    const refused = Object.values(r.refused).reduce((a, b) => a + b, 0);
    const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
    lines.push(
      `| ${r.label}${r.completed ? '' : ' †'} | **${int(r.publishesPerSec)}** | ${int(refused)} | ${int(r.deliveriesPerSec)} | ` +
        `${int(r.deliveredTotal)} / ${int(r.deliveryExpected)} | **${fmt(r.serverUsPerPublish)}** | ` +
        `${fmt(r.publishLatencyMs.p50, 2)} / ${fmt(r.publishLatencyMs.p99, 2)} | ${int(errors)} |`,
    );
  }
  for (const f of run.failed)
    lines.push(`| ${f.target} | **no result**: ${f.reason} | | | | | | |`);
  lines.push('');
  lines.push('![Accepted publishes per second](bench/publish-throughput-rate.svg)');
  lines.push('![Server CPU per publish](bench/publish-throughput-cpu.svg)');
  lines.push('![Publish latency](bench/publish-throughput-latency.svg)');
  lines.push('');
  for (const r of run.results) {
    lines.push(
      `- ${r.label}: ${r.version}; ${int(r.listenersHeld)}/${int(r.listeners)} listeners held; ${int(r.accepted)} accepted in ` +
        `${int(r.windowMs)} ms; ${int(r.deliveriesInWindow)} deliveries within the window; server CPU ${int(r.serverCpuMs)} ms ` +
        `(${fmt(r.serverUsPerDelivery)} µs per delivery); client CPU ${int(r.clientCpuMs)} ms` +
        (r.marks.length > 0 ? `; marks: ${r.marks.join('; ')}` : '') +
        (r.abortReason === null ? '' : `; **aborted**: ${r.abortReason}`),
    );
  }
  lines.push(`- raw: \`${run.rawFile}\` (gitignored)`);
  return lines.join('\n');
}

function writeCharts(run: ThroughputRun, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const first = run.results[0]!;
  const subtitle = `${first.listeners} listeners held, ${first.concurrency} keep-alive publishers, ${first.seconds} s; ${date(run.startedAt)}, epush ${run.source.commit}`;
  const label = (r: ThroughputResult): string => `${r.label}${r.completed ? '' : ' †'}`;
  writeFileSync(
    join(dir, 'publish-throughput-rate.svg'),
    renderBarChart({
      title: 'Accepted publishes per second, server on 1 core (higher is better)',
      subtitle,
      unit: '/s',
      digits: 0,
      series: ['publishes/s', 'deliveries/s'],
      rows: run.results.map((r) => ({
        label: label(r),
        values: [r.publishesPerSec, r.deliveriesPerSec],
      })),
    }),
  );
  writeFileSync(
    join(dir, 'publish-throughput-cpu.svg'),
    renderBarChart({
      title: 'Server CPU per accepted publish (lower is better)',
      subtitle,
      unit: 'µs',
      series: ['µs per publish'],
      rows: run.results.map((r) => ({ label: label(r), values: [r.serverUsPerPublish] })),
    }),
  );
  writeFileSync(
    join(dir, 'publish-throughput-latency.svg'),
    renderBarChart({
      title: 'Publish latency, request written → answer parsed (lower is better)',
      subtitle,
      unit: 'ms',
      digits: 2,
      series: ['p50', 'p99'],
      rows: run.results.map((r) => ({
        label: label(r),
        values:
          r.publishLatencyMs.count > 0
            ? [r.publishLatencyMs.p50, r.publishLatencyMs.p99]
            : [null, null],
      })),
    }),
  );
}

function writeOutputs(run: ThroughputRun, docs: boolean): void {
  const section = renderSection(run);
  process.stdout.write(`\n${section}\n`);
  if (!docs) return;
  const first = run.results[0]!;
  writeCharts(run, join(ROOT, 'docs', 'bench'));
  const key = `l${first.listeners}-c${first.concurrency}-s${first.seconds}`;
  writeBenchSection('publish-throughput', key, section, measuredFrom(run.source, run.startedAt));
  log(`docs/benchmarks.md: section publish-throughput:${key} written; charts in docs/bench/`);
}

export async function runPublishThroughput(argv: readonly string[]): Promise<number> {
  const args = Args.parse(argv, {
    targets: 'string',
    listeners: 'number',
    concurrency: 'number',
    seconds: 'number',
    'max-seconds': 'number',
    'wait-idle-seconds': 'number',
    render: 'string',
    build: 'boolean',
    docs: 'boolean',
    help: 'boolean',
  });
  if (args.boolean('help', false)) {
    process.stdout.write(PUBLISH_THROUGHPUT_USAGE);
    return 0;
  }
  const rendered = args.optionalString('render');
  if (rendered !== undefined) {
    writeOutputs(
      JSON.parse(readFileSync(rendered, 'utf8')) as ThroughputRun,
      args.boolean('docs', true),
    );
    return 0;
  }
  let targets: TargetId[];
  try {
    targets = parseTargets(args.string('targets', TARGET_IDS.join(',')));
  } catch (error) {
    throw new ArgError(`--targets: ${(error as Error).message}`);
  }
  const listeners = args.integer('listeners', 100, 1, 19_000);
  const concurrency = args.integer('concurrency', 16, 1, 1000);
  const seconds = args.number('seconds', 5, 0.5, 600);
  const maxSeconds = args.number('max-seconds', 120, 10, 3600);
  const waitIdleSeconds = args.number('wait-idle-seconds', 0, 0, 3600);
  for (const id of targets) TARGETS[id].packages();
  const prepared = targets.some((id) => id.startsWith('epush'))
    ? prepare(args.boolean('build', true))
    : null;
  const startedIso = new Date().toISOString();
  const started = startedIso.replace(/[:.]/g, '-');
  const outDir = join(ROOT, '.bench-out');
  const results: ThroughputResult[] = [];
  const failed: ThroughputRun['failed'] = [];
  const boxBusy: Record<string, number> = {};
  for (const id of targets) {
    boxBusy[id] = Math.round((await waitForIdleBox(waitIdleSeconds)) * 10) / 10;
    log(`--- ${id}: ${listeners} listeners, ${concurrency} publishers, ${seconds} s ---`);
    const dir = join(outDir, `pt-${id}-${started.slice(11, 19)}`);
    mkdirSync(dir, { recursive: true });
    const outcome = await runTargetProcess({
      script: join(ROOT, 'bench', 'publish-throughput', 'generator.ts'),
      args: [
        '--target',
        id,
        '--listeners',
        String(listeners),
        '--concurrency',
        String(concurrency),
        '--seconds',
        String(seconds),
        '--server-cpu',
        String(hasTaskset() ? SERVER_CPU : -1),
        '--dir',
        dir,
        ...(prepared
          ? ['--epush-cli', prepared.cli, '--epush-version', `epush ${prepared.source.commit}`]
          : []),
      ],
      cpu: hasTaskset() ? GENERATOR_CPU : null,
      maxSeconds,
      out: join(dir, 'result.json'),
      pidsFile: join(dir, 'pids.json'),
      log,
    });
    if (!('result' in outcome)) {
      log(`${id}: ${outcome.reason}`);
      failed.push({ target: id, reason: outcome.reason });
      continue;
    }
    results.push(outcome.result as ThroughputResult);
  }
  if (results.length === 0) return 1;
  const rawFile = join(outDir, `publish-throughput-l${listeners}-c${concurrency}-${started}.json`);
  const run: ThroughputRun = {
    scenario: 'publish-throughput',
    startedAt: startedIso,
    command: `npm run bench -- publish-throughput ${argv.join(' ')}`.trim(),
    machine: prepared?.machine ?? machineInfo(),
    source: prepared?.source ?? sourceInfo(ROOT),
    pinned: hasTaskset(),
    boxBusyPercentBefore: boxBusy,
    results,
    failed,
    rawFile: relative(ROOT, rawFile),
  };
  writeFileSync(rawFile, JSON.stringify(run, null, 2));
  log(`raw results: ${rawFile}`);
  writeOutputs(run, args.boolean('docs', true));
  return failed.length > 0 ? 1 : 0;
}
