/**
 * The server processes' facts the held-max run samples: RSS and fds per process, CPU (ticks and
 * schedstat) summed over processes, quiet waits, and the memory samples of the report.
 */
import { clkTck, fdCount, readCpu, readKernelMemory, readMemory } from '../lib/procfs.js';
import { sleep } from '../lib/stats.js';
import type { MemorySample, ProcessFacts } from './result.js';

export function processFacts(pids: readonly number[]): ProcessFacts[] {
  return pids.map((pid) => {
    let rssKb: number | null = null;
    try {
      rssKb = readMemory(pid).rssKb;
    } catch {
      rssKb = null;
    }
    return { pid, rssKb, fds: fdCount(pid) };
  });
}

/** Summed CPU of `pids`: ticks (ms) and schedstat (ms); processes gone are skipped. */
export function cpuOf(pids: readonly number[]): Map<number, { statMs: number; schedMs: number }> {
  const out = new Map<number, { statMs: number; schedMs: number }>();
  for (const pid of pids) {
    try {
      const cpu = readCpu(pid);
      out.set(pid, { statMs: (cpu.ticks * 1000) / clkTck(), schedMs: cpu.ns / 1e6 });
    } catch {
      // exited
    }
  }
  return out;
}

export function cpuDelta(
  from: Map<number, { statMs: number; schedMs: number }>,
  to: Map<number, { statMs: number; schedMs: number }>,
): { statMs: number; schedMs: number; byPid: Record<number, number> } {
  let statMs = 0;
  let schedMs = 0;
  const byPid: Record<number, number> = {};
  for (const [pid, end] of to) {
    const start = from.get(pid) ?? { statMs: 0, schedMs: 0 };
    statMs += end.statMs - start.statMs;
    schedMs += end.schedMs - start.schedMs;
    byPid[pid] = Math.round(end.schedMs - start.schedMs);
  }
  return { statMs: Math.round(statMs), schedMs: Math.round(schedMs), byPid };
}

/** Waits until the server processes together use < `perWindowMs` of CPU in 2 windows of 500 ms. */
export async function waitQuiet(
  pids: () => number[],
  timeoutMs: number,
): Promise<{ quiet: boolean; waitedMs: number }> {
  const began = Date.now();
  let idle = 0;
  let previous = cpuOf(pids());
  for (;;) {
    await sleep(500);
    const list = pids();
    const current = cpuOf(list);
    const busy = cpuDelta(previous, current).schedMs;
    const limit = 10 + 3 * list.length;
    idle = busy <= limit ? idle + 1 : 0;
    previous = current;
    if (idle >= 2) return { quiet: true, waitedMs: Date.now() - began };
    if (Date.now() - began >= timeoutMs) return { quiet: false, waitedMs: Date.now() - began };
  }
}

export function memorySample(label: string, pids: readonly number[], quiet: boolean): MemorySample {
  const processes = processFacts(pids);
  const kernel = readKernelMemory();
  return {
    label,
    quiet,
    rssKb: processes.reduce((sum, p) => sum + (p.rssKb ?? 0), 0),
    processes,
    slabKb: kernel.slabKb,
    tcpInUse: kernel.tcpInUse,
    tcpTimeWait: kernel.tcpTimeWait,
  };
}
