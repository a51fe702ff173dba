import { encodeCursor, type Cursor, type CursorPosition } from '../core/cursor.js';
import type { NotificationEvent } from '../core/events.js';
import { listenAnswerJson, type ListenAnswer } from '../core/listen-answer.js';
import { ListenerRegistry } from '../core/listener-registry.js';
import type { PushId } from '../core/push-id.js';
import type { AfterAnswer, ListenerConnection } from '../transports/listener-connection.js';
import { DeliveryStats, type DispatcherStats } from './delivery-stats.js';
import { HoldTimers } from './hold-timers.js';
import { ParkedListeners } from './parked-listeners.js';
import type { WaitingListener } from './waiting-listener.js';

export interface HeldListenersOptions {
  readonly holdMs: number;
  /** Most deliveries one answer carries (a parked listener collects no more). */
  readonly maxDeliveriesPerAnswer: number;
  /** How long an answered long-poll stays parked for its re-poll; 0: not at all. */
  readonly parkMs: number;
  readonly now: () => number;
  readonly observeLatency: ((seconds: number) => void) | undefined;
}

/**
 * The listeners this node holds and how each is answered: their registrations (the listener
 * registry), hold timers, parks between a long-poll's answer and its re-poll, the push IDs
 * released since the last liveness refresh, and the delivery counters. What an answer says is
 * the dispatcher's business; this decides what happens to the registration after it.
 */
export class HeldListeners {
  readonly registry = new ListenerRegistry<WaitingListener>();
  readonly stats: DispatcherStats;
  private readonly holds: HoldTimers;
  private readonly parking: ParkedListeners;
  private readonly counting: DeliveryStats;
  /** Push IDs whose listener was answered since the last `takeReleased`: their TTL starts now. */
  private released = new Set<PushId>();
  /** Push IDs whose hold changed since the last `takeChanged`; null until it is first called. */
  private changed: Set<PushId> | null = null;
  /**
   * Listeners parked since the last `takeChanged`: an array, not push IDs in the set, because a
   * park comes with every long-poll answer (one push per answer instead of hashing its IDs).
   */
  private parkedSince: WaitingListener[] = [];

  constructor(
    private readonly options: HeldListenersOptions,
    /** The last event seq the node has matched (the local tail's head). */
    private readonly headSeq: () => number,
  ) {
    this.parking = new ParkedListeners(options.parkMs, options.now, (listener) => {
      if (this.changed !== null) this.parkedSince.push(listener);
    });
    this.registry.onChange = (pushId) => {
      this.changed?.add(pushId);
    };
    this.holds = new HoldTimers(options.now());
    this.counting = new DeliveryStats(options.now, options.observeLatency);
    this.stats = this.counting.stats;
  }

  /** Waiting listeners (parked ones are not). */
  get waitingCount(): number {
    return this.registry.size - this.parking.count;
  }

  /** Push IDs currently held here; the node keeps them alive in the backplane. */
  heldPushIds(): PushId[] {
    // Parked listeners included: a busy long-poll is parked for a moment after every answer,
    // and skipping it at one refresh after another would let its push ID expire in use.
    return [...this.registry.pushIds()];
  }

  /**
   * Push IDs whose hold changed (registered, unregistered, parked, unparked) since the last call;
   * the first call answers every registered push ID and starts the bookkeeping, so a node that
   * never asks (no presence) pays nothing.
   */
  takeChanged(): PushId[] {
    const changed = this.changed === null ? [...this.registry.pushIds()] : [...this.changed];
    // A push ID listed twice is examined twice, which is harmless.
    for (const listener of this.parkedSince) changed.push(...listener.pushIds);
    this.changed = new Set();
    this.parkedSince = [];
    return changed;
  }

  /** How this node holds `pushId`: undefined (not at all), null (a live listen), or parked since. */
  holdOf(pushId: PushId): number | null | undefined {
    const listener = this.registry.get(pushId);
    if (listener === undefined) return undefined;
    return listener.parked ? listener.parkedAt : null;
  }

  /** Push IDs released since the last call; touching them makes their TTL count from release. */
  takeReleased(): PushId[] {
    const released = [...this.released];
    this.released = new Set();
    return released;
  }

  /** Every registered listener (parked ones included), once each. */
  all(): WaitingListener[] {
    const listeners = new Set<WaitingListener>();
    for (const pushId of this.registry.pushIds()) {
      const listener = this.registry.get(pushId);
      if (listener) listeners.add(listener);
    }
    return [...listeners];
  }

  /** A waiting listener has been matched against every event up to the tail's head. */
  cursorOf(listener: WaitingListener): Cursor {
    return encodeCursor(listener.epoch, Math.max(listener.cursorSeq, this.headSeq()));
  }

  /** The parked registration a re-poll with these push IDs and cursor can take over, or null. */
  parkedFor(pushIds: readonly PushId[], from: CursorPosition): WaitingListener | null {
    const first = pushIds[0];
    const listener = first === undefined ? undefined : this.registry.get(first);
    return this.parking.takesOver(listener, pushIds, from) ? listener : null;
  }

  /** Starts a registered listener's hold; its peer going away unregisters it. */
  hold(listener: WaitingListener, connection: ListenerConnection): void {
    if (listener.wheelSlot === 0) this.rearm(listener);
    connection.onClose(() => {
      this.unregister(listener);
    });
  }

  /**
   * `wait` keeps a streaming listener registered, matched up to the answer's cursor, with its
   * hold (heartbeat) timer started again; everything else ends the registration.
   */
  answer(listener: WaitingListener, answer: ListenAnswer, after: AfterAnswer): void {
    if (listener.parked) {
      // Its connection was answered already; the re-poll takes the full path.
      this.unregister(listener);
      return;
    }
    this.counting.answered();
    if (after === 'wait' && listener.connection.streaming) {
      listener.cursorSeq = Math.max(listener.cursorSeq, this.headSeq());
      this.rearm(listener);
      listener.connection.send(listenAnswerJson(answer), 'wait', answer.cursor);
      return;
    }
    if (after === 'wait' && this.parking.enabled) {
      listener.cursorSeq = Math.max(listener.cursorSeq, this.headSeq());
      this.parking.park(listener, listener.cursorSeq);
      listener.connection.send(listenAnswerJson(answer), 'relisten', answer.cursor);
      return;
    }
    this.unregister(listener);
    listener.connection.send(
      listenAnswerJson(answer),
      after === 'wait' ? 'relisten' : after,
      answer.cursor,
    );
  }

  /** An answer with deliveries (backlog, catch-up): counted, then answered like any other. */
  deliver(listener: WaitingListener, answer: ListenAnswer, after: AfterAnswer): void {
    this.counting.deliveries(answer.deliveries);
    this.answer(listener, answer, after);
  }

  /** Counts an answer with deliveries written without a registration (the backlog of a read). */
  countDeliveries(answer: ListenAnswer): void {
    this.counting.deliveries(answer.deliveries);
  }

  /** A notification for a parked listener waits for its re-poll (within one answer's worth). */
  collect(listener: WaitingListener, event: NotificationEvent, pushIds: readonly PushId[]): void {
    const { maxDeliveriesPerAnswer } = this.options;
    if (!this.parking.collect(listener, event, pushIds, maxDeliveriesPerAnswer)) {
      this.unregister(listener);
    }
  }

  /**
   * Answers a (not parked) listener that `event` reached with `json`, the fan-out's answer for
   * its `deliveries` push IDs, serialized once per event.
   */
  finish(
    listener: WaitingListener,
    json: string,
    cursor: Cursor,
    deliveries: number,
    event: NotificationEvent,
  ): void {
    this.counting.fanout(event, deliveries);
    if (listener.connection.streaming) {
      listener.cursorSeq = event.seq;
      this.rearm(listener);
      listener.connection.send(json, 'wait', cursor);
      return;
    }
    if (this.parking.enabled) {
      listener.cursorSeq = event.seq;
      this.parking.park(listener, event.seq);
    } else {
      this.unregister(listener);
    }
    listener.connection.send(json, 'relisten', cursor);
  }

  /** The re-poll takes the parked registration: answered at once with what it collected, or held. */
  resume(listener: WaitingListener, connection: ListenerConnection): void {
    if (isClosed(connection)) {
      this.unregister(listener);
      return;
    }
    const deliveries = listener.pending;
    this.parking.unpark(listener);
    listener.connection = connection;
    if (deliveries !== null) {
      this.deliver(listener, { deliveries, cursor: this.cursorOf(listener), expired: [] }, 'wait');
      return;
    }
    this.rearm(listener);
    connection.onClose(() => {
      this.unregister(listener);
    });
  }

  unregister(listener: WaitingListener): void {
    this.parking.unpark(listener);
    for (const pushId of listener.pushIds) this.released.add(pushId);
    this.registry.remove(listener);
    this.holds.cancel(listener);
  }

  /**
   * Lets parks past the park time go, and answers each listener whose hold is due with `answer`
   * (a streaming listener hears it as a heartbeat carrying its advanced cursor).
   */
  expire(now: number, onDue: (listener: WaitingListener) => void): void {
    this.parking.expire(now, (listener) => {
      this.unregister(listener);
    });
    this.holds.expire(now, onDue);
  }

  private rearm(listener: WaitingListener): void {
    const holdMs = listener.connection.holdMs ?? this.options.holdMs;
    this.holds.arm(listener, this.options.now() + holdMs);
  }
}

/** A call, not a property read: the flow analysis would take `closed` as still false. */
export function isClosed(connection: ListenerConnection): boolean {
  return connection.closed;
}
