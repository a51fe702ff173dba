import { createServer, connect, type Server, type Socket } from 'node:net';

export type FaultMode = 'pass' | 'blackhole';

/**
 * A TCP proxy between a node and its broker that can fail without closing anything: in
 * `blackhole` mode it keeps every connection open but forwards no byte in either direction
 * (data waits in buffers), which is what a dead middlebox or a stuck subscription looks like.
 * `pass` forwards again, flushing what waited. `cut` closes every connection (a hard failure).
 */
export class TcpFaultProxy {
  private mode: FaultMode = 'pass';
  private readonly pairs = new Set<{
    client: Socket;
    upstream: Socket;
    held: [Socket, Buffer][];
  }>();
  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<TcpFaultProxy> {
    let proxy: TcpFaultProxy | null = null;
    const server = createServer((client) => {
      const upstream = connect(targetPort, targetHost);
      const pair = { client, upstream, held: [] as [Socket, Buffer][] };
      proxy?.pairs.add(pair);
      const forward = (to: Socket) => (chunk: Buffer) => {
        if (proxy?.mode === 'blackhole') pair.held.push([to, chunk]);
        else to.write(chunk);
      };
      client.on('data', forward(upstream));
      upstream.on('data', forward(client));
      const close = (): void => {
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

  setMode(mode: FaultMode): void {
    this.mode = mode;
    if (mode === 'pass') {
      for (const pair of this.pairs) {
        for (const [to, chunk] of pair.held) to.write(chunk);
        pair.held = [];
      }
    }
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
    await new Promise<void>((resolve) =>
      this.server.close(() => {
        resolve();
      }),
    );
  }
}
