import type { ServerResponse } from 'node:http';
import type { ConnectionCounter, ListenerConnection } from './listener-connection.js';

/**
 * Where a long-poll's one answer is written: a node:http response ({@link longPollOverResponse})
 * or a connection of the standalone node's accept loop, which writes it straight to the socket.
 */
export interface LongPollExchange {
  /** True once the peer is gone: nothing can be written any more. */
  readonly peerGone: boolean;
  /** Writes the 200 answer; called at most once. */
  answer(answerJson: string): void;
}

/**
 * A held `POST /push/listen`, whichever server took it: one answer ends the exchange. Holds only
 * its exchange and a close callback; no timer (the dispatcher's wheel times holds out).
 */
export class LongPollConnection implements ListenerConnection {
  readonly transport = 'long-poll' as const;
  readonly streaming = false;
  private closeCallback: (() => void) | null = null;
  private answered = false;

  constructor(
    private readonly exchange: LongPollExchange,
    private readonly counter: ConnectionCounter,
  ) {
    counter.opened('long-poll');
  }

  get closed(): boolean {
    return this.answered || this.exchange.peerGone;
  }

  onClose(callback: () => void): void {
    this.closeCallback = callback;
  }

  send(answerJson: string): void {
    if (this.settle()) this.exchange.answer(answerJson);
  }

  /**
   * Ends the listen without writing its answer (the caller answers with an error instead).
   * False when it had already ended.
   */
  settle(): boolean {
    if (this.answered) return false;
    this.answered = true;
    this.closeCallback = null;
    this.counter.closed('long-poll');
    return true;
  }

  /** The peer went away before the answer: runs the close callback. */
  peerClosed(): void {
    if (this.answered) return;
    this.answered = true;
    this.counter.closed('long-poll');
    const callback = this.closeCallback;
    this.closeCallback = null;
    callback?.();
  }
}

/** A long-poll answered through node:http; `headers` is the answer's header set (reused). */
export function longPollOverResponse(
  res: ServerResponse,
  headers: Record<string, string | number>,
  counter: ConnectionCounter,
): LongPollConnection {
  const connection = new LongPollConnection(
    {
      get peerGone() {
        return res.destroyed;
      },
      answer(answerJson) {
        if (res.destroyed) return;
        headers['content-length'] = Buffer.byteLength(answerJson);
        res.writeHead(200, headers);
        res.end(answerJson);
      },
    },
    counter,
  );
  res.once('close', () => {
    connection.peerClosed();
  });
  return connection;
}
