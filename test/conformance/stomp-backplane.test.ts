import { after, before } from 'node:test';
import { StompBackplane } from '../../src/backplane/stomp/stomp-backplane.js';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type BackplaneFactory,
} from './backplane-conformance.js';

let broker: PrivateActiveMq;
let prefixCounter = 0;

before(async () => {
  broker = await PrivateActiveMq.start();
});

after(async () => {
  await broker.stop();
});

const factory: BackplaneFactory = (options) => {
  // Two connections to one ActiveMQ behave as two nodes; a fresh prefix isolates each cluster.
  prefixCounter += 1;
  const url = `${broker.stompUrl}?prefix=conf${prefixCounter}`;
  const a = new StompBackplane(url, options);
  const b = new StompBackplane(url, options);
  return Promise.resolve({
    a,
    b,
    close: async () => {
      await a.stop();
      await b.stop();
    },
  });
};

runBackplaneConformance('stomp', factory);
runRetentionConformance('stomp', factory);
