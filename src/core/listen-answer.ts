import type { Cursor } from './cursor.js';
import type { NotificationEvent } from './events.js';
import type { PushId } from './push-id.js';

/** One delivery: a notification to one of the listener's push IDs (the pair `(id, pushId)`). */
export interface Delivery {
  readonly event: NotificationEvent;
  readonly pushId: PushId;
}

/** The answer to a listen, the same for every transport (docs/protocol.md). */
export interface ListenAnswer {
  readonly deliveries: readonly Delivery[];
  readonly cursor: Cursor;
  readonly expired: readonly PushId[];
  /** This node is draining: listen again, elsewhere. */
  readonly reconnect?: boolean;
  /** The cursor is older than retention: the application should reload its state. */
  readonly reset?: boolean;
  /** A newer listen for some of these push IDs took over this one. */
  readonly replaced?: boolean;
}

interface Fragments {
  /** `{"id":"…","pushId":"` */
  readonly head: string;
  /** `","group":…,"payload":…}` */
  readonly tail: string;
}

// Fragments are computed once per notification and shared by every answer that carries it.
const fragmentCache = new WeakMap<NotificationEvent, Fragments>();

function fragmentsOf(event: NotificationEvent): Fragments {
  let fragments = fragmentCache.get(event);
  if (!fragments) {
    fragments = {
      head: `{"id":${JSON.stringify(event.id)},"pushId":"`,
      tail: `","group":${event.group === null ? 'null' : JSON.stringify(event.group)},"payload":${event.payloadJson}}`,
    };
    fragmentCache.set(event, fragments);
  }
  return fragments;
}

/** The wire form of one delivery; push IDs are URL-safe, so they need no escaping. */
export function deliveryJson(event: NotificationEvent, pushId: PushId): string {
  const { head, tail } = fragmentsOf(event);
  return head + pushId + tail;
}

export function listenAnswerJson(answer: ListenAnswer): string {
  let json = '{"notifications":[';
  answer.deliveries.forEach((delivery, i) => {
    if (i > 0) json += ',';
    json += deliveryJson(delivery.event, delivery.pushId);
  });
  json += `],"cursor":"${answer.cursor}","expired":${JSON.stringify(answer.expired)}`;
  if (answer.reconnect) json += ',"reconnect":true';
  if (answer.reset) json += ',"reset":true';
  if (answer.replaced) json += ',"replaced":true';
  return json + '}';
}

/**
 * Answers for every listener one notification wakes, serialized once: only the push IDs differ
 * between them, so each answer is `prefix + pushId + suffix` (or a short join for several).
 */
export class FanoutAnswer {
  private readonly prefix: string;
  private readonly between: string;
  private readonly suffix: string;

  constructor(event: NotificationEvent, cursor: Cursor) {
    const { head, tail } = fragmentsOf(event);
    this.prefix = '{"notifications":[' + head;
    this.between = tail + ',' + head;
    this.suffix = `${tail}],"cursor":"${cursor}","expired":[]}`;
  }

  for(pushIds: readonly PushId[]): string {
    return this.prefix + pushIds.join(this.between) + this.suffix;
  }
}
