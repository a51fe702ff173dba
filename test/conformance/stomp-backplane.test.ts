import { after, before } from 'node:test';
import { StompDriver } from '../../src/backplane/stomp/stomp-driver.js';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type DriverFactory,
} from './backplane-conformance.js';
import { runPresenceConformance } from './presence-conformance.js';
import { routedVia, runSilentLinkConformance } from './silent-link-conformance.js';

let broker: PrivateActiveMq;
let prefixCounter = 0;

before(async () => {
  broker = await PrivateActiveMq.start();
});

after(async () => {
  await broker.stop();
});

const factory: DriverFactory = (options) => {
  // Two connections to one ActiveMQ behave as two nodes; a fresh prefix isolates each cluster.
  prefixCounter += 1;
  const url = `${broker.stompUrl}?prefix=conf${prefixCounter}`;
  return Promise.resolve({ a: new StompDriver(url, options), b: new StompDriver(url, options) });
};

runBackplaneConformance('stomp', factory);
runRetentionConformance('stomp', factory);
runPresenceConformance('stomp', factory);
runSilentLinkConformance('stomp', () => ({
  brokerPort: broker.stompPort,
  pair: (options, viaPort) => {
    prefixCounter += 1;
    const via = routedVia(broker.stompUrl, broker.stompPort, viaPort);
    return {
      a: new StompDriver(`${broker.stompUrl}?prefix=conf${prefixCounter}`, options),
      b: new StompDriver(`${via}?prefix=conf${prefixCounter}`, options),
    };
  },
}));
