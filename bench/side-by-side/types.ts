/** The result the side-by-side generator writes for one target (the raw JSON keeps all of it). */
import type { MachineInfo, SourceInfo } from '../lib/machine.js';
import type { Distribution } from '../lib/stats.js';
import type { TargetId } from '../peers/index.js';

export interface MessageResult {
  /** 0-based index among the measured notifications. */
  readonly index: number;
  readonly armedAtPublish: number;
  readonly delivered: number;
  readonly duplicates: number;
  readonly publishStatus: number;
  /** Publish request written → its answer parsed. */
  readonly publishMs: number;
  /** Publish sent → last delivery parsed (NaN when nothing arrived). */
  readonly lastDeliveryMs: number;
  /** Publish sent → the stack was quiet again (the CPU window). */
  readonly cpuWindowMs: number;
  readonly serverCpuMs: number;
  readonly serverCpuSchedMs: number;
  readonly clientCpuMs: number;
  readonly foreignCpuMs: number;
  readonly irqMs: number;
  readonly stealMs: number;
  readonly quiet: boolean;
  readonly latencyMs: Distribution;
}

export interface StackMemory {
  readonly pid: number;
  readonly command: string;
  readonly rssKb: number;
}

export interface MemorySample {
  readonly label: 'fresh' | 'before' | 'held';
  readonly rssKb: number;
  readonly slabKb: number;
  readonly processes: readonly StackMemory[];
}

export interface TargetResult {
  readonly target: TargetId;
  readonly label: string;
  readonly peer: string;
  readonly version: string;
  readonly config: string;
  readonly protocol: string;
  readonly resumeToken: string;
  readonly n: number;
  readonly m: number;
  readonly warmupMessages: number;
  readonly srcIps: number;
  readonly startedAt: string;
  readonly finishedAt: string;
  /** Every phase ran to its end (a collapsed peer may still complete with missing deliveries). */
  readonly completed: boolean;
  readonly abortReason: string | null;
  /** Things a reader must know about this row (partial arming, timeouts, retries). */
  readonly marks: string[];
  readonly stackPids: number[];
  readonly memory: {
    readonly samples: MemorySample[];
    /** (held − before) / listeners armed at the held sample, KB. */
    readonly rssPerConnKb: number | null;
    readonly slabPerPairKb: number | null;
    readonly heldListeners: number;
  };
  readonly connect: {
    readonly ms: number;
    readonly armed: number;
    readonly serverCpuMs: number;
  };
  readonly warmup: MessageResult[];
  readonly messages: MessageResult[];
  readonly totals: {
    readonly expected: number;
    readonly delivered: number;
    readonly duplicates: number;
    readonly serverCpuMs: number;
    readonly serverCpuSchedMs: number;
    readonly serverUsPerDelivery: number | null;
    readonly serverUsPerDeliverySched: number | null;
    readonly serverUsPerDeliveryMedian: number | null;
    readonly clientCpuMs: number;
    readonly clientUsPerDelivery: number | null;
    readonly latencyMs: Distribution;
    readonly foreignCpuMs: number;
    /** Other processes' CPU over the publish windows, % of one core. */
    readonly foreignCpuPercent: number | null;
    readonly irqUsPerDelivery: number | null;
    readonly stealMs: number;
  };
  readonly counters: Record<string, number>;
  readonly errors: Record<string, number>;
  readonly errorSamples: string[];
  readonly shutdown: {
    readonly closedByServer: number;
    readonly stillOpen: number;
    readonly ms: number;
  };
}

/** One command's results, as saved in .bench-out/ and rendered into docs/benchmarks.md. */
export interface SideBySideRun {
  readonly scenario: 'side-by-side';
  readonly startedAt: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly source: SourceInfo;
  readonly pinned: boolean;
  readonly serverCpu: number;
  readonly generatorCpu: number;
  readonly boxBusyPercentBefore: Record<string, number>;
  /** Rows whose publish windows saw more foreign CPU than this (% of a core) are marked disturbed. */
  readonly maxForeignPercent: number;
  readonly results: TargetResult[];
  /** Targets whose generator wrote no result, with the reason. */
  readonly failed: { readonly target: TargetId; readonly reason: string }[];
  readonly rawFile: string;
}
