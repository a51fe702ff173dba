import type { ListenAnswer, ListenRequest, TransportName } from '../types.js';

/** Why a transport session ended on its own. */
export interface TransportFailure {
  /**
   * `network`: no answer (refused, reset, DNS, CORS); `timeout`: no answer within hold + margin;
   * `http`: an error status; `protocol`: an answer that is not the documented JSON.
   */
  readonly kind: 'network' | 'timeout' | 'http' | 'protocol';
  readonly status?: number;
  /** The server's error code (`{"error": {"code"}}`), when it sent one. */
  readonly code?: string;
  /** The push IDs a `forbidden` error names (`{"error": {"pushIds"}}`: refused listen tokens). */
  readonly pushIds?: readonly string[];
  readonly message: string;
  /** The server's `Retry-After`, when it sent one and the browser lets us read it. */
  readonly retryAfterMs?: number;
}

/** What a session reports to its connection. No call follows `failed`, nor `close()`. */
export interface TransportSink {
  /** The listen reached the server and is held there (drives the `connected` status). */
  opened(): void;
  /** Every answer, in order. The session goes on listening from `answer.cursor` unless closed. */
  answer(answer: ListenAnswer): void;
  failed(failure: TransportFailure): void;
}

export interface TransportSession {
  /** Ends the session at once; an answer still in flight is discarded, never reported. */
  close(): void;
}

/**
 * A way to listen: long-poll now; WebSocket and SSE later. A session listens on a fixed set of
 * push IDs from a cursor and keeps listening, answer after answer, until it fails or is closed.
 * Retrying, backoff and status belong to the connection above, not to transports.
 */
export interface Transport {
  readonly name: TransportName;
  open(request: ListenRequest, sink: TransportSink): TransportSession;
}
