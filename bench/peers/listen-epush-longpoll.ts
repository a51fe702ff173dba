/**
 * epush long-poll (`POST /push/listen`): one listen per request, re-polled after each answer with
 * the answer's cursor, on the same keep-alive socket. The cursor is the listener's resume token:
 * a reconnected listener listens on from it, as the browser client does.
 */
import { listenRequestText } from '../lib/http-client.js';
import { longPollLoop } from './long-poll-loop.js';
import type { ListenerContext, ListenerEvents, ListenerProtocol } from './types.js';

/** The shape of an epush cursor (`<epoch>-<seq>`, base 36). */
const CURSOR = /^[a-z0-9]{1,24}-[0-9a-z]{1,11}$/;

interface EpushAnswer {
  readonly notifications?: readonly {
    readonly id?: unknown;
    readonly pushId?: unknown;
    readonly payload?: unknown;
  }[];
  readonly cursor?: unknown;
  readonly expired?: unknown;
  readonly reconnect?: boolean;
  readonly replaced?: boolean;
  readonly reset?: boolean;
}

/** What one epush answer delivered, and whether it ends this listen (`reconnect`, `replaced`). */
export interface EpushPayloads {
  readonly payloads: string[];
  /** The notifications' ids, index-aligned with `payloads` (null when absent). */
  readonly ids: (string | null)[];
  readonly reconnect: boolean;
  readonly ended: boolean;
}

/**
 * The payloads of one epush answer (long-poll body, SSE data, WebSocket message), as strings
 * (JSON text unless the payload was a string). Checks it on the way: every notification is for
 * this listener's push ID and the cursor is well-formed (a `failed`, as is JSON that does not
 * parse); keeps the cursor as the resume token; notes `reconnect`, `replaced`, `reset` and
 * `expired`. Null when the answer is unusable.
 */
export function parseEpushAnswer(
  text: string,
  context: ListenerContext,
  events: ListenerEvents,
): EpushPayloads | null {
  let answer: EpushAnswer;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'object' || parsed === null) throw new Error('not an object');
    answer = parsed;
  } catch {
    events.failed('bad-json', text.slice(0, 120));
    return null;
  }
  if (typeof answer.cursor === 'string' && CURSOR.test(answer.cursor)) {
    context.resume.set('cursor', answer.cursor);
  } else {
    events.failed('bad-cursor', JSON.stringify(answer.cursor));
    return null;
  }
  if (answer.reconnect === true) events.noted('reconnectAnswers');
  if (answer.replaced === true) events.noted('replacedAnswers');
  if (answer.reset === true) events.noted('resetAnswers');
  if (Array.isArray(answer.expired) && answer.expired.length > 0) events.noted('expiredAnswers');
  const payloads: string[] = [];
  const ids: (string | null)[] = [];
  for (const n of answer.notifications ?? []) {
    if (n.pushId !== context.identity) {
      events.failed('wrong-push-id', String(n.pushId));
      return null;
    }
    payloads.push(typeof n.payload === 'string' ? n.payload : JSON.stringify(n.payload));
    ids.push(typeof n.id === 'string' ? n.id : null);
  }
  const reconnect = answer.reconnect === true;
  return { payloads, ids, reconnect, ended: reconnect || answer.replaced === true };
}

/** The listener's last cursor, or null for "from now" (its first listen). */
export function resumeCursor(context: ListenerContext): string | null {
  return context.resume.get('cursor') ?? null;
}

export const epushLongPoll: ListenerProtocol = {
  name: 'epush long-poll',
  resumeToken: "the answer's `cursor`, sent back in the next `POST /push/listen` body",
  streaming: false,
  open(context, events, write) {
    return longPollLoop(
      context,
      events,
      write,
      () => listenRequestText(context.hostHeader, context.identity, resumeCursor(context)),
      (status, body) => {
        if (status !== 200) return 'refused';
        const answer = parseEpushAnswer(body.toString('utf8'), context, events);
        if (answer === null) return 'stop';
        const { payloads, ids } = answer;
        // `reconnect`: this node is going away; a pool that moves listeners takes it elsewhere.
        return answer.reconnect ? { payloads, ids, away: 'reconnect' } : { payloads, ids };
      },
    );
  },
};
