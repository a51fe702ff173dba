/** The result the longpoll-fanout generator writes; bench/run.ts adds machine and server facts. */
import type { KernelMemory, ProcessMemory } from '../lib/procfs.js';
import type { Distribution } from '../lib/stats.js';

/** The browser transports of docs/protocol.md, by their metric label names. */
export const TRANSPORTS = ['long-poll', 'sse', 'websocket'] as const;
export type Transport = (typeof TRANSPORTS)[number];

export function isTransport(value: string): value is Transport {
  return (TRANSPORTS as readonly string[]).includes(value);
}

export interface GeneratorOptions {
  readonly host: string;
  readonly port: number;
  readonly serverPid: number;
  /** Listeners (one push ID, one connection each) held on one group. */
  readonly n: number;
  /** Group notifications, one at a time. */
  readonly m: number;
  readonly srcIps: number;
  /** Connects in flight at once. */
  readonly concurrency: number;
  readonly maxSeconds: number;
  /** Extra wait before each publish once every listener is armed (default 300 + N/10 ms). */
  readonly settleMs: number;
  /** 0 = re-poll at once (browser-like); otherwise re-poll this long after each answer. */
  readonly repollDelayMs: number;
  /** Listeners of the warm-up pass (0 = none). */
  readonly warmup: number;
  readonly heap: boolean;
  readonly statsFile: string | null;
  readonly controlFile: string | null;
  /** Where the server hook writes a CPU profile of the publish phase (null = no profiling). */
  readonly profileFile: string | null;
  readonly group: string;
  readonly deliveryTimeoutMs: number;
  readonly quietTimeoutMs: number;
  /** Most server CPU per 250 ms window that still counts as idle (5; more under --cpu-prof). */
  readonly quietMaxBusyMs: number;
  readonly out: string;
  /**
   * How listeners listen: `long-poll` (POST /push/listen, re-poll after each answer), `sse`
   * (GET /push/sse, one stream) or `websocket` (GET /push/ws, one listen message). Results
   * written before transports existed have none: long-poll.
   */
  readonly transport?: Transport;
}

/** The server's own gauges (GET /metrics) once the listeners are held, before the first publish. */
export interface ServerGauges {
  /** `epush_listeners`: listeners registered in the dispatcher. */
  readonly listeners: number | null;
  /** `epush_connections{transport=…}`. */
  readonly connections: Record<string, number>;
}

export interface HeapPoint {
  readonly rssBeforeGc: number;
  readonly rssAfterGc: number;
  readonly heapUsed: number;
  readonly heapTotal: number;
  readonly external: number;
  readonly arrayBuffers: number;
}

export interface MemoryPoint {
  readonly label: string;
  /** Whether the server reached 2 idle windows before this sample (else it timed out). */
  readonly quiet: boolean;
  readonly quietWaitMs: number;
  readonly process: ProcessMemory;
  readonly kernel: KernelMemory;
  /** After a full GC in the server (bench/server-hook.mjs); null when --no-heap. */
  readonly heap: HeapPoint | null;
}

export interface MessageResult {
  readonly k: number;
  /** Listeners with a poll outstanding when the notification was sent. */
  readonly armed: number;
  readonly delivered: number;
  readonly publishStatus: number;
  /** Publish request sent → its 202 parsed (epush fans out before answering). */
  readonly publishRttMs: number;
  /** Publish sent → last delivery parsed. */
  readonly windowMs: number;
  /** Publish sent → server quiet again (the CPU window: fan-out plus the re-poll herd). */
  readonly cpuWindowMs: number;
  readonly serverCpuStatMs: number;
  readonly serverCpuSchedMs: number;
  readonly clientCpuMs: number;
  /** CPU used by every other process on the machine in the same window (tick resolution). */
  readonly foreignCpuMs: number;
  /** Kernel irq + softirq time in the window, charged to no process (loopback TCP, both ends). */
  readonly kernelIrqMs: number;
  /** Hypervisor steal time in the window (both vCPUs). */
  readonly stealMs: number;
  readonly quietBefore: boolean;
  readonly quietAfter: boolean;
  /** Deferred re-poll only: a re-poll was sent before the CPU window closed. */
  readonly repollInWindow: boolean;
  readonly latencyMs: Distribution;
}

export interface PhaseResult {
  readonly ms: number;
  readonly serverCpuStatMs: number;
  readonly serverCpuSchedMs: number;
  readonly clientCpuMs: number;
  readonly foreignCpuMs: number;
}

export interface GeneratorResult {
  readonly scenario: 'longpoll-fanout';
  readonly options: GeneratorOptions;
  readonly startedAt: string;
  readonly finishedAt: string;
  readonly completed: boolean;
  readonly abortReason: string | null;
  readonly phases: Record<string, PhaseResult>;
  readonly listeners: {
    readonly requested: number;
    readonly connected: number;
    readonly failed: number;
    readonly armedAtFirstPublish: number;
    /** Armed when the "held" memory sample was taken: the N of the per-connection figures. */
    readonly held: number;
  };
  readonly memory: {
    readonly points: MemoryPoint[];
    /** (held − idle RSS) / N: idle already has the N push IDs and memberships. */
    readonly rssPerConnKb: number | null;
    /** (held − fresh RSS) / N: includes the push-ID and membership state. */
    readonly rssPerConnInclStateKb: number | null;
    /** (held − idle heapUsed after GC) / N. */
    readonly heapPerConnKb: number | null;
    /** /proc/meminfo Slab delta per connection, both socket ends (client and server). */
    readonly slabPerPairKb: number | null;
  };
  readonly messages: MessageResult[];
  /** Absent in results written before transports existed. */
  readonly serverGauges?: ServerGauges | null;
  readonly totals: {
    readonly expected: number;
    readonly delivered: number;
    readonly duplicates: number;
    readonly serverCpuStatMs: number;
    readonly serverCpuSchedMs: number;
    readonly clientCpuMs: number;
    readonly serverUsPerDelivery: number | null;
    readonly serverUsPerDeliverySched: number | null;
    /** Median over the messages of (server CPU / deliveries): less sensitive to JIT warm-up. */
    readonly serverUsPerDeliveryMedian: number | null;
    readonly clientUsPerDelivery: number | null;
    /** CPU of other processes during the publish windows: load that competed with the run. */
    readonly foreignCpuMs: number;
    /** The same as a share of one core over the summed windows (200 = both cores busy). */
    readonly foreignCpuPercent: number | null;
    /** The other processes that used the most CPU in the publish windows (up to the quiet point + 500 ms). */
    readonly foreignTop: { pid: number; cpuMs: number; command: string }[];
    /** irq + softirq µs per delivery (network stack work of client and server together). */
    readonly kernelIrqUsPerDelivery: number | null;
    readonly stealMs: number;
    readonly latencyMs: Distribution;
  };
  readonly counters: Record<string, number>;
  readonly errors: Record<string, number>;
  readonly errorSamples: string[];
}

/** Printed by the generator on stdout after the server was stopped under it. */
export interface ShutdownReport {
  readonly reconnectAnswers: number;
  readonly closedByServer: number;
  readonly stillOpen: number;
  readonly waitedMs: number;
}
