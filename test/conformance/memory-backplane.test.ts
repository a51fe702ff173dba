import { MemoryDriver } from '../../src/backplane/memory/memory-driver.js';
import { MemoryStore } from '../../src/backplane/memory/memory-store.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type DriverFactory,
} from './backplane-conformance.js';
import { runPresenceConformance } from './presence-conformance.js';

const memory: DriverFactory = (options) => {
  // One process, one state: two nodes connected to the same store.
  const store = new MemoryStore(options);
  return Promise.resolve({ a: new MemoryDriver(store), b: new MemoryDriver(store) });
};

runBackplaneConformance('memory', memory);
runRetentionConformance('memory', memory);
runPresenceConformance('memory', memory);
