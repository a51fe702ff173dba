// epush mounted in a plain node:http server under /push-server.
//   npm run build && node examples/node-http.mjs   then open http://127.0.0.1:3000/
import { createServer } from 'node:http';
import { createEpush } from 'epush';
import { page } from './page.mjs';

// Memory backplane, no apiKey: the app drives epush in-process; /push-server/api is not served.
const epush = createEpush({ basePath: '/push-server' });

// The application's own routes.
async function app(req, res) {
  if (req.method === 'GET' && req.url === '/') {
    const [pushId] = await epush.createPushIds(); // one push ID per page view
    await epush.addMember('news', pushId);
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(page('node:http', pushId));
  } else if (req.method === 'POST' && req.url === '/notify') {
    // Notify through the in-process API: validated like POST /api/groups/news/notify.
    const { id } = await epush.notifyGroup('news', { text: 'hello', at: new Date().toISOString() });
    res.writeHead(202, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ id }));
  } else {
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }
}

// epush answers its own paths (/push-server/push/listen, /push-server/epush.js, …) and hands
// every other request to the callback.
const server = createServer((req, res) => {
  epush.handler(req, res, () => {
    app(req, res).catch((error) => {
      res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(String(error));
    });
  });
});
epush.attach(server); // WebSocket upgrades for /push-server/push/ws

await epush.start(); // connects the backplane; the server is the app's own
const port = Number(process.env.PORT ?? 3000);
server.listen(port, '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${server.address().port}/`);
});

// Drain like `epush start` on SIGTERM: held listens are told to reconnect, then stop.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await epush.close();
    server.close();
  });
}
