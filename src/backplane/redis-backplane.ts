import type { BackplaneOptions } from './backplane.js';
import { ReplicatedBackplane } from './protocol/replicated-backplane.js';
import { RedisDriver } from './redis/redis-driver.js';

export { REDIS_GUARANTEES } from './redis/redis-driver.js';

/** The Redis backplane: the cluster protocol over the Redis driver (`redis://`, `rediss://`). */
export class RedisBackplane extends ReplicatedBackplane {
  constructor(url: string, options: BackplaneOptions) {
    super(new RedisDriver(url, options), options);
  }
}
