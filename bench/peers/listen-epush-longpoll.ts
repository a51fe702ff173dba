/**
 * epush long-poll (`POST /push/listen`): one listen per request, re-polled at once after each
 * answer with the answer's cursor, on the same keep-alive socket.
 */
import { listenRequestText } from '../lib/http-client.js';
import { longPollLoop } from './long-poll-loop.js';
import type { ListenerEvents, ListenerProtocol } from './types.js';

interface EpushAnswer {
  readonly notifications?: readonly { readonly payload?: unknown }[];
  readonly cursor?: string;
  readonly reconnect?: boolean;
  readonly replaced?: boolean;
  readonly reset?: boolean;
}

/** The payloads and cursor of one epush answer (long-poll body, SSE data, WebSocket message). */
export function parseEpushAnswer(
  text: string,
  events: ListenerEvents,
): { cursor: string | null; payloads: string[]; ended: boolean } | null {
  let answer: EpushAnswer;
  try {
    answer = JSON.parse(text) as EpushAnswer;
  } catch {
    events.failed('bad-json', text.slice(0, 120));
    return null;
  }
  const payloads = (answer.notifications ?? []).map((n) =>
    typeof n.payload === 'string' ? n.payload : JSON.stringify(n.payload),
  );
  return {
    cursor: answer.cursor ?? null,
    payloads,
    ended: answer.reconnect === true || answer.replaced === true,
  };
}

export const epushLongPoll: ListenerProtocol = {
  name: 'epush long-poll',
  resumeToken: "the answer's `cursor`, sent back in the next `POST /push/listen` body",
  streaming: false,
  open(context, events, write) {
    let cursor: string | null = null;
    return longPollLoop(
      context,
      events,
      write,
      () => listenRequestText(context.hostHeader, context.identity, cursor),
      (status, body) => {
        if (status !== 200) return 'refused';
        const answer = parseEpushAnswer(body.toString('utf8'), events);
        if (answer === null) return 'stop';
        cursor = answer.cursor ?? cursor;
        return answer.payloads;
      },
    );
  },
};
