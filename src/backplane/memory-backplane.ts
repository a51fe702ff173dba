import type { BackplaneOptions } from './backplane.js';
import { MemoryDriver } from './memory/memory-driver.js';
import { MemoryStore } from './memory/memory-store.js';
import { ReplicatedBackplane } from './protocol/replicated-backplane.js';

export { MEMORY_GUARANTEES } from './memory/memory-driver.js';
export { MemoryStore } from './memory/memory-store.js';

/**
 * The embedded backplane: the whole cluster state in this process. Several nodes in one process
 * form a cluster by connecting to one MemoryStore (pass it as `store`); it cannot span processes.
 */
export class MemoryBackplane extends ReplicatedBackplane {
  readonly store: MemoryStore;

  constructor(options: BackplaneOptions, store: MemoryStore = new MemoryStore(options)) {
    super(new MemoryDriver(store), options);
    this.store = store;
  }
}
