/**
 * `npm run bench -- crossnode-side-by-side`: what crossing nodes through Redis adds to a delivery,
 * epush and nchan side by side in one run.
 *
 * Each server runs as a two-node cluster sharing its own private redis-server: two epush nodes
 * (`--backplane redis://…`) and two nginx + nchan instances (`nchan_redis_pass`). C lanes each
 * have their own push ID / channel, a listener on node B (one keep-alive connection, long-poll,
 * resuming from its cursor / Last-Modified + Etag) and a publisher on its own keep-alive API
 * connection: on node B itself ("same node") or on node A ("cross-node"). One round: every lane
 * listens, the bench waits until node B says it holds all C listens, then every lane publishes one
 * notification to its own listener at once; latency is publish request written → the listener's
 * answer parsed, on this process's monotonic clock. The four phases (2 servers × same/cross) run
 * interleaved in blocks of rounds, so that other work on the box falls on all of them alike.
 * Then a short closed-loop throughput window per phase: each lane publishes, waits for its
 * delivery, publishes again; deliveries/s and the server CPU (nodes + Redis) per delivery.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { ArgError, Args } from '../lib/args.js';
import { writeBenchSection } from '../lib/docs.js';
import { fmt, int } from '../lib/format.js';
import {
  clkTck,
  describeProcess,
  readAllProcessTicks,
  readSystemBusyTicks,
} from '../lib/procfs.js';
import { foreignCpuMs, sample, waitQuiet, type Sample } from '../lib/quiet.js';
import { distribution, sleep, type Distribution } from '../lib/stats.js';
import { renderBarChart } from '../lib/svg-chart.js';
import { prepare, ROOT } from '../longpoll-fanout/scenario.js';
import { Lane } from './lanes.js';
import { startEpush, startNchan, versions, type Target, type TargetName } from './targets.js';

export const CROSSNODE_USAGE = `npm run bench -- crossnode-side-by-side [flags]

  --rounds R             measured rounds per phase (default 1000)
  --listeners C          lanes: listeners, each with its own push ID / channel and publisher (default 16)
  --block-rounds B       rounds of one phase before the next phase's turn (default 100)
  --warmup-rounds W      unmeasured rounds per phase first (default 30)
  --seconds T            closed-loop throughput window per phase (default 5; 0 skips it)
  --targets LIST         epush,nchan (default both)
  --max-seconds S        bound of the whole run (default 300; processes killed 30 s after it)
  --wait-idle-seconds S  budget for waiting until the machine is idle, before the run and before
                         each phase's turn (default 0: no wait)
  --server-root DIR      run the epush build in another checkout (e.g. a git archive of HEAD)
  --render FILE          rewrite the docs section and chart from a saved raw JSON, run nothing
  --no-build, --no-docs  as for longpoll-fanout
`;

const CHART = 'crossnode-side-by-side-latency.svg';
/**
 * Other processes using more than this share of one core during the measured latency turns, or
 * during one phase's throughput slices, make the run "on a busy box".
 */
const BUSY_PERCENT = 10;
const HELD_TIMEOUT_MS = 3000;
const DELIVERY_TIMEOUT_MS = 5000;

type Mode = 'same' | 'cross';

interface Phase {
  readonly target: Target;
  readonly mode: Mode;
  readonly publishPort: number;
  readonly listenPort: number;
  readonly lanes: Lane[];
  seq: number;
  rounds: number;
  readonly latencies: number[];
  readonly publishMs: number[];
  heldTimeouts: number;
  lost: number;
  refused: number;
  throughput: Throughput | null;
  /** Measured turns: their length and other processes' CPU in them (ms). */
  turnMs: number;
  foreignMs: number;
}

/** Closed-loop totals of one phase, summed over its slices. */
interface Throughput {
  slices: number;
  ms: number;
  delivered: number;
  serverCpuMs: number;
  lost: number;
  refused: number;
  foreignMs: number;
}

const perSecond = (t: Throughput): number => (t.ms > 0 ? t.delivered / (t.ms / 1000) : NaN);
const usPerDelivery = (t: Throughput): number =>
  t.delivered > 0 ? (t.serverCpuMs * 1000) / t.delivered : NaN;
const foreignPercentOf = (t: Throughput): number => (t.ms > 0 ? (t.foreignMs / t.ms) * 100 : 0);

/**
 * Waiting for other work on the box to stop, within one budget for the whole run
 * (`--wait-idle-seconds`): before each turn of a phase, up to what is left of it.
 */
class IdleBudget {
  waitedMs = 0;
  busyStarts = 0;
  constructor(private leftMs: number) {}

  /** Whole-machine CPU (% of one core) over `ms`. */
  static async busyPercent(ms: number): Promise<number> {
    const before = readSystemBusyTicks();
    await sleep(ms);
    return (((readSystemBusyTicks() - before) * 1000) / clkTck() / ms) * 100;
  }

  async wait(): Promise<void> {
    let first = true;
    while (this.leftMs > 0) {
      const started = performance.now();
      const busy = await IdleBudget.busyPercent(Math.min(500, this.leftMs));
      const spent = performance.now() - started;
      this.leftMs -= spent;
      this.waitedMs += spent;
      if (busy <= BUSY_PERCENT) return;
      if (first) this.busyStarts += 1;
      first = false;
    }
  }
}

interface PhaseResult {
  readonly target: TargetName;
  readonly mode: Mode;
  readonly rounds: number;
  readonly latency: Distribution;
  readonly publish: Distribution;
  readonly heldTimeouts: number;
  readonly lost: number;
  readonly refused: number;
  readonly duplicates: number;
  readonly reconnects: number;
  readonly problems: string[];
  readonly throughput: Throughput | null;
  /** Other processes' CPU during this phase's measured turns, % of one core. */
  readonly foreignPercent: number;
}

function log(text: string): void {
  process.stderr.write(`[crossnode] ${text}\n`);
}

const label = (mode: Mode): string =>
  mode === 'same'
    ? 'same node (publish and listen on B)'
    : 'cross-node (publish on A, listen on B)';

async function waitHeld(phase: Phase, want: number): Promise<boolean> {
  const end = performance.now() + HELD_TIMEOUT_MS;
  for (;;) {
    const held = await phase.target.held(phase.listenPort);
    if (held !== null && held >= want) return true;
    if (performance.now() > end) return false;
    await sleep(1);
  }
}

/** One round: all lanes listen, wait until held, all publish at once, collect the deliveries. */
async function round(phase: Phase, measure: boolean): Promise<void> {
  const seq = ++phase.seq;
  for (const lane of phase.lanes) lane.listen();
  if (!(await waitHeld(phase, phase.lanes.length)) && measure) phase.heldTimeouts += 1;
  const results = await Promise.all(
    phase.lanes.map(async (lane) => {
      const publish = await lane.publish(seq);
      const arrived = publish.accepted ? await lane.waitFor(seq, DELIVERY_TIMEOUT_MS) : null;
      lane.forget(seq);
      return { publish, arrived };
    }),
  );
  if (!measure) return;
  phase.rounds += 1;
  for (const { publish, arrived } of results) {
    if (!publish.accepted) phase.refused += 1;
    else if (arrived === null) phase.lost += 1;
    else {
      phase.latencies.push(arrived - publish.sentAt);
      phase.publishMs.push(publish.doneAt - publish.sentAt);
    }
  }
}

/** Closed loop for `seconds`: each lane publishes, waits for its delivery, publishes again. */
async function closedLoop(phase: Phase, seconds: number): Promise<void> {
  const pids = phase.target.pids();
  await waitQuiet(pids, { timeoutMs: 3000 });
  let delivered = 0;
  let lost = 0;
  let refused = 0;
  const before = sample(pids);
  const started = performance.now();
  const end = started + seconds * 1000;
  await Promise.all(
    phase.lanes.map(async (lane) => {
      while (performance.now() < end) {
        const seq = ++phase.seq;
        lane.listen();
        const publish = await lane.publish(seq);
        if (!publish.accepted) {
          refused += 1;
          await sleep(10);
          continue;
        }
        const arrived = await lane.waitFor(seq, DELIVERY_TIMEOUT_MS);
        lane.forget(seq);
        if (arrived === null) lost += 1;
        else delivered += 1;
      }
    }),
  );
  const elapsed = performance.now() - started;
  const after = sample(pids);
  const serverCpuMs =
    after.server.ns > 0 && before.server.ns > 0
      ? (after.server.ns - before.server.ns) / 1e6
      : ((after.server.ticks - before.server.ticks) * 1000) / clkTck();
  const t = (phase.throughput ??= {
    slices: 0,
    ms: 0,
    delivered: 0,
    serverCpuMs: 0,
    lost: 0,
    refused: 0,
    foreignMs: 0,
  });
  t.slices += 1;
  t.ms += elapsed;
  t.delivered += delivered;
  t.serverCpuMs += serverCpuMs;
  t.lost += lost;
  t.refused += refused;
  t.foreignMs += foreignCpuMs(before, after);
}

function result(phase: Phase): PhaseResult {
  const problems = [...new Set(phase.lanes.flatMap((lane) => lane.problems))].slice(0, 5);
  return {
    target: phase.target.name,
    mode: phase.mode,
    rounds: phase.rounds,
    latency: distribution(phase.latencies),
    publish: distribution(phase.publishMs),
    heldTimeouts: phase.heldTimeouts,
    lost: phase.lost,
    refused: phase.refused,
    duplicates: phase.lanes.reduce((sum, lane) => sum + lane.duplicates, 0),
    reconnects: phase.lanes.reduce((sum, lane) => sum + lane.reconnects, 0),
    problems,
    throughput: phase.throughput,
    foreignPercent: phase.turnMs > 0 ? (phase.foreignMs / phase.turnMs) * 100 : 0,
  };
}

/** The busiest processes outside the bench between two full /proc scans (ticks → % of a core). */
function busiest(
  from: Map<number, number>,
  to: Map<number, number>,
  own: ReadonlySet<number>,
  ms: number,
): string[] {
  const rows: { pid: number; percent: number }[] = [];
  for (const [pid, ticks] of to) {
    if (own.has(pid) || pid === process.pid) continue;
    const percent = (((ticks - (from.get(pid) ?? 0)) * 1000) / clkTck() / ms) * 100;
    if (percent >= 3) rows.push({ pid, percent });
  }
  return rows
    .sort((a, b) => b.percent - a.percent)
    .map((r) => ({ ...r, name: describeProcess(r.pid, 60) }))
    .filter((r) => r.name !== '(exited)')
    .slice(0, 3)
    .map((r) => `\`${r.name}\` ${fmt(r.percent, 0)}%`);
}

const ms = (value: number): string => fmt(value, 2);

interface Report {
  readonly started: Date;
  readonly command: string;
  readonly rounds: number;
  readonly listeners: number;
  readonly blockRounds: number;
  readonly seconds: number;
  readonly results: PhaseResult[];
  readonly descriptions: string[];
  readonly boxBusyBefore: number;
  readonly latencyForeignPercent: number;
  readonly latencySeconds: number;
  readonly busiest: string[];
  /** Idle waiting: total ms, and turns that found the box busy before them. */
  readonly idleWaitedMs: number;
  readonly busyStarts: number;
  readonly commit: string;
  readonly versions: ReturnType<typeof versions>;
}

function added(results: PhaseResult[], target: TargetName, pick: 'p50' | 'p99'): number | null {
  const same = results.find((r) => r.target === target && r.mode === 'same');
  const cross = results.find((r) => r.target === target && r.mode === 'cross');
  if (!same || !cross || same.latency.count === 0 || cross.latency.count === 0) return null;
  return cross.latency[pick] - same.latency[pick];
}

type Machine = ReturnType<typeof prepare>['machine'];

function renderSection(report: Report, machine: Machine): string {
  const targets = [...new Set(report.results.map((r) => r.target))];
  const foreignThroughput = report.results
    .map((r) => (r.throughput === null ? 0 : foreignPercentOf(r.throughput)))
    .reduce((a, b) => Math.max(a, b), 0);
  const busy = busyBox(report);
  const rows = report.results.map((r) => {
    const add50 = r.mode === 'cross' ? added(report.results, r.target, 'p50') : null;
    const add99 = r.mode === 'cross' ? added(report.results, r.target, 'p99') : null;
    const t = r.throughput;
    return (
      `| ${r.target} | ${label(r.mode)} | ${int(r.latency.count)} | ${ms(r.latency.p50)} | ${ms(r.latency.p90)} | ` +
      `${ms(r.latency.p99)} | ${ms(r.latency.max)} | ${add50 === null ? '' : `**${ms(add50)}**`} | ` +
      `${add99 === null ? '' : ms(add99)} | ${t === null ? '–' : int(Math.round(perSecond(t)))} | ` +
      `${t === null ? '–' : fmt(usPerDelivery(t), 1)} | ${r.lost + r.refused + r.duplicates + (t?.lost ?? 0) + (t?.refused ?? 0)} |`
    );
  });
  const notes = report.results.map((r) => {
    const t = r.throughput;
    return (
      `- ${r.target}, ${r.mode === 'same' ? 'same node' : 'cross-node'}: ${int(r.rounds)} rounds × ${report.listeners} lanes; ` +
      `publish answer p50 ${ms(r.publish.p50)} / p99 ${ms(r.publish.p99)} ms; ` +
      `rounds where node B did not report all ${report.listeners} listens held within ${HELD_TIMEOUT_MS / 1000} s: ${r.heldTimeouts}; ` +
      `lost ${r.lost}, refused ${r.refused}, duplicates ${r.duplicates}, listener reconnects ${r.reconnects}; ` +
      `other processes ${fmt(r.foreignPercent, 0)}% of a core during its rounds` +
      (t === null
        ? ''
        : `; closed loop ${fmt(t.ms / 1000, 1)} s in ${t.slices} slices: ${int(t.delivered)} delivered, server CPU ${int(Math.round(t.serverCpuMs))} ms ` +
          `(nodes + Redis), other processes ${fmt(foreignPercentOf(t), 0)}% of a core`) +
      (r.problems.length > 0 ? `; problems: ${r.problems.map((p) => `\`${p}\``).join(', ')}` : '')
    );
  });
  const summary = targets
    .map((t) => {
      const a = added(report.results, t, 'p50');
      return `${t} **${a === null ? '–' : `${ms(a)} ms`}**`;
    })
    .join(', ');
  const date = report.started.toISOString().slice(0, 16).replace('T', ' ');
  const waited =
    report.idleWaitedMs > 0
      ? ` The run waited ${fmt(report.idleWaitedMs / 1000, 0)} s in all for the box to go idle (${report.busyStarts} turn${report.busyStarts === 1 ? '' : 's'} found it busy).`
      : '';
  const boxLine = busy
    ? `**Measured on a busy box**: other processes on this shared machine used ${fmt(report.latencyForeignPercent, 0)}% of one core on average during the measured latency rounds (up to ${fmt(foreignThroughput, 0)}% in one phase's throughput slices; whole box ${fmt(report.boxBusyBefore, 0)}% of a core before the idle wait)${report.busiest.length > 0 ? `, busiest: ${report.busiest.join('; ')}` : ''}.${waited} The phases are interleaved (latency in blocks, throughput in 1 s slices), so the disturbance falls on epush and nchan alike, but absolute figures (p99 and deliveries/s above all) are worse than on an idle box.`
    : `Quiet box: other processes used ${fmt(report.latencyForeignPercent, 0)}% of one core during the measured latency rounds (at most ${fmt(foreignThroughput, 0)}% in one phase's throughput slices; whole box ${fmt(report.boxBusyBefore, 0)}% of a core before the idle wait).${waited}`;
  return `### crossnode-side-by-side: ${int(report.rounds)} rounds × ${report.listeners} listeners — ${date} UTC

Command: \`${report.command}\` (epush ${report.commit}).
Machine: ${machine.nproc} × ${machine.cpuModel}, ${machine.memGiB} GiB, ${machine.kernel}; Node ${machine.node}; ${report.versions.nginx}, ${report.versions.nchan}; redis-server ${report.versions.redis} (private, one per cluster, no persistence). Nothing pinned: nodes, Redis and the load generator share the cores. The measured latency rounds took ${fmt(report.latencySeconds, 0)} s in all, phases interleaved in blocks of ${report.blockRounds} rounds.
${report.descriptions.map((d) => `- ${d}`).join('\n')}

${boxLine}

Latency (ms), publish request written → the listener's answer parsed, ${report.listeners} lanes publishing at once per round; added = cross-node − same node. Deliveries/s: closed loop over the ${report.listeners} lanes, ${report.seconds} s per phase in 1 s slices; CPU: all server processes of the cluster, Redis included, per delivery.

| server | path | deliveries | p50 | p90 | p99 | max | added p50 | added p99 | deliveries/s | server CPU µs/delivery | errors |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.join('\n')}

Added latency p50 by crossing nodes through Redis: ${summary} (issue 8 target for epush: ≤ 2 ms).

![Same-node vs cross-node latency through Redis, epush and nchan](bench/${CHART})

${notes.join('\n')}
`;
}

/** Whether other work on the box disturbed the run (the section and the chart say so). */
function busyBox(report: Report): boolean {
  const throughput = report.results.map((r) =>
    r.throughput === null ? 0 : foreignPercentOf(r.throughput),
  );
  return report.latencyForeignPercent > BUSY_PERCENT || Math.max(0, ...throughput) > BUSY_PERCENT;
}

function renderChart(report: Report): string {
  const pick = (target: TargetName, mode: Mode, p: 'p50' | 'p99'): number | null => {
    const r = report.results.find((x) => x.target === target && x.mode === mode);
    return r && r.latency.count > 0 ? r.latency[p] : null;
  };
  const series = [...new Set(report.results.map((r) => r.target))];
  const row = (text: string, mode: Mode, p: 'p50' | 'p99') => ({
    label: text,
    values: series.map((t) => pick(t, mode, p)),
  });
  return renderBarChart({
    title: 'Delivery latency through Redis: same node vs cross-node (lower is better)',
    subtitle: `${report.started.toISOString().slice(0, 10)}, ${report.rounds} rounds × ${report.listeners} listeners, 2 nodes + 1 private Redis per server${busyBox(report) ? '; measured on a busy box' : ''}`,
    unit: 'ms',
    digits: 2,
    series,
    rows: [
      row('same node, p50', 'same', 'p50'),
      row('cross-node, p50', 'cross', 'p50'),
      row('same node, p99', 'same', 'p99'),
      row('cross-node, p99', 'cross', 'p99'),
    ],
  });
}

function writeDocs(report: Report, machine: Machine): void {
  mkdirSync(join(ROOT, 'docs', 'bench'), { recursive: true });
  writeFileSync(join(ROOT, 'docs', 'bench', CHART), renderChart(report));
  const key = `r${report.rounds}-c${report.listeners}`;
  writeBenchSection('crossnode-side-by-side', key, renderSection(report, machine), {
    commit: report.commit,
    dirty: false, // report.commit says so itself
    at: report.started,
  });
  log(`docs/benchmarks.md: section crossnode-side-by-side:${key} and docs/bench/${CHART} written`);
}

/** `--render FILE`: the docs section and chart again from a complete run's raw JSON. */
function render(file: string): number {
  const raw = JSON.parse(readFileSync(file, 'utf8')) as Omit<Report, 'started'> & {
    started: string;
    machine: Machine;
    complete: boolean;
  };
  if (!raw.complete) throw new ArgError(`${file} is an incomplete run: not rendered`);
  const report: Report = { ...raw, started: new Date(raw.started) };
  process.stdout.write(`${renderSection(report, raw.machine)}\n`);
  writeDocs(report, raw.machine);
  return 0;
}

/** The commit measured: git's, or the `.commit` file of a `git archive` export. */
function commitOf(commit: string, serverRoot: string): string {
  const exported = join(serverRoot, '.commit');
  return commit === '?' && existsSync(exported) ? readFileSync(exported, 'utf8').trim() : commit;
}

export async function runCrossnodeSideBySide(argv: readonly string[]): Promise<number> {
  const args = Args.parse(argv, {
    rounds: 'number',
    listeners: 'number',
    'block-rounds': 'number',
    'warmup-rounds': 'number',
    seconds: 'number',
    targets: 'string',
    'max-seconds': 'number',
    'wait-idle-seconds': 'number',
    'server-root': 'string',
    build: 'boolean',
    docs: 'boolean',
    render: 'string',
  });
  const renderFile = args.optionalString('render');
  if (renderFile !== undefined) return render(resolve(renderFile));
  const rounds = args.integer('rounds', 1000, 10, 100_000);
  const listeners = args.integer('listeners', 16, 1, 1000);
  const blockRounds = args.integer('block-rounds', 100, 1, 100_000);
  const warmupRounds = args.integer('warmup-rounds', 30, 0, 10_000);
  const seconds = args.number('seconds', 5, 0, 60);
  const maxSeconds = args.number('max-seconds', 300, 20, 3600);
  const waitIdleSeconds = args.number('wait-idle-seconds', 0, 0, 3600);
  const targetNames = args
    .string('targets', 'epush,nchan')
    .split(',')
    .map((s) => s.trim());
  for (const name of targetNames) {
    if (name !== 'epush' && name !== 'nchan') throw new ArgError(`--targets: unknown "${name}"`);
  }
  const startedAt = Date.now();
  const deadline = startedAt + maxSeconds * 1000;
  const prepared = prepare(args.boolean('build', true), resolve(args.string('server-root', ROOT)));
  const idle = new IdleBudget(
    Math.min(waitIdleSeconds * 1000, Math.max(0, deadline - Date.now() - 120_000)),
  );
  const boxBusyBefore = await IdleBudget.busyPercent(1000);
  await idle.wait();

  const started = new Date();
  const runId = `crossnode-side-by-side-${started.toISOString().replace(/[:.]/g, '-')}`;
  const logDir = join(ROOT, '.bench-out');
  mkdirSync(logDir, { recursive: true });

  const targets: Target[] = [];
  const phases: Phase[] = [];
  let cleaning: Promise<void> | null = null;
  const cleanup = (): Promise<void> =>
    (cleaning ??= (async () => {
      for (const phase of phases) for (const lane of phase.lanes) lane.close();
      await Promise.allSettled(targets.map((t) => t.shutdown()));
    })());
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: stopping every process of the run`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const hardStop = setTimeout(
    () => {
      log(`--max-seconds ${maxSeconds} passed by 30 s: stopping everything`);
      void cleanup().finally(() => process.exit(1));
    },
    Math.max(1000, deadline - Date.now() + 30_000),
  );
  hardStop.unref();

  try {
    const options = { serverRoot: prepared.serverRoot, logDir, runId };
    for (const name of targetNames) {
      log(`starting ${name}: 2 nodes + 1 private redis-server`);
      targets.push(name === 'epush' ? await startEpush(options) : await startNchan(options));
    }
    for (const target of targets) {
      for (const mode of ['same', 'cross'] as const) {
        const [a, b] = target.ports;
        const keys = await target.keys(listeners, mode);
        const publishPort = mode === 'same' ? b : a;
        phases.push({
          target,
          mode,
          publishPort,
          listenPort: b,
          lanes: keys.map((key) => new Lane(key, target.protocol, b, publishPort)),
          seq: 0,
          rounds: 0,
          latencies: [],
          publishMs: [],
          heldTimeouts: 0,
          lost: 0,
          refused: 0,
          throughput: null,
          turnMs: 0,
          foreignMs: 0,
        });
      }
    }
    const throughputReserveMs =
      (seconds > 0 ? phases.length * (seconds * 2 + 5) : 0) * 1000 + 20_000;
    const latencyDeadline = deadline - throughputReserveMs;
    const pause = (phase: Phase): void => {
      for (const lane of phase.lanes) lane.pause();
    };

    const allPids = targets.flatMap((t) => t.pids());
    log(`warm-up: ${warmupRounds} rounds per phase`);
    for (const phase of phases) {
      for (let i = 0; i < warmupRounds && Date.now() < latencyDeadline; i++)
        await round(phase, false);
      pause(phase);
    }

    const ticksBefore = readAllProcessTicks();
    const latencyStarted = performance.now();
    for (let block = 0; phases.some((p) => p.rounds < rounds); block++) {
      if (Date.now() > latencyDeadline) break;
      for (let k = 0; k < phases.length; k++) {
        const phase = phases[(block + k) % phases.length];
        if (!phase || phase.rounds >= rounds) continue;
        await idle.wait();
        await round(phase, false); // re-arm after the other phases' turn
        const before: Sample = sample(allPids);
        for (let i = 0; i < blockRounds && phase.rounds < rounds; i++) {
          if (Date.now() > latencyDeadline) break;
          await round(phase, true);
        }
        const after: Sample = sample(allPids);
        phase.turnMs += after.server.at - before.server.at;
        phase.foreignMs += foreignCpuMs(before, after);
        pause(phase);
      }
      log(
        `block ${block + 1}: ${phases.map((p) => `${p.target.name}/${p.mode} ${p.rounds}`).join(', ')}`,
      );
    }
    const ticksAfter = readAllProcessTicks();
    const own = new Set(allPids);
    const latencyWallMs = performance.now() - latencyStarted;
    const busiestOthers = busiest(ticksBefore, ticksAfter, own, latencyWallMs);
    const measuredMs = phases.reduce((sum, p) => sum + p.turnMs, 0);
    const latencyForeignPercent =
      measuredMs > 0 ? (phases.reduce((sum, p) => sum + p.foreignMs, 0) / measuredMs) * 100 : 0;

    const slices = Math.ceil(seconds);
    for (let slice = 0; slice < slices; slice++) {
      for (let k = 0; k < phases.length; k++) {
        const phase = phases[(slice + k) % phases.length];
        if (!phase) continue;
        if ((deadline - Date.now()) / 1000 < 20) {
          log(`throughput slice of ${phase.target.name}/${phase.mode} skipped: --max-seconds`);
          continue;
        }
        await idle.wait();
        await closedLoop(phase, seconds / slices);
        pause(phase);
      }
      log(`throughput slice ${slice + 1}/${slices} done`);
    }

    const results = phases.map(result);
    const complete =
      results.every((r) => r.rounds >= rounds && r.lost === 0 && r.refused === 0) &&
      phases.every((p) => seconds === 0 || p.throughput?.slices === slices);
    const report: Report = {
      started,
      command:
        `npm run bench -- crossnode-side-by-side ${argv.filter((x) => x !== '--no-docs').join(' ')}`.trim(),
      rounds,
      listeners,
      blockRounds,
      seconds,
      results,
      descriptions: targets.map((t) => `${t.name}: ${t.description}`),
      boxBusyBefore,
      latencyForeignPercent,
      latencySeconds: measuredMs / 1000,
      busiest: busiestOthers,
      idleWaitedMs: idle.waitedMs,
      busyStarts: idle.busyStarts,
      commit: `${commitOf(prepared.source.commit, prepared.serverRoot)}${prepared.source.uncommitted.length > 0 && prepared.serverRoot === ROOT ? ' with uncommitted changes under src/' : ''}${prepared.serverRoot === ROOT ? '' : `, built in ${prepared.serverRoot}`}`,
      versions: versions(),
    };
    const rawFile = join(logDir, `${runId}.json`);
    writeFileSync(
      rawFile,
      JSON.stringify({ ...report, machine: prepared.machine, complete }, null, 2),
    );
    process.stdout.write(`\n${renderSection(report, prepared.machine)}\nraw: ${rawFile}\n`);
    if (!complete) {
      log('incomplete run (rounds missing, lost or refused deliveries): docs left alone');
      return 1;
    }
    if (args.boolean('docs', true)) writeDocs(report, prepared.machine);
    return 0;
  } finally {
    clearTimeout(hardStop);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await cleanup();
  }
}
