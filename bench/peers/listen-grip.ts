/**
 * Pushpin GRIP long-poll (`GET /stream?ch=<channel>`; the backend answers `Grip-Hold: response`):
 * re-polled at once after each answer. GRIP long-poll has no resume token: a message published
 * while a listener is between polls is not delivered to it. Pushpin answers bursts on one core
 * with 502/500: those are retried after a back-off.
 */
import { longPollLoop } from './long-poll-loop.js';
import type { ListenerProtocol } from './types.js';

/** The GRIP backend's body for a hold that expired without a message. */
export const GRIP_TIMEOUT_BODY = 'timeout\n';

export const gripLongPoll: ListenerProtocol = {
  name: 'pushpin GRIP long-poll',
  resumeToken: 'none (GRIP `Grip-Hold: response` has no cursor; a message between polls is lost)',
  streaming: false,
  open(context, events, write) {
    const request = `GET /stream?ch=${context.channel} HTTP/1.1\r\nHost: ${context.hostHeader}\r\n\r\n`;
    return longPollLoop(
      context,
      events,
      write,
      () => request,
      (status, body) => {
        if (status !== 200) return 'refused';
        const text = body.toString('utf8');
        return text === GRIP_TIMEOUT_BODY ? [] : [text];
      },
    );
  },
};
