/**
 * nchan long-poll (`GET /sub/<channel>`): re-polled at once after each answer with
 * `If-Modified-Since: <Last-Modified>` and `If-None-Match: <Etag>` of the previous message, the
 * resume token nchan needs (without it messages between polls are missed or
 * repeated). A subscriber timeout is a 408, answered by a plain re-poll. A multipart answer
 * (`nchan_longpoll_multipart_response on`) delivers each of its messages. A 410 (a graceful
 * stop) is a refusal: retried here, or taken elsewhere by a pool that moves listeners.
 */
import { longPollLoop } from './long-poll-loop.js';
import { header, messages } from './nchan-answer.js';
import type { ListenerProtocol } from './types.js';

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
        const lastModified = header(head, 'last-modified');
        const etag = header(head, 'etag');
        if (lastModified !== null) resume.set('last-modified', lastModified);
        if (etag !== null) resume.set('etag', etag);
        return messages(head, body);
      }
      return status === 408 || status === 304 ? [] : 'refused';
    });
  },
};
