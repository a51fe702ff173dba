// epush mounted in a Koa 3 application under /push-server.
//   npm run build && node examples/koa.mjs   then open http://127.0.0.1:3000/
import Koa from 'koa';
import { createEpush } from 'epush';
import { page } from './page.mjs';

const epush = createEpush({ basePath: '/push-server' });
const app = new Koa();

// First middleware: for epush's paths Koa is told not to respond (ctx.respond = false) and
// epush writes to the raw response itself; everything else goes down the chain.
app.use(async (ctx, next) => {
  if (!epush.owns(ctx.req)) return next();
  ctx.respond = false;
  epush.handler(ctx.req, ctx.res);
});

// The application's own routes (a router package would do the same).
app.use(async (ctx) => {
  if (ctx.method === 'GET' && ctx.path === '/') {
    const [pushId] = await epush.createPushIds();
    await epush.addMember('news', pushId);
    ctx.type = 'html';
    ctx.body = page('Koa', pushId);
  } else if (ctx.method === 'POST' && ctx.path === '/notify') {
    const { id } = await epush.notifyGroup('news', { text: 'hello', at: new Date().toISOString() });
    ctx.status = 202;
    ctx.body = { id };
  }
});

await epush.start();
const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`http://127.0.0.1:${server.address().port}/`);
});
epush.attach(server); // WebSocket upgrades through Koa's node:http server

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, async () => {
    await epush.close();
    server.close();
  });
}
