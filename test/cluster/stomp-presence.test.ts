/** Presence and webhooks on two nodes over STOMP (ActiveMQ; see two-node-presence.ts). */
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import { describeTwoNodePresence } from './two-node-presence.js';

describeTwoNodePresence('STOMP (ActiveMQ)', async () => {
  const broker = await PrivateActiveMq.start();
  return { backplaneUrl: `${broker.stompUrl}?prefix=pres`, stop: () => broker.stop() };
});
