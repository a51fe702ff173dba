/**
 * `npm run bench -- failover`: how long listeners take to come back when one node of a
 * three-node cluster dies (SIGKILL) or stops gracefully (SIGTERM: drain), and whether every
 * notification still arrives exactly once and in order.
 *
 * Per row: a fresh private redis-server and three nodes (epush from dist; or nginx + nchan, the
 * peer with a cross-node message history); N long-poll listeners spread evenly over the nodes;
 * a group notification with a numbered payload every `--interval-ms` through the last node; after
 * a warm phase the first node is stopped; each listener whose connection fails (or that is told
 * to reconnect) moves to the next node of its list and listens again from its last position.
 * Measured per moved listener on one clock: stop → first answer from another node, stop → first
 * notification, stop → caught up (has every notification accepted before the stop). Then the
 * publisher keeps going, stops, and every listener's received sequence is checked against the
 * accepted one: lost, duplicated, out of order. Every phase is bounded; every process is stopped
 * by pid at the end, also on failure.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ArgError, Args } from '../lib/args.js';
import { writeBenchSection } from '../lib/docs.js';
import { fmt, int } from '../lib/format.js';
import { ApiClient } from '../lib/http-client.js';
import { machineInfo, sourceInfo } from '../lib/machine.js';
import { clkTck, processTree, readAllProcessTicks, readSystemTicks } from '../lib/procfs.js';
import { distribution, sleep, type Distribution } from '../lib/stats.js';
import type { Cluster, StopKind } from './cluster.js';
import { EpushCluster } from './epush-cluster.js';
import { NchanCluster } from './nchan-cluster.js';
import { FailoverListeners } from './recovery.js';
import { verify, type Verification } from './verify.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NODES = 3;
/** The node that is stopped; the publisher uses the last one. */
const STOPPED = 0;

export const FAILOVER_USAGE = `npm run bench -- failover [--n 3000] [--interval-ms 20] [--warm-seconds 4]
    [--after-seconds 4] [--stops kill,graceful] [--targets epush,nchan] [--jitter-ms 0]
    [--recover-timeout-seconds 30] [--max-seconds 180] [--wait-idle-seconds 0] [--log-level warn]
    [--server-root DIR] [--no-docs]
`;

interface Options {
  readonly n: number;
  readonly intervalMs: number;
  readonly warmSeconds: number;
  readonly afterSeconds: number;
  readonly jitterMs: number;
  readonly recoverTimeoutMs: number;
  readonly deadline: number;
  readonly runId: string;
  readonly logDir: string;
  readonly logLevel: string;
}

interface PublishRecord {
  readonly seq: number;
  readonly sentAt: number;
  readonly doneAt: number;
  readonly status: number;
}

/** One numbered notification every `intervalMs` through one node, one request at a time. */
class Publisher {
  readonly records: PublishRecord[] = [];
  readonly accepted: number[] = [];
  failures = 0;
  private seq = 0;
  private stopped = false;
  private client: ApiClient | null = null;

  constructor(
    private readonly cluster: Cluster,
    private readonly port: number,
    private readonly pool: FailoverListeners,
    private readonly intervalMs: number,
  ) {}

  get lastAccepted(): number {
    return this.accepted.length === 0 ? 0 : (this.accepted[this.accepted.length - 1] ?? 0);
  }

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    let planned = performance.now();
    while (!this.stopped) {
      const seq = ++this.seq;
      const request = this.cluster.publishRequest(seq);
      const sentAt = performance.now();
      try {
        this.client ??= await ApiClient.open('127.0.0.1', this.port, 2000);
        const response = await this.client.request(
          request.method,
          request.path,
          request.body,
          5000,
        );
        const id = this.cluster.acceptedId(response.status, response.body);
        if (id !== null) {
          this.accepted.push(seq);
          if (id !== '') this.pool.idOfSeq.set(seq, id);
        }
        this.records.push({ seq, sentAt, doneAt: response.doneAt, status: response.status });
      } catch {
        this.failures += 1;
        this.records.push({ seq, sentAt, doneAt: performance.now(), status: 0 });
        this.client?.close();
        this.client = null;
      }
      planned += this.intervalMs;
      const wait = planned - performance.now();
      if (wait > 0) await sleep(wait);
      else planned = performance.now();
    }
    this.client?.close();
  }
}

export interface RowResult {
  readonly target: string;
  readonly stop: StopKind;
  readonly signal: string;
  readonly description: string;
  readonly listeners: number;
  readonly moved: number;
  readonly recovered: number;
  readonly caughtUp: number;
  /** stop → first good answer from another node, per moved listener (ms). */
  readonly recoveryMs: Distribution;
  /** stop → the re-listen written to another node (client-side detection and connect). */
  readonly relistenSentMs: Distribution;
  /** stop → first notification received, moved listeners. */
  readonly firstNotificationMs: Distribution;
  /** The same for listeners that did not have to move (the baseline of the stream's own pace). */
  readonly stayedFirstNotificationMs: Distribution;
  /** stop → every moved listener answered by another node. */
  readonly allBackMs: number | null;
  /** stop → every moved listener has every notification accepted before the stop. */
  readonly allCaughtUpMs: number | null;
  readonly stoppedNodeExitedMs: number | null;
  readonly answersFromStoppedNodeAfterStop: number;
  readonly published: number;
  readonly accepted: number;
  readonly publishFailures: number;
  readonly publishNon2xx: number;
  /** Longest gap between two accepted publishes from 1 s before the stop to the end (ms). */
  readonly publishGapAroundStopMs: number;
  readonly connectFailures: number;
  readonly reconnectAnswers: number;
  readonly problems: number;
  readonly problemSamples: readonly string[];
  readonly idMismatches: number;
  readonly verification: Verification;
  /** Accepted publishes per second over the publishing time. */
  readonly publishRate: number;
  readonly publishLatencyMs: Distribution;
  /** Cores used by the bench's own processes (generator, nodes, Redis) and by other work. */
  readonly ownCores: number;
  readonly otherCores: number;
  readonly loadAverage: readonly number[];
  /** The generator's event-loop delay (ms): how late it saw what happened. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  readonly logs: readonly string[];
  /** Every moved listener: its moves and figures, ms relative to the stop (raw JSON only). */
  readonly movedDetail?: readonly unknown[];
  /** The ten listeners whose first notification after the stop came last, with their timelines. */
  readonly slowest?: readonly unknown[];
  readonly error?: string;
}

function remaining(options: Options): number {
  return Math.max(0, options.deadline - Date.now());
}

async function waitFor(
  predicate: () => boolean | Promise<boolean>,
  timeoutMs: number,
  pollMs = 20,
): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate()) return true;
    if (Date.now() >= end) return false;
    await sleep(pollMs);
  }
}

interface LoadSample {
  readonly at: number;
  readonly ticks: Map<number, number>;
  readonly own: Set<number>;
  readonly system: number;
}

function loadSample(): LoadSample {
  return {
    at: performance.now(),
    ticks: readAllProcessTicks(),
    own: new Set(processTree(process.pid, true)),
    system: readSystemTicks().process,
  };
}

/** Cores used by this bench's processes and by everything else between two samples. */
function loadBetween(from: LoadSample, to: LoadSample): { ownCores: number; otherCores: number } {
  const seconds = (to.at - from.at) / 1000;
  let own = 0;
  for (const [pid, ticks] of to.ticks) {
    if (from.own.has(pid) || to.own.has(pid)) own += ticks - (from.ticks.get(pid) ?? 0);
  }
  // The stopped node's ticks are gone from /proc by the end: counted as "other" (an overcount
  // of at most its share before the stop).
  const all = to.system - from.system;
  const hz = clkTck();
  return {
    ownCores: own / hz / seconds,
    otherCores: Math.max(0, all - own) / hz / seconds,
  };
}

/** Waits up to `ms` for a 2 s window in which other work used at most `cores` cores. */
async function waitIdle(ms: number, cores: number): Promise<number> {
  const end = Date.now() + ms;
  let other = Infinity;
  while (Date.now() < end) {
    const from = loadSample();
    await sleep(2000);
    other = loadBetween(from, loadSample()).otherCores;
    if (other <= cores) break;
  }
  return other;
}

function log(text: string): void {
  process.stderr.write(`[failover] ${text}\n`);
}

async function runRow(
  start: () => Promise<Cluster>,
  stop: StopKind,
  options: Options,
  track: (cluster: Cluster | null) => void,
): Promise<RowResult> {
  const cluster = await start();
  track(cluster);
  let pool: FailoverListeners | null = null;
  let publisher: Publisher | null = null;
  let publishing: Promise<void> | null = null;
  try {
    const t0 = Date.now();
    const keys = await cluster.prepareListeners(options.n);
    log(`${cluster.target}/${stop}: ${keys.length} listeners prepared in ${Date.now() - t0} ms`);
    pool = new FailoverListeners(cluster, keys, {
      jitterMs: options.jitterMs,
      requestTimeoutMs: 90_000,
    });
    await pool.connectAll();
    const activePool = pool;
    let held: number | null = null;
    const allHeld = await waitFor(
      async () => {
        held = await cluster.heldListeners();
        return held === options.n && activePool.listeners.every((l) => l.started);
      },
      Math.min(60_000, remaining(options)),
      200,
    );
    if (!allHeld) throw new Error(`only ${String(held)} of ${options.n} listeners held`);
    log(`${cluster.target}/${stop}: all ${options.n} listeners held; publishing`);
    const loadFrom = loadSample();
    const loop = monitorEventLoopDelay({ resolution: 10 });
    loop.enable();

    const port = cluster.ports[NODES - 1] ?? 0;
    const activePublisher = new Publisher(cluster, port, pool, options.intervalMs);
    publisher = activePublisher;
    publishing = activePublisher.run();
    await sleep(Math.min(options.warmSeconds * 1000, remaining(options)));

    const stopAt = pool.markStop(STOPPED, activePublisher.lastAccepted);
    const stopWall = Date.now();
    cluster.stopNode(STOPPED, stop);
    log(`${cluster.target}/${stop}: node ${STOPPED} stopped (${cluster.stopSignal(stop)})`);
    const moved = pool.movedByStop();
    let exitedMs: number | null = null;
    const exitWatch = cluster.waitExit(STOPPED, 20_000).then((exited) => {
      if (exited) exitedMs = Date.now() - stopWall;
    });
    const back = await waitFor(
      () => moved.every((l) => l.recoveredAt !== null && l.caughtUpAt !== null),
      Math.min(options.recoverTimeoutMs, remaining(options)),
    );
    log(
      `${cluster.target}/${stop}: ${back ? 'all' : 'NOT all'} moved listeners back after ${Math.round(performance.now() - stopAt)} ms`,
    );
    await sleep(Math.min(options.afterSeconds * 1000, remaining(options)));
    activePublisher.stop();
    await publishing;
    publishing = null;
    const last = activePublisher.lastAccepted;
    const settled = await waitFor(
      () => activePool.listeners.every((l) => l.lastSeq >= last),
      Math.min(20_000, remaining(options)),
    );
    await sleep(300); // late duplicates, if any
    loop.disable();
    const load = loadBetween(loadFrom, loadSample());
    pool.closeAll();
    await exitWatch;
    if (!settled) log(`${cluster.target}/${stop}: not every listener got the last notification`);

    const verification = verify(pool.listeners, activePublisher.accepted);
    const stayed = pool.listeners.filter((l) => l.nodeAtStop !== STOPPED);
    const since = (t: number | null): number[] => (t === null ? [] : [t - stopAt]);
    const recovered = moved.flatMap((l) => since(l.recoveredAt));
    const caughtUp = moved.flatMap((l) => since(l.caughtUpAt));
    let gap = 0;
    let previous: number | null = null;
    for (const record of activePublisher.records) {
      if (record.status < 200 || record.status >= 300) continue;
      if (record.doneAt >= stopAt - 1000 && previous !== null) {
        gap = Math.max(gap, record.doneAt - previous);
      }
      previous = record.doneAt;
    }
    const problemSamples = pool.problemSamples;
    const sum = (f: (l: (typeof moved)[number]) => number): number =>
      activePool.listeners.reduce((s, l) => s + f(l), 0);
    return {
      target: cluster.target,
      stop,
      signal: cluster.stopSignal(stop),
      description: cluster.description,
      listeners: pool.listeners.length,
      moved: moved.length,
      recovered: recovered.length,
      caughtUp: caughtUp.length,
      recoveryMs: distribution(recovered),
      relistenSentMs: distribution(moved.flatMap((l) => since(l.relistenSentAt))),
      firstNotificationMs: distribution(moved.flatMap((l) => since(l.firstNotificationAt))),
      stayedFirstNotificationMs: distribution(stayed.flatMap((l) => since(l.firstNotificationAt))),
      allBackMs: recovered.length === moved.length ? Math.max(0, ...recovered) : null,
      allCaughtUpMs: caughtUp.length === moved.length ? Math.max(0, ...caughtUp) : null,
      stoppedNodeExitedMs: exitedMs,
      answersFromStoppedNodeAfterStop: sum((l) => l.answersFromStoppedNode),
      published: activePublisher.records.length,
      accepted: activePublisher.accepted.length,
      publishFailures: activePublisher.failures,
      publishNon2xx: activePublisher.records.filter((r) => r.status !== 0 && r.status >= 300)
        .length,
      publishGapAroundStopMs: gap,
      connectFailures: sum((l) => l.connectFailures),
      reconnectAnswers: sum((l) => l.reconnectAnswers),
      problems: pool.problemCount,
      problemSamples,
      idMismatches: sum((l) => l.idMismatches),
      verification,
      publishRate:
        activePublisher.accepted.length /
        Math.max(
          0.001,
          ((activePublisher.records.at(-1)?.doneAt ?? 0) -
            (activePublisher.records[0]?.sentAt ?? 0)) /
            1000,
        ),
      publishLatencyMs: distribution(activePublisher.records.map((r) => r.doneAt - r.sentAt)),
      ownCores: load.ownCores,
      otherCores: load.otherCores,
      loadAverage: loadavg().map((x) => Math.round(x * 10) / 10),
      loopDelayP99Ms: loop.percentile(99) / 1e6,
      loopDelayMaxMs: loop.max / 1e6,
      logs: cluster.logs,
      slowest: [...activePool.listeners]
        .sort(
          (a, b) =>
            (b.firstNotificationAt ?? Infinity) - (a.firstNotificationAt ?? Infinity) ||
            a.index - b.index,
        )
        .slice(0, 10)
        .map((l) => ({
          listener: l.index,
          key: l.key,
          nodeAtStop: l.nodeAtStop,
          lastSeqAtStop: l.lastSeqAtStop,
          timeline: l.timeline,
        })),
      movedDetail: moved.map((l) => ({
        listener: l.index,
        key: l.key,
        answersFromStoppedNode: l.answersFromStoppedNode,
        relistenSent: l.relistenSentAt === null ? null : Math.round(l.relistenSentAt - stopAt),
        recovered: l.recoveredAt === null ? null : Math.round(l.recoveredAt - stopAt),
        recoveredWith: l.recoveredWith,
        lastSeqAtStop: l.lastSeqAtStop,
        firstNotification:
          l.firstNotificationAt === null ? null : Math.round(l.firstNotificationAt - stopAt),
        caughtUp: l.caughtUpAt === null ? null : Math.round(l.caughtUpAt - stopAt),
        moves: l.moves
          .filter((m) => m.at >= stopAt - 1000)
          .map((m) => ({ ...m, at: Math.round(m.at - stopAt) })),
      })),
    };
  } finally {
    publisher?.stop();
    if (publishing) await publishing.catch(() => undefined);
    pool?.closeAll();
    await cluster.shutdown();
    track(null);
  }
}

function ms(value: number | null | undefined): string {
  return fmt(value ?? NaN, 0);
}

function tableRow(r: RowResult): string {
  const v = r.verification;
  const back = r.allBackMs === null ? `not all (${r.recovered}/${r.moved})` : ms(r.allBackMs);
  return (
    `| ${r.target} | ${r.signal} | ${int(r.moved)} | ${ms(r.recoveryMs.p50)} / ${ms(r.recoveryMs.p99)} / ${ms(r.recoveryMs.max)} ` +
    `| ${back} | ${ms(r.allCaughtUpMs)} | ${ms(r.firstNotificationMs.p50)} / ${ms(r.firstNotificationMs.p99)} ` +
    `| ${int(r.accepted)} | ${int(v.lost)}${v.undeliveredAtEnd > 0 ? ` (+${int(v.undeliveredAtEnd)} not yet delivered at the end)` : ''} | ${int(v.duplicated)} | ${int(v.outOfOrder)} |`
  );
}

function notes(r: RowResult): string {
  const v = r.verification;
  const parts = [
    `**${r.target}, ${r.signal}**: ${r.description}.`,
    `Re-listen written to another node: p50 ${ms(r.relistenSentMs.p50)} ms, max ${ms(r.relistenSentMs.max)} ms after the stop.`,
    `Listeners that did not move: first notification after the stop p50 ${ms(r.stayedFirstNotificationMs.p50)} ms, p99 ${ms(r.stayedFirstNotificationMs.p99)} ms.`,
    `Stopped node gone after ${r.stoppedNodeExitedMs === null ? 'more than 20 s' : `${ms(r.stoppedNodeExitedMs)} ms`}; it answered ${int(r.answersFromStoppedNodeAfterStop)} listens after the signal.`,
    `Publishes: ${fmt(r.publishRate, 1)}/s accepted (answer p50 ${ms(r.publishLatencyMs.p50)} ms, max ${ms(r.publishLatencyMs.max)} ms); ${int(r.published)} sent, ${int(r.accepted)} accepted, ${int(r.publishNon2xx)} refused, ${int(r.publishFailures)} failed; longest gap between two accepted publishes around the stop ${ms(r.publishGapAroundStopMs)} ms.`,
    `Deliveries: ${int(v.delivered)} of ${int(v.expectedDeliveries)} expected; ${int(v.undeliveredAtEnd)} not yet delivered when the run ended; ${int(v.unaccepted)} of a publish not accepted; listeners with a loss ${int(v.listenersWithLoss)}, with a duplicate ${int(v.listenersWithDuplicates)}.`,
    `Connection failures ${int(r.connectFailures)}, reconnect/410 answers ${int(r.reconnectAnswers)}, other problems ${int(r.problems)}${r.problemSamples.length > 0 ? ` (e.g. \`${r.problemSamples[0] ?? ''}\`)` : ''}.`,
  ];
  parts.push(
    `CPU while publishing: the bench's processes ${fmt(r.ownCores, 2)} cores, other work on the box ${fmt(r.otherCores, 2)} cores (load average ${r.loadAverage.join(', ')}); generator event-loop delay p99 ${ms(r.loopDelayP99Ms)} ms, max ${ms(r.loopDelayMaxMs)} ms.`,
  );
  if (r.error !== undefined) parts.push(`**Error:** ${r.error}`);
  return `- ${parts.join(' ')}`;
}

function failedRow(target: string, stop: StopKind, error: unknown): RowResult {
  const empty = distribution([]);
  return {
    target,
    stop,
    signal: stop,
    description: 'did not complete',
    listeners: 0,
    moved: 0,
    recovered: 0,
    caughtUp: 0,
    recoveryMs: empty,
    relistenSentMs: empty,
    firstNotificationMs: empty,
    stayedFirstNotificationMs: empty,
    allBackMs: null,
    allCaughtUpMs: null,
    stoppedNodeExitedMs: null,
    answersFromStoppedNodeAfterStop: 0,
    published: 0,
    accepted: 0,
    publishFailures: 0,
    publishNon2xx: 0,
    publishGapAroundStopMs: 0,
    connectFailures: 0,
    reconnectAnswers: 0,
    problems: 0,
    problemSamples: [],
    idMismatches: 0,
    verification: verify([], []),
    publishRate: 0,
    publishLatencyMs: empty,
    ownCores: 0,
    otherCores: 0,
    loadAverage: loadavg(),
    loopDelayP99Ms: 0,
    loopDelayMaxMs: 0,
    logs: [],
    error: error instanceof Error ? error.message : String(error),
  };
}

export async function runFailover(argv: readonly string[]): Promise<number> {
  const args = Args.parse(argv, {
    n: 'number',
    'interval-ms': 'number',
    'warm-seconds': 'number',
    'after-seconds': 'number',
    stops: 'string',
    targets: 'string',
    'jitter-ms': 'number',
    'recover-timeout-seconds': 'number',
    'max-seconds': 'number',
    'log-level': 'string',
    'wait-idle-seconds': 'number',
    'server-root': 'string',
    docs: 'boolean',
  });
  const maxSeconds = args.number('max-seconds', 180, 10, 3600);
  const waitIdleMs = args.number('wait-idle-seconds', 0, 0, 3600) * 1000;
  // Another checkout (e.g. a \`git archive HEAD\` export, built) to run instead of this one's dist.
  const serverRoot = resolve(args.string('server-root', ROOT));
  if (!existsSync(join(serverRoot, 'dist/src/cli/main.js'))) {
    throw new ArgError(`${serverRoot}/dist/src/cli/main.js is missing: run npm run build there`);
  }
  const stops = args
    .string('stops', 'kill,graceful')
    .split(',')
    .map((s) => s.trim());
  for (const stop of stops) {
    if (stop !== 'kill' && stop !== 'graceful') throw new ArgError(`--stops: unknown "${stop}"`);
  }
  const targets = args
    .string('targets', 'epush,nchan')
    .split(',')
    .map((s) => s.trim());
  for (const target of targets) {
    if (target !== 'epush' && target !== 'nchan')
      throw new ArgError(`--targets: unknown "${target}"`);
  }
  const started = new Date();
  const runId = `failover-${started.toISOString().replace(/[:.]/g, '-')}`;
  const logDir = join(ROOT, '.bench-out');
  mkdirSync(logDir, { recursive: true });
  const options: Options = {
    n: args.integer('n', 3000, 3, 15_000),
    intervalMs: args.number('interval-ms', 20, 1, 10_000),
    warmSeconds: args.number('warm-seconds', 4, 0.5, 120),
    afterSeconds: args.number('after-seconds', 4, 0.5, 120),
    jitterMs: args.number('jitter-ms', 0, 0, 60_000),
    recoverTimeoutMs: args.number('recover-timeout-seconds', 30, 1, 600) * 1000,
    deadline: Date.now() + maxSeconds * 1000,
    runId,
    logDir,
    logLevel: args.string('log-level', 'warn'),
  };

  // Last resort: whatever hangs, the processes of the current row are stopped by pid.
  let current: Cluster | null = null;
  const hardStop = setTimeout(
    () => {
      log(`--max-seconds ${maxSeconds} passed by 60 s: stopping everything`);
      void (current?.shutdown() ?? Promise.resolve()).finally(() => process.exit(1));
    },
    (maxSeconds + 60) * 1000,
  );
  hardStop.unref();
  const track = (cluster: Cluster | null): void => {
    current = cluster;
  };

  const rows: RowResult[] = [];
  for (const target of targets) {
    if (target === 'nchan') {
      const missing = NchanCluster.missing();
      if (missing !== null) {
        log(`nchan skipped: ${missing}`);
        continue;
      }
    }
    for (const stop of stops as StopKind[]) {
      if (remaining(options) < 15_000) {
        rows.push(failedRow(target, stop, new Error('skipped: --max-seconds nearly used up')));
        continue;
      }
      const rowId = `${runId}-${target}-${stop}`;
      if (waitIdleMs > 0) {
        const other = await waitIdle(Math.min(waitIdleMs, remaining(options) - 15_000), 0.25);
        log(`other work on the box: ${fmt(other, 2)} cores before ${target}/${stop}`);
      }
      const startCluster = (): Promise<Cluster> =>
        target === 'epush'
          ? EpushCluster.start({
              root: serverRoot,
              nodes: NODES,
              logDir,
              runId: rowId,
              logLevel: options.logLevel,
              holdSeconds: 30,
              drainSeconds: 10,
            })
          : NchanCluster.start({ nodes: NODES, logDir, runId: rowId });
      try {
        rows.push(await runRow(startCluster, stop, options, track));
      } catch (error) {
        log(`${target}/${stop} failed: ${error instanceof Error ? error.message : String(error)}`);
        rows.push(failedRow(target, stop, error));
      }
      // Let TIME_WAIT and the box settle between rows.
      await sleep(Math.min(1000, remaining(options)));
    }
  }
  clearTimeout(hardStop);

  const machine = machineInfo();
  const source = sourceInfo(serverRoot);
  const exported = join(serverRoot, '.commit');
  const commit =
    source.commit === '?' && existsSync(exported)
      ? `${readFileSync(exported, 'utf8').trim()} (\`git archive\` export in ${serverRoot})`
      : source.commit;
  const dirty = source.commit !== '?' && source.uncommitted.length > 0;
  const command =
    `npm run bench -- failover ${argv.filter((x) => x !== '--no-docs').join(' ')}`.trim();
  const rawFile = join(logDir, `${runId}.json`);
  writeFileSync(
    rawFile,
    JSON.stringify(
      {
        command,
        started: started.toISOString(),
        machine,
        source,
        commit,
        serverRoot,
        options,
        rows,
      },
      null,
      2,
    ),
  );
  const report = `### failover: ${int(options.n)} listeners, a notification every ${options.intervalMs} ms

Run ${started.toISOString().slice(0, 19).replace('T', ' ')} UTC, epush ${commit}${dirty ? ' with uncommitted changes under src/' : ''}. Machine: ${machine.nproc} vCPU (nproc), ${machine.cpuModel}, ${machine.memGiB} GiB; Node ${machine.node}; ${machine.kernel}. Nodes, Redis and the load generator share the cores (not pinned). Retry: ${options.jitterMs > 0 ? `full jitter, uniform in [0, ${options.jitterMs} ms · 2^k)` : 'first retry at once, then 100 ms doubling'}. Raw JSON: \`.bench-out/${runId}.json\`.

\`\`\`
${command}
\`\`\`

| target | stop | moved listeners | back on another node p50 / p99 / max (ms) | all back (ms) | all caught up (ms) | first notification after the stop p50 / p99 (ms) | notifications accepted | lost | duplicated | out of order |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
${rows.map(tableRow).join('\n')}

${rows.map(notes).join('\n')}
`;
  process.stdout.write(`${report}\nraw: ${rawFile}\n`);
  const complete = rows.every((r) => r.error === undefined);
  if (args.boolean('docs', true) && rows.length > 0) {
    if (complete) {
      writeBenchSection(
        'failover',
        `n${options.n}-i${options.intervalMs}${options.jitterMs > 0 ? `-j${options.jitterMs}` : ''}`,
        report,
        { commit, dirty, at: started },
      );
    } else {
      log('a row did not complete: docs/benchmarks.md left alone');
    }
  }
  return complete ? 0 : 1;
}
