import type { Socket } from 'node:net';
import type { LongPollConnection, LongPollExchange } from '../transports/long-poll.js';

/** Where a connection of the accept loop is in its current request. */
export const Phase = {
  /** Waiting for (the rest of) a request head; idle when nothing has arrived yet. */
  Head: 0,
  /** Head parsed, waiting for the body. */
  Body: 1,
  /** The listen is being served or held; input is buffered until it is answered. */
  Listening: 2,
} as const;
export type Phase = (typeof Phase)[keyof typeof Phase];

/** What a connection reports its socket's events and its answer to: the accept loop. */
export interface AcceptLoopOwner {
  receive(connection: AcceptLoopConnection, chunk: Buffer): void;
  gone(connection: AcceptLoopConnection): void;
  respond(
    connection: AcceptLoopConnection,
    status: number,
    body: string,
    extra: Readonly<Record<string, string>> | null,
  ): void;
}

/**
 * One accepted socket while the accept loop serves it (until it is handed to node:http): plain
 * fields the loop reads and writes, and the exchange its held listens are answered through.
 */
export class AcceptLoopConnection implements LongPollExchange {
  phase: Phase = Phase.Head;
  /** Input not consumed yet. */
  input: Buffer | null = null;
  /** When the current phase's clock started (the first byte of a request, or going idle). */
  since: number;
  contentLength = 0;
  origin: string | undefined = undefined;
  host: string | undefined = undefined;
  listen: LongPollConnection | null = null;
  /** No request has arrived yet: silence counts against the headers timeout, not the idle one. */
  fresh = true;
  /** Listen-storm state (abuse-limits.ts): plain numbers, no allocation per listen. */
  stormServedAt = Number.NEGATIVE_INFINITY;
  stormQuick = 0;
  stormSeq = -1;
  readonly onData = (chunk: Buffer): void => {
    this.loop.receive(this, chunk);
  };
  readonly onClose = (): void => {
    this.loop.gone(this);
  };

  constructor(
    readonly loop: AcceptLoopOwner,
    readonly socket: Socket,
    now: number,
  ) {
    this.since = now;
  }

  get peerGone(): boolean {
    return this.socket.destroyed;
  }

  answer(answerJson: string): void {
    this.loop.respond(this, 200, answerJson, null);
  }
}
