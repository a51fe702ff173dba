/**
 * The backplane contract and its implementations, for writing or testing a backplane outside
 * this package (the conformance suite lives in test/conformance/).
 */
export type {
  Backplane,
  BackplaneGuarantees,
  BackplaneOptions,
  ClusterDirectory,
  ClusterEventSink,
  EventFanout,
  EventLogStore,
  ListenerSnapshot,
  MembershipStore,
  NodeInfo,
} from './backplane.js';
export { MemoryBackplane, MEMORY_GUARANTEES } from './memory-backplane.js';
export { RedisBackplane } from './redis-backplane.js';
export { NatsBackplane } from './nats-backplane.js';
export type {
  ClusterEvent,
  NotificationEvent,
  MembershipEvent,
  ExpiryEvent,
} from '../core/events.js';
