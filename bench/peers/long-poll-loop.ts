/**
 * The re-poll loop every long-poll protocol of the bench shares: write the request, count it
 * armed, parse each answer, re-poll at once after an empty answer, `repollDelayMs` after a
 * delivery, and after a back-off when refused. A refusal, or an answer that sends the listener
 * away, is offered to the pool first (`sentAway`): a pool that moves its listeners takes it over.
 */
import { ResponseParser } from '../lib/http-client.js';
import type { ListenerContext, ListenerEvents, ListenerWire } from './types.js';

/** An answer that delivered: its payloads, their ids, and `away` when it also sent it away. */
export interface LongPollAnswer {
  readonly payloads: readonly string[];
  readonly ids?: readonly (string | null)[];
  /** Why the server sent the listener away (e.g. an epush `reconnect: true`). */
  readonly away?: string;
}

/** What one answer came to: what it delivered, a refusal to retry, or the end. */
export type LongPollOutcome = readonly string[] | LongPollAnswer | 'refused' | 'stop';

export function longPollLoop(
  context: ListenerContext,
  events: ListenerEvents,
  write: (data: string | Buffer) => void,
  /** The next poll's request text (it may carry the resume token of the last answer). */
  request: () => string,
  /** Reads one answer; a refusal is reported here as `retried` by the loop. */
  answer: (status: number, body: Buffer, head: string) => LongPollOutcome,
): ListenerWire {
  let stopped = false;
  let refusals = 0;
  const poll = (): void => {
    if (stopped) return;
    write(request());
    events.armed();
  };
  const parser = new ResponseParser((status, body, _close, head) => {
    events.answered();
    const outcome = answer(status, body, head);
    if (outcome === 'stop') return;
    if (outcome === 'refused') {
      const kind = `status:${status}`;
      const detail = body.toString('utf8', 0, 120);
      if (events.sentAway(kind, detail)) {
        stopped = true;
        return;
      }
      refusals += 1;
      events.retried(kind, detail);
      setTimeout(poll, context.backoffMs(refusals));
      return;
    }
    refusals = 0;
    const delivered: LongPollAnswer = 'payloads' in outcome ? outcome : { payloads: outcome };
    events.delivered(delivered.payloads, delivered.ids);
    if (delivered.away !== undefined && events.sentAway('reconnect', delivered.away)) {
      stopped = true;
      return;
    }
    if (delivered.payloads.length > 0 && context.repollDelayMs > 0) {
      setTimeout(poll, context.repollDelayMs);
    } else poll();
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
}
