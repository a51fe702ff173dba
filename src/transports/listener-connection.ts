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
