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
 *
 * This file reads the flags, runs the rows and writes the report; one row is run-row.ts, with
 * recovery.ts (the listeners and their figures), publisher.ts, verify.ts, box-load.ts and
 * report.ts; the clusters are epush-cluster.ts and nchan-cluster.ts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ArgError, Args } from '../lib/args.js';
import { writeBenchSection } from '../lib/docs.js';
import { fmt, int } from '../lib/format.js';
import { machineInfo, sourceInfo } from '../lib/machine.js';
import { sleep } from '../lib/stats.js';
import type { Cluster, StopKind } from './cluster.js';
import { EpushCluster } from './epush-cluster.js';
import { NchanCluster } from './nchan-cluster.js';
import { waitIdle } from './box-load.js';
import { failedRow, notes, tableRow, type RowResult } from './report.js';
import { log, NODES, remaining, runRow, type Options } from './run-row.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export const FAILOVER_USAGE = `npm run bench -- failover [--n 3000] [--interval-ms 20] [--warm-seconds 4]
    [--after-seconds 4] [--stops kill,graceful] [--targets epush,nchan] [--jitter-ms 0]
    [--recover-timeout-seconds 30] [--max-seconds 180] [--wait-idle-seconds 0] [--log-level warn]
    [--server-root DIR] [--no-docs]
`;

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
