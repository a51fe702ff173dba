import { after, before } from 'node:test';
import { NatsDriver } from '../../src/backplane/nats/nats-driver.js';
import { PrivateNats } from '../../testbed/brokers/nats.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type DriverFactory,
} from './backplane-conformance.js';
import { runPresenceConformance } from './presence-conformance.js';
import { routedVia, runSilentLinkConformance } from './silent-link-conformance.js';

let nats: PrivateNats;
let prefixCounter = 0;

before(async () => {
  nats = await PrivateNats.start();
});

after(async () => {
  await nats.stop();
});

const factory: DriverFactory = (options) => {
  // Two connections to one nats-server behave as two nodes; a fresh prefix isolates each cluster.
  prefixCounter += 1;
  const url = `${nats.url}/?prefix=conf${prefixCounter}`;
  return Promise.resolve({ a: new NatsDriver(url, options), b: new NatsDriver(url, options) });
};

runBackplaneConformance('nats', factory);
runRetentionConformance('nats', factory);
runPresenceConformance('nats', factory);
runSilentLinkConformance('nats', () => ({
  brokerPort: nats.port,
  pair: (options, viaPort) => {
    prefixCounter += 1;
    return {
      a: new NatsDriver(`${nats.url}/?prefix=conf${prefixCounter}`, options),
      b: new NatsDriver(
        `${routedVia(nats.url, nats.port, viaPort)}/?prefix=conf${prefixCounter}`,
        options,
      ),
    };
  },
}));
