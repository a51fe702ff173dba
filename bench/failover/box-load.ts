/**
 * The CPU the failover bench's own processes (generator, nodes, Redis) and all other work on the
 * box use between two samples, and a wait for a quiet box.
 */
import { performance } from 'node:perf_hooks';
import { clkTck, processTree, readAllProcessTicks, readSystemTicks } from '../lib/procfs.js';
import { sleep } from '../lib/stats.js';

export interface LoadSample {
  readonly at: number;
  readonly ticks: Map<number, number>;
  readonly own: Set<number>;
  readonly system: number;
}

export function loadSample(): LoadSample {
  return {
    at: performance.now(),
    ticks: readAllProcessTicks(),
    own: new Set(processTree(process.pid, true)),
    system: readSystemTicks().process,
  };
}

/** Cores used by this bench's processes and by everything else between two samples. */
export function loadBetween(
  from: LoadSample,
  to: LoadSample,
): { ownCores: number; otherCores: number } {
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
export async function waitIdle(ms: number, cores: number): Promise<number> {
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
