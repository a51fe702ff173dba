/** Markdown for one stream-fanout run: the transports side by side (a docs/benchmarks.md section). */
import { relative } from 'node:path';
import type { RunReport } from '../longpoll-fanout/scenario.js';
import type { Transport } from '../longpoll-fanout/types.js';
import { distribution } from '../lib/stats.js';
import { fmt, int, mb } from '../lib/format.js';

/**
 * nchan long-poll server CPU per delivery at N = 10,000, from an earlier study of peers on this
 * machine kind (nchan 1.3.6, one nginx worker), not measured by this bench.
 */
export const NCHAN_REFERENCE = { repollHerdUs: 30, repollDeferredUs: 16 } as const;
/** Issue 8: SSE/WebSocket server CPU per delivery at most this × nchan long-poll. */
export const ISSUE8_FACTOR = 0.3;

const LABEL: Record<Transport, string> = {
  'long-poll': 'long-poll',
  sse: 'SSE',
  websocket: 'WebSocket',
};

function transportOf(report: RunReport): Transport {
  return report.options.transport ?? 'long-poll';
}

function errorText(report: RunReport): string {
  const entries = Object.entries(report.errors);
  return entries.length === 0 ? '0' : entries.map(([kind, count]) => `${kind} ${count}`).join(', ');
}

function perRoundMs(report: RunReport): number {
  return report.messages.length === 0
    ? NaN
    : report.totals.serverCpuStatMs / report.messages.length;
}

/** Publish → last delivery of each round: median and max over the rounds. */
function roundWindows(report: RunReport): { median: number; max: number } {
  const windows = distribution(report.messages.map((message) => message.windowMs));
  return { median: windows.p50, max: windows.max };
}

function clientPerRoundMs(report: RunReport): number {
  return report.messages.length === 0 ? NaN : report.totals.clientCpuMs / report.messages.length;
}

export function ratioTo(report: RunReport, base: RunReport | undefined): number | null {
  const mine = report.totals.serverUsPerDelivery;
  const theirs = base?.totals.serverUsPerDelivery;
  if (mine === null || theirs === null || theirs === undefined || theirs === 0) return null;
  return mine / theirs;
}

export function renderStreamSection(reports: readonly RunReport[], root: string): string {
  const first = reports[0]!;
  const { machine, options } = first;
  const longPoll = reports.find((report) => transportOf(report) === 'long-poll');
  const date = first.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const code =
    `epush ${first.source.commit}` +
    (first.source.uncommitted.length === 0
      ? ''
      : ` plus uncommitted changes (${first.source.uncommitted.length} paths under src/ or package files)`);
  const lines: string[] = [];
  lines.push(
    `### stream-fanout: ${int(options.n)} listeners, ${options.m} rounds, ` +
      reports.map((report) => LABEL[transportOf(report)]).join(' vs '),
  );
  lines.push('');
  lines.push(
    `Run ${date}, ${code}. Machine: ${machine.nproc} vCPU (nproc), ${machine.cpuModel}, ${machine.memGiB} GiB; ` +
      `Node ${machine.node}; ${machine.kernel}. ` +
      (first.pinned
        ? `Each transport: a fresh server pinned to CPU ${first.server.cpu ?? '?'} (memory backplane, ` +
          `\`--hold-seconds ${holdSecondsOf(first)}\`), generator on CPU ${first.generatorCpu ?? '?'} (taskset). `
        : 'NOT pinned (taskset unavailable). ') +
      `fd limit ${first.server.fdLimit?.soft ?? '?'} (server) / ${first.generatorFdLimit?.soft ?? '?'} (generator); ` +
      `${options.srcIps} source IPs; one generator process per transport.`,
  );
  lines.push('');
  lines.push('```');
  lines.push(first.command);
  lines.push('```');
  lines.push('');
  lines.push(
    '| transport | delivered | server CPU µs/delivery | × long-poll | server CPU ms/round | server RSS idle→held MB | server RSS KB/held conn | JS heap KB/conn | delivery p50 / p99 ms | publish→last delivery ms (median / max round) | client CPU µs/delivery | client CPU ms/round | errors |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const report of reports) {
    const { totals, memory } = report;
    const idle = memory.points.find((p) => p.label === 'idle');
    const held = memory.points.find((p) => p.label === 'held');
    const ratio = transportOf(report) === 'long-poll' ? null : ratioTo(report, longPoll);
    const short = totals.expected - totals.delivered;
    const windows = roundWindows(report);
    lines.push(
      `| ${LABEL[transportOf(report)]} | ${int(totals.delivered)}/${int(totals.expected)}` +
        `${short === 0 ? '' : ` (**${int(short)} missing**)`} | ` +
        `**${fmt(totals.serverUsPerDelivery)}** | ${ratio === null ? '–' : `**${fmt(ratio, 2)}×**`} | ` +
        `${fmt(perRoundMs(report), 0)} | ${mb(idle?.process.rssKb)}→${mb(held?.process.rssKb)} | ` +
        `**${fmt(memory.rssPerConnKb)}** | ${fmt(memory.heapPerConnKb)} | ` +
        `${fmt(totals.latencyMs.p50)} / ${fmt(totals.latencyMs.p99)} | ` +
        `${fmt(windows.median)} / ${fmt(windows.max)} | ${fmt(totals.clientUsPerDelivery)} | ` +
        `${fmt(clientPerRoundMs(report), 0)} | ${errorText(report)} |`,
    );
  }
  lines.push('');
  const streams = reports.filter((report) => transportOf(report) !== 'long-poll');
  if (longPoll && streams.length > 0) {
    lines.push(
      'Ratios of server CPU per delivery: ' +
        streams
          .map(
            (report) =>
              `${LABEL[transportOf(report)]}/long-poll **${fmt(ratioTo(report, longPoll), 2)}**`,
          )
          .join(', ') +
        '.',
    );
    lines.push('');
  }
  const herd = NCHAN_REFERENCE.repollHerdUs;
  const deferred = NCHAN_REFERENCE.repollDeferredUs;
  lines.push(
    `Reference, **from an earlier study of peers (nchan 1.3.6, nginx 1 worker, N = 10,000, ` +
      `same machine kind), not measured in this run**: nchan long-poll ${herd} µs of server CPU per ` +
      `delivery with the re-poll herd in the window (this scenario's long-poll method), ${deferred} µs ` +
      `with re-polls deferred out of it. Issue 8 target for SSE/WebSocket: ≤ ${ISSUE8_FACTOR} × nchan = ` +
      `${fmt(ISSUE8_FACTOR * herd)} µs (against ${herd}) or ${fmt(ISSUE8_FACTOR * deferred)} µs (against ${deferred}). ` +
      (streams.length === 0
        ? ''
        : 'Here: ' +
          streams
            .map((report) => {
              const us = report.totals.serverUsPerDelivery ?? NaN;
              return (
                `${LABEL[transportOf(report)]} ${fmt(us)} µs = ${fmt(us / herd, 2)} × nchan(${herd}), ` +
                `${fmt(us / deferred, 2)} × nchan(${deferred})`
              );
            })
            .join('; ') +
          '.'),
  );
  lines.push('');
  for (const report of reports) lines.push(`- ${details(report, root)}`);
  return lines.join('\n');
}

function holdSecondsOf(report: RunReport): string {
  const argv = report.server.argv;
  const at = argv.indexOf('--hold-seconds');
  return at === -1 ? '?' : (argv[at + 1] ?? '?');
}

function details(report: RunReport, root: string): string {
  const { totals, counters, messages } = report;
  const parts: string[] = [];
  const perMessage = messages.map((message) =>
    message.delivered === 0 ? NaN : (message.serverCpuStatMs * 1000) / message.delivered,
  );
  parts.push(
    `server µs/delivery by schedstat ${fmt(totals.serverUsPerDeliverySched)}, median of rounds ` +
      `${fmt(totals.serverUsPerDeliveryMedian)}, rounds ${perMessage.map((us) => fmt(us, 0)).join(' ')}`,
  );
  const fresh = report.memory.points.find((p) => p.label === 'fresh');
  const held = report.memory.points.find((p) => p.label === 'held');
  if (fresh && held) {
    parts.push(
      `RSS incl. push-ID state ${fmt(report.memory.rssPerConnInclStateKb)} KB/conn, kernel slab ` +
        `${fmt(report.memory.slabPerPairKb)} KB per socket pair`,
    );
  }
  const gauges = report.serverGauges;
  if (gauges) {
    parts.push(
      `server gauges before round 1: ${gauges.listeners === null ? '?' : int(gauges.listeners)} listeners, ` +
        Object.entries(gauges.connections)
          .filter(([, value]) => value !== 0)
          .map(([name, value]) => `${int(value)} ${name} connections`)
          .join(', '),
    );
  }
  const connect = report.phases.connect;
  if (connect) {
    parts.push(
      `connect: ${int(report.listeners.held)} held in ${fmt(connect.ms / 1000, 2)} s, server ` +
        `${fmt((connect.serverCpuStatMs * 1000) / Math.max(1, report.listeners.held), 0)} µs per listener`,
    );
  }
  parts.push(
    `kernel irq/softirq ${fmt(totals.kernelIrqUsPerDelivery)} µs/delivery; hypervisor steal ` +
      `${fmt(totals.stealMs, 0)} ms; other processes ` +
      `${fmt(totals.foreignCpuPercent)}% of a core in the windows` +
      (report.boxBusyPercentBefore === null
        ? ''
        : `, box ${fmt(report.boxBusyPercentBefore)}% busy before`),
  );
  const extra = [
    `answers ${int(counters.answers ?? 0)}`,
    (counters.streamOpenAnswers ?? 0) > 0
      ? `stream-open ${int(counters.streamOpenAnswers ?? 0)}`
      : '',
    `empty ${counters.emptyAnswers ?? 0}`,
    `duplicates ${totals.duplicates}`,
    `reconnects ${counters.reconnects ?? 0}`,
    (counters.wsPings ?? 0) > 0 ? `pings ${counters.wsPings ?? 0}` : '',
  ].filter((text) => text !== '');
  parts.push(extra.join(', '));
  if (report.shutdown) {
    parts.push(
      `shutdown: ${int(report.shutdown.closedByServer)} closed by the server in ` +
        `${fmt(report.shutdown.waitedMs, 0)} ms, ${report.shutdown.stillOpen} left open`,
    );
  }
  if (report.server.notableLog.length > 0) {
    parts.push(`${report.server.notableLog.length} server log lines at warn or above`);
  }
  parts.push(`raw \`${relative(root, report.rawFile)}\``);
  return `${LABEL[transportOf(report)]}: ${parts.join('; ')}`;
}

/** A short plain-text summary for the terminal. */
export function renderStreamSummary(reports: readonly RunReport[]): string {
  const longPoll = reports.find((report) => transportOf(report) === 'long-poll');
  return reports
    .map((report) => {
      const ratio = ratioTo(report, longPoll);
      return (
        `${LABEL[transportOf(report)].padEnd(10)} ${fmt(report.totals.serverUsPerDelivery).padStart(7)} µs/delivery` +
        (ratio === null || report === longPoll ? '' : `  (${fmt(ratio, 2)}× long-poll)`)
      );
    })
    .join('\n');
}
