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
    const { resume } = context;
    const request = (): string => {
      let text = `GET /sub/${context.channel} HTTP/1.1\r\nHost: ${context.hostHeader}\r\n`;
      const lastModified = resume.get('last-modified');
      const etag = resume.get('etag');
      if (lastModified !== undefined) text += `If-Modified-Since: ${lastModified}\r\n`;
      if (etag !== undefined) text += `If-None-Match: ${etag}\r\n`;
      return `${text}\r\n`;
    };
    return longPollLoop(context, events, write, request, (status, body, head) => {
      if (status === 200) {
        const lastModified = LAST_MODIFIED.exec(head)?.[1]?.trim();
        const etag = ETAG.exec(head)?.[1]?.trim();
        if (lastModified !== undefined) resume.set('last-modified', lastModified);
        if (etag !== undefined) resume.set('etag', etag);
        return [body.toString('utf8')];
      }
      return status === 408 || status === 304 ? [] : 'refused';
    });
  },
};
