/**
 * One held-max target (epush or nchan) from start to stop: the server, the N push IDs in the
 * group, the generators until every listen is held, the memory samples, the rounds of one group
 * notification each, and the result; every process it started is stopped by pid, also on failure.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnPinned, stopWithin } from '../lib/processes.js';
import { childPids, readFdLimits, readKernelMemory } from '../lib/procfs.js';
import { distribution, round, sleep } from '../lib/stats.js';
import { ROOT, type Preparation } from '../longpoll-fanout/scenario.js';
import type { DeliveryLine, Target } from './types.js';
import type { MemorySample, ProcessFacts, RoundResult, TargetResult } from './result.js';
import { GeneratorProcess, freshProgress, totals } from './generator-process.js';
import { mintAndJoin } from './group-setup.js';
import { Deadline, NOTIFY_GROUP, log, nowUs } from './run-support.js';
import { cpuDelta, cpuOf, memorySample, processFacts, waitQuiet } from './server-cpu.js';
import { startEpush, startNchan, type ServerUnderTest } from './server-under-test.js';

export interface RunPlan {
  readonly id: string;
  readonly n: number;
  readonly m: number;
  readonly workers: number;
  readonly generators: number;
  readonly concurrency: number;
  readonly srcBase: number;
  readonly srcPerGen: number;
  readonly repollDelayMs: number;
  readonly connectRate: number;
  readonly canarySeconds: number | null;
  readonly outDir: string;
  readonly prepared: Preparation;
}

export async function runTarget(
  target: Target,
  plan: RunPlan,
  deadline: Deadline,
): Promise<TargetResult> {
  const { n, m, workers } = plan;
  const runDir = join(plan.outDir, `${plan.id}-${target}`);
  mkdirSync(runDir, { recursive: true });
  const serverLog = join(runDir, 'server.log');
  const phases: Record<string, number> = {};
  const memory: MemorySample[] = [];
  const rounds: RoundResult[] = [];
  const generators: GeneratorProcess[] = [];
  let server: ServerUnderTest | null = null;
  let abortReason: string | null = null;
  let heldCount = 0;
  let serverHeld: number | null = null;
  let workerFacts: ProcessFacts[] = [];
  let serverFdLimit: { soft: number; hard: number } | null = null;
  let serverExit: { code: number | null; signal: string | null; forced: boolean } | null = null;
  let generatorCpuMs = 0;
  let errorsAtEnd: Record<string, number> = {};
  const errorSamples: string[] = [];
  const timeWaitAtStart = readKernelMemory().tcpTimeWait;
  const hardStop = setTimeout(
    () => {
      log('hard time limit reached: killing every process of this run');
      for (const g of generators) void stopWithin(g.spawned, 1000, 'SIGKILL');
      if (server) void stopWithin(server.spawned, 1000, 'SIGKILL');
    },
    Math.max(10_000, deadline.left() + 60_000),
  );
  try {
    // --- server ------------------------------------------------------------------------------
    let began = Date.now();
    server =
      target === 'epush'
        ? await startEpush(plan.prepared, workers, plan.canarySeconds, serverLog)
        : await startNchan(workers, join(runDir, 'nchan'), serverLog);
    const srv = server;
    phases.startMs = Date.now() - began;
    await sleep(1000);
    serverFdLimit = readFdLimits(srv.spawned.pid);
    log(
      `${target}: pid ${srv.spawned.pid} on 127.0.0.1:${srv.port}, ${srv.pids().length - 1} worker processes, fd limit ${serverFdLimit?.soft ?? '?'}`,
    );
    let quiet = await waitQuiet(() => srv.pids(), deadline.budget(30_000, 'fresh sample'));
    memory.push(memorySample('fresh', srv.pids(), quiet.quiet));

    // --- push IDs and the group ----------------------------------------------------------------
    let ids: string[] = [];
    if (target === 'epush') {
      began = Date.now();
      ids = await mintAndJoin(srv.port, n, deadline);
      phases.setupMs = Date.now() - began;
      log(`${n} push IDs minted and in the group in ${(phases.setupMs / 1000).toFixed(1)} s`);
      quiet = await waitQuiet(() => srv.pids(), deadline.budget(60_000, 'idle sample'));
      memory.push(memorySample('idle', srv.pids(), quiet.quiet));
    } else {
      memory.push({ ...memorySample('idle', srv.pids(), quiet.quiet) });
    }

    // --- generators ----------------------------------------------------------------------------
    began = Date.now();
    const share = Math.ceil(n / plan.generators);
    for (let g = 0; g < plan.generators; g++) {
      const from = g * share;
      const count = Math.min(share, n - from);
      if (count <= 0) break;
      const sources = Array.from(
        { length: plan.srcPerGen },
        (_, k) => `127.0.${plan.srcBase + g}.${k + 1}`,
      );
      const extra: string[] = [];
      if (target === 'epush') {
        const idsFile = join(runDir, `gen${g}.ids`);
        writeFileSync(idsFile, `${ids.slice(from, from + count).join('\n')}\n`);
        extra.push('--ids-file', idsFile);
      } else {
        extra.push('--n', String(count), '--channel', NOTIFY_GROUP);
      }
      const argv = [
        process.execPath,
        '--import',
        'tsx',
        join(ROOT, 'bench', 'held-max', 'generator.ts'),
        '--generator',
        String(g),
        '--target',
        target,
        '--port',
        String(srv.port),
        '--src-ips',
        sources.join(','),
        '--concurrency',
        String(plan.concurrency),
        '--repoll-delay-ms',
        String(plan.repollDelayMs),
        '--connect-rate',
        String(plan.connectRate / plan.generators),
        '--max-seconds',
        String(Math.ceil(deadline.left() / 1000) + 30),
        ...extra,
      ];
      const spawned = spawnPinned(null, argv, { cwd: ROOT, stdin: true });
      generators.push(new GeneratorProcess(g, spawned, sources, count));
    }
    log(`${generators.length} generators started (${share} listeners each at most)`);

    // --- wait until every listen is held -------------------------------------------------------
    const connectBudget = deadline.budget(60_000 + n * 2, 'all listeners were held');
    const connectEnd = Date.now() + connectBudget;
    let lastHeld = -1;
    let lastChange = Date.now();
    let lastLog = 0;
    for (;;) {
      await sleep(500);
      const t = totals(generators);
      if (t.held !== lastHeld) {
        lastHeld = t.held;
        lastChange = Date.now();
      }
      if (Date.now() - lastLog >= 5000) {
        lastLog = Date.now();
        const fds = processFacts(srv.pids().slice(1)).map((p) => p.fds ?? 0);
        log(
          `  connected ${t.connected}, armed ${t.armed}, held ${t.held}, failed ${t.failed}, reconnects ${t.reconnects}, ` +
            `server fds ${fds.join('/')}, errors ${JSON.stringify(t.errors)}`,
        );
      }
      if (t.held >= n) break;
      if (generators.some((g) => !g.alive)) throw new Error('a generator exited early');
      if (srv.spawned.child.exitCode !== null) throw new Error('the server exited');
      if (Date.now() > connectEnd) {
        abortReason = `only ${t.held} of ${n} listeners held after ${Math.round(connectBudget / 1000)} s`;
        break;
      }
      if (Date.now() - lastChange > 60_000 && t.held > 0) {
        abortReason = `held stuck at ${t.held} of ${n} for 60 s`;
        break;
      }
    }
    phases.connectMs = Date.now() - began;
    if (abortReason !== null) log(abortReason);
    quiet = await waitQuiet(() => srv.pids(), deadline.budget(60_000, 'held sample'));
    await freshProgress(generators);
    heldCount = totals(generators).held;
    memory.push(memorySample('held', srv.pids(), quiet.quiet));
    serverHeld = await srv.held().catch(() => null);
    workerFacts = processFacts(srv.pids());
    log(
      `${heldCount} held (server says ${serverHeld ?? '?'}) after ${(phases.connectMs / 1000).toFixed(1)} s; ` +
        `server RSS ${(memory.at(-1)!.rssKb / 1024).toFixed(0)} MiB; per process fds ${workerFacts.map((p) => p.fds).join('/')}`,
    );

    // --- rounds --------------------------------------------------------------------------------
    for (let k = 1; k <= m && heldCount > 0; k++) {
      await freshProgress(generators);
      const before = totals(generators);
      const pids = srv.pids();
      const cpuBefore = cpuOf(pids);
      const published = await srv.publish(k);
      const cpuAtAnswer = cpuOf(pids);
      log(
        `round ${k}: published (${published.status}, id ${published.id}) in ${published.rttMs.toFixed(0)} ms; ${before.armed} armed`,
      );
      const expected = before.armed;
      const deliveryEnd =
        Date.now() + deadline.budget(30_000 + n / 4, `the deliveries of round ${k}`);
      let got = 0;
      let lastGot = -1;
      let stallSince = Date.now();
      while (Date.now() < deliveryEnd) {
        await freshProgress(generators, 1000);
        got = totals(generators).notifications - before.notifications;
        if (got >= expected) break;
        if (got !== lastGot) {
          lastGot = got;
          stallSince = Date.now();
        } else if (Date.now() - stallSince > 15_000) break;
        await sleep(100);
      }
      const cpuDelivered = cpuOf(pids);
      const deliveredAtUs = nowUs();
      for (const g of generators) {
        g.send({ cmd: 'report', round: k, key: published.key, publishUs: published.sentUs });
      }
      const reportEnd = Date.now() + 20_000;
      while (generators.some((g) => g.alive && !g.deliveries.has(k)) && Date.now() < reportEnd) {
        await sleep(50);
      }
      const lines = generators
        .map((g) => g.deliveries.get(k))
        .filter((d): d is DeliveryLine => !!d);
      const latencies: number[] = [];
      let delivered = 0;
      let duplicates = 0;
      let foreign = 0;
      let firstUs = Infinity;
      let lastUs = -Infinity;
      for (const line of lines) {
        delivered += line.delivered;
        duplicates += line.duplicates;
        foreign += line.foreign;
        if (line.firstUs !== null) firstUs = Math.min(firstUs, line.firstUs);
        if (line.lastUs !== null) lastUs = Math.max(lastUs, line.lastUs);
        for (const ms of line.latenciesMs) latencies.push(ms);
        line.latenciesMs.length = 0;
      }
      const fanout = cpuDelta(cpuBefore, cpuDelivered);
      const toAnswer = cpuDelta(cpuBefore, cpuAtAnswer);
      const quietAfter = await waitQuiet(
        () => srv.pids(),
        deadline.budget(120_000, 'quiet after the round'),
      );
      const cpuQuiet = cpuOf(pids);
      await freshProgress(generators);
      const after = totals(generators);
      const herd = cpuDelta(cpuBefore, cpuQuiet);
      const result: RoundResult = {
        round: k,
        armedAtPublish: before.armed,
        heldAtPublish: before.held,
        publishStatus: published.status,
        publishRttMs: round(published.rttMs, 1),
        delivered,
        duplicates,
        foreign,
        publishToFirstMs: Number.isFinite(firstUs)
          ? round((firstUs - published.sentUs) / 1000, 1)
          : null,
        publishToLastMs: Number.isFinite(lastUs)
          ? round((lastUs - published.sentUs) / 1000, 1)
          : null,
        latencyMs: distribution(latencies),
        serverCpuToAnswerMs: toAnswer.schedMs,
        serverCpuFanoutMs: fanout.schedMs,
        serverCpuFanoutStatMs: fanout.statMs,
        fanoutWindowMs: round((deliveredAtUs - published.sentUs) / 1000, 0),
        serverCpuToQuietMs: herd.schedMs,
        quietAfter: quietAfter.quiet,
        quietWindowMs: round((nowUs() - published.sentUs) / 1000, 0),
        cpuByPidFanoutMs: fanout.byPid,
        refusedListens: after.refused - before.refused,
        reconnectAnswers: after.reconnectAnswers - before.reconnectAnswers,
      };
      rounds.push(result);
      log(
        `round ${k}: delivered ${delivered} / ${expected} (dups ${duplicates}), publish→last ${result.publishToLastMs ?? '–'} ms, ` +
          `p50 ${round(result.latencyMs.p50, 0)} p99 ${round(result.latencyMs.p99, 0)} ms, server CPU ${fanout.schedMs} ms ` +
          `(to quiet incl. re-polls ${herd.schedMs} ms); refused listens ${result.refusedListens}, reconnect answers ${result.reconnectAnswers}`,
      );
      if (k < m) {
        // Every listener re-polls (at once by default): wait for them all to be held again.
        const rearmEnd = Date.now() + deadline.budget(60_000 + n, `the re-polls after round ${k}`);
        while (Date.now() < rearmEnd) {
          await freshProgress(generators);
          if (totals(generators).held >= heldCount) break;
          await sleep(500);
        }
      }
    }
  } catch (failure) {
    abortReason ??= failure instanceof Error ? failure.message : String(failure);
    log(`${target}: ${abortReason}`);
  } finally {
    clearTimeout(hardStop);
    await freshProgress(generators).catch(() => undefined);
    const t = totals(generators);
    generatorCpuMs = t.cpuMs;
    errorsAtEnd = t.errors;
    if (server && workerFacts.length === 0) workerFacts = processFacts(server.pids());
    for (const g of generators) g.send({ cmd: 'finish' });
    if (server) {
      server.close();
      log(`${target}: stopping the server (pid ${server.spawned.pid})`);
      const stopSignal = target === 'nchan' ? 'SIGQUIT' : 'SIGTERM';
      serverExit = await stopWithin(server.spawned, 30_000, stopSignal);
      if (target === 'nchan') {
        for (const pid of childPids(server.spawned.pid)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone
          }
        }
      }
    }
    for (const g of generators) g.send({ cmd: 'stop' });
    await Promise.all(generators.map((g) => stopWithin(g.spawned, 10_000)));
    for (const g of generators) errorSamples.push(...g.errorSamples.slice(0, 5));
  }
  const byLabel = (label: string): MemorySample | undefined =>
    memory.find((s) => s.label === label);
  const held = byLabel('held');
  const idle = byLabel('idle');
  const fresh = byLabel('fresh');
  const perConn = (
    a: MemorySample | undefined,
    b: MemorySample | undefined,
    field: 'rssKb' | 'slabKb',
  ): number | null =>
    a && b && heldCount > 0 ? round(((a[field] - b[field]) * 1024) / heldCount / 1000, 2) : null;
  return {
    target,
    n,
    workers,
    generators: generators.length,
    sourceAddresses: generators.map((g) => g.sources.join(',')),
    held: heldCount,
    serverHeld,
    completed:
      abortReason === null && rounds.length === m && rounds.every((r) => r.delivered === heldCount),
    abortReason,
    phases,
    memory,
    rssPerConnKb: perConn(held, idle, 'rssKb'),
    rssPerConnInclStateKb: perConn(held, fresh, 'rssKb'),
    slabPerPairKb: perConn(held, idle, 'slabKb'),
    rounds,
    processes: workerFacts,
    serverArgv: server?.argv ?? [],
    serverFdLimit,
    serverExit,
    serverLog,
    serverNotableLog: notable(serverLog),
    generatorCpuMs,
    errors: errorsAtEnd,
    errorSamples,
    timeWaitAtStart,
  };
}

export function notable(file: string): string[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const lines: string[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '' || line.startsWith('epush listening on')) continue;
    if (line.includes('--insecure-dev')) continue;
    if (lines.length < 40) lines.push(line.slice(0, 400));
  }
  return lines;
}
