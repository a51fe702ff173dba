/**
 * Faye long-polling (Bayeux): `POST /faye` handshake (→ clientId), subscribe to
 * `/<channel>`, then a loop of `/meta/connect`, each held until messages are queued for the
 * client; the answer array holds the channel's messages plus the connect reply. Messages published
 * between two connects are queued by the server under the clientId, the resume token.
 */
import { requestText, ResponseParser } from '../lib/http-client.js';
import type { ListenerProtocol } from './types.js';

interface BayeuxMessage {
  readonly channel?: string;
  readonly clientId?: string;
  readonly successful?: boolean;
  readonly data?: { readonly t?: unknown };
  readonly advice?: { readonly reconnect?: string };
  readonly error?: string;
}

type Step = 'handshake' | 'subscribe' | 'connect';

export const bayeuxLongPolling: ListenerProtocol = {
  name: 'faye long-polling',
  resumeToken: 'the Bayeux `clientId` in every `/meta/connect`',
  streaming: false,
  open(context, events, write) {
    let clientId = '';
    let step: Step = 'handshake';
    let stopped = false;
    let id = 0;
    let refusals = 0;
    const channel = `/${context.channel}`;
    const send = (message: Record<string, unknown>): void => {
      id += 1;
      write(
        requestText(
          'POST',
          '/faye',
          context.hostHeader,
          JSON.stringify([{ ...message, id: String(id) }]),
        ),
      );
    };
    const connect = (): void => {
      if (stopped) return;
      step = 'connect';
      send({ channel: '/meta/connect', clientId, connectionType: 'long-polling' });
      events.armed();
    };
    const parser = new ResponseParser((status, body) => {
      const text = body.toString('utf8');
      if (step === 'connect') events.answered();
      if (status !== 200) {
        refusals += 1;
        events.retried(`status:${status}`, text.slice(0, 120));
        if (step === 'connect') setTimeout(connect, context.backoffMs(refusals));
        else events.failed(`status:${status}`, `during ${step}`);
        return;
      }
      refusals = 0;
      let messages: BayeuxMessage[];
      try {
        messages = JSON.parse(text) as BayeuxMessage[];
      } catch {
        events.failed('bad-json', text.slice(0, 120));
        return;
      }
      const reply = messages.find((m) => m.channel === `/meta/${step}`);
      if (reply?.successful !== true) {
        events.failed(`${step}-refused`, (reply?.error ?? text).slice(0, 120));
        return;
      }
      switch (step) {
        case 'handshake':
          clientId = reply.clientId ?? '';
          step = 'subscribe';
          send({ channel: '/meta/subscribe', clientId, subscription: channel });
          return;
        case 'subscribe':
          connect();
          return;
        case 'connect': {
          const payloads: string[] = [];
          for (const message of messages) {
            if (message.channel !== channel) continue;
            const t = message.data?.t;
            payloads.push(typeof t === 'string' ? t : JSON.stringify(t));
          }
          events.delivered(payloads);
          connect();
          return;
        }
      }
    });
    return {
      start: () => {
        step = 'handshake';
        send({
          channel: '/meta/handshake',
          version: '1.0',
          supportedConnectionTypes: ['long-polling'],
        });
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
