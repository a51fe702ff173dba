import type { Logger } from 'pino';
import type { BackplaneOptions, NotifyTarget } from '../backplane.js';
import { ReplicatedBackplane } from '../protocol/replicated-backplane.js';
import { StompDriver, type StompTuning } from './stomp-driver.js';

export { STOMP_GUARANTEES, type StompTuning } from './stomp-driver.js';

/**
 * The STOMP backplane (`stomp://`, JMS brokers): the cluster protocol over the STOMP driver, plus
 * what only it has: a cluster-wide role (the sequencer) and notify through the broker (JMS).
 */
export class StompBackplane extends ReplicatedBackplane {
  private readonly stomp: StompDriver;

  constructor(url: string, options: BackplaneOptions, tuning: StompTuning = {}) {
    const driver = new StompDriver(url, options, tuning);
    super(driver, options);
    this.stomp = driver;
  }

  /** True on the node that is the sequencer. */
  isLeader(): boolean {
    return this.stomp.isLeader();
  }

  /** Lets applications notify through the broker's notify queue (docs/jms.md). */
  attachNotifyIngress(target: NotifyTarget, log: Logger): void {
    this.stomp.attachNotifyIngress(target, log);
  }
}
