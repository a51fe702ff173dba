/**
 * Socket.IO over engine.io v4 polling: `GET ?EIO=4&transport=polling` opens a
 * session (`0{"sid":…}`), `POST 40` connects the namespace, then a loop of `GET …&sid=S`, each
 * held until packets arrive (separated by \x1e; `42["msg","…"]` is an event, `2` a ping that is
 * answered with `POST 3` before the next GET). One request at a time: engine.io allows one GET
 * per session. The resume token is the session id.
 */
import { ResponseParser } from '../lib/http-client.js';
import type { ListenerProtocol } from './types.js';

const BASE = '/socket.io/?EIO=4&transport=polling';
const SEPARATOR = '\x1e';

type Step = 'open' | 'connect' | 'poll' | 'pong';

export const engineIoPolling: ListenerProtocol = {
  name: 'socket.io polling',
  resumeToken: "the engine.io session id `sid` in every poll's query",
  streaming: false,
  open(context, events, write) {
    let sid = '';
    let step: Step = 'open';
    let stopped = false;
    let refusals = 0;
    const get = (): void => {
      if (stopped) return;
      step = 'poll';
      write(`GET ${BASE}&sid=${sid} HTTP/1.1\r\nHost: ${context.hostHeader}\r\n\r\n`);
      events.armed();
    };
    const post = (body: string, next: Step): void => {
      step = next;
      write(
        `POST ${BASE}&sid=${sid} HTTP/1.1\r\nHost: ${context.hostHeader}\r\n` +
          `Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
      );
    };
    const parser = new ResponseParser((status, body) => {
      const text = body.toString('utf8');
      if (status !== 200) {
        events.answered();
        if (step !== 'poll' || status === 400) {
          // A refused handshake step, or an unknown session (e.g. closed by a missed ping): this
          // socket cannot resume; the generator reconnects with a new session.
          events.failed(status === 400 ? 'session-lost' : `status:${status}`, text.slice(0, 120));
          return;
        }
        refusals += 1;
        events.retried(`status:${status}`, text.slice(0, 120));
        setTimeout(get, context.backoffMs(refusals));
        return;
      }
      refusals = 0;
      switch (step) {
        case 'open': {
          const match = /"sid":"([^"]+)"/.exec(text);
          if (!text.startsWith('0') || !match?.[1]) {
            events.failed('bad-open', text.slice(0, 120));
            return;
          }
          sid = match[1];
          post('40', 'connect');
          return;
        }
        case 'connect':
          if (text !== 'ok') events.failed('bad-connect', text.slice(0, 120));
          else get();
          return;
        case 'pong':
          get();
          return;
        case 'poll': {
          events.answered();
          const payloads: string[] = [];
          let ping = false;
          for (const packet of text.split(SEPARATOR)) {
            if (packet === '2') ping = true;
            else if (packet.startsWith('42')) {
              const event = JSON.parse(packet.slice(2)) as unknown[];
              payloads.push(typeof event[1] === 'string' ? event[1] : JSON.stringify(event[1]));
            } else if (packet === '1' || packet.startsWith('41')) {
              events.failed('closed', `engine.io close packet ${packet}`);
              return;
            }
          }
          events.delivered(payloads);
          if (stopped) return;
          if (ping) post('3', 'pong');
          else get();
          return;
        }
      }
    });
    return {
      start: () => {
        step = 'open';
        write(`GET ${BASE} HTTP/1.1\r\nHost: ${context.hostHeader}\r\n\r\n`);
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
