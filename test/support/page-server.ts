import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface PageServer {
  readonly server: Server;
  /** `http://127.0.0.1:PORT`: an origin of its own, so the push server is cross-origin. */
  readonly origin: string;
  close(): Promise<void>;
}

/**
 * Serves one HTML page at `/` (any query string) from a private loopback port, for browser tests
 * whose page must come from another origin than epush, as in production. Anything else is 404.
 */
export function startPageServer(html: string): Promise<PageServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/') {
      res.writeHead(200, {
        'content-type': 'text/html; charset=utf-8',
        'cache-control': 'no-store',
      });
      res.end(html);
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      resolve({
        server,
        origin: `http://127.0.0.1:${port}`,
        close: () =>
          new Promise((done) => {
            server.close(() => {
              done();
            });
            server.closeAllConnections();
          }),
      });
    });
  });
}
