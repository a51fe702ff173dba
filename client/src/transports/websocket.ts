import type { Clock, ListenRequest, TimerHandle } from '../types.js';
import { parseListenAnswer } from './long-poll.js';
import { errorFrom } from './server-error.js';
import type { Transport, TransportSession, TransportSink } from './transport.js';

/** The part of the browser's WebSocket the client uses (tests pass a fake). */
export interface WebSocketLike {
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((event: unknown) => void) | null;
  onmessage: ((event: { data: unknown }) => void) | null;
  onclose: ((event: { code: number; reason: string }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type WebSocketConstructor = new (url: string) => WebSocketLike;

export interface WebSocketTransportOptions {
  /** `ws(s)://…/push/ws`. */
  readonly url: string;
  readonly WebSocket: WebSocketConstructor;
  readonly clock: Clock;
  /** No message for this long (the server sends one at least every hold) → the socket is dead. */
  readonly abandonAfterMs: number;
}

/** `GET /push/ws`: one socket per session; the listen is its first message. */
export class WebSocketTransport implements Transport {
  readonly name = 'websocket' as const;

  constructor(private readonly options: WebSocketTransportOptions) {}

  open(request: ListenRequest, sink: TransportSink): TransportSession {
    return new WebSocketSession(this.options, request, sink);
  }
}

class WebSocketSession implements TransportSession {
  private closed = false;
  private readonly ws: WebSocketLike;
  private watchdog: TimerHandle | null = null;

  constructor(
    private readonly options: WebSocketTransportOptions,
    request: ListenRequest,
    private readonly sink: TransportSink,
  ) {
    const ws = new options.WebSocket(options.url);
    this.ws = ws;
    this.arm();
    ws.onopen = () => {
      if (this.closed) return;
      const { pushIds, cursor, listenTokens } = request;
      ws.send(
        JSON.stringify({
          listen:
            listenTokens === undefined ? { pushIds, cursor } : { pushIds, cursor, listenTokens },
        }),
      );
      this.sink.opened();
    };
    ws.onmessage = (event) => {
      if (this.closed) return;
      this.arm();
      const text = typeof event.data === 'string' ? event.data : '';
      const answer = parseListenAnswer(text);
      if (answer) {
        this.sink.answer(answer);
        return;
      }
      const error = errorFrom(text);
      this.fail(
        error
          ? {
              kind: 'http',
              status: error.code === 'forbidden' ? 403 : 400,
              code: error.code,
              message: error.message,
              ...(error.pushIds === undefined ? {} : { pushIds: error.pushIds }),
            }
          : { kind: 'protocol', message: 'a WebSocket message is not a listen answer' },
      );
    };
    ws.onclose = (event) => {
      if (this.closed) return;
      const slow = event.code === 4008;
      this.fail({
        kind: 'network',
        message: `the WebSocket closed (${event.code}${event.reason ? `: ${event.reason}` : ''})`,
        ...(slow ? { code: 'slow_consumer' } : {}),
      });
    };
    ws.onerror = () => {
      // `onclose` follows with the code.
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.disarm();
    try {
      this.ws.close(1000, 'done');
    } catch {
      // already closing
    }
  }

  private fail(failure: Parameters<TransportSink['failed']>[0]): void {
    this.close();
    this.sink.failed(failure);
  }

  private arm(): void {
    this.disarm();
    this.watchdog = this.options.clock.setTimeout(() => {
      const seconds = Math.round(this.options.abandonAfterMs / 1000);
      this.fail({ kind: 'timeout', message: `no WebSocket message within ${seconds} s` });
    }, this.options.abandonAfterMs);
  }

  private disarm(): void {
    if (this.watchdog !== null) this.options.clock.clearTimeout(this.watchdog);
    this.watchdog = null;
  }
}
