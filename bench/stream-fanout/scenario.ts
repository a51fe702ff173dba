/**
 * stream-fanout: the longpoll-fanout group fan-out, once per transport (long-poll, SSE,
 * WebSocket), each against a fresh epush node (memory backplane) with the same generator method:
 * N listeners in one group, R group notifications one at a time, server CPU from /proc across
 * publish → server quiet again. A long-poll re-polls after each answer (that re-listen is part of
 * its cost); an SSE stream or a WebSocket stays open and registered. One docs section compares
 * them side by side.
 */
import { ArgError, Args } from '../lib/args.js';
import { measuredFrom, writeBenchSection } from '../lib/docs.js';
import { FD_LIMIT } from '../lib/processes.js';
import {
  prepare,
  printHotSpots,
  ROOT,
  runFanoutOnce,
  waitForIdleBox,
  type RunReport,
} from '../longpoll-fanout/scenario.js';
import { isTransport, TRANSPORTS, type Transport } from '../longpoll-fanout/types.js';
import { renderStreamSection, renderStreamSummary } from './report.js';

export const STREAM_USAGE = `npm run bench -- stream-fanout [flags]

  --listeners N          listeners held on one group, per transport (default 10000, at most
                         19500: fd limit ${FD_LIMIT} per process)
  --rounds R             group notifications, one at a time, per transport (default 10)
  --transports LIST      comma-separated, run in this order (default ${TRANSPORTS.join(',')})
  --src-ips K            spread listeners over 127.0.0.1..127.0.0.K (default 4)
  --max-seconds S        bound of each transport's run (default 240)
  --hold-seconds S       server --hold-seconds (default 300: no hold expiry, stream heartbeat or
                         WebSocket ping sweep lands inside a run)
  --concurrency C, --settle-ms MS, --warmup W   as for longpoll-fanout
  --wait-idle-seconds S  before each transport, wait up to S s for the machine to be idle
  --max-foreign-percent P  leave docs/benchmarks.md alone when other processes used more than P%
                         of a core during any transport's publish windows (default 5)
  --no-heap, --no-build, --no-docs   as for longpoll-fanout
  --server-root DIR      build and run the server of another epush checkout (e.g. a git worktree
                         of HEAD while this work tree has edits in progress); its commit is reported
  --server-prof          profile each server (V8 CPU profiler, publish phase only) and print its
                         hot spots; implies --no-docs (profiling inflates CPU)
`;

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-');
}

export async function runStreamFanout(argv: readonly string[]): Promise<number> {
  const args = Args.parse(argv, {
    listeners: 'number',
    rounds: 'number',
    transports: 'string',
    'src-ips': 'number',
    'max-seconds': 'number',
    'hold-seconds': 'number',
    concurrency: 'number',
    'settle-ms': 'number',
    warmup: 'number',
    'wait-idle-seconds': 'number',
    'max-foreign-percent': 'number',
    heap: 'boolean',
    build: 'boolean',
    docs: 'boolean',
    'server-prof': 'boolean',
    'server-root': 'string',
    help: 'boolean',
  });
  if (args.boolean('help', false)) {
    process.stdout.write(STREAM_USAGE);
    return 0;
  }
  const n = args.integer('listeners', 10_000, 1, 19_500);
  const m = args.integer('rounds', 10, 1, 1000);
  const transports: Transport[] = [];
  for (const name of args.string('transports', TRANSPORTS.join(',')).split(',')) {
    const trimmed = name.trim();
    if (!isTransport(trimmed)) {
      throw new ArgError(`--transports: unknown transport "${trimmed}" (${TRANSPORTS.join(', ')})`);
    }
    if (!transports.includes(trimmed)) transports.push(trimmed);
  }
  const srcIps = args.integer('src-ips', 4, 1, 250);
  const maxSeconds = args.number('max-seconds', 240, 10, 3600);
  const holdSeconds = args.integer('hold-seconds', 300, 1, 3600);
  const waitIdleSeconds = args.number('wait-idle-seconds', 0, 0, 3600);
  const maxForeign = args.number('max-foreign-percent', 5, 0, 1000);
  const heap = args.boolean('heap', true);
  const prof = args.boolean('server-prof', false);
  const docs = args.boolean('docs', !prof);
  const generatorFlags: string[] = [];
  for (const name of ['concurrency', 'settle-ms', 'warmup']) {
    const value = args.optionalString(name);
    if (value !== undefined) generatorFlags.push(`--${name}`, value);
  }
  const command = `npm run bench -- stream-fanout ${argv.join(' ')}`.trim();
  const prepared = prepare(args.boolean('build', true), args.string('server-root', ROOT));
  const started = stamp();

  const reports: RunReport[] = [];
  let failedRuns = 0;
  for (const transport of transports) {
    const boxBusy = await waitForIdleBox(waitIdleSeconds);
    log(`--- ${transport}: ${n} listeners, ${m} rounds ---`);
    const report = await runFanoutOnce({
      id: `stream-fanout-${transport}-n${n}-m${m}-${started}`,
      n,
      m,
      srcIps,
      maxSeconds,
      holdSeconds,
      repollDelayMs: 0,
      heap,
      prof,
      transport,
      generatorFlags,
      command,
      prepared,
      boxBusy,
    });
    if (report === null) {
      failedRuns += 1;
      continue;
    }
    reports.push(report);
    const t = report.totals;
    log(
      `${transport}: ${t.delivered}/${t.expected} delivered, server ${t.serverUsPerDelivery ?? '?'} µs/delivery, ` +
        `client ${t.clientUsPerDelivery ?? '?'} µs/delivery, RSS ${report.memory.rssPerConnKb ?? '?'} KB/conn` +
        (report.completed ? '' : ` (ABORTED: ${report.abortReason ?? '?'})`),
    );
  }
  if (reports.length === 0) return 1;

  const section = renderStreamSection(reports, ROOT);
  process.stdout.write(`\n${section}\n\n${renderStreamSummary(reports)}\n`);
  for (const report of reports) printHotSpots(report);

  const incomplete = reports.filter((report) => !report.completed);
  if (failedRuns > 0 || incomplete.length > 0) {
    log(
      `${failedRuns + incomplete.length} transport run(s) did not complete; docs/benchmarks.md left unchanged`,
    );
    return 1;
  }
  const disturbed = reports.filter((report) => (report.totals.foreignCpuPercent ?? 0) > maxForeign);
  for (const report of disturbed) {
    log(
      `${report.options.transport ?? 'long-poll'}: other processes used ${report.totals.foreignCpuPercent ?? '?'}% of a core`,
    );
    for (const other of report.totals.foreignTop) {
      log(`  other process ${other.pid}: ${other.cpuMs} ms  ${other.command}`);
    }
  }
  if (docs && disturbed.length > 0) {
    log(
      `over --max-foreign-percent ${maxForeign}: docs/benchmarks.md left unchanged; rerun on an idle box`,
    );
    return 3;
  }
  if (docs) {
    const key = `n${n}-m${m}-${transports.join('-')}`;
    const first = reports[0]!;
    writeBenchSection('stream-fanout', key, section, measuredFrom(first.source, first.startedAt));
    log(`docs/benchmarks.md: section stream-fanout:${key} written`);
  }
  return 0;
}
