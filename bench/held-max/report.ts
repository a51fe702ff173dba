/** The docs/benchmarks.md section of a held-max run. */
import { fmt, int, mb } from '../lib/format.js';
import type { HeldMaxReport, RoundResult, TargetResult } from './result.js';

function cell(value: number | null | undefined, digits = 0): string {
  return fmt(value, digits);
}

function roundRow(result: TargetResult, r: RoundResult): string {
  const us = r.delivered > 0 ? (r.serverCpuFanoutMs * 1000) / r.delivered : null;
  return (
    `| ${result.target} | ${r.round} | ${int(r.armedAtPublish)} | **${int(r.delivered)}** | ${int(r.duplicates)} | ` +
    `${cell(r.publishRttMs)} | **${cell(r.publishToLastMs)}** | ${cell(r.latencyMs.p50)} | ${cell(r.latencyMs.p99)} | ` +
    `${int(r.serverCpuFanoutMs)} (${cell(us, 1)} µs/delivery) | ${int(r.serverCpuToQuietMs)} | ` +
    `${int(r.refusedListens ?? 0)} / ${int(r.reconnectAnswers ?? 0)} |`
  );
}

export function renderHeldMax(report: HeldMaxReport): string {
  const { machine, source, options } = report;
  const date = report.startedAt.slice(0, 10);
  const lines: string[] = [];
  lines.push(
    `### held-max: N = ${int(options.n)}, ${report.results.map((r) => r.target).join(' vs ')} — ${date}`,
  );
  lines.push('');
  lines.push(
    `Command: \`${report.command}\` (epush commit ${source.commit}${source.uncommitted.length > 0 ? ', with uncommitted changes under src/' : ''}).`,
  );
  lines.push(
    `Machine: ${machine.nproc} × ${machine.cpuModel}, ${machine.memGiB} GiB, ${machine.kernel}, Node ${machine.node}; ` +
      `ports ${machine.portRange}, somaxconn ${machine.somaxconn}; box ${fmt(report.boxBusyPercentBefore, 0)}% busy before.`,
  );
  lines.push(
    `Layout: ${options.workers} server processes (epush \`--workers ${options.workers}\` plus its primary; nchan ${options.workers} nginx workers, ` +
      `\`reuseport\`), ${options.generators} generator processes, ${options.srcPerGen} source addresses each ` +
      `(127.0.${options.srcBase}.1 … 127.0.${options.srcBase + options.generators - 1}.${options.srcPerGen}), ` +
      `${options.concurrency} connects in flight per generator, ${options.connectRate === 0 ? 'no rate limit' : `${int(options.connectRate)} connects/s in all`}; ` +
      `${options.canarySeconds === null ? "epush's default canary (1 s, lost after 3 s)" : `epush \`--canary-seconds ${options.canarySeconds}\``}; every process under \`ulimit -n 20000\`; nothing pinned ` +
      `(servers and generators share both cores). Re-poll ${options.repollDelayMs === 0 ? 'at once after each delivery' : `${options.repollDelayMs} ms after each delivery`}.`,
  );
  lines.push('');
  lines.push(
    '| target | held (generators) | server says | time to hold all | server RSS fresh → idle → held | **RSS per held conn** | incl. push-ID state | kernel slab per pair |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of report.results) {
    const rss = ['fresh', 'idle', 'held'].map((label) =>
      mb(r.memory.find((s) => s.label === label)?.rssKb),
    );
    lines.push(
      `| ${r.target} | **${int(r.held)}** / ${int(r.n)} | ${r.serverHeld === null ? '–' : int(r.serverHeld)} | ` +
        `${fmt((r.phases.connectMs ?? NaN) / 1000, 0)} s | ${rss.join(' → ')} MiB | **${fmt(r.rssPerConnKb, 1)} KB** | ` +
        `${fmt(r.rssPerConnInclStateKb, 1)} KB | ${fmt(r.slabPerPairKb, 1)} KB |`,
    );
  }
  lines.push('');
  lines.push(
    'One group notification per round, each once every listener re-polled (ms; CPU = all server processes, schedstat):',
  );
  lines.push('');
  lines.push(
    '| target | round | armed | **delivered** | dups | publish answer | **publish → last delivery** | p50 | p99 | server CPU, wake-up | server CPU to quiet (with re-polls) | refused / reconnect answers |',
  );
  lines.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const r of report.results) for (const row of r.rounds) lines.push(roundRow(r, row));
  lines.push('');
  for (const r of report.results) {
    const setup =
      r.phases.setupMs === undefined
        ? ''
        : ` Minting the push IDs and filling the group took ${fmt(r.phases.setupMs / 1000, 0)} s.`;
    const fds = r.processes.map((p) => p.fds ?? 0);
    lines.push(
      `${r.target}: ${r.completed ? 'completed' : `**did not complete** (${r.abortReason ?? 'a round lost deliveries'})`}.${setup} ` +
        `Open fds per server process at the held sample: ${fds.join(', ')}. ` +
        `Generator CPU, whole run: ${fmt(r.generatorCpuMs / 1000, 0)} s.` +
        (Object.keys(r.errors).length > 0 ? ` Generator errors: ${JSON.stringify(r.errors)}.` : ''),
    );
    lines.push('');
  }
  return lines.join('\n');
}
