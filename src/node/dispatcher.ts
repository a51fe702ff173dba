import type { Backplane, ClusterEventSink } from '../backplane/backplane.js';
import { encodeCursor, type Cursor, type CursorPosition } from '../core/cursor.js';
import { EpushError } from '../core/errors.js';
import { EventLog } from '../core/event-log.js';
import type { ClusterEvent, NotificationEvent } from '../core/events.js';
import {
  FanoutAnswer,
  listenAnswerJson,
  type Delivery,
  type ListenAnswer,
} from '../core/listen-answer.js';
import type { PushId } from '../core/push-id.js';
import type { AfterAnswer, ListenerConnection } from '../transports/listener-connection.js';
import type { DispatcherStats } from './delivery-stats.js';
import { HeldListeners, isClosed } from './held-listeners.js';
import { HoldTimers } from './hold-timers.js';
import { WaitingListener } from './waiting-listener.js';

export type { DispatcherStats } from './delivery-stats.js';

export interface DispatcherOptions {
  readonly holdMs: number;
  /** Most deliveries one answer carries; the listener re-polls for the rest at once. */
  readonly maxDeliveriesPerAnswer: number;
  readonly now?: () => number;
  /** Called once per answer that carries notifications, with the oldest one's latency. */
  readonly observeLatency?: (seconds: number) => void;
  /**
   * How long an answered long-poll stays registered ("parked") for its re-poll; 0 = not at
   * all. A re-poll with the answer's cursor and the same push IDs takes the registration back
   * without a backplane round trip; what arrived meanwhile is collected for it. The re-poll
   * does not touch its push IDs: keep this under the push-ID TTL, with released push IDs
   * touched meanwhile (EpushNode: at most half a TTL), so none can expire unseen.
   */
  readonly parkMs?: number;
}

const CATCH_UP_ATTEMPTS = 3;
/** How many recent events the node keeps to close the gap between a read and a registration. */
const TAIL_EVENTS = 50_000;

/**
 * The cluster protocol on one node: it turns the ordered cluster event stream into answers for
 * the listeners this node holds. Listen = read the backlog from the backplane, register, replay
 * what arrived meanwhile from the local tail, then wait; every event wakes exactly the listeners
 * of the push IDs it reaches.
 */
export class Dispatcher implements ClusterEventSink {
  readonly stats: DispatcherStats;
  private readonly held: HeldListeners;
  private readonly tail: EventLog;
  private readonly now: () => number;
  private draining = false;
  /** Serving needs the backplane reachable AND the delivery canary coming back. */
  private up = false;
  private reachable = false;
  private delivering = true;
  private ticker: NodeJS.Timeout | null = null;
  /** Listens between arrival and registration (or answer), for the connection count. */
  private pending = 0;
  private arrived = 0;
  private outages = 0;

  constructor(
    private readonly backplane: Backplane,
    private readonly options: DispatcherOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.tail = new EventLog({ retentionMs: 120_000, maxBytes: 64 << 20, maxEvents: TAIL_EVENTS });
    this.held = new HeldListeners(
      {
        holdMs: options.holdMs,
        maxDeliveriesPerAnswer: options.maxDeliveriesPerAnswer,
        parkMs: options.parkMs ?? 0,
        now: this.now,
        observeLatency: options.observeLatency,
      },
      () => this.tail.headSeq,
    );
    this.stats = this.held.stats;
  }

  /** Events received from the backplane so far (the delivery canary watches it move). */
  get eventsArrived(): number {
    return this.arrived;
  }

  /** Waiting listeners (SPEC: `epush_listeners`). */
  get listenerCount(): number {
    return this.held.waitingCount;
  }

  /** Open listen exchanges, waiting or being prepared. */
  get connectionCount(): number {
    return this.listenerCount + this.pending;
  }

  get isUp(): boolean {
    return this.up;
  }

  /** Times serving stopped (unreachable or not delivering), however briefly. */
  get outageCount(): number {
    return this.outages;
  }

  get isDelivering(): boolean {
    return this.delivering;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  /** Starts matching events after `headSeq` and the hold-timeout ticker. */
  start(headSeq: number): void {
    this.tail.restartAt(headSeq);
    this.ticker = setInterval(() => {
      this.expireHolds();
    }, HoldTimers.TICK_MS);
    this.ticker.unref();
  }

  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  /** Push IDs currently held here; the node keeps them alive in the backplane. */
  heldPushIds(): PushId[] {
    return this.held.heldPushIds();
  }

  /** Push IDs released since the last call; touching them makes their TTL count from release. */
  takeReleased(): PushId[] {
    return this.held.takeReleased();
  }

  /** Push IDs registered on this node (waiting or parked): its listening push IDs. */
  get heldPushIdCount(): number {
    return this.held.registry.pushIdCount;
  }

  /** Push IDs whose hold changed since the last call (see HeldListeners); presence. */
  takeChanged(): PushId[] {
    return this.held.takeChanged();
  }

  /** Not held here (undefined), held by a live listen (null), or parked since when; presence. */
  holdOf(pushId: PushId): number | null | undefined {
    return this.held.holdOf(pushId);
  }

  // --- ClusterEventSink ----------------------------------------------------------------------

  onEvent(event: ClusterEvent): void {
    this.arrived += 1;
    if (event.seq <= this.tail.headSeq) return; // already seen
    if (event.seq !== this.tail.headSeq + 1) {
      this.onGap(event.seq - 1);
    }
    this.tail.append(event, this.now());
    if (event.type === 'push-id-expired') {
      // The re-poll must hear it: let it take the full path, which reports it.
      const listener = this.held.registry.get(event.pushId);
      if (listener?.parked) this.held.unregister(listener);
    }
    if (event.type !== 'notification') {
      this.held.registry.apply(event);
      return;
    }
    let fanout: FanoutAnswer | null = null;
    let fanoutEpoch = '';
    let fanoutCursor = '' as Cursor;
    this.held.registry.visitWakeups(event.group, event.pushId, (listener, pushIds) => {
      // Its cursor may be ahead of this node's fan-out (another node answered it, and this one
      // lags behind the log): it already has this event.
      if (listener.cursorSeq >= event.seq) return;
      if (listener.parked) {
        this.held.collect(listener, event, pushIds);
        return;
      }
      if (fanout === null || listener.epoch !== fanoutEpoch) {
        fanoutEpoch = listener.epoch;
        fanoutCursor = encodeCursor(fanoutEpoch, event.seq);
        fanout = new FanoutAnswer(event, fanoutCursor);
      }
      this.held.finish(listener, fanout.for(pushIds), fanoutCursor, pushIds.length, event);
    });
  }

  onGap(resumeSeq: number): void {
    // Events were lost on the way here; the log still has them. Send every waiting listener
    // back to the log with its own cursor, which it re-reads on the next listen.
    this.tail.restartAt(resumeSeq);
    for (const listener of this.held.all()) {
      this.held.answer(
        listener,
        { deliveries: [], cursor: this.held.cursorOf(listener), expired: [] },
        'relisten',
      );
    }
  }

  onAvailability(up: boolean): void {
    this.reachable = up;
    this.updateUp();
  }

  /** The node's delivery canary: false when probes stop coming back through the backplane. */
  setDelivering(delivering: boolean): void {
    this.delivering = delivering;
    this.updateUp();
  }

  private updateUp(): void {
    const up = this.reachable && this.delivering;
    if (up === this.up) return;
    this.up = up;
    if (!up) {
      this.outages++;
      for (const listener of this.held.all()) {
        this.held.answer(
          listener,
          { deliveries: [], cursor: this.held.cursorOf(listener), expired: [], reconnect: true },
          'end',
        );
      }
    }
  }

  // --- listening -----------------------------------------------------------------------------

  /**
   * Serves one listen: answers at once when there is something (backlog, expired push IDs,
   * reset, draining), otherwise holds it until a notification or the hold time.
   */
  async listen(
    pushIds: readonly PushId[],
    from: CursorPosition | null,
    connection: ListenerConnection,
  ): Promise<void> {
    this.pending += 1;
    try {
      await this.prepare(pushIds, from, connection);
    } finally {
      this.pending -= 1;
    }
  }

  private async prepare(
    pushIds: readonly PushId[],
    from: CursorPosition | null,
    connection: ListenerConnection,
  ): Promise<void> {
    this.requireBackplane();
    if (this.draining) {
      const cursor = from
        ? encodeCursor(from.epoch, from.seq)
        : (await this.backplane.head()).cursor;
      send(connection, { deliveries: [], cursor, expired: [], reconnect: true }, 'end');
      return;
    }
    if (from !== null && !connection.streaming && !this.refusesListeners()) {
      const parked = this.held.parkedFor(pushIds, from);
      if (parked !== null) {
        this.held.resume(parked, connection);
        return;
      }
    }
    const expired = await this.backplane.touch(pushIds);
    const live = expired.length === 0 ? pushIds : pushIds.filter((id) => !expired.includes(id));
    let position = from;
    for (let attempt = 0; attempt < CATCH_UP_ATTEMPTS; attempt++) {
      const snapshot = await this.backplane.readForListener(
        position,
        live,
        this.options.maxDeliveriesPerAnswer,
      );
      if (connection.closed) return;
      if (snapshot.kind === 'reset') {
        send(
          connection,
          { deliveries: [], cursor: snapshot.cursor, expired, reset: true },
          'relisten',
        );
        return;
      }
      if (snapshot.deliveries.length > 0 || expired.length > 0 || live.length === 0) {
        const answer = { deliveries: snapshot.deliveries, cursor: snapshot.cursor, expired };
        this.held.countDeliveries(answer);
        send(connection, answer, 'relisten');
        return;
      }
      if (this.refusesListeners()) {
        // Draining, or the backplane went away during the read: try another node.
        send(
          connection,
          { deliveries: [], cursor: snapshot.cursor, expired, reconnect: true },
          'end',
        );
        return;
      }
      const epoch = snapshot.cursor.slice(0, snapshot.cursor.indexOf('-'));
      const listener = new WaitingListener(live, snapshot.cursorSeq, epoch, connection);
      for (const displaced of this.held.registry.add(listener, snapshot.groups)) {
        this.held.answer(
          displaced,
          { deliveries: [], cursor: this.held.cursorOf(displaced), expired: [], replaced: true },
          'end',
        );
      }
      const caughtUp = this.catchUp(listener);
      if (caughtUp === 'answered') return;
      if (caughtUp === 'waiting') {
        // A streaming peer may have gone while taking the catch-up answer (too slow).
        if (isClosed(connection)) this.held.unregister(listener);
        else this.held.hold(listener, connection);
        return;
      }
      // The local tail no longer reaches back to the snapshot: read again from the log.
      this.held.registry.remove(listener);
      position = { epoch, seq: snapshot.cursorSeq };
    }
    const head = await this.backplane.head();
    send(connection, { deliveries: [], cursor: head.cursor, expired: [] }, 'relisten');
  }

  /**
   * Replays events that arrived between the snapshot and the registration; `gone` when the
   * local tail no longer reaches back that far.
   */
  private catchUp(listener: WaitingListener): 'answered' | 'waiting' | 'gone' {
    // A snapshot may run ahead of the fan-out; events up to it were already matched there.
    if (listener.cursorSeq >= this.tail.headSeq) return 'waiting';
    const read = this.tail.readSince(listener.cursorSeq);
    if (read.kind === 'gone') return 'gone';
    const deliveries: Delivery[] = [];
    const mine = new Set(listener.pushIds);
    for (const event of read.events) {
      if (event.type !== 'notification') {
        if (mine.has(event.pushId)) this.held.registry.apply(event);
        continue;
      }
      for (const pushId of this.reachedBy(event, listener)) deliveries.push({ event, pushId });
    }
    listener.cursorSeq = this.tail.headSeq;
    if (deliveries.length > 0) {
      const cursor = this.held.cursorOf(listener);
      this.held.deliver(listener, { deliveries, cursor, expired: [] }, 'wait');
      return listener.connection.streaming ? 'waiting' : 'answered';
    }
    return 'waiting';
  }

  /** The listener's push IDs a notification reaches, by the registry's current membership. */
  private reachedBy(event: NotificationEvent, listener: WaitingListener): PushId[] {
    if (event.pushId !== null) return listener.pushIds.includes(event.pushId) ? [event.pushId] : [];
    const woken = this.held.registry.wakeupsFor(event.group, null)?.get(listener);
    return woken ?? [];
  }

  /** Answers every waiting listener with `reconnect` and refuses new ones. */
  drain(): void {
    this.draining = true;
    for (const listener of this.held.all()) {
      this.held.answer(
        listener,
        { deliveries: [], cursor: this.held.cursorOf(listener), expired: [], reconnect: true },
        'end',
      );
    }
  }

  // --- internals -----------------------------------------------------------------------------

  /** New listens need the backplane: without it they get 503 and back off (no hot re-polls). */
  private requireBackplane(): void {
    if (!this.up) {
      throw new EpushError(
        'backplane_unavailable',
        'The backplane is unreachable; listen again shortly.',
        {
          'retry-after': '1',
        },
      );
    }
  }

  /** Draining or cut off from the backplane: listeners are sent elsewhere. */
  private refusesListeners(): boolean {
    return this.draining || !this.up;
  }

  private expireHolds(): void {
    this.held.expire(this.now(), (listener) => {
      // A streaming listener hears this as a heartbeat carrying its advanced cursor.
      const cursor = this.held.cursorOf(listener);
      this.held.answer(listener, { deliveries: [], cursor, expired: [] }, 'wait');
    });
  }
}

function send(connection: ListenerConnection, answer: ListenAnswer, after: AfterAnswer): void {
  connection.send(listenAnswerJson(answer), after, answer.cursor);
}
