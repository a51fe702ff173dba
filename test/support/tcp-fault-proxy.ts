import { createServer, connect, type Server, type Socket } from 'node:net';

export type FaultMode = 'pass' | 'blackhole';

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket;
  held: [Socket, Buffer][];
  /** Killed silently: forwards nothing, ever, and tells neither side about the other's close. */
  dead: boolean;
}

/**
 * A TCP proxy between a node and its broker that can fail without closing anything:
 *
 * - `blackhole` (a stall): every connection, existing and new, stays open but forwards no byte
 *   in either direction; the bytes wait in the proxy. `pass` forwards again, flushing what
 *   waited: the same connections come back, as after a stuck middlebox recovers.
 * - `killExistingSilently()`: the connections open now die for good without a FIN or an RST
 *   (a host replaced behind the same address, a lost NAT entry): the proxy stops reading both
 *   sockets (so, as with a dead peer, the sender's buffers fill up), never forwards a byte or a
 *   close again, and keeps them open; connections made afterwards pass normally.
 * - `cut()`: closes every connection at once (a hard failure the kernel reports).
 */
export class TcpFaultProxy {
  private mode: FaultMode = 'pass';
  private readonly pairs = new Set<Pair>();
  private readonly deadPairs = new Set<Pair>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpFaultProxy> {
    let proxy: TcpFaultProxy | null = null;
    // Half-open allowed: a FIN is forwarded by hand, so a dead pair can swallow it.
    const server = createServer({ allowHalfOpen: true }, (client) => {
      const upstream = connect({ port: targetPort, host: targetHost, allowHalfOpen: true });
      const pair: Pair = { client, upstream, held: [], dead: false };
      proxy?.pairs.add(pair);
      const forward = (to: Socket) => (chunk: Buffer) => {
        if (pair.dead) return;
        if (proxy?.mode === 'blackhole') pair.held.push([to, chunk]);
        else to.write(chunk);
      };
      client.on('data', forward(upstream));
      upstream.on('data', forward(client));
      client.on('end', () => {
        if (!pair.dead) upstream.end();
      });
      upstream.on('end', () => {
        if (!pair.dead) client.end();
      });
      const close = (): void => {
        if (pair.dead) return;
        client.destroy();
        upstream.destroy();
        proxy?.pairs.delete(pair);
      };
      client.on('close', close);
      upstream.on('close', close);
      client.on('error', close);
      upstream.on('error', close);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    proxy = new TcpFaultProxy(server, typeof address === 'object' && address ? address.port : 0);
    return proxy;
  }

  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Connections currently forwarded (killed ones excluded). */
  get openConnections(): number {
    return this.pairs.size;
  }

  setMode(mode: FaultMode): void {
    this.mode = mode;
    if (mode === 'pass') {
      for (const pair of this.pairs) {
        for (const [to, chunk] of pair.held) to.write(chunk);
        pair.held = [];
      }
    }
  }

  /**
   * Every connection open now dies silently and for good (see the class comment); returns how
   * many. New connections are forwarded as the mode says.
   */
  killExistingSilently(): number {
    const killed = this.pairs.size;
    for (const pair of this.pairs) {
      pair.dead = true;
      pair.held = [];
      pair.client.pause();
      pair.upstream.pause();
      this.deadPairs.add(pair);
    }
    this.pairs.clear();
    return killed;
  }

  /** Closes every proxied connection at once (new ones are still accepted). */
  cut(): void {
    for (const pair of this.pairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.pairs.clear();
  }

  async stop(): Promise<void> {
    this.cut();
    for (const pair of this.deadPairs) {
      pair.client.destroy();
      pair.upstream.destroy();
    }
    this.deadPairs.clear();
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }
}
