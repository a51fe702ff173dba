// Socket.IO 4.8 peer for the side-by-side bench: polling transport
// only, loopback only. POST /publish with a JSON string body → io.emit('msg', payload).
// Env: PORT, PING_INTERVAL_MS. Prints "listening <port>" once ready.
import { createServer } from 'node:http';
import { Server } from 'socket.io';

const httpServer = createServer();
const io = new Server(httpServer, {
  transports: ['polling'],
  pingInterval: Number(process.env.PING_INTERVAL_MS ?? 25000),
  pingTimeout: 20000,
  upgradeTimeout: 10000,
  maxHttpBufferSize: 1e6,
});
// Documented memory tip (socket.io/docs/v4/memory-usage): drop the first request of each session.
io.engine.on('connection', (raw) => {
  raw.request = null;
});
httpServer.prependListener('request', (req, res) => {
  if (req.method !== 'POST' || req.url !== '/publish') return;
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
    io.emit('msg', payload);
    res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': 2 });
    res.end('ok');
  });
});
httpServer.keepAliveTimeout = 600e3;
httpServer.headersTimeout = 610e3;
httpServer.requestTimeout = 0;
httpServer.listen(Number(process.env.PORT), '127.0.0.1', 4096, () => {
  process.stdout.write(`listening ${httpServer.address().port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
