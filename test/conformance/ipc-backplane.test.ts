import { DriverRelay } from '../../src/backplane/ipc/driver-relay.js';
import {
  IpcDriver,
  type RelayChannel,
  type RelayMessage,
} from '../../src/backplane/ipc/ipc-driver.js';
import { MEMORY_GUARANTEES } from '../../src/backplane/memory/memory-driver.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type DriverFactory,
} from './backplane-conformance.js';
import { runPresenceConformance } from './presence-conformance.js';

/**
 * Both ends of a worker's IPC channel in one process. Messages are copied with structuredClone
 * (what node:cluster's "advanced" serialization does) and arrive on a later turn, as over IPC.
 */
function channelPair(): { worker: RelayChannel; primary: RelayChannel } {
  const listeners = {
    worker: [] as ((m: RelayMessage) => void)[],
    primary: [] as ((m: RelayMessage) => void)[],
  };
  const end = (self: 'worker' | 'primary', other: 'worker' | 'primary'): RelayChannel => ({
    send: (message) => {
      const copy = structuredClone(message);
      setImmediate(() => {
        for (const listener of listeners[other]) listener(copy);
      });
    },
    onMessage: (listener) => {
      listeners[self].push(listener);
    },
  });
  return { worker: end('worker', 'primary'), primary: end('primary', 'worker') };
}

const ipc: DriverFactory = (options) => {
  const relay = new DriverRelay(options);
  const worker = (): IpcDriver => {
    const { worker: end, primary } = channelPair();
    relay.attach(primary);
    return new IpcDriver(end, 'memory', MEMORY_GUARANTEES);
  };
  return Promise.resolve({ a: worker(), b: worker() });
};

runBackplaneConformance('ipc (workers sharing the primary memory store)', ipc);
runRetentionConformance('ipc', ipc);
runPresenceConformance('ipc', ipc);
