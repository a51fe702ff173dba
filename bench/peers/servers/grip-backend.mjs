// The GRIP origin behind Pushpin for the side-by-side bench:
// every `GET /stream?ch=X` is answered with `Grip-Hold: response` on channel X, so Pushpin holds
// the request until a publish on X (or Grip-Timeout). Env: PORT, HOLD_SECONDS.
import { createServer } from 'node:http';

const hold = String(process.env.HOLD_SECONDS ?? 120);
const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://origin');
  const channel = url.searchParams.get('ch');
  if (url.pathname !== '/stream' || !channel) {
    res.writeHead(404, { 'Content-Length': 0 });
    res.end();
    return;
  }
  res.writeHead(200, {
    'Content-Type': 'text/plain',
    'Grip-Hold': 'response',
    'Grip-Channel': channel,
    'Grip-Timeout': hold,
    'Content-Length': 8,
  });
  res.end('timeout\n');
});
server.keepAliveTimeout = 600e3;
server.headersTimeout = 610e3;
server.requestTimeout = 0;
server.listen(Number(process.env.PORT), '127.0.0.1', 4096, () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
