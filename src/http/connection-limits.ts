import type { Socket } from 'node:net';
import type { Logger } from 'pino';
import { EpushError } from '../core/errors.js';
import type { RejectionCounter } from '../observability/rejections.js';
import { normalizePeerAddress, ThrottledWarning } from './abuse-limits.js';
import type { RawResponseHead } from './raw-response-head.js';

export interface ConnectionLimitOptions {
  /** `--max-connections`: most open sockets; past it 503 `too_many_connections` (0 = no limit). */
  readonly maxConnections: number;
  /** `--max-connections-per-ip`: most open sockets per peer address; past it 429 (0 = off). */
  readonly maxConnectionsPerIp: number;
}

/** How long a refused connection may take to read its answer and close. */
const REFUSED_LINGER_MS = 2000;
const TOO_MANY_CONNECTIONS = new EpushError(
  'too_many_connections',
  'This node is at its connection limit; try again shortly (another node may have room).',
  { 'retry-after': '1', connection: 'close' },
);
const PER_IP_LIMIT = new EpushError(
  'rate_limited',
  'Too many connections from your address; close some or try again later.',
  { 'retry-after': '5', connection: 'close' },
);

/**
 * The accept loop's socket limits: counts every accepted socket until it closes (the ones handed
 * to node:http included), in total and per peer address, and refuses one past a limit with a
 * complete JSON answer at accept, before any of its bytes are read.
 */
export class ConnectionLimits {
  private sockets = 0;
  /** Open sockets per peer address, only with `maxConnectionsPerIp`; an entry goes at 0. */
  private readonly perIp = new Map<string, number>();
  private readonly connectionLimitWarning: ThrottledWarning;
  private readonly perIpLimitWarning: ThrottledWarning;

  constructor(
    private readonly options: ConnectionLimitOptions,
    private readonly heads: RawResponseHead,
    private readonly rejections: RejectionCounter,
    log: Logger,
  ) {
    this.connectionLimitWarning = new ThrottledWarning(
      log,
      'connection limit reached (--max-connections): new connections are refused with 503',
    );
    this.perIpLimitWarning = new ThrottledWarning(
      log,
      'per-address connection limit reached (--max-connections-per-ip): refused with 429',
    );
  }

  /** Every accepted socket still open. */
  get open(): number {
    return this.sockets;
  }

  /** Whether the sockets open (the asking one included) have reached `--max-connections`. */
  get atConnectionLimit(): boolean {
    const max = this.options.maxConnections;
    return max > 0 && this.sockets >= max;
  }

  /** Counts `socket` until it closes and returns true; or refuses it and returns false. */
  admit(socket: Socket): boolean {
    const { maxConnections, maxConnectionsPerIp } = this.options;
    if (maxConnections > 0 && this.sockets >= maxConnections) {
      this.connectionLimitWarning.warn({ open: this.sockets, maxConnections });
      this.refuse(socket, TOO_MANY_CONNECTIONS, 'too_many_connections');
      return false;
    }
    let peer: string | undefined;
    if (maxConnectionsPerIp > 0 && socket.remoteAddress !== undefined) {
      peer = normalizePeerAddress(socket.remoteAddress);
      const open = this.perIp.get(peer) ?? 0;
      if (open >= maxConnectionsPerIp) {
        this.perIpLimitWarning.warn({ peer, open, maxConnectionsPerIp });
        this.refuse(socket, PER_IP_LIMIT, 'per_ip_connection_limit');
        return false;
      }
      this.perIp.set(peer, open + 1);
    }
    this.sockets += 1;
    socket.once('close', () => {
      this.sockets -= 1;
      if (peer !== undefined) {
        const left = (this.perIp.get(peer) ?? 1) - 1;
        if (left > 0) this.perIp.set(peer, left);
        else this.perIp.delete(peer);
      }
    });
    return true;
  }

  /**
   * Refuses a connection at accept with one complete answer, then closes it. Its input is read
   * and dropped meanwhile: closing with unread input would reset the connection, and the peer
   * might lose the answer.
   */
  private refuse(socket: Socket, error: EpushError, reason: string): void {
    this.rejections.count(reason);
    socket.on('error', noop);
    const body = JSON.stringify(error.toJSON());
    let head = this.heads.of(error.status, undefined);
    for (const [name, value] of Object.entries(error.headers)) head += `${name}: ${value}\r\n`;
    socket.end(`${head}content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    socket.resume();
    socket.setTimeout(REFUSED_LINGER_MS, () => {
      socket.destroy();
    });
  }
}

function noop(): void {}
