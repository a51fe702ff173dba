/**
 * What the longpoll-fanout generator measures on the server side: commands to
 * bench/server-hook.mjs inside it (GC + heap, CPU profiler), quiet waits, memory samples, the CPU
 * of other processes during the publish windows, and the server's own gauges from /metrics.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import {
  clkTck,
  cpuDeltaMs,
  describeProcess,
  readKernelMemory,
  readMemory,
} from '../lib/procfs.js';
import { foreignCpuMs, waitQuiet, type QuietResult, type Sample } from '../lib/quiet.js';
import { round, waitUntil } from '../lib/stats.js';
import type { RunClock } from './run-clock.js';
import type {
  GeneratorOptions,
  HeapPoint,
  MemoryPoint,
  PhaseResult,
  ServerGauges,
} from './types.js';

interface HookAnswer {
  readonly seq: number;
  readonly ok?: boolean;
  readonly before?: NodeJS.MemoryUsage;
  readonly after?: NodeJS.MemoryUsage;
}

/** Server CPU, client CPU and other processes' CPU between two samples. */
export function phaseResult(from: Sample, to: Sample): PhaseResult {
  const cpu = cpuDeltaMs(from.server, to.server);
  return {
    ms: round(to.server.at - from.server.at),
    serverCpuStatMs: round(cpu.statMs),
    serverCpuSchedMs: round(cpu.schedMs),
    clientCpuMs: round((to.clientUs - from.clientUs) / 1000),
    foreignCpuMs: round(foreignCpuMs(from, to), 0),
  };
}

export class ServerProbe {
  readonly memoryPoints: MemoryPoint[] = [];
  private hookSeq = 0;
  /** CPU ticks of other processes during the publish windows, by pid (processes that existed at both ends). */
  private readonly foreignTicks = new Map<number, number>();

  constructor(
    private readonly opts: GeneratorOptions,
    private readonly clock: RunClock,
    private readonly error: (kind: string, detail: string) => void,
  ) {}

  /** Sends one command to bench/server-hook.mjs inside the server and waits for its answer. */
  async hook(command: Record<string, string>, timeoutMs = 10_000): Promise<HookAnswer | null> {
    const { opts } = this;
    if (opts.statsFile === null || opts.controlFile === null) return null;
    const file = opts.statsFile;
    const previous = this.hookSeq;
    const got: { answer: HookAnswer | null } = { answer: null };
    writeFileSync(opts.controlFile, JSON.stringify(command));
    process.kill(opts.serverPid, 'SIGUSR2');
    await waitUntil(
      () => {
        if (!existsSync(file)) return false;
        try {
          const parsed = JSON.parse(readFileSync(file, 'utf8')) as HookAnswer;
          if (parsed.seq > previous) got.answer = parsed;
        } catch {
          return false;
        }
        return got.answer !== null;
      },
      this.clock.budget(timeoutMs, `the server hook (${command.cmd ?? '?'})`),
      25,
    );
    if (got.answer === null) {
      this.error('serverHook', `no answer to ${JSON.stringify(command)} in time`);
      return null;
    }
    this.hookSeq = got.answer.seq;
    return got.answer;
  }

  private async readHeap(): Promise<HeapPoint | null> {
    if (!this.opts.heap) return null;
    const answer = await this.hook({ cmd: 'heap' });
    if (!answer?.before || !answer.after) return null;
    return {
      rssBeforeGc: answer.before.rss,
      rssAfterGc: answer.after.rss,
      heapUsed: answer.after.heapUsed,
      heapTotal: answer.after.heapTotal,
      external: answer.after.external,
      arrayBuffers: answer.after.arrayBuffers,
    };
  }

  quiet(what: string): Promise<QuietResult> {
    const { opts } = this;
    return waitQuiet(opts.serverPid, {
      timeoutMs: this.clock.budget(opts.quietTimeoutMs, what),
      maxBusyMs: opts.quietMaxBusyMs,
    }).then((result) => {
      if (!result.quiet)
        this.error('notQuiet', `server not quiet after ${opts.quietTimeoutMs} ms (${what})`);
      return result;
    });
  }

  async memoryPoint(label: string): Promise<MemoryPoint> {
    const q = await this.quiet(`the ${label} memory sample`);
    const point: MemoryPoint = {
      label,
      quiet: q.quiet,
      quietWaitMs: round(q.waitedMs),
      process: readMemory(this.opts.serverPid),
      kernel: readKernelMemory(),
      heap: await this.readHeap(),
    };
    this.memoryPoints.push(point);
    this.clock.log(
      `memory ${label}: RSS ${(point.process.rssKb / 1024).toFixed(1)} MB` +
        (point.heap ? `, heap ${(point.heap.heapUsed / 1048576).toFixed(1)} MB after GC` : '') +
        `, slab ${(point.kernel.slabKb / 1024).toFixed(1)} MB`,
    );
    return point;
  }

  addForeign(before: Map<number, number>, after: Map<number, number>): void {
    for (const [pid, ticks] of after) {
      if (pid === this.opts.serverPid || pid === process.pid) continue;
      const delta = ticks - (before.get(pid) ?? ticks);
      if (delta > 0) this.foreignTicks.set(pid, (this.foreignTicks.get(pid) ?? 0) + delta);
    }
  }

  topForeign(count: number): { pid: number; cpuMs: number; command: string }[] {
    return [...this.foreignTicks.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, count)
      .map(([pid, ticks]) => ({
        pid,
        cpuMs: (ticks * 1000) / clkTck(),
        command: describeProcess(pid),
      }));
  }

  /**
   * `epush_listeners` and `epush_connections{transport}` from GET /metrics: the server's own count
   * of what the generator holds (a WebSocket listen has no acknowledgement on the wire). Read
   * outside every CPU window (the quiet wait before each publish follows).
   */
  async readGauges(): Promise<ServerGauges> {
    const { opts } = this;
    let text: string;
    try {
      // /metrics is chunked, which the raw API client does not read: one plain node:http GET.
      text = await new Promise<string>((resolveText, reject) => {
        const request = httpGet(
          { host: opts.host, port: opts.port, path: '/metrics', agent: false, timeout: 10_000 },
          (response) => {
            const parts: Buffer[] = [];
            response.on('data', (part: Buffer) => parts.push(part));
            response.on('end', () => {
              if (response.statusCode === 200) resolveText(Buffer.concat(parts).toString('utf8'));
              else reject(new Error(`HTTP ${response.statusCode ?? '?'}`));
            });
            response.on('error', reject);
          },
        );
        request.on('timeout', () => request.destroy(new Error('timed out')));
        request.on('error', reject);
      });
    } catch (failure) {
      this.error('metrics', `GET /metrics: ${(failure as Error).message}`);
      return { listeners: null, connections: {} };
    }
    let listeners: number | null = null;
    const connections: Record<string, number> = {};
    for (const line of text.split('\n')) {
      const plain = /^epush_listeners(?:\{[^}]*\})? (\S+)$/.exec(line);
      if (plain) listeners = (listeners ?? 0) + Number(plain[1]);
      const byTransport = /^epush_connections\{[^}]*transport="([^"]+)"[^}]*\} (\S+)$/.exec(line);
      if (byTransport) {
        const name = byTransport[1]!;
        connections[name] = (connections[name] ?? 0) + Number(byTransport[2]);
      }
    }
    return { listeners, connections };
  }
}
