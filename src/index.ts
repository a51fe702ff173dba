/**
 * epush as a library: run a node inside a Node.js program — on a port of its own (`EpushNode`)
 * or mounted into the program's own HTTP server and framework (`createEpush`, docs/embedding.md).
 * This is the curated public API; everything else under src/ is internal and may change without
 * notice.
 */
export { EpushNode, type EpushNodeDeps } from './node/epush-node.js';
export { loadConfig, helpText, ConfigError, type ConfigSources } from './config/load-config.js';
export { FLAGS, type EpushConfig } from './config/flags.js';
export { EpushError, ERROR_STATUS, type ErrorCode } from './core/errors.js';
export { createLogger } from './observability/logger.js';
export type { PushId } from './core/push-id.js';
export type { GroupName } from './core/group-name.js';
export type { Cursor } from './core/cursor.js';
export type { NotificationId } from './core/events.js';
export {
  createEpush,
  EmbeddedEpush,
  type CreateEpushOptions,
  type EpushEmbedConfig,
  type EpushReadiness,
  type NextFunction,
} from './embed/create-epush.js';
export type { NodeInfo } from './backplane/backplane.js';
// eslint-disable-next-line @typescript-eslint/no-deprecated -- still exported for existing users
export type { ClusterNodeView } from './http/push-service.js';
