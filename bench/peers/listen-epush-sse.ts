/**
 * epush Server-Sent Events (`GET /push/sse?pushIds=…`): the stream stays open and registered
 * across deliveries; it counts as armed once its first (empty) event with the starting cursor has
 * arrived. A reconnected stream resumes from the last event's cursor (`cursor=`).
 */
import { SseParser, sseRequestText } from '../lib/sse-client.js';
import { parseEpushAnswer, resumeCursor } from './listen-epush-longpoll.js';
import type { ListenerProtocol } from './types.js';

export const epushSse: ListenerProtocol = {
  name: 'epush SSE',
  resumeToken: "none while the stream lasts (each event's `id:` is the cursor, for a reconnect)",
  streaming: true,
  open(context, events, write) {
    let stopped = false;
    let open = false;
    const parser = new SseParser({
      onOpen: () => undefined,
      onEvent: (data) => {
        const answer = parseEpushAnswer(data, context, events);
        if (answer === null) return;
        if (!open) {
          // The first event is the empty answer with the starting cursor: the stream flows.
          open = true;
          events.armed();
          events.noted('streamOpenAnswers');
          if (answer.payloads.length === 0) return;
        }
        events.delivered(answer.payloads);
      },
      onRefused: (status, body) => {
        events.failed(`status:${status}`, body.slice(0, 120));
      },
      onEnd: () => {
        events.answered();
        if (!stopped) events.failed('stream-ended', 'the server ended the event stream');
      },
    });
    return {
      start: () => {
        const cursor = resumeCursor(context);
        const query = `pushIds=${encodeURIComponent(context.identity)}${cursor === null ? '' : `&cursor=${cursor}`}`;
        write(sseRequestText(`/push/sse?${query}`, context.hostHeader));
      },
      feed: (chunk) => {
        parser.feed(chunk);
      },
      stop: () => {
        stopped = true;
      },
    };
  },
};
