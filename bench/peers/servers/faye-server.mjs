// Faye 1.4 peer for the side-by-side bench: Bayeux long-polling
// on /faye, loopback only. POST /publish with a JSON string body → publish {t: payload} to
// /<CHANNEL> through the in-process server-side client. Env: PORT, CHANNEL, TIMEOUT_SECONDS.
import { createServer } from 'node:http';
import faye from 'faye';

const channel = `/${process.env.CHANNEL ?? 'bench'}`;
const bayeux = new faye.NodeAdapter({
  mount: '/faye',
  timeout: Number(process.env.TIMEOUT_SECONDS ?? 60),
});
const client = bayeux.getClient();
const httpServer = createServer((req, res) => {
  if (req.method !== 'POST' || req.url !== '/publish') {
    res.writeHead(404, { 'Content-Length': 0 });
    res.end();
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    let payload = body;
    try {
      payload = JSON.parse(body);
    } catch {
      // a plain-text payload
    }
    client.publish(channel, { t: payload }).then(
      () => {
        res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
        res.end('ok');
      },
      (error) => {
        const text = String(error?.message ?? error);
        res.writeHead(500, {
          'Content-Type': 'text/plain',
          'Content-Length': Buffer.byteLength(text),
        });
        res.end(text);
      },
    );
  });
});
bayeux.attach(httpServer);
httpServer.keepAliveTimeout = 600e3;
httpServer.headersTimeout = 610e3;
httpServer.requestTimeout = 0;
httpServer.listen(Number(process.env.PORT), '127.0.0.1', 4096, () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
