import { after, before } from 'node:test';
import { RedisDriver } from '../../src/backplane/redis/redis-driver.js';
import { PrivateRedis } from '../../testbed/brokers/redis.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type DriverFactory,
} from './backplane-conformance.js';
import { runPresenceConformance } from './presence-conformance.js';
import { routedVia, runSilentLinkConformance } from './silent-link-conformance.js';

let redis: PrivateRedis;
let prefixCounter = 0;

before(async () => {
  redis = await PrivateRedis.start();
});

after(async () => {
  await redis.stop();
});

const factory: DriverFactory = (options) => {
  // Two connections to one Redis behave as two nodes; a fresh key prefix isolates each cluster.
  prefixCounter += 1;
  const url = `${redis.url}/?prefix=${encodeURIComponent(`{conf${prefixCounter}}:`)}`;
  return Promise.resolve({ a: new RedisDriver(url, options), b: new RedisDriver(url, options) });
};

runBackplaneConformance('redis', factory);
runRetentionConformance('redis', factory);
runPresenceConformance('redis', factory);
runSilentLinkConformance('redis', () => ({
  brokerPort: redis.port,
  pair: (options, viaPort) => {
    prefixCounter += 1;
    const prefix = `?prefix=${encodeURIComponent(`{conf${prefixCounter}}:`)}`;
    return {
      a: new RedisDriver(`${redis.url}/${prefix}`, options),
      b: new RedisDriver(`${routedVia(redis.url, redis.port, viaPort)}/${prefix}`, options),
    };
  },
}));
