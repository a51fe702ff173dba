/** The failover bench's result of one row (target × stop) and its report lines. */
import { loadavg } from 'node:os';
import { fmt, int } from '../lib/format.js';
import { distribution, type Distribution } from '../lib/stats.js';
import type { StopKind } from './cluster.js';
import { verify, type Verification } from './verify.js';

export interface RowResult {
  readonly target: string;
  readonly stop: StopKind;
  readonly signal: string;
  readonly description: string;
  readonly listeners: number;
  readonly moved: number;
  readonly recovered: number;
  readonly caughtUp: number;
  /** stop → first good answer from another node, per moved listener (ms). */
  readonly recoveryMs: Distribution;
  /** stop → the re-listen written to another node (client-side detection and connect). */
  readonly relistenSentMs: Distribution;
  /** stop → first notification received, moved listeners. */
  readonly firstNotificationMs: Distribution;
  /** The same for listeners that did not have to move (the baseline of the stream's own pace). */
  readonly stayedFirstNotificationMs: Distribution;
  /** stop → every moved listener answered by another node. */
  readonly allBackMs: number | null;
  /** stop → every moved listener has every notification accepted before the stop. */
  readonly allCaughtUpMs: number | null;
  readonly stoppedNodeExitedMs: number | null;
  readonly answersFromStoppedNodeAfterStop: number;
  readonly published: number;
  readonly accepted: number;
  readonly publishFailures: number;
  readonly publishNon2xx: number;
  /** Longest gap between two accepted publishes from 1 s before the stop to the end (ms). */
  readonly publishGapAroundStopMs: number;
  readonly connectFailures: number;
  readonly reconnectAnswers: number;
  readonly problems: number;
  readonly problemSamples: readonly string[];
  readonly idMismatches: number;
  readonly verification: Verification;
  /** Accepted publishes per second over the publishing time. */
  readonly publishRate: number;
  readonly publishLatencyMs: Distribution;
  /** Cores used by the bench's own processes (generator, nodes, Redis) and by other work. */
  readonly ownCores: number;
  readonly otherCores: number;
  readonly loadAverage: readonly number[];
  /** The generator's event-loop delay (ms): how late it saw what happened. */
  readonly loopDelayP99Ms: number;
  readonly loopDelayMaxMs: number;
  readonly logs: readonly string[];
  /** Every moved listener: its moves and figures, ms relative to the stop (raw JSON only). */
  readonly movedDetail?: readonly unknown[];
  /** The ten listeners whose first notification after the stop came last, with their timelines. */
  readonly slowest?: readonly unknown[];
  readonly error?: string;
}

function ms(value: number | null | undefined): string {
  return fmt(value ?? NaN, 0);
}

export function tableRow(r: RowResult): string {
  const v = r.verification;
  const back = r.allBackMs === null ? `not all (${r.recovered}/${r.moved})` : ms(r.allBackMs);
  return (
    `| ${r.target} | ${r.signal} | ${int(r.moved)} | ${ms(r.recoveryMs.p50)} / ${ms(r.recoveryMs.p99)} / ${ms(r.recoveryMs.max)} ` +
    `| ${back} | ${ms(r.allCaughtUpMs)} | ${ms(r.firstNotificationMs.p50)} / ${ms(r.firstNotificationMs.p99)} ` +
    `| ${int(r.accepted)} | ${int(v.lost)}${v.undeliveredAtEnd > 0 ? ` (+${int(v.undeliveredAtEnd)} not yet delivered at the end)` : ''} | ${int(v.duplicated)} | ${int(v.outOfOrder)} |`
  );
}

export function notes(r: RowResult): string {
  const v = r.verification;
  const parts = [
    `**${r.target}, ${r.signal}**: ${r.description}.`,
    `Re-listen written to another node: p50 ${ms(r.relistenSentMs.p50)} ms, max ${ms(r.relistenSentMs.max)} ms after the stop.`,
    `Listeners that did not move: first notification after the stop p50 ${ms(r.stayedFirstNotificationMs.p50)} ms, p99 ${ms(r.stayedFirstNotificationMs.p99)} ms.`,
    `Stopped node gone after ${r.stoppedNodeExitedMs === null ? 'more than 20 s' : `${ms(r.stoppedNodeExitedMs)} ms`}; it answered ${int(r.answersFromStoppedNodeAfterStop)} listens after the signal.`,
    `Publishes: ${fmt(r.publishRate, 1)}/s accepted (answer p50 ${ms(r.publishLatencyMs.p50)} ms, max ${ms(r.publishLatencyMs.max)} ms); ${int(r.published)} sent, ${int(r.accepted)} accepted, ${int(r.publishNon2xx)} refused, ${int(r.publishFailures)} failed; longest gap between two accepted publishes around the stop ${ms(r.publishGapAroundStopMs)} ms.`,
    `Deliveries: ${int(v.delivered)} of ${int(v.expectedDeliveries)} expected; ${int(v.undeliveredAtEnd)} not yet delivered when the run ended; ${int(v.unaccepted)} of a publish not accepted; listeners with a loss ${int(v.listenersWithLoss)}, with a duplicate ${int(v.listenersWithDuplicates)}.`,
    `Connection failures ${int(r.connectFailures)}, reconnect/410 answers ${int(r.reconnectAnswers)}, other problems ${int(r.problems)}${r.problemSamples.length > 0 ? ` (e.g. \`${r.problemSamples[0] ?? ''}\`)` : ''}.`,
  ];
  parts.push(
    `CPU while publishing: the bench's processes ${fmt(r.ownCores, 2)} cores, other work on the box ${fmt(r.otherCores, 2)} cores (load average ${r.loadAverage.join(', ')}); generator event-loop delay p99 ${ms(r.loopDelayP99Ms)} ms, max ${ms(r.loopDelayMaxMs)} ms.`,
  );
  if (r.error !== undefined) parts.push(`**Error:** ${r.error}`);
  return `- ${parts.join(' ')}`;
}

export function failedRow(target: string, stop: StopKind, error: unknown): RowResult {
  const empty = distribution([]);
  return {
    target,
    stop,
    signal: stop,
    description: 'did not complete',
    listeners: 0,
    moved: 0,
    recovered: 0,
    caughtUp: 0,
    recoveryMs: empty,
    relistenSentMs: empty,
    firstNotificationMs: empty,
    stayedFirstNotificationMs: empty,
    allBackMs: null,
    allCaughtUpMs: null,
    stoppedNodeExitedMs: null,
    answersFromStoppedNodeAfterStop: 0,
    published: 0,
    accepted: 0,
    publishFailures: 0,
    publishNon2xx: 0,
    publishGapAroundStopMs: 0,
    connectFailures: 0,
    reconnectAnswers: 0,
    problems: 0,
    problemSamples: [],
    idMismatches: 0,
    verification: verify([], []),
    publishRate: 0,
    publishLatencyMs: empty,
    ownCores: 0,
    otherCores: 0,
    loadAverage: loadavg(),
    loopDelayP99Ms: 0,
    loopDelayMaxMs: 0,
    logs: [],
    error: error instanceof Error ? error.message : String(error),
  };
}
