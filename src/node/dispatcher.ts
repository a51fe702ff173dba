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
import { ListenerRegistry } from '../core/listener-registry.js';
import type { PushId } from '../core/push-id.js';
import { TimerWheel } from '../core/timer-wheel.js';
import type { AfterAnswer, ListenerConnection } from '../transports/listener-connection.js';

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

export interface DispatcherStats {
  delivered: number;
  answers: number;
  /** Sum of publish→answer latency (ms) and its count, for the first metrics. */
  latencyMsSum: number;
}

/** A listen waiting for a notification on this node. */
class WaitingListener {
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

const CATCH_UP_ATTEMPTS = 3;
/** Resolution of the hold timer wheel. */
const WHEEL_MS = 250;
/** How many recent events the node keeps to close the gap between a read and a registration. */
const TAIL_EVENTS = 50_000;

/**
 * The cluster protocol on one node: it turns the ordered cluster event stream into answers for
 * the listeners this node holds. Listen = read the backlog from the backplane, register, replay
 * what arrived meanwhile from the local tail, then wait; every event wakes exactly the listeners
 * of the push IDs it reaches.
 */
export class Dispatcher implements ClusterEventSink {
  readonly stats: DispatcherStats = { delivered: 0, answers: 0, latencyMsSum: 0 };
  private readonly registry = new ListenerRegistry<WaitingListener>();
  private readonly wheel: TimerWheel<WaitingListener>;
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
  /** Push IDs whose listener was answered since the last `takeReleased`: their TTL starts now. */
  private released = new Set<PushId>();
  private parkedCount = 0;
  private arrived = 0;
  private readonly parkMs: number;
  /** Parked listeners in park order (one entry per park; stale entries are skipped). */
  private parkQueue: WaitingListener[] = [];
  private parkTimes: number[] = [];
  private parkQueueHead = 0;

  constructor(
    private readonly backplane: Backplane,
    private readonly options: DispatcherOptions,
  ) {
    this.now = options.now ?? Date.now;
    this.parkMs = options.parkMs ?? 0;
    this.wheel = new TimerWheel(WHEEL_MS, this.now());
    this.tail = new EventLog({ retentionMs: 120_000, maxBytes: 64 << 20, maxEvents: TAIL_EVENTS });
  }

  /** Events received from the backplane so far (the delivery canary watches it move). */
  get eventsArrived(): number {
    return this.arrived;
  }

  /** Waiting listeners (SPEC: `epush_listeners`). */
  get listenerCount(): number {
    return this.registry.size - this.parkedCount;
  }

  /** Open listen exchanges, waiting or being prepared. */
  get connectionCount(): number {
    return this.listenerCount + this.pending;
  }

  get isUp(): boolean {
    return this.up;
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
    }, 250);
    this.ticker.unref();
  }

  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    this.ticker = null;
  }

  /** Push IDs currently held here; the node keeps them alive in the backplane. */
  heldPushIds(): PushId[] {
    // Parked listeners included: a busy long-poll is parked for a moment after every answer,
    // and skipping it at one refresh after another would let its push ID expire in use.
    return [...this.registry.pushIds()];
  }

  /** Push IDs released since the last call; touching them makes their TTL count from release. */
  takeReleased(): PushId[] {
    const released = [...this.released];
    this.released = new Set();
    return released;
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
      const listener = this.registry.get(event.pushId);
      if (listener?.parked) this.unregister(listener);
    }
    if (event.type !== 'notification') {
      this.registry.apply(event);
      return;
    }
    let fanout: FanoutAnswer | null = null;
    let fanoutEpoch = '';
    let fanoutCursor = '' as Cursor;
    this.registry.visitWakeups(event.group, event.pushId, (listener, pushIds) => {
      // Its cursor may be ahead of this node's fan-out (another node answered it, and this one
      // lags behind the log): it already has this event.
      if (listener.cursorSeq >= event.seq) return;
      if (listener.parked) {
        this.collect(listener, event, pushIds);
        return;
      }
      if (fanout === null || listener.epoch !== fanoutEpoch) {
        fanoutEpoch = listener.epoch;
        fanoutCursor = encodeCursor(fanoutEpoch, event.seq);
        fanout = new FanoutAnswer(event, fanoutCursor);
      }
      this.finish(listener, fanout.for(pushIds), fanoutCursor, pushIds.length, event);
    });
  }

  onGap(resumeSeq: number): void {
    // Events were lost on the way here; the log still has them. Send every waiting listener
    // back to the log with its own cursor, which it re-reads on the next listen.
    this.tail.restartAt(resumeSeq);
    for (const listener of this.allWaiting()) {
      this.answer(
        listener,
        { deliveries: [], cursor: this.cursorOf(listener), expired: [] },
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
      for (const listener of this.allWaiting()) {
        this.answer(
          listener,
          { deliveries: [], cursor: this.cursorOf(listener), expired: [], reconnect: true },
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
      const parked = this.parkedFor(pushIds, from);
      if (parked !== null) {
        this.resume(parked, connection);
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
        this.countDeliveries(snapshot.deliveries);
        send(
          connection,
          { deliveries: snapshot.deliveries, cursor: snapshot.cursor, expired },
          'relisten',
        );
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
      for (const displaced of this.registry.add(listener, snapshot.groups)) {
        this.answer(
          displaced,
          { deliveries: [], cursor: this.cursorOf(displaced), expired: [], replaced: true },
          'end',
        );
      }
      const caughtUp = this.catchUp(listener);
      if (caughtUp === 'answered') return;
      if (caughtUp === 'waiting') {
        // A streaming peer may have gone while taking the catch-up answer (too slow).
        if (isClosed(connection)) {
          this.drop(listener);
          return;
        }
        if (listener.wheelSlot === 0) this.arm(listener, this.now() + this.options.holdMs);
        connection.onClose(() => {
          this.drop(listener);
        });
        return;
      }
      // The local tail no longer reaches back to the snapshot: read again from the log.
      this.registry.remove(listener);
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
        if (mine.has(event.pushId)) this.registry.apply(event);
        continue;
      }
      for (const pushId of this.reachedBy(event, listener)) deliveries.push({ event, pushId });
    }
    listener.cursorSeq = this.tail.headSeq;
    if (deliveries.length > 0) {
      this.countDeliveries(deliveries);
      this.answer(listener, { deliveries, cursor: this.cursorOf(listener), expired: [] }, 'wait');
      return listener.connection.streaming ? 'waiting' : 'answered';
    }
    return 'waiting';
  }

  /** The listener's push IDs a notification reaches, by the registry's current membership. */
  private reachedBy(event: NotificationEvent, listener: WaitingListener): PushId[] {
    if (event.pushId !== null) return listener.pushIds.includes(event.pushId) ? [event.pushId] : [];
    const woken = this.registry.wakeupsFor(event.group, null)?.get(listener);
    return woken ?? [];
  }

  /** Answers every waiting listener with `reconnect` and refuses new ones. */
  drain(): void {
    this.draining = true;
    for (const listener of this.allWaiting()) {
      this.answer(
        listener,
        { deliveries: [], cursor: this.cursorOf(listener), expired: [], reconnect: true },
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
    const now = this.now();
    this.expireParked(now);
    for (const listener of this.wheel.advance(now)) {
      listener.wheelSlot = 0;
      if (listener.parked) continue; // its park queue entry times it
      if (listener.deadline > now) {
        // Armed lazily: this slot was set for an earlier deadline.
        listener.wheelSlot = this.wheel.schedule(listener, listener.deadline);
        continue;
      }
      // A streaming listener hears this as a heartbeat carrying its advanced cursor.
      this.answer(
        listener,
        { deliveries: [], cursor: this.cursorOf(listener), expired: [] },
        'wait',
      );
    }
  }

  /** A waiting listener has been matched against every event up to the tail's head. */
  private cursorOf(listener: WaitingListener): Cursor {
    return encodeCursor(listener.epoch, Math.max(listener.cursorSeq, this.tail.headSeq));
  }

  /**
   * `wait` keeps a streaming listener registered, matched up to the answer's cursor, with its
   * hold (heartbeat) timer started again; everything else ends the registration.
   */
  private answer(listener: WaitingListener, answer: ListenAnswer, after: AfterAnswer): void {
    if (listener.parked) {
      // Its connection was answered already; the re-poll takes the full path.
      this.unregister(listener);
      return;
    }
    this.stats.answers += 1;
    if (after === 'wait' && listener.connection.streaming) {
      listener.cursorSeq = Math.max(listener.cursorSeq, this.tail.headSeq);
      this.rearm(listener);
      listener.connection.send(listenAnswerJson(answer), 'wait', answer.cursor);
      return;
    }
    if (after === 'wait' && this.parkMs > 0) {
      listener.cursorSeq = Math.max(listener.cursorSeq, this.tail.headSeq);
      this.park(listener, listener.cursorSeq);
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

  private rearm(listener: WaitingListener): void {
    this.arm(listener, this.now() + this.options.holdMs);
  }

  /**
   * Sets the hold deadline. A slot already in the wheel that fires no later is kept and re-armed
   * when it fires, so answering and re-polling cost no wheel operation in the steady state.
   */
  private arm(listener: WaitingListener, deadline: number): void {
    listener.deadline = deadline;
    if (listener.wheelSlot !== 0) {
      if (listener.wheelSlot * WHEEL_MS <= deadline) return;
      this.wheel.cancel(listener, listener.wheelSlot);
    }
    listener.wheelSlot = this.wheel.schedule(listener, deadline);
  }

  /** Unregisters listeners parked for longer than the park time. */
  private expireParked(now: number): void {
    const queue = this.parkQueue;
    const times = this.parkTimes;
    let head = this.parkQueueHead;
    while (head < queue.length && (times[head] as number) + this.parkMs <= now) {
      const listener = queue[head] as WaitingListener;
      // An entry is stale when its listener was taken back (and maybe parked again) since.
      if (listener.parked && listener.parkedAt === times[head]) this.unregister(listener);
      head += 1;
    }
    if (head === queue.length) {
      this.parkQueue = [];
      this.parkTimes = [];
      head = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      this.parkQueue = queue.slice(head);
      this.parkTimes = times.slice(head);
      head = 0;
    }
    this.parkQueueHead = head;
  }

  private finish(
    listener: WaitingListener,
    json: string,
    cursor: Cursor,
    deliveries: number,
    event: NotificationEvent,
  ): void {
    this.stats.answers += 1;
    this.stats.delivered += deliveries;
    const latencyMs = this.now() - event.publishedAt;
    this.stats.latencyMsSum += latencyMs * deliveries;
    this.options.observeLatency?.(latencyMs / 1000);
    if (listener.connection.streaming) {
      listener.cursorSeq = event.seq;
      this.rearm(listener);
      listener.connection.send(json, 'wait', cursor);
      return;
    }
    if (this.parkMs > 0) {
      listener.cursorSeq = event.seq;
      this.park(listener, event.seq);
    } else {
      this.unregister(listener);
    }
    listener.connection.send(json, 'relisten', cursor);
  }

  /**
   * Keeps an answered long-poll registered for its re-poll. Its push IDs are not touched here:
   * they were touched within a third of a TTL, a park lasts at most half of one, and a park that
   * ends without a re-poll releases them (so a push ID expires at most one park time later than
   * one TTL after its answer; touching at every answer cost a backplane write per delivery).
   */
  private park(listener: WaitingListener, answeredSeq: number): void {
    listener.parked = true;
    listener.parkedSeq = answeredSeq;
    listener.pending = null;
    this.parkedCount += 1;
    listener.parkedAt = this.now();
    this.parkQueue.push(listener);
    this.parkTimes.push(listener.parkedAt);
  }

  /** A parked listener's registration, when this re-poll can take it over. */
  private parkedFor(pushIds: readonly PushId[], from: CursorPosition): WaitingListener | null {
    const first = pushIds[0];
    const listener = first === undefined ? undefined : this.registry.get(first);
    if (
      listener === undefined ||
      !listener.parked ||
      listener.parkedSeq !== from.seq ||
      listener.epoch !== from.epoch ||
      listener.pushIds.length !== pushIds.length
    ) {
      return null;
    }
    for (let i = 1; i < pushIds.length; i++) {
      if (listener.pushIds[i] !== pushIds[i]) return null;
    }
    return listener;
  }

  /** The re-poll takes the parked registration: answered at once with what it collected, or held. */
  private resume(listener: WaitingListener, connection: ListenerConnection): void {
    if (isClosed(connection)) {
      this.unregister(listener);
      return;
    }
    listener.parked = false;
    this.parkedCount -= 1;
    listener.connection = connection;
    const deliveries = listener.pending;
    listener.pending = null;
    if (deliveries !== null) {
      this.countDeliveries(deliveries);
      this.answer(listener, { deliveries, cursor: this.cursorOf(listener), expired: [] }, 'wait');
      return;
    }
    this.arm(listener, this.now() + this.options.holdMs);
    connection.onClose(() => {
      this.drop(listener);
    });
  }

  /** A notification for a parked listener waits for its re-poll (within one answer's worth). */
  private collect(
    listener: WaitingListener,
    event: NotificationEvent,
    pushIds: readonly PushId[],
  ): void {
    const pending = (listener.pending ??= []);
    for (const pushId of pushIds) pending.push({ event, pushId });
    listener.cursorSeq = event.seq;
    if (pending.length > this.options.maxDeliveriesPerAnswer) this.unregister(listener);
  }

  private drop(listener: WaitingListener): void {
    this.unregister(listener);
  }

  private unregister(listener: WaitingListener): void {
    if (listener.parked) {
      listener.parked = false;
      listener.pending = null;
      this.parkedCount -= 1;
    }
    for (const pushId of listener.pushIds) this.released.add(pushId);
    this.registry.remove(listener);
    if (listener.wheelSlot !== 0) this.wheel.cancel(listener, listener.wheelSlot);
    listener.wheelSlot = 0;
  }

  private countDeliveries(deliveries: readonly Delivery[]): void {
    if (deliveries.length === 0) return;
    const now = this.now();
    this.stats.delivered += deliveries.length;
    for (const { event } of deliveries) this.stats.latencyMsSum += now - event.publishedAt;
    this.options.observeLatency?.((now - (deliveries[0]?.event.publishedAt ?? now)) / 1000);
  }

  private allWaiting(): WaitingListener[] {
    const listeners = new Set<WaitingListener>();
    for (const pushId of this.registry.pushIds()) {
      const listener = this.registry.get(pushId);
      if (listener) listeners.add(listener);
    }
    return [...listeners];
  }
}

/** A call, not a property read: the flow analysis would take `closed` as still false. */
function isClosed(connection: ListenerConnection): boolean {
  return connection.closed;
}

function send(connection: ListenerConnection, answer: ListenAnswer, after: AfterAnswer): void {
  connection.send(listenAnswerJson(answer), after, answer.cursor);
}
