import type { Delivery } from '../core/listen-answer.js';
import type { PushId } from '../core/push-id.js';
import type { ListenerConnection } from '../transports/listener-connection.js';

/**
 * A listen registered on this node: waiting for a notification, or parked (an answered
 * long-poll kept registered for its re-poll). Plain fields, one object per registration; the
 * dispatcher, its hold timers and its parked listeners read and write them.
 */
export class WaitingListener {
  wheelSlot = 0;
  /** When the hold (or heartbeat) is due; the wheel slot may be earlier and is then re-armed. */
  deadline = 0;
  /** When it was last parked. */
  parkedAt = 0;
  /** Answered long-poll kept registered until its re-poll; `connection` is the answered one. */
  parked = false;
  /** While parked: the seq of the cursor in the answer, which the re-poll must bring back. */
  parkedSeq = 0;
  /** While parked: what reached it since the answer, for the re-poll. */
  pending: Delivery[] | null = null;
  constructor(
    readonly pushIds: readonly PushId[],
    /** Last event seq this listener has been matched against. */
    public cursorSeq: number,
    readonly epoch: string,
    public connection: ListenerConnection,
  ) {}
}
