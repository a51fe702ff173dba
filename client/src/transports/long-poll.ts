import { isPushNotification } from '../tab-messages.js';
import type {
  Clock,
  FetchLike,
  ListenAnswer,
  ListenRequest,
  Logger,
  ResponseLike,
  TimerHandle,
} from '../types.js';
import { errorFrom } from './server-error.js';
import type { Transport, TransportFailure, TransportSession, TransportSink } from './transport.js';

export interface LongPollOptions {
  /** The full listen endpoint, `{url}/push/listen`. */
  readonly listenUrl: string;
  readonly fetch: FetchLike;
  readonly clock: Clock;
  readonly logger: Logger;
  /** A listen with no answer after this long is abandoned (the server's hold + a margin). */
  readonly abandonAfterMs: number;
  /**
   * A listen still open after this long counts as established. The server sends nothing until
   * it answers (up to the hold time), while a failing network fails fast, so this is the
   * earliest honest `connected`.
   */
  readonly openedAfterMs: number;
}

/**
 * `POST /push/listen`, one held request at a time. The body is sent as `text/plain` so the
 * request is a CORS "simple request": no preflight per poll (the server accepts any type).
 */
export class LongPollTransport implements Transport {
  readonly name = 'long-poll' as const;

  constructor(private readonly options: LongPollOptions) {}

  open(request: ListenRequest, sink: TransportSink): TransportSession {
    const session = new LongPollSession(this.options, sink);
    session.run(request).catch((error: unknown) => {
      this.options.logger.error('epush: long-poll session failed', error);
    });
    return session;
  }
}

type Exchange = { readonly answer: ListenAnswer } | { readonly failure: TransportFailure };

class LongPollSession implements TransportSession {
  private closed = false;
  private controller: AbortController | null = null;

  constructor(
    private readonly options: LongPollOptions,
    private readonly sink: TransportSink,
  ) {}

  async run(request: ListenRequest): Promise<void> {
    let cursor = request.cursor;
    while (this.isOpen()) {
      const result = await this.exchange(request, cursor);
      if (!this.isOpen()) return;
      if ('failure' in result) {
        this.closed = true;
        this.sink.failed(result.failure);
        return;
      }
      cursor = result.answer.cursor;
      this.sink.answer(result.answer);
    }
  }

  /** A method, not a field read: the session may close while an exchange is awaited. */
  private isOpen(): boolean {
    return !this.closed;
  }

  close(): void {
    this.closed = true;
    this.controller?.abort();
    this.controller = null;
  }

  private async exchange(request: ListenRequest, cursor: string | null): Promise<Exchange> {
    const { pushIds, listenTokens } = request;
    const { clock } = this.options;
    const controller = new AbortController();
    this.controller = controller;
    const timeout = { fired: false };
    const abandon = clock.setTimeout(() => {
      timeout.fired = true;
      controller.abort();
    }, this.options.abandonAfterMs);
    const opened: TimerHandle = clock.setTimeout(() => {
      if (this.isOpen()) this.sink.opened();
    }, this.options.openedAfterMs);
    try {
      const response = await this.options.fetch(this.options.listenUrl, {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
        body: JSON.stringify(
          listenTokens === undefined ? { pushIds, cursor } : { pushIds, cursor, listenTokens },
        ),
        signal: controller.signal,
        cache: 'no-store',
      });
      const text = await response.text();
      if (!response.ok) return { failure: httpFailure(response, text) };
      const answer = parseListenAnswer(text);
      if (!answer) {
        return { failure: { kind: 'protocol', message: 'the listen answer is not valid JSON' } };
      }
      return { answer };
    } catch (error) {
      if (timeout.fired) {
        const seconds = Math.round(this.options.abandonAfterMs / 1000);
        return { failure: { kind: 'timeout', message: `no answer within ${seconds} s` } };
      }
      return { failure: { kind: 'network', message: errorMessage(error) } };
    } finally {
      clock.clearTimeout(abandon);
      clock.clearTimeout(opened);
      if (this.controller === controller) this.controller = null;
    }
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function httpFailure(response: ResponseLike, text: string): TransportFailure {
  // Not JSON (a proxy's error page): the status says enough.
  const error = errorFrom(text);
  const code = error === null || error.code === 'error' ? undefined : error.code;
  const message =
    error !== null && error.message !== ''
      ? `HTTP ${response.status}: ${error.message}`
      : `HTTP ${response.status}`;
  const retryAfter = Number(response.headers.get('retry-after') ?? NaN);
  return {
    kind: 'http',
    status: response.status,
    message,
    ...(code === undefined ? {} : { code }),
    ...(error?.pushIds === undefined ? {} : { pushIds: error.pushIds }),
    ...(Number.isFinite(retryAfter) && retryAfter >= 0 ? { retryAfterMs: retryAfter * 1000 } : {}),
  };
}

/** Validates an answer (docs/protocol.md); null when it is not one. Unknown fields are ignored. */
export function parseListenAnswer(text: string): ListenAnswer | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const body = value as Record<string, unknown>;
  const { notifications, cursor } = body;
  const expired = body.expired ?? [];
  if (typeof cursor !== 'string') return null;
  if (!Array.isArray(notifications) || !notifications.every(isPushNotification)) return null;
  if (!Array.isArray(expired) || !expired.every((id) => typeof id === 'string')) return null;
  return {
    notifications,
    cursor,
    expired,
    reconnect: body.reconnect === true,
    reset: body.reset === true,
    replaced: body.replaced === true,
  };
}
