/** Markdown and SVG charts for one side-by-side run (a docs/benchmarks.md section plus docs/bench/*.svg). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fmt, int } from '../lib/format.js';
import { renderBarChart, type BarRow } from '../lib/svg-chart.js';
import type { SideBySideRun, TargetResult } from './types.js';

export const CHART_FILES = {
  cpu: 'side-by-side-cpu.svg',
  rss: 'side-by-side-rss.svg',
  latency: 'side-by-side-latency.svg',
} as const;

export function disturbed(result: TargetResult, maxForeign: number): boolean {
  return (result.totals.foreignCpuPercent ?? 0) > maxForeign;
}

/** A row that did not run to its end or lost deliveries: its figures need the notes. */
function incomplete(result: TargetResult): boolean {
  return !result.completed || result.totals.delivered < result.totals.expected;
}

function label(result: TargetResult): string {
  return `${result.label}${incomplete(result) ? ' †' : ''}`;
}

function ratio(value: number | null, base: number | null | undefined): string {
  if (value === null || base === null || base === undefined || base === 0) return '–';
  return `${fmt(value / base, 2)}×`;
}

function errorText(result: TargetResult): string {
  const entries = Object.entries(result.errors).sort((a, b) => b[1] - a[1]);
  if (entries.length === 0) return '0';
  const total = entries.reduce((sum, [, count]) => sum + count, 0);
  return `${int(total)} (${entries
    .slice(0, 3)
    .map(([kind, count]) => `${kind} ${int(count)}`)
    .join(', ')}${entries.length > 3 ? ', …' : ''})`;
}

function date(iso: string): string {
  return iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
}

function subtitle(run: SideBySideRun): string {
  const first = run.results[0]!;
  return (
    `N = ${int(first.n)} listeners, M = ${first.m} notifications, server on 1 core (CPU ${run.serverCpu}); ` +
    `${date(run.startedAt)}, epush ${run.source.commit}`
  );
}

/**
 * The scale of a chart: the largest value of the complete rows (plus a margin), so that a
 * collapsed peer's outlier is drawn cut instead of flattening every other bar.
 */
function scaleOf(
  run: SideBySideRun,
  pick: (result: TargetResult) => number | null,
): number | undefined {
  const values = run.results
    .filter((result) => !incomplete(result))
    .map(pick)
    .filter((value): value is number => value !== null && Number.isFinite(value));
  return values.length === 0 ? undefined : Math.max(...values) * 1.15;
}

export function writeCharts(run: SideBySideRun, dir: string): void {
  mkdirSync(dir, { recursive: true });
  const rows = (pick: (result: TargetResult) => (number | null)[]): BarRow[] =>
    run.results.map((result) => ({ label: label(result), values: pick(result) }));
  writeFileSync(
    join(dir, CHART_FILES.cpu),
    renderBarChart({
      title: 'Server CPU per delivered notification (lower is better)',
      subtitle: subtitle(run),
      unit: 'µs',
      series: ['µs per delivery'],
      scaleMax: scaleOf(run, (r) => r.totals.serverUsPerDelivery),
      rows: rows((r) => [r.totals.serverUsPerDelivery]),
    }),
  );
  writeFileSync(
    join(dir, CHART_FILES.rss),
    renderBarChart({
      title: 'Server RSS per held connection (lower is better)',
      subtitle: subtitle(run),
      unit: 'KB',
      series: ['KB per held connection'],
      scaleMax: scaleOf(run, (r) => r.memory.rssPerConnKb),
      rows: rows((r) => [r.memory.rssPerConnKb]),
    }),
  );
  writeFileSync(
    join(dir, CHART_FILES.latency),
    renderBarChart({
      title: 'Delivery latency, publish sent → answer parsed (lower is better)',
      subtitle: subtitle(run),
      unit: 'ms',
      series: ['p50', 'p99'],
      scaleMax: scaleOf(run, (r) => (r.totals.latencyMs.count > 0 ? r.totals.latencyMs.p99 : null)),
      rows: rows((r) => [
        r.totals.latencyMs.count > 0 ? r.totals.latencyMs.p50 : null,
        r.totals.latencyMs.count > 0 ? r.totals.latencyMs.p99 : null,
      ]),
    }),
  );
}

export function renderSection(run: SideBySideRun): string {
  const first = run.results[0]!;
  const { machine } = run;
  const nchan = run.results.find((result) => result.target === 'nchan');
  const code =
    `epush ${run.source.commit}` +
    (run.source.uncommitted.length === 0
      ? ''
      : ` plus uncommitted changes (${run.source.uncommitted.length} paths under src/ or package files)`);
  const lines: string[] = [];
  lines.push(
    `### side-by-side: ${int(first.n)} listeners, ${first.m} notifications, ${run.results.length} targets`,
  );
  lines.push('');
  lines.push(
    `Run ${date(run.startedAt)}, ${code}. Machine: ${machine.nproc} vCPU (nproc), ${machine.cpuModel}, ` +
      `${machine.memGiB} GiB; Node ${machine.node}; ${machine.kernel}. ` +
      (run.pinned
        ? `Each target: a fresh server stack pinned to CPU ${run.serverCpu}, its generator on CPU ${run.generatorCpu} (taskset), `
        : 'NOT pinned (taskset unavailable); ') +
      `fd limit 20000 each; ${first.srcIps} source IPs; ${first.warmupMessages} unmeasured warm-up notification(s) before the ${first.m}.`,
  );
  lines.push('');
  lines.push('```');
  lines.push(run.command);
  lines.push('```');
  lines.push('');
  lines.push(
    'Versions: ' +
      run.results.map((result) => `${result.label}: ${result.version}`).join('; ') +
      '.',
  );
  lines.push('');
  lines.push(
    '| target | delivered | server CPU µs/delivery | × nchan | server RSS KB/held conn | × nchan | p50 / p99 ms | client CPU µs/delivery | errors |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const result of run.results) {
    const { totals, memory } = result;
    const short = totals.expected - totals.delivered;
    const noisy = disturbed(result, run.maxForeignPercent);
    lines.push(
      `| ${label(result)}${noisy ? ' ‡' : ''} | ${int(totals.delivered)}/${int(totals.expected)}` +
        (short > 0 ? ` (**${int(short)} missing**)` : '') +
        `${totals.duplicates > 0 ? `, ${int(totals.duplicates)} dup.` : ''} | ` +
        `**${fmt(totals.serverUsPerDelivery)}** | ` +
        `${result === nchan ? '1.00×' : ratio(totals.serverUsPerDelivery, nchan?.totals.serverUsPerDelivery)} | ` +
        `**${fmt(memory.rssPerConnKb)}** | ` +
        `${result === nchan ? '1.00×' : ratio(memory.rssPerConnKb, nchan?.memory.rssPerConnKb)} | ` +
        `${fmt(totals.latencyMs.p50)} / ${fmt(totals.latencyMs.p99)} | ` +
        `${fmt(totals.clientUsPerDelivery)} | ${errorText(result)} |`,
    );
  }
  for (const failure of run.failed) {
    lines.push(
      `| ${failure.target} | **no result**: ${failure.reason} | – | – | – | – | – | – | – |`,
    );
  }
  lines.push('');
  const notes: string[] = [];
  if (run.results.some(incomplete)) {
    notes.push(
      '† did not deliver N × M or did not run to its end: see its notes; its CPU figure is per delivery that arrived.',
    );
  }
  if (run.results.some((result) => disturbed(result, run.maxForeignPercent))) {
    notes.push(
      `‡ other processes used more than ${run.maxForeignPercent}% of a core during its publish windows (figures disturbed).`,
    );
  }
  if (notes.length > 0) {
    lines.push(notes.join(' '));
    lines.push('');
  }
  lines.push(`![Server CPU per delivery](bench/${CHART_FILES.cpu})`);
  lines.push(`![Server RSS per held connection](bench/${CHART_FILES.rss})`);
  lines.push(`![Delivery latency p50 and p99](bench/${CHART_FILES.latency})`);
  lines.push('');
  for (const result of run.results) lines.push(`- ${details(result, run)}`);
  lines.push(`- raw: \`${run.rawFile}\` (gitignored)`);
  return lines.join('\n');
}

function details(result: TargetResult, run: SideBySideRun): string {
  const { totals, memory, connect, counters } = result;
  const parts: string[] = [];
  const perMessage = result.messages.map((m) =>
    m.delivered === 0 ? NaN : (m.serverCpuMs * 1000) / m.delivered,
  );
  parts.push(
    `server µs/delivery by schedstat ${fmt(totals.serverUsPerDeliverySched)}, median of notifications ` +
      `${fmt(totals.serverUsPerDeliveryMedian)} (each: ${perMessage.map((us) => fmt(us, 0)).join(' ')})`,
  );
  const before = memory.samples.find((s) => s.label === 'before');
  const held = memory.samples.find((s) => s.label === 'held');
  if (before && held) {
    parts.push(
      `stack RSS ${fmt(before.rssKb / 1024)}→${fmt(held.rssKb / 1024)} MB over ${int(memory.heldListeners)} held ` +
        `(${held.processes.length} process${held.processes.length === 1 ? '' : 'es'}), kernel slab ${fmt(memory.slabPerPairKb)} KB per socket pair`,
    );
  }
  parts.push(
    `connect: ${int(connect.armed)}/${int(result.n)} armed in ${fmt(connect.ms / 1000, 2)} s, server ` +
      `${fmt(connect.armed === 0 ? NaN : (connect.serverCpuMs * 1000) / connect.armed, 0)} µs per listener`,
  );
  const windows = result.messages.map((m) => m.lastDeliveryMs).filter(Number.isFinite);
  if (windows.length > 0) {
    parts.push(
      `publish → last delivery ${fmt(Math.min(...windows), 0)}–${fmt(Math.max(...windows), 0)} ms`,
    );
  }
  parts.push(
    `answers ${int(counters.answers ?? 0)}, empty ${int(counters.emptyAnswers ?? 0)}, reconnects ${int(counters.reconnects ?? 0)}`,
  );
  parts.push(
    `kernel irq/softirq ${fmt(totals.irqUsPerDelivery)} µs/delivery; other processes ${fmt(totals.foreignCpuPercent)}% of a core ` +
      `in the windows, box ${fmt(run.boxBusyPercentBefore[result.target] ?? NaN)}% busy before`,
  );
  parts.push(
    `shutdown: ${int(result.shutdown.closedByServer)} connections closed by the server, ${result.shutdown.stillOpen} left open`,
  );
  if (result.abortReason !== null) parts.push(`**aborted**: ${result.abortReason}`);
  if (result.marks.length > 0) {
    const shown = result.marks.slice(0, 4).join('; ');
    parts.push(
      `marks: ${shown}${result.marks.length > 4 ? `; … (${result.marks.length} in all)` : ''}`,
    );
  }
  return `${result.label}: ${parts.join('; ')}`;
}

/** A short plain-text summary for the terminal. */
export function renderSummary(run: SideBySideRun): string {
  return run.results
    .map(
      (result) =>
        `${result.label.padEnd(24)} ${fmt(result.totals.serverUsPerDelivery).padStart(8)} µs/delivery ` +
        `${fmt(result.memory.rssPerConnKb).padStart(6)} KB/conn  ` +
        `${int(result.totals.delivered)}/${int(result.totals.expected)}${incomplete(result) ? '  INCOMPLETE' : ''}`,
    )
    .join('\n');
}
