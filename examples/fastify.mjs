// epush mounted in a Fastify 5 application under /push-server.
//   npm run build && node examples/fastify.mjs   then open http://127.0.0.1:3000/
import Fastify from 'fastify';
import { createEpush } from 'epush';
import { page } from './page.mjs';

const epush = createEpush({ basePath: '/push-server' });
const app = Fastify();

// onRequest runs before Fastify reads the body. For epush's paths the reply is hijacked and
// epush answers on the raw req/res — also much later, for held long-polls and SSE streams.
app.addHook('onRequest', async (request, reply) => {
  if (!epush.owns(request.raw)) return;
  reply.hijack();
  epush.handler(request.raw, reply.raw);
});
// Drain epush before Fastify closes its server.
app.addHook('preClose', () => epush.close());

app.get('/', async (request, reply) => {
  const [pushId] = await epush.createPushIds();
  await epush.addMember('news', pushId);
  return reply.type('text/html; charset=utf-8').send(page('Fastify', pushId));
});

app.post('/notify', async (request, reply) => {
  const { id } = await epush.notifyGroup('news', { text: 'hello', at: new Date().toISOString() });
  return reply.code(202).send({ id });
});

await epush.start();
await app.listen({ port: Number(process.env.PORT ?? 3000), host: '127.0.0.1' });
epush.attach(app.server); // WebSocket upgrades through Fastify's node:http server
console.log(`http://127.0.0.1:${app.server.address().port}/`);

for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => app.close());
