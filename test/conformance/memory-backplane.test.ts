import { MemoryBackplane } from '../../src/backplane/memory-backplane.js';
import {
  runBackplaneConformance,
  runRetentionConformance,
  type BackplaneFactory,
} from './backplane-conformance.js';

const memory: BackplaneFactory = (options) => {
  // One process, one state: both "nodes" are the same instance.
  const backplane = new MemoryBackplane(options);
  return Promise.resolve({ a: backplane, b: backplane, close: () => backplane.stop() });
};

runBackplaneConformance('memory', memory);
runRetentionConformance('memory', memory);
