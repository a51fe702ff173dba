/**
 * "Wait until the server is quiet": consecutive short windows in which the server process used
 * (almost) no CPU. Memory is sampled and publish windows are closed only at such a point
 * (sampling right after a burst undercounts held memory).
 */
import { performance } from 'node:perf_hooks';
import {
  clkTck,
  cpuDeltaMs,
  readCpu,
  readSelfTicks,
  readSystemTicks,
  type CpuSample,
  type SystemTicks,
} from './procfs.js';
import { sleep } from './stats.js';

export interface QuietOptions {
  /** Length of one window, ms (250 as in the reference method). */
  readonly windowMs?: number;
  /** Consecutive idle windows needed (2 in the reference method). */
  readonly windows?: number;
  /** Most server CPU per window that still counts as idle, ms (schedstat; ≥ 1 tick for /proc stat). */
  readonly maxBusyMs?: number;
  readonly timeoutMs: number;
}

export interface Sample {
  readonly server: CpuSample;
  /** The calling process's own user+system CPU, µs. */
  readonly clientUs: number;
  /** Ticks of the whole machine, and this process's own ticks (to tell foreign load). */
  readonly system: SystemTicks;
  readonly selfTicks: number;
}

export interface QuietResult {
  readonly quiet: boolean;
  readonly waitedMs: number;
  /** The sample at the start of the idle windows: the server's work before it ended here. */
  readonly start: Sample;
  readonly last: Sample;
}

/** CPU counters of one process, or summed over the processes of a server stack. */
export function readStackCpu(pid: number | readonly number[]): CpuSample {
  if (typeof pid === 'number') return readCpu(pid);
  let ticks = 0;
  let ns = 0;
  for (const one of pid) {
    const cpu = readCpu(one);
    ticks += cpu.ticks;
    ns += cpu.ns;
  }
  return { at: performance.now(), ticks, ns };
}

export function sample(pid: number | readonly number[]): Sample {
  const usage = process.cpuUsage();
  return {
    server: readStackCpu(pid),
    clientUs: usage.user + usage.system,
    system: readSystemTicks(),
    selfTicks: readSelfTicks(),
  };
}

/**
 * CPU ms that processes other than the server and this one used between two samples, on any
 * core: other work on the box competing with the benchmark (tick resolution).
 */
export function foreignCpuMs(from: Sample, to: Sample): number {
  const ticks =
    to.system.process -
    from.system.process -
    (to.server.ticks - from.server.ticks) -
    (to.selfTicks - from.selfTicks);
  return (Math.max(0, ticks) * 1000) / clkTck();
}

/** Kernel irq + softirq ms (charged to no process) and hypervisor steal ms between two samples. */
export function kernelCpuMs(from: Sample, to: Sample): { irqMs: number; stealMs: number } {
  return {
    irqMs: ((to.system.irq - from.system.irq) * 1000) / clkTck(),
    stealMs: ((to.system.steal - from.system.steal) * 1000) / clkTck(),
  };
}

function busyMs(from: CpuSample, to: CpuSample): number {
  const delta = cpuDeltaMs(from, to);
  return from.ns > 0 && to.ns > 0 ? delta.schedMs : delta.statMs;
}

export async function waitQuiet(
  pid: number | readonly number[],
  options: QuietOptions,
): Promise<QuietResult> {
  const windowMs = options.windowMs ?? 250;
  const windows = options.windows ?? 2;
  const began = performance.now();
  const first = sample(pid);
  const maxBusy =
    first.server.ns > 0
      ? (options.maxBusyMs ?? 5)
      : Math.max(options.maxBusyMs ?? 5, 1000 / clkTck());
  let start = first;
  let previous = first;
  let idle = 0;
  for (;;) {
    await sleep(windowMs);
    const current = sample(pid);
    if (busyMs(previous.server, current.server) <= maxBusy) {
      idle += 1;
      if (idle >= windows) {
        return { quiet: true, waitedMs: performance.now() - began, start, last: current };
      }
    } else {
      idle = 0;
      start = current;
    }
    previous = current;
    if (performance.now() - began >= options.timeoutMs) {
      return { quiet: false, waitedMs: performance.now() - began, start: current, last: current };
    }
  }
}
