import type { BackplaneGuarantees, BackplaneOptions } from './backplane.js';
import { IpcDriver, type RelayChannel } from './ipc/ipc-driver.js';
import { ReplicatedBackplane } from './protocol/replicated-backplane.js';

/**
 * A worker's backplane under `--workers N` with the memory backplane: the cluster protocol over
 * the IPC driver, whose store lives in the primary process (ipc/driver-relay.ts).
 */
export class IpcBackplane extends ReplicatedBackplane {
  constructor(
    channel: RelayChannel,
    kind: string,
    guarantees: BackplaneGuarantees,
    options: BackplaneOptions,
  ) {
    super(new IpcDriver(channel, kind, guarantees), options);
  }
}
