/** The transports a listener can use; metric labels and client options use the same names. */
export type TransportName = 'long-poll' | 'sse' | 'websocket';

/**
 * One listener connection as the dispatcher sees it, whatever the transport. The dispatcher
 * hands it complete answers (SPEC §4 JSON); the transport frames and writes them.
 */
export interface ListenerConnection {
  readonly transport: TransportName;
  /**
   * Writes one answer. A long-poll ends its exchange with it; streaming transports keep going.
   * Must not throw when the peer is already gone.
   */
  send(answerJson: string): void;
  /** True once the peer went away; the dispatcher then drops the listener. */
  readonly closed: boolean;
  /** Registers the single callback run when the peer goes away before an answer. */
  onClose(callback: () => void): void;
}

/** Open listener connections per transport, for `epush_connections` and `/api/cluster`. */
export class ConnectionCounter {
  private readonly counts = new Map<TransportName, number>();

  opened(transport: TransportName): void {
    this.counts.set(transport, (this.counts.get(transport) ?? 0) + 1);
  }

  closed(transport: TransportName): void {
    this.counts.set(transport, (this.counts.get(transport) ?? 0) - 1);
  }

  get byTransport(): ReadonlyMap<TransportName, number> {
    return this.counts;
  }

  get total(): number {
    let total = 0;
    for (const count of this.counts.values()) total += count;
    return total;
  }
}
