/**
 * The longpoll-fanout generator's result: its run's state, and the sums, per-connection memory
 * and per-delivery CPU figures written to its result file (GeneratorResult).
 */
import type { ListenerPool } from '../peers/listener-pool.js';
import { distribution, round } from '../lib/stats.js';
import type { Tally } from './tally.js';
import type {
  GeneratorOptions,
  GeneratorResult,
  MemoryPoint,
  MessageResult,
  PhaseResult,
  ServerGauges,
} from './types.js';

export interface RunState {
  listeners: ListenerPool | null;
  tally: Tally | null;
  messages: MessageResult[];
  armedAtFirstPublish: number;
  /** Listeners armed when the "held" memory sample was taken. */
  heldListeners: number;
  gauges: ServerGauges | null;
}

/** What the generator recorded besides the run's state. */
export interface RunRecord {
  readonly opts: GeneratorOptions;
  readonly startedAt: Date;
  readonly phases: Record<string, PhaseResult>;
  readonly memoryPoints: MemoryPoint[];
  readonly counters: Record<string, number>;
  readonly errors: Record<string, number>;
  readonly errorSamples: string[];
  /** The other processes that used the most CPU in the publish windows. */
  readonly foreignTop: GeneratorResult['totals']['foreignTop'];
}

export function summarize(
  state: RunState,
  completed: boolean,
  abortReason: string | null,
  run: RunRecord,
): GeneratorResult {
  const { opts, memoryPoints } = run;
  const point = (label: string): MemoryPoint | undefined =>
    memoryPoints.find((p) => p.label === label);
  const fresh = point('fresh');
  const idle = point('idle');
  const held = point('held');
  const perConn = (a: number | undefined, b: number | undefined): number | null =>
    a === undefined || b === undefined || state.heldListeners === 0
      ? null
      : round((b - a) / state.heldListeners, 2);
  let delivered = 0;
  let serverStat = 0;
  let serverSched = 0;
  let client = 0;
  let foreign = 0;
  let irq = 0;
  let steal = 0;
  let windows = 0;
  for (const message of state.messages) {
    foreign += message.foreignCpuMs;
    irq += message.kernelIrqMs;
    steal += message.stealMs;
    windows += message.cpuWindowMs;
    delivered += message.delivered;
    serverStat += message.serverCpuStatMs;
    serverSched += message.serverCpuSchedMs;
    client += message.clientCpuMs;
  }
  const all: number[] = [];
  if (state.tally) {
    for (let k = 0; k < opts.m; k++) for (const value of state.tally.latencyOf(k)) all.push(value);
  }
  const perMessage = state.messages
    .filter((message) => message.delivered > 0)
    .map((message) => (message.serverCpuStatMs * 1000) / message.delivered);
  const perDelivery = (ms: number): number | null =>
    delivered === 0 ? null : round((ms * 1000) / delivered, 2);
  return {
    scenario: 'longpoll-fanout',
    options: opts,
    startedAt: run.startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    completed,
    abortReason,
    phases: run.phases,
    listeners: {
      requested: opts.n,
      connected: state.listeners?.stats().everArmed ?? 0,
      failed: state.listeners?.stats().failed ?? 0,
      armedAtFirstPublish: state.armedAtFirstPublish,
      held: state.heldListeners,
    },
    memory: {
      points: memoryPoints,
      rssPerConnKb: perConn(idle?.process.rssKb, held?.process.rssKb),
      rssPerConnInclStateKb: perConn(fresh?.process.rssKb, held?.process.rssKb),
      heapPerConnKb:
        idle?.heap && held?.heap
          ? perConn(idle.heap.heapUsed / 1024, held.heap.heapUsed / 1024)
          : null,
      slabPerPairKb: perConn(idle?.kernel.slabKb, held?.kernel.slabKb),
    },
    messages: state.messages,
    serverGauges: state.gauges,
    totals: {
      expected: opts.n * opts.m,
      delivered,
      duplicates: state.tally?.duplicates ?? 0,
      serverCpuStatMs: round(serverStat, 1),
      serverCpuSchedMs: round(serverSched, 1),
      clientCpuMs: round(client, 1),
      serverUsPerDelivery: perDelivery(serverStat),
      serverUsPerDeliverySched: perDelivery(serverSched),
      serverUsPerDeliveryMedian:
        perMessage.length === 0 ? null : round(distribution(perMessage).p50, 2),
      clientUsPerDelivery: perDelivery(client),
      foreignCpuMs: round(foreign, 0),
      foreignCpuPercent: windows === 0 ? null : round((foreign / windows) * 100, 1),
      foreignTop: run.foreignTop,
      kernelIrqUsPerDelivery: perDelivery(irq),
      stealMs: round(steal, 0),
      latencyMs: distribution(all),
    },
    counters: run.counters,
    errors: run.errors,
    errorSamples: run.errorSamples,
  };
}
