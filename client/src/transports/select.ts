import type { Environment } from '../environment.js';
import { FallbackTransport } from './fallback.js';
import { LongPollTransport } from './long-poll.js';
import { SseTransport } from './sse.js';
import type { Transport } from './transport.js';
import { WebSocketTransport } from './websocket.js';

/** A long-poll held this long without failing counts as connected (see LongPollOptions). */
export const LONG_POLL_OPENED_AFTER_MS = 1000;
/** An SSE stream whose first event (sent at once by the server) is this late is held back. */
const SSE_FIRST_EVENT_MS = 4000;

/** The transports this browser has, in the order docs/protocol.md gives, or the one the page forced. */
export function createTransport(env: Environment): Transport {
  const longPoll = new LongPollTransport({
    listenUrl: `${env.baseUrl}/push/listen`,
    fetch: env.fetch,
    clock: env.clock,
    logger: env.logger,
    abandonAfterMs: env.abandonAfterMs,
    openedAfterMs: LONG_POLL_OPENED_AFTER_MS,
  });
  const webSocket = env.WebSocket
    ? new WebSocketTransport({
        url: `${env.baseUrl.replace(/^http/, 'ws')}/push/ws`,
        WebSocket: env.WebSocket,
        clock: env.clock,
        abandonAfterMs: env.abandonAfterMs,
      })
    : null;
  const sse = env.EventSource
    ? new SseTransport({
        url: `${env.baseUrl}/push/sse`,
        EventSource: env.EventSource,
        clock: env.clock,
        abandonAfterMs: env.abandonAfterMs,
        firstEventMs: SSE_FIRST_EVENT_MS,
      })
    : null;
  switch (env.transport) {
    case 'long-poll':
      return longPoll;
    case 'websocket':
      return webSocket ?? unavailable(env, 'websocket', longPoll);
    case 'sse':
      return sse ?? unavailable(env, 'sse', longPoll);
    case 'auto': {
      const all = [webSocket, sse, longPoll].filter((t): t is NonNullable<typeof t> => t !== null);
      return all.length === 1 ? longPoll : new FallbackTransport(all);
    }
  }
}

function unavailable(env: Environment, name: string, longPoll: Transport): Transport {
  env.logger.warn(`epush: this browser has no ${name}; using long-poll`);
  return longPoll;
}
