import type { ServerResponse } from 'node:http';
import type { ConnectionCounter, ListenerConnection } from './listener-connection.js';

/**
 * A held `POST /push/listen`: one answer ends the exchange. Holds only the response object and
 * the precomputed header set; no timer (the dispatcher's wheel times holds out).
 */
export class LongPollConnection implements ListenerConnection {
  readonly transport = 'long-poll' as const;
  readonly streaming = false;
  private closeCallback: (() => void) | null = null;
  private answered = false;

  constructor(
    private readonly res: ServerResponse,
    private readonly headers: Record<string, string | number>,
    private readonly counter: ConnectionCounter,
  ) {
    counter.opened('long-poll');
    res.once('close', () => {
      if (!this.answered) {
        this.answered = true;
        counter.closed('long-poll');
        this.closeCallback?.();
      }
    });
  }

  get closed(): boolean {
    return this.answered || this.res.destroyed;
  }

  onClose(callback: () => void): void {
    this.closeCallback = callback;
  }

  send(answerJson: string): void {
    if (this.answered) return;
    this.answered = true;
    this.closeCallback = null;
    this.counter.closed('long-poll');
    if (this.res.destroyed) return;
    this.headers['content-length'] = Buffer.byteLength(answerJson);
    this.res.writeHead(200, this.headers);
    this.res.end(answerJson);
  }
}
