/**
 * The failover bench's final check: each listener's received sequence against the accepted one
 * (lost, not yet delivered at the end, duplicated, out of order, not accepted), with a few
 * samples of each defect to find in the node logs.
 */
import type { Move, TrackedListener } from './recovery.js';

/** Per-listener check of the received sequence against the accepted one. */
export interface Verification {
  readonly listeners: number;
  readonly accepted: number;
  readonly expectedDeliveries: number;
  readonly delivered: number;
  /** Accepted but skipped: missing although a later notification arrived (delivery is in order). */
  readonly lost: number;
  /** Accepted, missing, and newer than the listener's last delivery when the run ended. */
  readonly undeliveredAtEnd: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  /** Delivered although the publish was not answered 2xx (timed out or refused). */
  readonly unaccepted: number;
  readonly listenersWithLoss: number;
  readonly listenersWithDuplicates: number;
  /** The first few defects, with enough to find them in the node logs. */
  readonly samples: readonly DefectSample[];
}

export interface DefectSample {
  readonly kind: 'lost' | 'undelivered-at-end' | 'duplicated' | 'out-of-order';
  readonly listener: number;
  readonly key: string;
  readonly seqs: readonly number[];
  readonly homeNode: number;
  readonly nodeAtStop: number | null;
  readonly moves: readonly Move[];
}

export function verify(
  listeners: readonly TrackedListener[],
  accepted: readonly number[],
): Verification {
  const acceptedSet = new Set(accepted);
  let lost = 0;
  let undeliveredAtEnd = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let unaccepted = 0;
  let delivered = 0;
  let listenersWithLoss = 0;
  let listenersWithDuplicates = 0;
  const samples: DefectSample[] = [];
  const sample = (kind: DefectSample['kind'], listener: TrackedListener, seqs: number[]): void => {
    if (samples.length >= 12 || seqs.length === 0) return;
    samples.push({
      kind,
      listener: listener.index,
      key: listener.key,
      seqs: seqs.slice(0, 20),
      homeNode: listener.home,
      nodeAtStop: listener.nodeAtStop,
      moves: listener.moves.slice(0, 10),
    });
  };
  for (const listener of listeners) {
    const seen = new Set<number>();
    const dups: number[] = [];
    const disorder: number[] = [];
    let previous = 0;
    for (const seq of listener.received) {
      delivered += 1;
      if (!acceptedSet.has(seq)) unaccepted += 1;
      if (seen.has(seq)) dups.push(seq);
      else if (seq < previous) disorder.push(seq);
      seen.add(seq);
      previous = Math.max(previous, seq);
    }
    const missing = accepted.filter((seq) => !seen.has(seq) && seq < previous);
    const pending = accepted.filter((seq) => !seen.has(seq) && seq > previous);
    lost += missing.length;
    undeliveredAtEnd += pending.length;
    duplicated += dups.length;
    outOfOrder += disorder.length;
    if (missing.length > 0) listenersWithLoss += 1;
    if (dups.length > 0) listenersWithDuplicates += 1;
    sample('lost', listener, missing);
    sample('undelivered-at-end', listener, pending);
    sample('duplicated', listener, dups);
    sample('out-of-order', listener, disorder);
  }
  return {
    listeners: listeners.length,
    accepted: accepted.length,
    expectedDeliveries: accepted.length * listeners.length,
    delivered,
    lost,
    undeliveredAtEnd,
    duplicated,
    outOfOrder,
    unaccepted,
    listenersWithLoss,
    listenersWithDuplicates,
    samples,
  };
}
