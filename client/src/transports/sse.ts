import type { Clock, ListenRequest, TimerHandle } from '../types.js';
import { parseListenAnswer } from './long-poll.js';
import type { Transport, TransportSession, TransportSink } from './transport.js';

/** The part of the browser's EventSource the client uses (tests pass a fake). */
export interface EventSourceLike {
  close(): void;
  onmessage: ((event: { data: unknown }) => void) | null;
  onerror: ((event: unknown) => void) | null;
}
export type EventSourceConstructor = new (url: string) => EventSourceLike;

export interface SseTransportOptions {
  /** `{url}/push/sse`. */
  readonly url: string;
  readonly EventSource: EventSourceConstructor;
  readonly clock: Clock;
  /** No event for this long (the server sends one at least every hold) → the stream is dead. */
  readonly abandonAfterMs: number;
  /**
   * The server sends a first event at once. None within this time means a proxy holds the
   * stream back (buffering): the session fails, and the client falls back to long-poll.
   */
  readonly firstEventMs: number;
}

/**
 * `GET /push/sse`: one EventSource per session. EventSource's own reconnect is not used (it
 * would retry without backoff): an error ends the session and the connection decides.
 */
export class SseTransport implements Transport {
  readonly name = 'sse' as const;

  constructor(private readonly options: SseTransportOptions) {}

  open(request: ListenRequest, sink: TransportSink): TransportSession {
    return new SseSession(this.options, request, sink);
  }
}

class SseSession implements TransportSession {
  private closed = false;
  private started = false;
  private readonly source: EventSourceLike;
  private watchdog: TimerHandle | null = null;

  constructor(
    private readonly options: SseTransportOptions,
    request: ListenRequest,
    private readonly sink: TransportSink,
  ) {
    const query = `pushIds=${request.pushIds.map(encodeURIComponent).join(',')}`;
    const cursor = request.cursor === null ? '' : `&cursor=${encodeURIComponent(request.cursor)}`;
    // EventSource cannot read a refusal's status or body: a 403 looks like a failed stream.
    const tokens =
      request.listenTokens === undefined
        ? ''
        : `&listenTokens=${request.listenTokens.map((t) => encodeURIComponent(t ?? '')).join(',')}`;
    this.source = new options.EventSource(`${options.url}?${query}${cursor}${tokens}`);
    this.arm(options.firstEventMs, 'no first event within');
    this.source.onmessage = (event) => {
      if (this.closed) return;
      this.arm(options.abandonAfterMs, 'no event within');
      const answer = parseListenAnswer(typeof event.data === 'string' ? event.data : '');
      if (!answer) {
        this.fail({ kind: 'protocol', message: 'an SSE event is not a listen answer' });
        return;
      }
      if (!this.started) {
        this.started = true;
        this.sink.opened();
      }
      this.sink.answer(answer);
    };
    this.source.onerror = () => {
      if (this.closed) return;
      this.fail({ kind: 'network', message: 'the SSE stream failed or was refused' });
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.disarm();
    this.source.close();
  }

  private fail(failure: Parameters<TransportSink['failed']>[0]): void {
    this.close();
    this.sink.failed(failure);
  }

  private arm(ms: number, what: string): void {
    this.disarm();
    this.watchdog = this.options.clock.setTimeout(() => {
      this.fail({ kind: 'timeout', message: `${what} ${Math.round(ms / 1000)} s` });
    }, ms);
  }

  private disarm(): void {
    if (this.watchdog !== null) this.options.clock.clearTimeout(this.watchdog);
    this.watchdog = null;
  }
}
