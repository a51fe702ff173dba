/** Markdown for one longpoll-fanout run (a section of docs/benchmarks.md). */
import { relative } from 'node:path';
import type { RunReport } from './scenario.js';
import { fmt, int, mb } from '../lib/format.js';

export function renderSection(report: RunReport, root: string): string {
  const { options, totals, memory, machine, messages } = report;
  const point = (label: string) => memory.points.find((p) => p.label === label);
  const fresh = point('fresh');
  const idle = point('idle');
  const held = point('held');
  const errorCount = Object.values(report.errors).reduce((a, b) => a + b, 0);
  const errorText =
    errorCount === 0
      ? '0'
      : Object.entries(report.errors)
          .map(([kind, count]) => `${kind} ${count}`)
          .join(', ');
  const fanoutMs = messages.length === 0 ? NaN : totals.serverCpuStatMs / messages.length;
  const date = report.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  const repoll =
    options.repollDelayMs === 0
      ? 're-poll at once (browser-like; the re-poll herd is inside the CPU window)'
      : `re-poll deferred ${options.repollDelayMs} ms (outside the CPU window when no message says otherwise)`;
  const lines: string[] = [];
  lines.push(`### longpoll-fanout: N = ${int(options.n)}, M = ${options.m}`);
  lines.push('');
  const code =
    `epush ${report.source.commit}` +
    (report.source.uncommitted.length === 0
      ? ''
      : ` plus uncommitted changes (${report.source.uncommitted.length} paths under src/ or package files)`);
  lines.push(
    `Run ${date}, ${code}. Machine: ${machine.nproc} vCPU (nproc), ${machine.cpuModel}, ${machine.memGiB} GiB; ` +
      `Node ${machine.node}; ${machine.kernel}. ` +
      (report.pinned
        ? `Server pinned to CPU ${report.server.cpu ?? '?'}, generator to CPU ${report.generatorCpu ?? '?'} (taskset). `
        : 'NOT pinned (taskset unavailable). ') +
      `fd limit ${report.server.fdLimit?.soft ?? '?'} (server) / ${report.generatorFdLimit?.soft ?? '?'} (generator); ` +
      `${options.srcIps} source IPs; ${repoll}.`,
  );
  lines.push('');
  lines.push('```');
  lines.push(report.command);
  lines.push('```');
  lines.push('');
  lines.push(
    '| N | M | delivered | server CPU µs/delivery | server CPU ms/fan-out | server RSS idle→held MB | server RSS KB/held conn | same, incl. push-ID state | JS heap KB/conn | p50 ms | p99 ms | max ms | client CPU µs/delivery | errors |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  lines.push(
    `| ${int(options.n)} | ${options.m} | ${int(totals.delivered)}/${int(totals.expected)} | ` +
      `**${fmt(totals.serverUsPerDelivery)}** | ${fmt(fanoutMs, 0)} | ` +
      `${mb(idle?.process.rssKb)}→${mb(held?.process.rssKb)} | **${fmt(memory.rssPerConnKb)}** | ` +
      `${fmt(memory.rssPerConnInclStateKb)} | ` +
      `${fmt(memory.heapPerConnKb)} | ${fmt(totals.latencyMs.p50)} | ${fmt(totals.latencyMs.p99)} | ` +
      `${fmt(totals.latencyMs.max)} | ${fmt(totals.clientUsPerDelivery)} | ${errorText} |`,
  );
  lines.push('');
  lines.push(
    'Per notification (CPU window = publish sent → server quiet again after the re-polls):',
  );
  lines.push('');
  lines.push(
    '| # | delivered | publish→last delivery ms | publish 202 ms | CPU window ms | server CPU ms (stat / schedstat) | client CPU ms | other processes CPU ms | p50 / p99 / max ms |',
  );
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const message of messages) {
    const flags = [
      message.quietBefore ? '' : 'not quiet before',
      message.quietAfter ? '' : 'not quiet after',
      message.repollInWindow ? 're-poll inside window' : '',
    ]
      .filter((text) => text !== '')
      .join(', ');
    lines.push(
      `| ${message.k + 1} | ${int(message.delivered)}/${int(message.armed)} | ${fmt(message.windowMs)} | ` +
        `${fmt(message.publishRttMs)} | ${fmt(message.cpuWindowMs, 0)} | ${fmt(message.serverCpuStatMs, 0)} / ${fmt(message.serverCpuSchedMs, 0)} | ` +
        `${fmt(message.clientCpuMs, 0)} | ${fmt(message.foreignCpuMs, 0)} | ${fmt(message.latencyMs.p50)} / ${fmt(message.latencyMs.p99)} / ${fmt(message.latencyMs.max)}` +
        `${flags === '' ? '' : ` (${flags})`} |`,
    );
  }
  lines.push('');
  const connect = report.phases.connect;
  const members = report.phases.members;
  const details: string[] = [];
  details.push(
    `server CPU per delivery: by schedstat (ns, all threads) ${fmt(totals.serverUsPerDeliverySched)} µs; ` +
      `median over the ${messages.length} notifications ${fmt(totals.serverUsPerDeliveryMedian)} µs`,
  );
  if (fresh && held) {
    details.push(
      `RSS fresh→idle→held ${mb(fresh.process.rssKb)}→${mb(idle?.process.rssKb)}→${mb(held.process.rssKb)} MB ` +
        `(fresh: after the warm-up; idle: plus the N push IDs in the group; held: plus the N held listens)`,
    );
  }
  if (memory.slabPerPairKb !== null) {
    details.push(
      `kernel slab per connection pair (client + server socket): ${fmt(memory.slabPerPairKb)} KB`,
    );
  }
  if (connect) {
    details.push(
      `connect phase: ${int(report.listeners.held)} listeners held in ${fmt(connect.ms / 1000, 2)} s ` +
        `(${int(Math.round(report.listeners.held / (connect.ms / 1000)))}/s, until the server was quiet), ` +
        `server CPU ${fmt((connect.serverCpuStatMs * 1000) / Math.max(1, report.listeners.held))} µs per listen`,
    );
  }
  if (members) {
    details.push(
      `setup: ${int(options.n)} membership PUTs in ${fmt(members.ms / 1000, 2)} s, server CPU ` +
        `${fmt((members.serverCpuStatMs * 1000) / options.n)} µs each`,
    );
  }
  const foreign = totals.foreignCpuPercent;
  // Results written before irq/softirq was split out (no kernelIrqUsPerDelivery) counted it as
  // "other processes"; it is mostly the benchmark's own loopback traffic, so no warning there.
  const legacy =
    (totals as { kernelIrqUsPerDelivery?: number | null }).kernelIrqUsPerDelivery === undefined;
  details.push(
    (legacy
      ? `other processes and kernel irq/softirq together (this run predates splitting them; ` +
        `irq/softirq from the benchmark's own loopback traffic is ~9–15 µs per delivery) used `
      : 'other processes on the box used ') +
      `${fmt(totals.foreignCpuMs, 0)} ms of CPU during the publish windows (${fmt(foreign)}% of one core)` +
      (!legacy && foreign !== null && foreign > 5
        ? ': **the box was not idle; latencies and CPU figures are disturbed**'
        : '') +
      (legacy
        ? ''
        : `; kernel irq/softirq (loopback TCP of both ends, charged to no process) ` +
          `${fmt(totals.kernelIrqUsPerDelivery)} µs per delivery; hypervisor steal ${fmt(totals.stealMs, 0)} ms`) +
      (report.boxBusyPercentBefore === null
        ? ''
        : `; box busy ${fmt(report.boxBusyPercentBefore)}% of one core just before the run`),
  );
  if (foreign !== null && foreign > 5 && Array.isArray(totals.foreignTop)) {
    const top = totals.foreignTop
      .filter((other) => other.cpuMs >= 50)
      .map((other) => `\`${other.command.slice(0, 60)}\` ${fmt(other.cpuMs, 0)} ms`)
      .join('; ');
    if (top !== '') details.push(`busiest other processes: ${top}`);
  }
  const counters = report.counters;
  details.push(
    `answers without a notification: ${counters.emptyAnswers ?? 0} (hold expiry), ` +
      `reconnect ${counters.reconnectAnswers ?? 0}, replaced ${counters.replacedAnswers ?? 0}, ` +
      `reset ${counters.resetAnswers ?? 0}; duplicates ${totals.duplicates}; client reconnects ${counters.reconnects ?? 0}`,
  );
  if (report.shutdown) {
    details.push(
      `shutdown (SIGTERM, drain): ${int(report.shutdown.reconnectAnswers)} held listens answered with reconnect, ` +
        `${int(report.shutdown.closedByServer)} connections closed by the server in ${fmt(report.shutdown.waitedMs, 0)} ms, ` +
        `${report.shutdown.stillOpen} left open`,
    );
  }
  if (report.server.notableLog.length > 0) {
    details.push(
      `server log lines at warn or above: ${report.server.notableLog.length} (see the raw JSON)`,
    );
  }
  details.push(`raw: \`${relative(root, report.rawFile)}\` (gitignored)`);
  for (const detail of details) lines.push(`- ${detail}`);
  return lines.join('\n');
}
