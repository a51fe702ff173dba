/**
 * epush WebSocket (`GET /push/ws`, one `{"listen":…}` message): the socket stays open and
 * registered across deliveries. A listen has no acknowledgement on the wire, so it counts as
 * armed once the message is written (the generator then waits for the server to be quiet). A
 * reconnected socket listens on from the last message's cursor.
 */
import { maskedFrame, OPCODE, WsParser, wsUpgrade } from '../lib/ws-client.js';
import { parseEpushAnswer, resumeCursor } from './listen-epush-longpoll.js';
import type { ListenerProtocol } from './types.js';

export const epushWebSocket: ListenerProtocol = {
  name: 'epush WebSocket',
  resumeToken: 'none while the socket lasts (each message carries the cursor, for a reconnect)',
  streaming: true,
  open(context, events, write) {
    let stopped = false;
    const { key, text } = wsUpgrade('/push/ws', context.hostHeader);
    const parser = new WsParser(key, {
      onOpen: () => {
        const cursor = resumeCursor(context);
        const listen = `{"listen":{"pushIds":["${context.identity}"],"cursor":${cursor === null ? 'null' : `"${cursor}"`}}}`;
        write(maskedFrame(OPCODE.text, Buffer.from(listen)));
        events.armed();
      },
      onText: (data) => {
        const answer = parseEpushAnswer(data, context, events);
        if (answer !== null) events.delivered(answer.payloads);
      },
      onPing: (payload) => {
        events.noted('wsPings');
        write(maskedFrame(OPCODE.pong, payload));
      },
      onClose: (code) => {
        events.answered();
        // Echo the close (RFC 6455 §5.5.1); the server then closes the TCP connection.
        const echo = Buffer.alloc(code === null ? 0 : 2);
        if (code !== null) echo.writeUInt16BE(code, 0);
        write(maskedFrame(OPCODE.close, echo));
        if (!stopped)
          events.failed('ws-closed', `the server closed the WebSocket (${code ?? 'no code'})`);
      },
      onRefused: (status, body) => {
        events.failed(`status:${status}`, body.slice(0, 120));
      },
    });
    return {
      start: () => {
        write(text);
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
