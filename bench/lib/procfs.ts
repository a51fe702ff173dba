/**
 * Everything the benches read from /proc, in one place: processes (parent, state, start time,
 * children and trees, open files), CPU time (ticks from /proc/<pid>/stat and nanoseconds from the
 * per-thread schedstat), RSS, kernel slab and TCP socket counts. Linux only.
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

let clockTicks: number | null = null;

/** USER_HZ (`getconf CLK_TCK`), the unit of utime/stime in /proc/<pid>/stat. */
export function clkTck(): number {
  if (clockTicks === null) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/**
 * The fields of /proc/<pid>/stat after "(comm) " (index 0 is field 3, the state; the command
 * name may hold spaces and parentheses, so it is skipped by the last ')'). Null when gone.
 */
export function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Field indexes into statFields(): stat(5) numbers minus 3. */
const STATE = 0;
const PPID = 1;
const UTIME = 11;
const STIME = 12;
const START_TIME = 19;

/** Every live pid with its parent pid, from one pass over /proc. */
export function parentPids(): Map<number, number> {
  const parents = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const fields = statFields(pid);
    if (fields !== null) parents.set(pid, Number(fields[PPID]));
  }
  return parents;
}

/** The direct children of `pid` (node:cluster workers, nginx workers), ascending. */
export function childPids(pid: number): number[] {
  const children: number[] = [];
  for (const [child, parent] of parentPids()) if (parent === pid) children.push(child);
  return children.sort((a, b) => a - b);
}

/**
 * `pid` and every process below it (children of children…), parents first; zombies only with
 * `withZombies` (their CPU time still counts until they are reaped).
 */
export function processTree(pid: number, withZombies = false): number[] {
  const children = new Map<number, number[]>();
  for (const [child, parent] of parentPids()) {
    const list = children.get(parent) ?? [];
    list.push(child);
    children.set(parent, list);
  }
  const tree: number[] = [];
  const queue = [pid];
  while (queue.length > 0) {
    const next = queue.shift()!;
    if (!withZombies && !isAlive(next)) continue;
    tree.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return tree;
}

/** Start time (ticks since boot), to tell a pid from a reused one; null when gone. */
export function processStartTime(pid: number): number | null {
  const fields = statFields(pid);
  return fields === null ? null : Number(fields[START_TIME]);
}

/** The process exists and is not a zombie (a zombie keeps /proc/<pid>, in state Z). */
export function isAlive(pid: number): boolean {
  const fields = statFields(pid);
  return fields !== null && fields[STATE] !== 'Z';
}

/** Open file descriptors of a process (/proc/<pid>/fd); null when gone or not readable. */
export function fdCount(pid: number): number | null {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return null;
  }
}

export interface CpuSample {
  /** performance.now() of the reading, ms. */
  readonly at: number;
  /** utime + stime of the whole process, in clock ticks. */
  readonly ticks: number;
  /** Sum of on-CPU time of the process's live threads (schedstat), ns; 0 when unavailable. */
  readonly ns: number;
}

/** Reads one process's CPU counters; throws when the process is gone. */
export function readCpu(pid: number): CpuSample {
  const fields = statFields(pid);
  if (fields === null) throw new Error(`process ${pid} is gone`);
  const ticks = Number(fields[UTIME]) + Number(fields[STIME]);
  let ns = 0;
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    tids = [];
  }
  for (const tid of tids) {
    try {
      const schedstat = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'latin1');
      ns += Number(schedstat.slice(0, schedstat.indexOf(' ')));
    } catch {
      // thread exited between readdir and read
    }
  }
  return { at: performance.now(), ticks, ns };
}

/** CPU ms between two samples: by ticks (the /proc/<pid>/stat figure) and by schedstat. */
export function cpuDeltaMs(from: CpuSample, to: CpuSample): { statMs: number; schedMs: number } {
  return {
    statMs: ((to.ticks - from.ticks) * 1000) / clkTck(),
    schedMs: (to.ns - from.ns) / 1e6,
  };
}

export interface ProcessMemory {
  readonly rssKb: number;
  readonly rssAnonKb: number;
  readonly rssFileKb: number;
  readonly vmHwmKb: number;
  readonly threads: number;
}

export function readMemory(pid: number): ProcessMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'latin1');
  const field = (name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status);
    return match ? Number(match[1]) : 0;
  };
  return {
    rssKb: field('VmRSS'),
    rssAnonKb: field('RssAnon'),
    rssFileKb: field('RssFile'),
    vmHwmKb: field('VmHWM'),
    threads: field('Threads'),
  };
}

export interface KernelMemory {
  /** /proc/meminfo Slab, kB (both ends of every loopback connection live on this box). */
  readonly slabKb: number;
  /** /proc/net/sockstat TCP line. */
  readonly tcpInUse: number;
  readonly tcpTimeWait: number;
  readonly tcpAlloc: number;
  /** TCP buffer memory, pages. */
  readonly tcpMemPages: number;
}

export function readKernelMemory(): KernelMemory {
  const meminfo = readFileSync('/proc/meminfo', 'latin1');
  const slab = /^Slab:\s+(\d+)/m.exec(meminfo);
  const sockstat = readFileSync('/proc/net/sockstat', 'latin1');
  const tcp = /^TCP: inuse (\d+) orphan \d+ tw (\d+) alloc (\d+) mem (\d+)/m.exec(sockstat);
  return {
    slabKb: slab ? Number(slab[1]) : 0,
    tcpInUse: tcp ? Number(tcp[1]) : 0,
    tcpTimeWait: tcp ? Number(tcp[2]) : 0,
    tcpAlloc: tcp ? Number(tcp[3]) : 0,
    tcpMemPages: tcp ? Number(tcp[4]) : 0,
  };
}

/** Soft and hard RLIMIT_NOFILE of a process, from /proc/<pid>/limits. */
export function readFdLimits(pid: number | 'self'): { soft: number; hard: number } | null {
  try {
    const limits = readFileSync(`/proc/${pid}/limits`, 'latin1');
    const match = /^Max open files\s+(\d+|unlimited)\s+(\d+|unlimited)/m.exec(limits);
    if (!match) return null;
    const value = (raw: string | undefined): number =>
      raw === 'unlimited' ? Infinity : Number(raw);
    return { soft: value(match[1]), hard: value(match[2]) };
  } catch {
    return null;
  }
}

export interface SystemTicks {
  /** user + nice + system of all CPUs: time charged to processes. */
  readonly process: number;
  /** irq + softirq: kernel work not charged to any process (loopback TCP runs much of it here). */
  readonly irq: number;
  /** Time the hypervisor ran something else on our vCPUs. */
  readonly steal: number;
}

/** Clock ticks of all CPUs together, from the /proc/stat "cpu" line. */
export function readSystemTicks(): SystemTicks {
  const stat = readFileSync('/proc/stat', 'latin1');
  const f = stat.slice(0, stat.indexOf('\n')).trim().split(/\s+/).slice(1).map(Number);
  const at = (i: number): number => f[i] ?? 0;
  return { process: at(0) + at(1) + at(2), irq: at(5) + at(6), steal: at(7) };
}

/** Busy clock ticks of all CPUs together (everything but idle and iowait). */
export function readSystemBusyTicks(): number {
  const ticks = readSystemTicks();
  return ticks.process + ticks.irq + ticks.steal;
}

/** utime + stime of this process, in clock ticks (the same unit as /proc/stat). */
export function readSelfTicks(): number {
  return readCpu(process.pid).ticks;
}

/** utime + stime (ticks) of every process on the machine, by pid. */
export function readAllProcessTicks(): Map<number, number> {
  const ticks = new Map<number, number>();
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    const fields = statFields(pid);
    if (fields !== null) ticks.set(pid, Number(fields[UTIME]) + Number(fields[STIME]));
  }
  return ticks;
}

/** A short description of a process: its command line, cut to `max` characters. */
export function describeProcess(pid: number, max = 100): string {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').replace(/\0+$/, '');
    const text = cmdline === '' ? readFileSync(`/proc/${pid}/comm`, 'latin1').trim() : cmdline;
    return text.replace(/\0/g, ' ').slice(0, max);
  } catch {
    return '(exited)';
  }
}
