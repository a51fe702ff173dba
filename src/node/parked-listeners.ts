import type { CursorPosition } from '../core/cursor.js';
import type { NotificationEvent } from '../core/events.js';
import type { PushId } from '../core/push-id.js';
import type { WaitingListener } from './waiting-listener.js';

/**
 * Answered long-polls kept registered for their re-poll ("parked", docs/architecture.md), in
 * park order so that the ones past the park time can be let go from the front of one queue.
 */
export class ParkedListeners {
  /** Listeners parked now (not waiting listeners, for `epush_listeners`). */
  count = 0;
  /** One entry per park, with its time; entries of listeners taken back since are stale. */
  private queue: WaitingListener[] = [];
  private times: number[] = [];
  private head = 0;

  constructor(
    /** How long a park lasts; 0: answered long-polls are not parked at all. */
    readonly parkMs: number,
    private readonly now: () => number,
    /**
     * Told each listener parked (presence follows holds through it). Not told of an unpark: a
     * re-poll taking the listener back changes no hold, and a removal is the registry's news.
     */
    private readonly onPark: (listener: WaitingListener) => void = () => undefined,
  ) {}

  get enabled(): boolean {
    return this.parkMs > 0;
  }

  /**
   * Keeps an answered long-poll registered for its re-poll. Its push IDs are not touched here:
   * they were touched within a third of a TTL, a park lasts at most half of one, and a park that
   * ends without a re-poll releases them (so a push ID expires at most one park time later than
   * one TTL after its answer; touching at every answer cost a backplane write per delivery).
   */
  park(listener: WaitingListener, answeredSeq: number): void {
    listener.parked = true;
    listener.parkedSeq = answeredSeq;
    listener.pending = null;
    this.count += 1;
    listener.parkedAt = this.now();
    this.queue.push(listener);
    this.times.push(listener.parkedAt);
    this.onPark(listener);
  }

  /** Ends a park (a re-poll took it, or it is unregistered); what it collected is dropped. */
  unpark(listener: WaitingListener): void {
    if (!listener.parked) return;
    listener.parked = false;
    listener.pending = null;
    this.count -= 1;
  }

  /** Whether a re-poll with these push IDs and cursor can take `listener`'s registration over. */
  takesOver(
    listener: WaitingListener | undefined,
    pushIds: readonly PushId[],
    from: CursorPosition,
  ): listener is WaitingListener {
    if (
      listener === undefined ||
      !listener.parked ||
      listener.parkedSeq !== from.seq ||
      listener.epoch !== from.epoch ||
      listener.pushIds.length !== pushIds.length
    ) {
      return false;
    }
    for (let i = 1; i < pushIds.length; i++) {
      if (listener.pushIds[i] !== pushIds[i]) return false;
    }
    return true;
  }

  /**
   * A notification for a parked listener waits for its re-poll. False when more than one
   * answer's worth (`max` deliveries) has piled up: the caller then lets the listener go.
   */
  collect(
    listener: WaitingListener,
    event: NotificationEvent,
    pushIds: readonly PushId[],
    max: number,
  ): boolean {
    const pending = (listener.pending ??= []);
    for (const pushId of pushIds) pending.push({ event, pushId });
    listener.cursorSeq = event.seq;
    return pending.length <= max;
  }

  /** Runs `onExpired` for each listener parked for longer than the park time. */
  expire(now: number, onExpired: (listener: WaitingListener) => void): void {
    const queue = this.queue;
    const times = this.times;
    let head = this.head;
    while (head < queue.length && (times[head] as number) + this.parkMs <= now) {
      const listener = queue[head] as WaitingListener;
      // An entry is stale when its listener was taken back (and maybe parked again) since.
      if (listener.parked && listener.parkedAt === times[head]) onExpired(listener);
      head += 1;
    }
    if (head === queue.length) {
      this.queue = [];
      this.times = [];
      head = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      this.queue = queue.slice(head);
      this.times = times.slice(head);
      head = 0;
    }
    this.head = head;
  }
}
