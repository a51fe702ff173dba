import { after, before } from 'node:test';
import { NatsBackplane } from '../../src/backplane/nats-backplane.js';
import { PrivateNats } from '../../testbed/brokers/nats.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type BackplaneFactory,
} from './backplane-conformance.js';

let nats: PrivateNats;
let prefixCounter = 0;

before(async () => {
  nats = await PrivateNats.start();
});

after(async () => {
  await nats.stop();
});

const factory: BackplaneFactory = (options) => {
  // Two connections to one nats-server behave as two nodes; a fresh prefix isolates each cluster.
  prefixCounter += 1;
  const url = `${nats.url}/?prefix=conf${prefixCounter}`;
  const a = new NatsBackplane(url, options);
  const b = new NatsBackplane(url, options);
  return Promise.resolve({
    a,
    b,
    close: async () => {
      await a.stop();
      await b.stop();
    },
  });
};

runBackplaneConformance('nats', factory);
runRetentionConformance('nats', factory);
