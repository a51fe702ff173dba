/** The raw result of a held-max run (`.bench-out/held-max-*.json`). */
import type { MachineInfo, SourceInfo } from '../lib/machine.js';
import type { Distribution } from '../lib/stats.js';
import type { Target } from './types.js';

export interface ProcessFacts {
  readonly pid: number;
  readonly rssKb: number | null;
  /** Open file descriptors (/proc/<pid>/fd): held connections plus a few dozen. */
  readonly fds: number | null;
}

export interface MemorySample {
  /** fresh: server started; idle: push IDs and group made; held: every listen held, server quiet. */
  readonly label: string;
  /** Whether the server processes were quiet (2 windows of 500 ms) before the sample. */
  readonly quiet: boolean;
  /** VmRSS summed over the primary (nginx master) and every worker. */
  readonly rssKb: number;
  readonly processes: ProcessFacts[];
  /** /proc/meminfo Slab (both ends of every loopback connection are on this box). */
  readonly slabKb: number;
  readonly tcpInUse: number;
  readonly tcpTimeWait: number;
}

export interface RoundResult {
  readonly round: number;
  /** Listeners with a listen outstanding just before the publish (the expected deliveries). */
  readonly armedAtPublish: number;
  readonly heldAtPublish: number;
  readonly publishStatus: number;
  /** Publish request written → its answer parsed. */
  readonly publishRttMs: number;
  /** Listeners that got this notification, each counted once. */
  readonly delivered: number;
  readonly duplicates: number;
  /** Other notifications received meanwhile (should be 0). */
  readonly foreign: number;
  readonly publishToFirstMs: number | null;
  /** Publish request written → last delivery parsed by a generator (CLOCK_MONOTONIC). */
  readonly publishToLastMs: number | null;
  readonly latencyMs: Distribution;
  /** Server CPU (all processes, schedstat) from the publish to its answer. */
  readonly serverCpuToAnswerMs: number;
  /** Server CPU from the publish until the generators had every delivery (the wake-up). */
  readonly serverCpuFanoutMs: number;
  readonly serverCpuFanoutStatMs: number;
  /** The window of serverCpuFanoutMs (it ends up to ~0.3 s after the last delivery). */
  readonly fanoutWindowMs: number;
  /** Server CPU from the publish until quiet again: the wake-up plus the re-poll herd. */
  readonly serverCpuToQuietMs: number;
  readonly quietAfter: boolean;
  readonly quietWindowMs: number;
  readonly cpuByPidFanoutMs: Record<number, number>;
  /** Listens answered with an error status (epush: 503 while a worker's canary is lost), until quiet. */
  readonly refusedListens: number;
  /** epush answers with `reconnect: true` (a worker dropped its held listeners), until quiet. */
  readonly reconnectAnswers: number;
}

export interface TargetResult {
  readonly target: Target;
  readonly n: number;
  readonly workers: number;
  readonly generators: number;
  readonly sourceAddresses: string[];
  /** Listeners the generators saw held (listen outstanding > 1 s) before the first publish. */
  readonly held: number;
  /** What the server reported holding (epush: /api/cluster connections; nchan: stub status). */
  readonly serverHeld: number | null;
  readonly completed: boolean;
  readonly abortReason: string | null;
  readonly phases: Record<string, number>;
  readonly memory: MemorySample[];
  /** (held − idle RSS) / held, KB (1000 B). */
  readonly rssPerConnKb: number | null;
  /** (held − fresh RSS) / held: with the push-ID and membership state. */
  readonly rssPerConnInclStateKb: number | null;
  /** Slab delta per client+server socket pair, KB. */
  readonly slabPerPairKb: number | null;
  readonly rounds: RoundResult[];
  /** Server processes at the held sample (primary first). */
  readonly processes: ProcessFacts[];
  readonly serverArgv: readonly string[];
  readonly serverFdLimit: { soft: number; hard: number } | null;
  readonly serverExit: { code: number | null; signal: string | null; forced: boolean } | null;
  readonly serverLog: string;
  readonly serverNotableLog: string[];
  readonly generatorCpuMs: number;
  readonly errors: Record<string, number>;
  readonly errorSamples: string[];
  readonly timeWaitAtStart: number;
}

export interface HeldMaxReport {
  readonly scenario: 'held-max';
  readonly id: string;
  readonly startedAt: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly source: SourceInfo;
  readonly boxBusyPercentBefore: number;
  readonly options: {
    readonly n: number;
    readonly m: number;
    readonly workers: number;
    readonly generators: number;
    readonly perProcess: number;
    readonly srcBase: number;
    readonly srcPerGen: number;
    readonly concurrency: number;
    readonly repollDelayMs: number;
    readonly connectRate: number;
    readonly canarySeconds: number | null;
    readonly maxSeconds: number;
  };
  readonly results: TargetResult[];
}
