/**
 * Liveness of one ioredis connection. A TCP connection can die without a FIN or an RST (a
 * host replaced behind the same address, a lost NAT entry); ioredis then keeps it "ready" for
 * as long as the kernel keeps the socket (minutes): commands time out one by one and a
 * subscriber hears nothing, but nothing reconnects. ioredis has no health check of its own,
 * TCP keepalive on Node cannot be tuned below minutes, and its `socketTimeout` option leaves
 * its timer armed across a reconnect (it would later destroy the healthy new socket), so this
 * watchdog pings each connection and destroys a socket that stays silent; ioredis then
 * reconnects by itself (its `retryStrategy`) on a new socket.
 */
import type { Redis } from 'ioredis';

/** How often a ready connection is pinged. */
export const REDIS_PING_EVERY_MS = 1000;
/** A ping unanswered and no byte received for this long: the connection is dead. */
export const REDIS_DEAD_AFTER_MS = 4000;

export interface RedisLivenessOptions {
  readonly pingEveryMs?: number;
  readonly deadAfterMs?: number;
  /** Called when a socket is dropped as dead (for logs or counters). */
  readonly onDead?: (reason: string) => void;
}

/** The socket ioredis currently uses (replaced on every reconnect). */
type RedisSocket = Redis['stream'];

/**
 * Watches `redis` (commands or subscriber: PING is allowed in RESP2 subscribe mode) from
 * `start()` to `stop()`. A socket is declared dead, and destroyed, when either
 * - the connection is ready, a PING is outstanding, and no byte arrived for `deadAfterMs`
 *   (any byte counts: a busy subscription that delivers is alive even if the PONG is queued
 *   behind its messages), or
 * - the socket is connecting or handshaking (TCP up, ready check pending) and nothing arrived
 *   for `deadAfterMs`: a stalled new connection must not hold the reconnect forever either
 *   (a Redis loading its AOF answers the ready check meanwhile, so it is not dropped).
 */
export class RedisLiveness {
  private readonly pingEveryMs: number;
  private readonly deadAfterMs: number;
  private timer: NodeJS.Timeout | null = null;
  private watched: RedisSocket | null = null;
  private watchedSince = 0;
  private lastByteAt = 0;
  private pingSentAt: number | null = null;
  /** Sockets dropped as dead so far. */
  dropped = 0;

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisLivenessOptions = {},
  ) {
    this.pingEveryMs = options.pingEveryMs ?? REDIS_PING_EVERY_MS;
    this.deadAfterMs = options.deadAfterMs ?? REDIS_DEAD_AFTER_MS;
  }

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => {
      this.tick();
    }, this.pingEveryMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  private tick(): void {
    const now = Date.now();
    const socket = this.redis.stream as RedisSocket | undefined;
    if (socket === undefined || socket.destroyed) return;
    if (socket !== this.watched) this.follow(socket, now);
    const status = this.redis.status;
    if (status === 'connecting' || status === 'connect') {
      // A Redis still loading its data answers the ready check every 100 ms: that is alive.
      const silentMs = now - Math.max(this.watchedSince, this.lastByteAt);
      if (silentMs > this.deadAfterMs) this.drop(socket, `not ready, silent for ${silentMs} ms`);
      return;
    }
    if (status !== 'ready') return;
    if (this.pingSentAt !== null) {
      const silentMs = now - Math.max(this.lastByteAt, this.pingSentAt);
      if (silentMs > this.deadAfterMs) this.drop(socket, `no answer to PING for ${silentMs} ms`);
      return;
    }
    this.pingSentAt = now;
    this.redis.ping().then(
      () => {
        if (this.watched === socket) this.pingSentAt = null;
      },
      () => {
        // Failed on this socket (a command timeout, or it closed): the next tick decides.
      },
    );
  }

  private follow(socket: RedisSocket, now: number): void {
    this.watched = socket;
    this.watchedSince = now;
    this.lastByteAt = now;
    this.pingSentAt = null;
    socket.on('data', () => {
      if (this.watched === socket) this.lastByteAt = Date.now();
    });
  }

  private drop(socket: RedisSocket, reason: string): void {
    this.dropped += 1;
    this.options.onDead?.(reason);
    // ioredis sees 'close', fails what was in flight on this socket and reconnects.
    socket.destroy();
  }
}
