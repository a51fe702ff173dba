/**
 * The failover bench's listeners: raw keep-alive sockets that long-poll one cluster node each and,
 * when the connection fails or the node asks them to (`reconnect`), move to the next node of their
 * list and listen again from their last position, like the browser client behind a load balancer.
 *
 * The wire protocol (epush `POST /push/listen`, nchan `GET /sub/…`) is a `ListenProtocol`; this
 * file only keeps connections, positions, what each listener received and when, and the figures
 * around one node stop (`markStop`).
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { rawConnect, ResponseParser } from '../lib/http-client.js';

/** What one response means to the listener. */
export interface ListenAnswer {
  /** Payload sequence numbers received, in the order of the answer. */
  readonly seqs: readonly number[];
  /** Notification ids, index-aligned with `seqs` (null when the protocol has none). */
  readonly ids: readonly (string | null)[] | null;
  /** `next`: listen again on the same connection; `move`: go to the next node. */
  readonly action: 'next' | 'move';
  /** The node said this answer is an error or a protocol surprise (counted, named in the report). */
  readonly problem?: string;
}

export interface ListenProtocol {
  /** The HTTP request text of the next listen for `listener` (its position is in `listener.position`). */
  request(listener: Listener, hostHeader: string): string;
  /** Interprets one response and updates `listener.position`. */
  answer(listener: Listener, status: number, head: string, body: Buffer): ListenAnswer;
}

export interface RetryPolicy {
  /** 0: first retry at once, then 100 ms doubling to 2 s. > 0: full jitter, uniform in [0, J·2^k) up to 30 s. */
  readonly jitterMs: number;
  /** A listen with no answer after this long is abandoned (counted as a failure). */
  readonly requestTimeoutMs: number;
}

/** One node change of a listener: when, from where to where, and why. */
export interface Move {
  readonly at: number;
  readonly from: number;
  readonly to: number;
  readonly reason: string;
}

export class Listener {
  /** Protocol-owned resume position (epush: the cursor; nchan: Last-Modified and Etag). */
  position: Record<string, string> = {};
  /** Index into `order` of the node it listens on now. */
  private slot = 0;
  private socket: Socket | null = null;
  private parser: ResponseParser | null = null;
  private inFlightSince = 0;
  private failures = 0;
  private retryTimer: NodeJS.Timeout | null = null;
  /** Payload seqs in the order received (every copy, so duplicates stay visible). */
  readonly received: number[] = [];
  readonly moves: Move[] = [];
  /** At least one listen written (the first one is "from now"). */
  started = false;
  answers = 0;
  connectFailures = 0;
  reconnectAnswers = 0;
  idMismatches = 0;
  readonly problems: string[] = [];

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
    /** Node indices in the order this listener tries them; `order[0]` is its home node. */
    readonly order: readonly number[],
    private readonly pool: ListenerPool,
  ) {}

  get node(): number {
    return this.order[this.slot % this.order.length] ?? 0;
  }

  get lastSeq(): number {
    return this.received.length === 0 ? 0 : (this.received[this.received.length - 1] ?? 0);
  }

  /** Opens a connection to the current node and listens. */
  connect(): void {
    if (this.pool.stopping) return;
    const node = this.node;
    const port = this.pool.ports[node];
    if (port === undefined) throw new Error(`no port for node ${node}`);
    const parser = new ResponseParser((status, body, connectionClose, head) => {
      if (this.parser !== parser) return;
      this.onResponse(status, head, body, connectionClose);
    });
    const socket = rawConnect({
      host: '127.0.0.1',
      port,
      onData: (chunk) => {
        if (this.socket !== socket) return;
        try {
          parser.feed(chunk);
        } catch (error) {
          this.fail(`protocol: ${(error as Error).message}`);
        }
      },
    });
    this.socket = socket;
    this.parser = parser;
    this.inFlightSince = performance.now();
    socket.once('connect', () => {
      if (this.socket === socket) this.send();
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (this.socket === socket) this.fail(error.code ?? error.message);
    });
    socket.on('close', () => {
      if (this.socket === socket) this.fail('closed');
    });
  }

  /** Abandons a listen that has waited longer than the policy allows. */
  checkTimeout(now: number): void {
    if (this.socket !== null && now - this.inFlightSince > this.pool.policy.requestTimeoutMs) {
      this.fail('timeout');
    }
  }

  close(): void {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    this.parser = null;
    socket?.destroy();
  }

  private send(): void {
    const socket = this.socket;
    if (!socket || this.pool.stopping) return;
    const port = this.pool.ports[this.node] ?? 0;
    this.inFlightSince = performance.now();
    if (
      this.pool.stopAt !== null &&
      this.relistenSentAt === null &&
      this.movedByStop() &&
      this.node !== this.pool.stoppedNode
    ) {
      this.relistenSentAt = this.inFlightSince;
    }
    this.started = true;
    this.note('listen');
    socket.write(this.pool.protocol.request(this, `127.0.0.1:${port}`));
  }

  private movedByStop(): boolean {
    return this.nodeAtStop !== null && this.nodeAtStop === this.pool.stoppedNode;
  }

  private onResponse(status: number, head: string, body: Buffer, connectionClose: boolean): void {
    const now = performance.now();
    const node = this.node;
    let answer: ListenAnswer;
    try {
      answer = this.pool.protocol.answer(this, status, head, body);
    } catch (error) {
      answer = { seqs: [], ids: null, action: 'move', problem: `bad answer: ${String(error)}` };
    }
    this.answers += 1;
    this.pool.answers += 1;
    if (answer.problem !== undefined) this.problem(answer.problem);
    this.note(`${status} ${answer.action} ${answer.seqs.length}`);
    for (let i = 0; i < answer.seqs.length; i++) {
      const seq = answer.seqs[i] ?? 0;
      this.received.push(seq);
      const id = answer.ids?.[i] ?? null;
      const published = this.pool.idOfSeq.get(seq);
      if (id !== null && published !== undefined && published !== id) this.idMismatches += 1;
    }
    const stopAt = this.pool.stopAt;
    if (stopAt !== null) {
      const fromStopped = node === this.pool.stoppedNode;
      if (fromStopped) this.answersFromStoppedNode += 1;
      if (answer.seqs.length > 0 && this.firstNotificationAt === null) {
        this.firstNotificationAt = now;
      }
      if (this.movedByStop() && !fromStopped && this.recoveredAt === null && status < 300) {
        this.recoveredAt = now;
        this.recoveredWith = answer.seqs.length;
      }
      if (this.caughtUpAt === null && this.lastSeq >= this.pool.lastAcceptedAtStop) {
        this.caughtUpAt = now;
      }
    }
    if (answer.action === 'move') {
      if (answer.problem === undefined) this.reconnectAnswers += 1;
      this.moveOn(answer.problem ?? 'reconnect');
      return;
    }
    this.failures = 0;
    if (connectionClose) {
      this.dropSocket();
      this.connect();
      return;
    }
    this.send();
  }

  private note(event: string): void {
    const stopAt = this.pool.stopAt;
    if (stopAt === null || this.timeline.length >= 40) return;
    this.timeline.push([Math.round(performance.now() - stopAt), this.node, event]);
  }

  private problem(text: string): void {
    this.pool.problemCount += 1;
    if (this.problems.length < 5) this.problems.push(text);
  }

  private fail(reason: string): void {
    if (this.pool.stopping) {
      this.dropSocket();
      return;
    }
    this.connectFailures += 1;
    this.moveOn(reason);
  }

  /** Leaves the current node for the next one of its list, at once or after a backoff. */
  private moveOn(reason: string): void {
    this.dropSocket();
    if (this.pool.stopping) return;
    const from = this.node;
    this.note(`move: ${reason.slice(0, 40)}`);
    this.slot += 1;
    this.moves.push({ at: performance.now(), from, to: this.node, reason });
    const delay = this.pool.retryDelay(this.failures);
    this.failures += 1;
    if (delay <= 0) {
      this.connect();
      return;
    }
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect();
    }, delay);
  }

  private dropSocket(): void {
    const socket = this.socket;
    this.socket = null;
    this.parser = null;
    socket?.destroy();
  }
}

/** Every listener of one run, and the shared state of the stop being measured. */
export class ListenerPool {
  readonly listeners: Listener[] = [];
  stopping = false;
  answers = 0;
  problemCount = 0;
  /** performance.now() when the node was signalled; null before. */
  stopAt: number | null = null;
  stoppedNode = -1;
  /** Highest seq accepted by the cluster before the stop signal. */
  lastAcceptedAtStop = 0;
  /** Notification ids by seq, filled by the publisher as 2xx answers come back. */
  readonly idOfSeq = new Map<number, string>();
  private sweeper: NodeJS.Timeout | null = null;

  constructor(
    readonly ports: readonly number[],
    readonly protocol: ListenProtocol,
    readonly policy: RetryPolicy,
  ) {}

  /** Adds `keys.length` listeners, spread evenly over the nodes (listener i starts on node i mod k). */
  add(keys: readonly string[]): void {
    const k = this.ports.length;
    keys.forEach((key, i) => {
      const home = i % k;
      const order = Array.from({ length: k }, (_, j) => (home + j) % k);
      this.listeners.push(new Listener(i, key, order, this));
    });
  }

  /** Connects every listener, at most `inFlight` connects at a time. */
  async connectAll(inFlight = 256): Promise<void> {
    this.sweeper = setInterval(() => {
      const now = performance.now();
      for (const listener of this.listeners) listener.checkTimeout(now);
    }, 500);
    for (let i = 0; i < this.listeners.length; i += inFlight) {
      for (const listener of this.listeners.slice(i, i + inFlight)) listener.connect();
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
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

  moved(): Listener[] {
    return this.listeners.filter((l) => l.nodeAtStop === this.stoppedNode);
  }

  retryDelay(failures: number): number {
    const { jitterMs } = this.policy;
    if (jitterMs > 0) {
      return Math.floor(Math.random() * Math.min(30_000, jitterMs * 2 ** Math.min(failures, 16)));
    }
    return failures === 0 ? 0 : Math.min(2000, 100 * 2 ** Math.min(failures - 1, 16));
  }

  closeAll(): void {
    this.stopping = true;
    if (this.sweeper) clearInterval(this.sweeper);
    for (const listener of this.listeners) listener.close();
  }
}

/** Per-listener check of the received sequence against the accepted one. */
export interface Verification {
  readonly listeners: number;
  readonly accepted: number;
  readonly expectedDeliveries: number;
  readonly delivered: number;
  /** Accepted but skipped: missing although a later notification arrived (delivery is in order). */
  readonly lost: number;
  /** Accepted, missing, and newer than the listener's last delivery when the run ended. */
  readonly undeliveredAtEnd: number;
  readonly duplicated: number;
  readonly outOfOrder: number;
  /** Delivered although the publish was not answered 2xx (timed out or refused). */
  readonly unaccepted: number;
  readonly listenersWithLoss: number;
  readonly listenersWithDuplicates: number;
  /** The first few defects, with enough to find them in the node logs. */
  readonly samples: readonly DefectSample[];
}

export interface DefectSample {
  readonly kind: 'lost' | 'undelivered-at-end' | 'duplicated' | 'out-of-order';
  readonly listener: number;
  readonly key: string;
  readonly seqs: readonly number[];
  readonly homeNode: number;
  readonly nodeAtStop: number | null;
  readonly moves: readonly Move[];
}

export function verify(listeners: readonly Listener[], accepted: readonly number[]): Verification {
  const acceptedSet = new Set(accepted);
  let lost = 0;
  let undeliveredAtEnd = 0;
  let duplicated = 0;
  let outOfOrder = 0;
  let unaccepted = 0;
  let delivered = 0;
  let listenersWithLoss = 0;
  let listenersWithDuplicates = 0;
  const samples: DefectSample[] = [];
  const sample = (kind: DefectSample['kind'], listener: Listener, seqs: number[]): void => {
    if (samples.length >= 12 || seqs.length === 0) return;
    samples.push({
      kind,
      listener: listener.index,
      key: listener.key,
      seqs: seqs.slice(0, 20),
      homeNode: listener.order[0] ?? 0,
      nodeAtStop: listener.nodeAtStop,
      moves: listener.moves.slice(0, 10),
    });
  };
  for (const listener of listeners) {
    const seen = new Set<number>();
    const dups: number[] = [];
    const disorder: number[] = [];
    let previous = 0;
    for (const seq of listener.received) {
      delivered += 1;
      if (!acceptedSet.has(seq)) unaccepted += 1;
      if (seen.has(seq)) dups.push(seq);
      else if (seq < previous) disorder.push(seq);
      seen.add(seq);
      previous = Math.max(previous, seq);
    }
    const missing = accepted.filter((seq) => !seen.has(seq) && seq < previous);
    const pending = accepted.filter((seq) => !seen.has(seq) && seq > previous);
    lost += missing.length;
    undeliveredAtEnd += pending.length;
    duplicated += dups.length;
    outOfOrder += disorder.length;
    if (missing.length > 0) listenersWithLoss += 1;
    if (dups.length > 0) listenersWithDuplicates += 1;
    sample('lost', listener, missing);
    sample('undelivered-at-end', listener, pending);
    sample('duplicated', listener, dups);
    sample('out-of-order', listener, disorder);
  }
  return {
    listeners: listeners.length,
    accepted: accepted.length,
    expectedDeliveries: accepted.length * listeners.length,
    delivered,
    lost,
    undeliveredAtEnd,
    duplicated,
    outOfOrder,
    unaccepted,
    listenersWithLoss,
    listenersWithDuplicates,
    samples,
  };
}
