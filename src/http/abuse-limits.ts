/**
 * The abuse limits shared by the accept loop (accept-loop.ts) and the node:http routes: listen
 * storm detection, peer-address normalisation, rate-limited warnings. Every limit is a flag
 * (docs/operations.md, "Limits") and every refusal is counted by reason.
 */
import type { Logger } from 'pino';
import type { RejectionCounter } from '../observability/rejections.js';

/** `--listen-storm-*`: more than `requests` re-polls in a row, each sooner than `intervalMs`. */
export interface ListenStormOptions {
  readonly requests: number;
  readonly intervalMs: number;
  /** How long a storming listen waits before it is served; 0 turns detection off. */
  readonly backoffMs: number;
}

/**
 * What storm detection remembers of one connection: plain numbers, so the accept loop keeps
 * them on its own per-connection object (no allocation, no timer, unless a delay is applied).
 */
export interface ListenStormState {
  /** When the previous listen was served (its arrival, plus the delay it was given). */
  stormServedAt: number;
  /** Re-polls in a row that came sooner than the interval and made no progress. */
  stormQuick: number;
  /** The cursor seq the previous listen resumed from (-1: none, "from now"). */
  stormSeq: number;
}

/** Warn at most once per this period per kind of refusal. */
const WARN_PERIOD_MS = 10_000;

/** A warning logged at most once per 10 s, with how many times it was suppressed meanwhile. */
export class ThrottledWarning {
  private lastAt = Number.NEGATIVE_INFINITY;
  private suppressed = 0;

  constructor(
    private readonly log: Logger,
    private readonly message: string,
  ) {}

  warn(details: Readonly<Record<string, unknown>>, now = Date.now()): void {
    if (now - this.lastAt < WARN_PERIOD_MS) {
      this.suppressed += 1;
      return;
    }
    this.log.warn({ ...details, suppressedSinceLast: this.suppressed }, this.message);
    this.lastAt = now;
    this.suppressed = 0;
  }
}

/**
 * ICEpush's push-storm detection, for a client that re-polls in a tight loop without getting
 * anywhere: two pages fighting over one push ID (each listen replaces the other, both answered
 * at once), a page that sends a stale cursor again and again, a loop around an empty answer.
 * A re-poll counts when it comes sooner than `intervalMs` after the previous one AND resumes
 * from no later a cursor than the previous one did (a null cursor never advances). A client
 * that is busy receiving, whose cursor advances with every answer, is never slowed.
 * It never loses a notification: instead of closing the connection (ICEpush), the next listens
 * are served `backoffMs` late, keeping their cursor; the state resets at the first listen that
 * comes after a normal interval or with an advanced cursor.
 */
export class ListenStormGuard {
  private readonly warning: ThrottledWarning;

  constructor(
    readonly options: ListenStormOptions,
    private readonly rejections: RejectionCounter,
    log: Logger,
  ) {
    this.warning = new ThrottledWarning(
      log,
      'listen storm: a client re-polls in a tight loop; its listens are served late (batched)',
    );
  }

  /**
   * Called when a listen resuming from `fromSeq` (-1: no cursor) arrives on a connection with
   * `state`; returns how many milliseconds to
   * wait before serving it (0: at once). A delayed listen is counted as `listen_storm`; `socket`
   * is only read to name the peer in the (rate-limited) warning.
   */
  delayFor(
    state: ListenStormState,
    now: number,
    socket: { readonly remoteAddress?: string | undefined },
    fromSeq: number,
  ): number {
    const { requests, intervalMs, backoffMs } = this.options;
    if (backoffMs === 0) return 0;
    const stalled = now - state.stormServedAt < intervalMs && fromSeq <= state.stormSeq;
    state.stormSeq = fromSeq;
    state.stormQuick = stalled ? state.stormQuick + 1 : 0;
    if (state.stormQuick <= requests) {
      state.stormServedAt = now;
      return 0;
    }
    state.stormServedAt = now + backoffMs;
    this.rejections.count('listen_storm');
    this.warning.warn({ peer: socket.remoteAddress, backoffMs, requests, intervalMs }, now);
    return backoffMs;
  }
}

/** A fresh state: the first listen of a connection is never quick. */
export function newListenStormState(): ListenStormState {
  return { stormServedAt: Number.NEGATIVE_INFINITY, stormQuick: 0, stormSeq: -1 };
}

/** `::ffff:10.0.0.1` → `10.0.0.1`: one peer is one key, whichever socket family accepted it. */
export function normalizePeerAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
