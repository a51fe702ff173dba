/**
 * The failover bench's listeners, held by the bench's one listener pool (bench/peers/
 * listener-pool.ts) with moves: listener i starts on node i mod k and, when its connection fails
 * or the node sends it away (`reconnect`, nchan's 410), moves to the next node of its list and
 * listens on from its last position there, like the browser client behind a load balancer.
 *
 * This file keeps what the scenario measures from the pool's events: what each listener received
 * and when, its moves, and the figures around one node stop (`markStop`).
 */
import { performance } from 'node:perf_hooks';
import { ListenerPool, type PoolMove } from '../peers/listener-pool.js';
import { DEFAULT_HINTS } from '../peers/types.js';
import type { Cluster } from './cluster.js';

export interface RetryPolicy {
  /** 0: first retry at once, then 100 ms doubling to 2 s. > 0: full jitter, uniform in [0, J·2^k) up to 30 s. */
  readonly jitterMs: number;
  /** A listen with no answer after this long is abandoned (counted as a failure). */
  readonly requestTimeoutMs: number;
}

/** Delay before a move after `failures` moves in a row without a good answer. */
export function retryDelay(policy: RetryPolicy, failures: number): number {
  const { jitterMs } = policy;
  if (jitterMs > 0) {
    return Math.floor(Math.random() * Math.min(30_000, jitterMs * 2 ** Math.min(failures, 16)));
  }
  return failures === 0 ? 0 : Math.min(2000, 100 * 2 ** Math.min(failures - 1, 16));
}

/** One node change of a listener: when, from where to where, and why. */
export interface Move {
  readonly at: number;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

/** What the scenario knows of one listener. */
export class TrackedListener {
  /** The node it is on now (or connecting to). */
  node: number;
  /** Payload seqs in the order received (every copy, so duplicates stay visible). */
  readonly received: number[] = [];
  readonly moves: Move[] = [];
  /** At least one listen written (the first one is "from now"). */
  started = false;
  connectFailures = 0;
  reconnectAnswers = 0;
  idMismatches = 0;

  // Figures around the stop (performance.now() ms; null until seen).
  nodeAtStop: number | null = null;
  lastSeqAtStop = 0;
  relistenSentAt: number | null = null;
  recoveredAt: number | null = null;
  /** Notifications in the answer that brought it back (0: its re-listen was held, then woken). */
  recoveredWith = 0;
  firstNotificationAt: number | null = null;
  caughtUpAt: number | null = null;
  /** What happened to it after the stop, capped: [ms since the stop, node, event]. */
  readonly timeline: [number, number, string][] = [];
  /** Answers from the stopped node after the stop signal (graceful stops answer `reconnect`). */
  answersFromStoppedNode = 0;

  constructor(
    readonly index: number,
    readonly key: string,
    /** The node it starts on. */
    readonly home: number,
  ) {
    this.node = home;
  }

  get lastSeq(): number {
    return this.received.length === 0 ? 0 : (this.received[this.received.length - 1] ?? 0);
  }
}

function seqOf(payload: string): number {
  const seq = (JSON.parse(payload) as { seq?: unknown } | null)?.seq;
  return typeof seq === 'number' ? seq : -1;
}

/** Every listener of one run, and the shared state of the stop being measured. */
export class FailoverListeners {
  readonly listeners: TrackedListener[];
  problemCount = 0;
  /** The first few problems (protocol surprises, error answers), for the report. */
  readonly problemSamples: string[] = [];
  /** performance.now() when the node was signalled; null before. */
  stopAt: number | null = null;
  stoppedNode = -1;
  /** Highest seq accepted by the cluster before the stop signal. */
  lastAcceptedAtStop = 0;
  /** Notification ids by seq, filled by the publisher as 2xx answers come back. */
  readonly idOfSeq = new Map<number, string>();
  private readonly pool: ListenerPool;

  constructor(
    cluster: Pick<Cluster, 'ports' | 'protocol' | 'channel'>,
    keys: readonly string[],
    policy: RetryPolicy,
  ) {
    const { ports } = cluster;
    const k = ports.length;
    const nodeOfPort = new Map(ports.map((port, node) => [port, node]));
    this.listeners = keys.map((key, i) => new TrackedListener(i, key, i % k));
    const tracked = (index: number): TrackedListener => {
      const listener = this.listeners[index];
      if (!listener) throw new Error(`no listener ${index}`);
      return listener;
    };
    this.pool = new ListenerPool({
      // Listener i's node list is (i, i+1, …) mod k: the moved third spreads over the others.
      targets: (i) => Array.from({ length: k }, (_, j) => ports[(i + j) % k] ?? 0),
      moves: {
        delayMs: (failures) => retryDelay(policy, failures),
        requestTimeoutMs: policy.requestTimeoutMs,
      },
      channel: cluster.channel,
      protocol: cluster.protocol,
      hints: DEFAULT_HINTS,
      identities: keys,
      sources: ['127.0.0.1'],
      concurrency: 256,
      maxReconnects: Number.POSITIVE_INFINITY,
      onListen: (i) => {
        this.listened(tracked(i));
      },
      onAnswer: (i) => {
        const listener = tracked(i);
        if (this.stopAt !== null && listener.node === this.stoppedNode) {
          listener.answersFromStoppedNode += 1;
        }
      },
      onDelivered: (i, payloads, ids) => {
        this.delivered(tracked(i), payloads, ids);
      },
      onMoved: (i, move) => {
        this.moved(tracked(i), move, nodeOfPort.get(move.to) ?? -1);
      },
      onError: (kind, detail) => {
        this.problem(`${kind}: ${detail}`);
      },
      count: (name) => {
        if (name === 'resetAnswers') this.problem('reset: true');
        if (name === 'replacedAnswers') this.problem('replaced: true');
      },
    });
  }

  /** Connects every listener, at most 256 connects in flight. */
  async connectAll(): Promise<void> {
    await this.pool.connectAll(() => undefined);
  }

  /** Marks the stop of `node`: from now on, recovery figures are recorded. */
  markStop(node: number, lastAccepted: number): number {
    for (const listener of this.listeners) {
      listener.nodeAtStop = listener.node;
      listener.lastSeqAtStop = listener.lastSeq;
    }
    this.stoppedNode = node;
    this.lastAcceptedAtStop = lastAccepted;
    this.stopAt = performance.now();
    return this.stopAt;
  }

  /** The listeners that were on the stopped node. */
  movedByStop(): TrackedListener[] {
    return this.listeners.filter((l) => l.nodeAtStop === this.stoppedNode);
  }

  closeAll(): void {
    this.pool.destroy();
  }

  private wasOnStopped(listener: TrackedListener): boolean {
    return listener.nodeAtStop !== null && listener.nodeAtStop === this.stoppedNode;
  }

  private listened(listener: TrackedListener): void {
    listener.started = true;
    this.note(listener, 'listen');
    if (
      this.stopAt !== null &&
      listener.relistenSentAt === null &&
      this.wasOnStopped(listener) &&
      listener.node !== this.stoppedNode
    ) {
      listener.relistenSentAt = performance.now();
    }
  }

  private delivered(
    listener: TrackedListener,
    payloads: readonly string[],
    ids: readonly (string | null)[] | undefined,
  ): void {
    const now = performance.now();
    this.note(listener, `answer ${payloads.length}`);
    payloads.forEach((payload, i) => {
      let seq = -1;
      try {
        seq = seqOf(payload);
      } catch {
        this.problem(`bad payload: ${payload.slice(0, 80)}`);
      }
      listener.received.push(seq);
      const id = ids?.[i] ?? null;
      const published = this.idOfSeq.get(seq);
      if (id !== null && published !== undefined && published !== id) listener.idMismatches += 1;
    });
    if (this.stopAt === null) return;
    if (payloads.length > 0 && listener.firstNotificationAt === null) {
      listener.firstNotificationAt = now;
    }
    const fromStopped = listener.node === this.stoppedNode;
    if (this.wasOnStopped(listener) && !fromStopped && listener.recoveredAt === null) {
      listener.recoveredAt = now;
      listener.recoveredWith = payloads.length;
    }
    if (listener.caughtUpAt === null && listener.lastSeq >= this.lastAcceptedAtStop) {
      listener.caughtUpAt = now;
    }
  }

  private moved(listener: TrackedListener, move: PoolMove, to: number): void {
    const { reason } = move;
    // A node that sends its listeners away (epush `reconnect`, nchan's 410 at a graceful stop)
    // is the graceful path; another refusal is a problem; anything else a failed connection.
    if (reason === 'reconnect' || reason === 'status:410') listener.reconnectAnswers += 1;
    else if (reason.startsWith('status:')) {
      this.problem(`HTTP ${reason.slice(7)}: ${move.detail}`);
    } else listener.connectFailures += 1;
    this.note(listener, `move: ${reason.slice(0, 40)}`);
    listener.moves.push({ at: performance.now(), from: listener.node, to, reason });
    listener.node = to;
  }

  private note(listener: TrackedListener, event: string): void {
    const stopAt = this.stopAt;
    if (stopAt === null || listener.timeline.length >= 40) return;
    listener.timeline.push([Math.round(performance.now() - stopAt), listener.node, event]);
  }

  private problem(text: string): void {
    this.problemCount += 1;
    if (this.problemSamples.length < 10) this.problemSamples.push(text);
  }
}
