import type { BackplaneOptions } from './backplane.js';
import { NatsDriver } from './nats/nats-driver.js';
import { ReplicatedBackplane } from './protocol/replicated-backplane.js';

export { NATS_GUARANTEES } from './nats/nats-driver.js';

/** The NATS JetStream backplane: the cluster protocol over the NATS driver (`nats://`). */
export class NatsBackplane extends ReplicatedBackplane {
  constructor(url: string, options: BackplaneOptions) {
    super(new NatsDriver(url, options), options);
  }
}
