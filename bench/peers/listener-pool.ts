/**
 * N listeners of one target, each on its own raw keep-alive socket, spread over source addresses
 * (127.0.0.1..127.0.0.K), held through the target's listener protocol: the one pool of every
 * bench generator that holds listeners (side-by-side, publish-throughput, longpoll-fanout and
 * stream-fanout, held-max). It connects them (bounded in flight and, when the peer needs it,
 * paced), counts how many are armed and for how long, reconnects a closed one after a back-off
 * (resuming from its last resume token), and reports every answer's payloads by listener index.
 * What a delivery means (which notification, its latency) is the scenario's business.
 */
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { rawConnect } from '../lib/http-client.js';
import { sleep } from '../lib/stats.js';
import { HOST } from './stack.js';
import type { ListenerProtocol, ListenerWire, LoadHints } from './types.js';

const SLOT_MS = 10_000;

/** `127.0.0.1 … 127.0.0.k`: k loopback source addresses (each has its own ephemeral ports). */
export function loopbackSources(k: number): string[] {
  return Array.from({ length: k }, (_, i) => `127.0.0.${1 + i}`);
}

export interface PoolOptions {
  readonly host?: string;
  readonly port: number;
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
  readonly onDelivered: (index: number, payloads: readonly string[]) => void;
  readonly onError: (kind: string, detail: string) => void;
  readonly count: (name: string) => void;
}

class Listener {
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

  constructor(
    readonly index: number,
    readonly identity: string,
    readonly localAddress: string,
  ) {}
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

export class ListenerPool {
  armed = 0;
  private openSockets = 0;
  private closedAfterStop = 0;
  private stopped = false;
  private readonly listeners: Listener[];

  constructor(private readonly options: PoolOptions) {
    const { sources } = options;
    if (sources.length === 0) throw new Error('a listener pool needs at least one source address');
    this.listeners = options.identities.map(
      (identity, i) => new Listener(i, identity, sources[i % sources.length]!),
    );
    if (options.backoffMs) this.backoffMs = options.backoffMs;
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
    for (const listener of this.listeners) listener.wire?.stop();
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
    const socket = rawConnect({
      host,
      port: options.port,
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
        hostHeader: `${host}:${options.port}`,
        channel: options.channel,
        identity: listener.identity,
        backoffMs: this.backoffMs,
        repollDelayMs: options.repollDelayMs ?? 0,
        resume: listener.resume,
      },
      {
        armed: () => {
          this.setArmed(listener, true);
        },
        answered: () => {
          this.setArmed(listener, false);
        },
        delivered: (payloads) => {
          options.onDelivered(listener.index, payloads);
        },
        retried: (kind, detail) => {
          // At shutdown a peer may refuse the last polls (nchan answers 410): not a run error.
          if (!this.stopped) options.onError(kind, detail);
        },
        failed: (kind, detail) => {
          if (failed) return;
          failed = true;
          if (!this.stopped) options.onError(kind, detail);
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
    socket.once('connect', () => {
      connected = true;
      this.openSockets += 1;
      wire.start();
    });
    socket.on('error', (failure) => {
      if (!this.stopped) {
        options.onError(
          `socket:${(failure as NodeJS.ErrnoException).code ?? 'error'}`,
          failure.message,
        );
      }
    });
    socket.once('close', () => {
      if (connected) this.openSockets -= 1;
      this.setArmed(listener, false);
      if (this.stopped) {
        this.closedAfterStop += 1;
        return;
      }
      if (listener.reconnects >= options.maxReconnects) {
        listener.gaveUp = true;
        options.onError('gave-up', `listener closed ${listener.reconnects + 1} times`);
        this.settle(listener);
        return;
      }
      listener.reconnects += 1;
      options.count('reconnects');
      setTimeout(() => {
        if (!this.stopped) this.open(listener);
      }, this.backoffMs(listener.reconnects));
    });
  }
}
