/**
 * nchan long-poll (`GET /sub/<channel>`): re-polled at once after each answer with
 * `If-Modified-Since: <Last-Modified>` and `If-None-Match: <Etag>` of the previous message, the
 * resume token nchan needs (without it messages between polls are missed or
 * repeated). A subscriber timeout is a 408, answered by a plain re-poll.
 */
import { longPollLoop } from './long-poll-loop.js';
import type { ListenerProtocol } from './types.js';

const LAST_MODIFIED = /\r\nlast-modified:[ \t]*([^\r]+)/i;
const ETAG = /\r\netag:[ \t]*([^\r]+)/i;

export const nchanLongPoll: ListenerProtocol = {
  name: 'nchan long-poll',
  resumeToken:
    '`Last-Modified` / `Etag` of the last message, sent back as `If-Modified-Since` / `If-None-Match`',
  streaming: false,
  open(context, events, write) {
    let lastModified: string | null = null;
    let etag: string | null = null;
    const request = (): string => {
      let text = `GET /sub/${context.channel} HTTP/1.1\r\nHost: ${context.hostHeader}\r\n`;
      if (lastModified !== null) text += `If-Modified-Since: ${lastModified}\r\n`;
      if (etag !== null) text += `If-None-Match: ${etag}\r\n`;
      return `${text}\r\n`;
    };
    return longPollLoop(context, events, write, request, (status, body, head) => {
      if (status === 200) {
        lastModified = LAST_MODIFIED.exec(head)?.[1] ?? lastModified;
        etag = ETAG.exec(head)?.[1] ?? etag;
        return [body.toString('utf8')];
      }
      return status === 408 || status === 304 ? [] : 'refused';
    });
  },
};
