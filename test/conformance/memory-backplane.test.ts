import { MemoryBackplane, MemoryStore } from '../../src/backplane/memory-backplane.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type BackplaneFactory,
} from './backplane-conformance.js';

const memory: BackplaneFactory = (options) => {
  // One process, one state: two nodes connected to the same store.
  const store = new MemoryStore(options);
  const a = new MemoryBackplane(options, store);
  const b = new MemoryBackplane(options, store);
  return Promise.resolve({
    a,
    b,
    close: async () => {
      await a.stop();
      await b.stop();
    },
  });
};

runBackplaneConformance('memory', memory);
runRetentionConformance('memory', memory);
