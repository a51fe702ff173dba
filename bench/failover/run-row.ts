/**
 * One failover row: a fresh cluster, N listeners held by the listener pool, the publisher, a
 * warm phase, one node stopped, the moved listeners timed back, the check of every listener's
 * sequence, and every process stopped at the end, also on failure.
 */
import { loadavg } from 'node:os';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { distribution, sleep } from '../lib/stats.js';
import type { Cluster, StopKind } from './cluster.js';
import { FailoverListeners } from './recovery.js';
import { verify } from './verify.js';
import { loadBetween, loadSample } from './box-load.js';
import { Publisher } from './publisher.js';
import type { RowResult } from './report.js';

/** Nodes per cluster. */
export const NODES = 3;
/** The node that is stopped; the publisher uses the last one. */
const STOPPED = 0;

export interface Options {
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

export function remaining(options: Options): number {
  return Math.max(0, options.deadline - Date.now());
}

export async function waitFor(
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

export function log(text: string): void {
  process.stderr.write(`[failover] ${text}\n`);
}

export async function runRow(
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
