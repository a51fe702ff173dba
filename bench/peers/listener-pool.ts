/**
 * N listeners of one target, each on its own raw keep-alive socket, spread over source addresses
 * (127.0.0.1..127.0.0.K), held through the target's listener protocol: the one pool of every
 * bench generator that holds listeners (side-by-side, publish-throughput, longpoll-fanout and
 * stream-fanout, held-max, failover). It connects them (bounded in flight and, when the peer
 * needs it, paced), counts how many are armed and for how long, reconnects a closed one after a
 * back-off (resuming from its last resume token), and reports every answer's payloads by
 * listener index. What a delivery means (which notification, its latency) is the scenario's.
 *
 * With `moves` (the failover bench), listeners are spread over several targets and move: a
 * listener whose connection fails, whose poll goes unanswered too long, or whom the server sends
 * away (`reconnect`, a refusal) reconnects at once or after a failure back-off to the next
 * target of its own list, and listens on from its resume token there.
 */
import { performance } from 'node:perf_hooks';
import { rawConnect } from '../lib/http-client.js';
import { sleep } from '../lib/stats.js';
import { HOST } from './stack.js';
import { Listener, type PoolOptions, type PoolStats } from './pool-listener.js';

export type { MoveOptions, PoolMove, PoolOptions, PoolStats } from './pool-listener.js';

const SLOT_MS = 10_000;

/** `127.0.0.1 … 127.0.0.k`: k loopback source addresses (each has its own ephemeral ports). */
export function loopbackSources(k: number): string[] {
  return Array.from({ length: k }, (_, i) => `127.0.0.${1 + i}`);
}

export class ListenerPool {
  armed = 0;
  private openSockets = 0;
  private closedAfterStop = 0;
  private stopped = false;
  private sweeper: NodeJS.Timeout | null = null;
  private readonly listeners: Listener[];

  constructor(private readonly options: PoolOptions) {
    const { sources, port, targets } = options;
    if (sources.length === 0) throw new Error('a listener pool needs at least one source address');
    this.listeners = options.identities.map((identity, i) => {
      const ports = targets?.(i) ?? (port === undefined ? [] : [port]);
      if (ports.length === 0) throw new Error(`listener ${i} has no target port`);
      return new Listener(i, identity, sources[i % sources.length]!, ports);
    });
    if (options.backoffMs) this.backoffMs = options.backoffMs;
  }

  /** The port listener `index` is on now (or connecting to). */
  portOf(index: number): number {
    return this.listeners[index]?.port ?? 0;
  }

  get size(): number {
    return this.listeners.length;
  }

  stats(heldAfterMs = 1000): PoolStats {
    const now = performance.now();
    let everArmed = 0;
    let held = 0;
    let failed = 0;
    for (const listener of this.listeners) {
      if (listener.everArmed) everArmed += 1;
      if (listener.armed && now - listener.armedAt >= heldAfterMs) held += 1;
      if (listener.gaveUp) failed += 1;
    }
    return { open: this.openSockets, everArmed, armed: this.armed, held, failed };
  }

  /** Listeners that were armed once and still have a socket. */
  alive(): number {
    return this.listeners.filter((l) => l.everArmed && l.socket !== null && !l.socket.destroyed)
      .length;
  }

  backoffMs = (attempt: number): number => {
    const { retryBaseMs, retryMaxMs } = this.options.hints;
    const base = Math.min(retryMaxMs, retryBaseMs * 2 ** Math.max(0, attempt - 1));
    return base / 2 + Math.random() * base; // jitter: a herd of retries spreads out
  };

  /**
   * Opens every listener; `check` runs while it waits for a slot and may throw to abort (the
   * run's time is up). Resolves once the last one is opened, not armed.
   */
  async connectAll(check: () => void): Promise<void> {
    const timeoutMs = this.options.moves?.requestTimeoutMs;
    if (timeoutMs !== undefined && this.sweeper === null) {
      this.sweeper = setInterval(() => {
        const now = performance.now();
        for (const l of this.listeners) {
          if (l.waitingSince > 0 && now - l.waitingSince > timeoutMs) {
            this.moveNow(l.index, 'timeout', `no answer in ${timeoutMs} ms`);
          }
        }
      }, 500);
      this.sweeper.unref();
    }
    const rate = this.options.hints.connectRatePerSec;
    const start = performance.now();
    let inFlight = 0;
    for (let i = 0; i < this.listeners.length; i++) {
      const listener = this.listeners[i]!;
      while (
        inFlight >= this.options.concurrency ||
        (rate > 0 && i >= ((performance.now() - start) * rate) / 1000 + 1)
      ) {
        check();
        await sleep(2);
      }
      inFlight += 1;
      listener.settled = () => {
        inFlight -= 1;
      };
      // A listener the peer keeps refusing (pushpin's 502s) frees its slot after a while and
      // keeps retrying on its own, so that the others still connect.
      setTimeout(() => {
        this.settle(listener);
      }, SLOT_MS).unref();
      this.open(listener);
    }
  }

  /** Stops re-polling and reconnecting; the server is then stopped and closes the sockets. */
  stop(): void {
    this.stopped = true;
    if (this.sweeper) clearInterval(this.sweeper);
    this.sweeper = null;
    for (const listener of this.listeners) listener.wire?.stop();
  }

  /**
   * Closes listener `index`'s connection and, with `moves`, opens one to its next target (at
   * once or after the failure back-off). Without `moves` it reconnects to the same target.
   */
  moveNow(index: number, reason: string, detail: string): void {
    const listener = this.listeners[index];
    const socket = listener?.socket;
    if (this.stopped || !listener || !socket || socket.destroyed) return;
    listener.leaving = { reason, detail };
    listener.waitingSince = 0;
    listener.wire?.stop();
    socket.destroy();
  }

  /** Destroys every socket at once (the run is over or aborted). */
  destroy(): void {
    this.stop();
    for (const listener of this.listeners) listener.socket?.destroy();
  }

  /** Stops, closes every socket from this side (FIN) and waits up to `ms` for them to be gone. */
  async end(ms: number): Promise<void> {
    this.stop();
    for (const listener of this.listeners) listener.socket?.end();
    const until = performance.now() + ms;
    while (this.openSockets > 0 && performance.now() < until) await sleep(20);
  }

  /** After stop(): waits up to `ms` for the server to close the sockets, then destroys the rest. */
  async close(ms: number): Promise<{ closedByServer: number; stillOpen: number }> {
    const until = performance.now() + ms;
    while (this.openSockets > 0 && performance.now() < until) await sleep(20);
    const closedByServer = this.closedAfterStop;
    let stillOpen = 0;
    for (const listener of this.listeners) {
      if (listener.socket && !listener.socket.destroyed) {
        stillOpen += 1;
        listener.socket.destroy();
      }
    }
    return { closedByServer, stillOpen };
  }

  private setArmed(listener: Listener, armed: boolean): void {
    if (armed) listener.armedAt = performance.now();
    if (listener.armed === armed) return;
    listener.armed = armed;
    this.armed += armed ? 1 : -1;
    if (armed && !listener.everArmed) {
      listener.everArmed = true;
      this.settle(listener);
    }
  }

  private settle(listener: Listener): void {
    const settled = listener.settled;
    listener.settled = null;
    settled?.();
  }

  private open(listener: Listener): void {
    const { options } = this;
    let failed = false;
    let connected = false;
    const host = options.host ?? HOST;
    const port = listener.port;
    const socket = rawConnect({
      host,
      port,
      localAddress: listener.localAddress,
      onData: (chunk) => {
        try {
          wire.feed(chunk);
        } catch (failure) {
          options.onError('protocol', (failure as Error).message);
          socket.destroy();
        }
      },
    });
    const write = (data: string | Buffer): void => {
      if (!socket.destroyed) socket.write(data);
    };
    const wire = options.protocol.open(
      {
        hostHeader: `${host}:${port}`,
        channel: options.channel,
        identity: listener.identity,
        backoffMs: this.backoffMs,
        repollDelayMs: options.repollDelayMs ?? 0,
        resume: listener.resume,
      },
      {
        armed: () => {
          listener.waitingSince = performance.now();
          this.setArmed(listener, true);
          options.onListen?.(listener.index);
        },
        answered: () => {
          listener.waitingSince = 0;
          this.setArmed(listener, false);
          options.onAnswer?.(listener.index);
        },
        delivered: (payloads, ids) => {
          listener.failures = 0;
          options.onDelivered(listener.index, payloads, ids);
        },
        sentAway: (kind, detail) => {
          if (options.moves === undefined || this.stopped) return false;
          this.moveNow(listener.index, kind, detail);
          return true;
        },
        retried: (kind, detail) => {
          // At shutdown a peer may refuse the last polls (nchan answers 410): not a run error.
          if (!this.stopped) options.onError(kind, detail);
        },
        failed: (kind, detail) => {
          if (failed) return;
          failed = true;
          if (!this.stopped) options.onError(kind, detail);
          listener.leaving ??= { reason: kind, detail };
          socket.destroy();
        },
        noted: (name) => {
          options.count(name);
        },
      },
      write,
    );
    listener.socket = socket;
    listener.wire = wire;
    listener.leaving = null;
    listener.waitingSince = performance.now();
    socket.once('connect', () => {
      connected = true;
      this.openSockets += 1;
      wire.start();
    });
    socket.on('error', (failure) => {
      const code = `socket:${(failure as NodeJS.ErrnoException).code ?? 'error'}`;
      listener.leaving ??= { reason: code, detail: failure.message };
      // With moves, a failed connection is what the scenario measures, not a run error.
      if (!this.stopped && options.moves === undefined) options.onError(code, failure.message);
    });
    socket.once('close', () => {
      if (connected) this.openSockets -= 1;
      listener.waitingSince = 0;
      this.setArmed(listener, false);
      if (this.stopped) {
        this.closedAfterStop += 1;
        return;
      }
      const leaving = listener.leaving ?? { reason: 'closed', detail: 'closed by the server' };
      listener.leaving = null;
      if (listener.reconnects >= options.maxReconnects) {
        listener.gaveUp = true;
        options.onError('gave-up', `listener closed ${listener.reconnects + 1} times`);
        this.settle(listener);
        return;
      }
      listener.reconnects += 1;
      options.count('reconnects');
      this.reopen(listener, leaving);
    });
  }

  /** Opens `listener` again after its connection closed: elsewhere and sooner with `moves`. */
  private reopen(listener: Listener, leaving: { reason: string; detail: string }): void {
    const { moves } = this.options;
    let delay = this.backoffMs(listener.reconnects);
    if (moves) {
      const from = listener.port;
      listener.slot += 1;
      this.options.onMoved?.(listener.index, { from, to: listener.port, ...leaving });
      delay = moves.delayMs(listener.failures);
      listener.failures += 1;
      if (delay <= 0) {
        this.open(listener);
        return;
      }
    }
    setTimeout(() => {
      if (!this.stopped) this.open(listener);
    }, delay);
  }
}
