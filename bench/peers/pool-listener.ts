/**
 * The listener pool's options (bench/peers/listener-pool.ts) and the state it keeps per
 * listener: its connection, whether it is armed, its resume token, its targets and where it is.
 */
import type { Socket } from 'node:net';
import type { ListenerProtocol, ListenerWire, LoadHints } from './types.js';

/** How listeners move between targets (see the file comment); unset: they stay on theirs. */
export interface MoveOptions {
  /** Delay before a move after `failures` moves in a row without a good answer (0: at once). */
  readonly delayMs: (failures: number) => number;
  /** A poll unanswered this long counts as a failure: the listener moves on (long-poll only). */
  readonly requestTimeoutMs: number;
}

/** One move of a listener: from which target port to which, and why (a kind and its detail). */
export interface PoolMove {
  readonly from: number;
  readonly to: number;
  /** `reconnect`, `status:<code>` (sent away), `timeout`, `socket:<code>` or `closed`. */
  readonly reason: string;
  readonly detail: string;
}

export interface PoolOptions {
  readonly host?: string;
  /** The target port of every listener, unless `targets` says otherwise. */
  readonly port?: number;
  /** Listener i's target ports in the order it tries them: it starts on the first. */
  readonly targets?: (index: number) => readonly number[];
  /** Listeners move between their targets (the failover bench); unset: they stay. */
  readonly moves?: MoveOptions;
  readonly channel: string;
  readonly protocol: ListenerProtocol;
  readonly hints: LoadHints;
  /** One per listener, from PeerStack.prepareListeners. */
  readonly identities: readonly string[];
  /** Source addresses; listener i connects from sources[i mod length]. */
  readonly sources: readonly string[];
  /** A long-poll re-polls this long after a delivery (default 0: at once, like a browser). */
  readonly repollDelayMs?: number;
  /** Back-off before the `attempt`-th retry (default: from the hints, half to 1.5× jittered). */
  readonly backoffMs?: (attempt: number) => number;
  /** Connects in flight that are not armed yet. */
  readonly concurrency: number;
  /** Times a closed listener is reopened before it gives up. */
  readonly maxReconnects: number;
  readonly onDelivered: (
    index: number,
    payloads: readonly string[],
    ids?: readonly (string | null)[],
  ) => void;
  readonly onError: (kind: string, detail: string) => void;
  readonly count: (name: string) => void;
  /** A poll was written (the listener is armed). */
  readonly onListen?: (index: number) => void;
  /** An answer arrived, before it is read. */
  readonly onAnswer?: (index: number) => void;
  /** With `moves`: the listener leaves `from` for `to` (called before the back-off). */
  readonly onMoved?: (index: number, move: PoolMove) => void;
}

export class Listener {
  socket: Socket | null = null;
  wire: ListenerWire | null = null;
  armed = false;
  /** performance.now() when it was last armed. */
  armedAt = 0;
  everArmed = false;
  gaveUp = false;
  /** The protocol's resume token, kept across reconnects. */
  readonly resume = new Map<string, string>();
  /** Called once, when the listener is first armed or gives up (frees a connect slot). */
  settled: (() => void) | null = null;
  reconnects = 0;
  /** Index into `targets` of the one it connects to now. */
  slot = 0;
  /** Moves since its last good answer (the failure back-off's exponent). */
  failures = 0;
  /** performance.now() since it waits for an answer (0: not waiting). */
  waitingSince = 0;
  /** Why the pool closes its socket (`moveNow`), or the socket's own last error. */
  leaving: { reason: string; detail: string } | null = null;

  constructor(
    readonly index: number,
    readonly identity: string,
    readonly localAddress: string,
    readonly targets: readonly number[],
  ) {}

  get port(): number {
    return this.targets[this.slot % this.targets.length] ?? 0;
  }
}

/** How the pool's listeners stand, for progress lines and results. */
export interface PoolStats {
  /** Sockets open now (connected). */
  readonly open: number;
  /** Listeners armed at least once. */
  readonly everArmed: number;
  /** Armed now. */
  readonly armed: number;
  /** Armed for at least `heldAfterMs` now (the server holds the request). */
  readonly held: number;
  /** Gave up after `maxReconnects`. */
  readonly failed: number;
}
