/**
 * The re-poll loop every long-poll protocol of the bench shares: write the request, count it
 * armed, parse each answer, re-poll at once after an empty answer, `repollDelayMs` after a
 * delivery, and after a back-off when refused.
 */
import { ResponseParser } from '../lib/http-client.js';
import type { ListenerContext, ListenerEvents, ListenerWire } from './types.js';

/** What one answer came to: the payloads it delivered, a refusal to retry, or the end. */
export type LongPollOutcome = readonly string[] | 'refused' | 'stop';

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
      refusals += 1;
      events.retried(`status:${status}`, body.toString('utf8', 0, 120));
      setTimeout(poll, context.backoffMs(refusals));
      return;
    }
    refusals = 0;
    events.delivered(outcome);
    if (outcome.length > 0 && context.repollDelayMs > 0) setTimeout(poll, context.repollDelayMs);
    else poll();
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
