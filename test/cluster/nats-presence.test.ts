/** Presence and webhooks on two nodes over NATS JetStream (see two-node-presence.ts). */
import { PrivateNats } from '../../testbed/brokers/nats.js';
import { describeTwoNodePresence } from './two-node-presence.js';

describeTwoNodePresence('NATS JetStream', async () => {
  const nats = await PrivateNats.start();
  return { backplaneUrl: `${nats.url}/?prefix=pres`, stop: () => nats.stop() };
});
