import type { ServerResponse } from 'node:http';
import type { Cursor } from '../core/cursor.js';
import type { StreamCloseReason, StreamWriter } from './listen-stream.js';

/**
 * `GET /push/sse`: each answer is one event whose `id:` is its cursor, so the browser's
 * EventSource sends it back as `Last-Event-ID` when it reconnects.
 */
export class SseWriter implements StreamWriter {
  constructor(private readonly res: ServerResponse) {}

  write(answerJson: string, cursor: Cursor): void {
    if (this.res.destroyed || this.res.writableEnded) return;
    this.res.write(`id: ${cursor}\ndata: ${answerJson}\n\n`);
  }

  queuedBytes(): number {
    return this.res.writableLength;
  }

  close(reason: StreamCloseReason): void {
    // A slow peer would not take a final frame either: cut it.
    if (reason === 'slow-consumer') this.res.destroy();
    else if (!this.res.writableEnded) this.res.end();
  }
}
