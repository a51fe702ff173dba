import { decodeCursor, encodeCursor, type Cursor, type CursorPosition } from '../core/cursor.js';
import { EpushError } from '../core/errors.js';
import type { PushId } from '../core/push-id.js';
import type { TransportName } from '../core/transport-name.js';
import type { AfterAnswer, ConnectionCounter, ListenerConnection } from './listener-connection.js';

/** Where a stream's answers go: an SSE response or a WebSocket. */
export interface StreamWriter {
  /** Writes one answer (docs/protocol.md JSON) with its cursor. */
  write(answerJson: string, cursor: Cursor): void;
  /** Bytes written but not yet taken by the peer (the kernel's buffer aside). */
  queuedBytes(): number;
  /** Closes the stream for good; `reason` says why (a slow consumer, a drain). */
  close(reason: StreamCloseReason): void;
}

/**
 * `finished`: this listen is over (its push IDs expired, or a newer listen took them);
 * `reconnect`: the node drains or lost its backplane, the client should go elsewhere;
 * `slow-consumer`: the peer did not take its output; `error`: anything else.
 */
export type StreamCloseReason = 'finished' | 'reconnect' | 'slow-consumer' | 'error';

export type Listen = (
  pushIds: readonly PushId[],
  from: CursorPosition | null,
  connection: ListenerConnection,
) => Promise<void>;

/**
 * One listen over a streaming transport (SSE, or one `listen` message of a WebSocket). To the
 * dispatcher it is a listener that stays registered across answers (`wait`); when a listen ends
 * (`relisten`: a backlog, a reset, lost events) it listens again from the answer's cursor, so the
 * cursor and delivery semantics are exactly long-poll's. Past `budgetBytes` of unsent output
 * the peer is too slow: the stream closes, and the client resumes from its last cursor.
 */
export class ListenStream implements ListenerConnection {
  readonly streaming = true;
  private ended = false;
  private closeCallback: (() => void) | null = null;
  private pushIds: PushId[];
  private lastCursor: Cursor | null = null;

  constructor(
    readonly transport: TransportName,
    private readonly writer: StreamWriter,
    private readonly listen: Listen,
    pushIds: readonly PushId[],
    private readonly budgetBytes: number,
    private readonly counter: ConnectionCounter,
  ) {
    this.pushIds = [...pushIds];
  }

  get closed(): boolean {
    return this.ended;
  }

  onClose(callback: () => void): void {
    this.closeCallback = callback;
  }

  /** Starts listening from `from` (null: from now). */
  start(from: CursorPosition | null): void {
    this.listenFrom(from);
  }

  /** The peer went away or a newer listen replaced this one: the dispatcher drops it. */
  stop(): void {
    if (this.ended) return;
    this.ended = true;
    const callback = this.closeCallback;
    this.closeCallback = null;
    callback?.();
  }

  send(answerJson: string, after: AfterAnswer, cursor: Cursor): void {
    if (this.ended) return;
    if (this.writer.queuedBytes() > this.budgetBytes) {
      this.counter.slowConsumerClosed(this.transport);
      this.stop();
      this.writer.close('slow-consumer');
      return;
    }
    this.lastCursor = cursor;
    this.writer.write(answerJson, cursor);
    if (after === 'wait') return;
    if (after === 'end') {
      const { reconnect } = JSON.parse(answerJson) as { reconnect?: boolean };
      this.stop();
      this.writer.close(reconnect === true ? 'reconnect' : 'finished');
      return;
    }
    // The listen is over: listen again from its cursor, without push IDs that expired.
    const answer = JSON.parse(answerJson) as { expired?: PushId[] };
    if (answer.expired && answer.expired.length > 0) {
      const expired = new Set(answer.expired);
      this.pushIds = this.pushIds.filter((id) => !expired.has(id));
    }
    if (this.pushIds.length === 0) {
      this.stop();
      this.writer.close('finished');
      return;
    }
    // Not from inside the dispatcher's call stack.
    setImmediate(() => {
      this.listenFrom(decodeCursor(cursor));
    });
  }

  private listenFrom(from: CursorPosition | null): void {
    if (this.ended) return;
    this.listen(this.pushIds, from, this).catch((error: unknown) => {
      if (this.ended) return;
      // The node cannot serve this stream any more (backplane lost mid-stream): send the client
      // elsewhere with its cursor, as a held long-poll would be.
      const expected = error instanceof EpushError && error.status === 503;
      const cursor = this.lastCursor ?? (from ? encodeCursor(from.epoch, from.seq) : null);
      if (cursor !== null) {
        this.writer.write(
          JSON.stringify({ notifications: [], cursor, expired: [], reconnect: true }),
          cursor,
        );
      }
      this.stop();
      this.writer.close(expected ? 'reconnect' : 'error');
    });
  }
}
