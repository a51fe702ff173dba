import type { ClusterEvent } from '../../core/events.js';
import type { Batch, Checkpoint, LogMessage } from './stomp-protocol.js';

/** The newest checkpoint of a browse of the log queue, with what a replica loads around it. */
export interface CheckpointScan {
  readonly checkpoint: Checkpoint;
  /** The batches before it (same epoch, ending at its `bi`), oldest first. */
  readonly history: readonly Batch[];
  /** Their events: the log window before the checkpoint. */
  readonly events: readonly { readonly event: ClusterEvent; readonly at: number }[];
  /** True when those events end exactly at the checkpoint's seq without a hole. */
  readonly contiguous: boolean;
  /** The messages after the checkpoint. */
  readonly after: readonly LogMessage[];
}

/** Null when the browse holds no checkpoint. Pure. */
export function latestCheckpoint(messages: readonly LogMessage[]): CheckpointScan | null {
  let at = -1;
  for (let i = messages.length - 1; i >= 0; i--) {
    if (messages[i]?.t === 'checkpoint') {
      at = i;
      break;
    }
  }
  const checkpoint = messages[at] as Checkpoint | undefined;
  if (!checkpoint) return null;
  const history: Batch[] = [];
  let expected = checkpoint.bi;
  for (let i = at - 1; i >= 0; i--) {
    const m = messages[i];
    if (m?.t !== 'batch' || m.epoch !== checkpoint.epoch) continue;
    if (m.bi !== expected) break;
    history.unshift(m);
    expected -= 1;
  }
  const events = history.flatMap((batch) =>
    batch.entries.flatMap((e) => (e.k === 'event' ? [{ event: e.event, at: batch.at }] : [])),
  );
  const first = events[0]?.event.seq ?? checkpoint.seq + 1;
  const contiguous =
    events.length === checkpoint.seq - first + 1 &&
    events.every((e, i) => e.event.seq === first + i);
  return { checkpoint, history, events, contiguous, after: messages.slice(at + 1) };
}
