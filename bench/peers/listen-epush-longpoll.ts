/**
 * epush long-poll (`POST /push/listen`): one listen per request, re-polled at once after each
 * answer with the answer's cursor, on the same keep-alive socket.
 */
import { listenRequestText, ResponseParser } from '../lib/http-client.js';
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
    let stopped = false;
    let refusals = 0;
    const poll = (): void => {
      if (stopped) return;
      write(listenRequestText(context.hostHeader, context.identity, cursor));
      events.armed();
    };
    const parser = new ResponseParser((status, body) => {
      events.answered();
      if (status !== 200) {
        refusals += 1;
        events.retried(`status:${status}`, body.toString('utf8', 0, 120));
        setTimeout(poll, context.backoffMs(refusals));
        return;
      }
      refusals = 0;
      const answer = parseEpushAnswer(body.toString('utf8'), events);
      if (answer === null) return;
      cursor = answer.cursor ?? cursor;
      events.delivered(answer.payloads);
      poll();
    });
    return {
      start: poll,
      feed: (chunk) => {
        parser.feed(chunk);
      },
      stop: () => {
        stopped = true;
      },
    };
  },
};
