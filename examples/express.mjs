// epush mounted in an Express 5 application under /push-server.
//   npm run build && node examples/express.mjs   then open http://127.0.0.1:3000/
import express from 'express';
import { createEpush } from 'epush';
import { page } from './page.mjs';

const epush = createEpush({ basePath: '/push-server' });
const app = express();

// First in the chain (before body parsers): epush's paths are answered here, everything
// else goes on to next(). `app.use('/push-server', epush.handler)` works as well.
app.use(epush.handler);

app.get('/', async (req, res) => {
  const [pushId] = await epush.createPushIds();
  await epush.addMember('news', pushId);
  res.type('html').send(page('Express', pushId));
});

// The application's own route notifies through the in-process API.
app.post('/notify', async (req, res) => {
  const { id } = await epush.notifyGroup('news', { text: 'hello', at: new Date().toISOString() });
  res.status(202).json({ id });
});

await epush.start();
const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${server.address().port}/`);
});
epush.attach(server); // WebSocket upgrades go through Express's node:http server

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await epush.close(); // held listens answered with reconnect, WebSockets closed
    server.close();
  });
}
