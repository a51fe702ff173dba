import { after, before } from 'node:test';
import { RedisBackplane } from '../../src/backplane/redis-backplane.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type BackplaneFactory,
} from './backplane-conformance.js';

let redis: PrivateRedis;
let prefixCounter = 0;

before(async () => {
  redis = await PrivateRedis.start();
});

after(async () => {
  await redis.stop();
});

const factory: BackplaneFactory = (options) => {
  // Two connections to one Redis behave as two nodes; a fresh key prefix isolates each cluster.
  prefixCounter += 1;
  const url = `${redis.url}/?prefix=${encodeURIComponent(`{conf${prefixCounter}}:`)}`;
  const a = new RedisBackplane(url, options);
  const b = new RedisBackplane(url, options);
  return Promise.resolve({
    a,
    b,
    close: async () => {
      await a.stop();
      await b.stop();
    },
  });
};

runBackplaneConformance('redis', factory);
runRetentionConformance('redis', factory);
