import type { Cursor } from '../core/cursor.js';
import type { TransportName } from '../core/transport-name.js';

/**
 * What follows an answer:
 * - `wait`: the dispatcher keeps the listener registered (streaming transports only): the next
 *   answer comes on the same registration;
 * - `relisten`: the listen is over (it carried a backlog, a reset, or the node lost events): a
 *   streaming transport listens again from the answer's cursor;
 * - `end`: the listener must go (`reconnect`: this node drains or lost its backplane;
 *   `replaced`: a newer listen took its push IDs): a streaming transport closes.
 * A long-poll ends its exchange with any answer.
 */
export type AfterAnswer = 'wait' | 'relisten' | 'end';

/**
 * One listener connection as the dispatcher sees it, whatever the transport. The dispatcher
 * hands it complete answers (docs/protocol.md JSON); the transport frames and writes them.
 */
export interface ListenerConnection {
  readonly transport: TransportName;
  /** True for SSE and WebSocket: one registration serves many answers. */
  readonly streaming: boolean;
  /**
   * Writes one answer; `cursor` is the answer's cursor (SSE's event id). Must not throw when
   * the peer is already gone.
   */
  send(answerJson: string, after: AfterAnswer, cursor: Cursor): void;
  /** True once the peer went away; the dispatcher then drops the listener. */
  readonly closed: boolean;
  /** Registers the single callback run when the peer goes away before an answer. */
  onClose(callback: () => void): void;
  /**
   * How long this connection is held before an empty answer, when it is not the node's
   * `--hold-seconds` (an ICEpush listen is held for the page's own heartbeat).
   */
  readonly holdMs?: number;
}

/** Open listener connections per transport, for `epush_connections` and `/api/cluster`. */
export class ConnectionCounter {
  private readonly counts = new Map<TransportName, number>();
  private readonly slowCloses = new Map<TransportName, number>();
  private readonly streams = new Set<{ queuedBytes(): number }>();

  opened(transport: TransportName): void {
    this.counts.set(transport, (this.counts.get(transport) ?? 0) + 1);
  }

  closed(transport: TransportName): void {
    this.counts.set(transport, (this.counts.get(transport) ?? 0) - 1);
  }

  /** A streaming connection's outbound queue, summed into `epush_outbound_queued_bytes`. */
  trackQueue(stream: { queuedBytes(): number }): void {
    this.streams.add(stream);
  }

  untrackQueue(stream: { queuedBytes(): number }): void {
    this.streams.delete(stream);
  }

  slowConsumerClosed(transport: TransportName): void {
    this.slowCloses.set(transport, (this.slowCloses.get(transport) ?? 0) + 1);
  }

  get byTransport(): ReadonlyMap<TransportName, number> {
    return this.counts;
  }

  /** Streams closed because their peer did not read fast enough, per transport. */
  get slowConsumerCloses(): ReadonlyMap<TransportName, number> {
    return this.slowCloses;
  }

  /** Bytes queued for all streaming connections, not yet taken by their peers. */
  queuedBytes(): number {
    let total = 0;
    for (const stream of this.streams) total += stream.queuedBytes();
    return total;
  }

  get total(): number {
    let total = 0;
    for (const count of this.counts.values()) total += count;
    return total;
  }
}
