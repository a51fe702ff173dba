import type { Backplane, BackplaneOptions } from '../backplane/backplane.js';
import { MemoryBackplane } from '../backplane/memory-backplane.js';
import { NatsBackplane } from '../backplane/nats-backplane.js';
import { RedisBackplane } from '../backplane/redis-backplane.js';
import { StompBackplane } from '../backplane/stomp/stomp-backplane.js';
import type { EpushConfig } from '../config/flags.js';

export function backplaneOptions(config: EpushConfig): BackplaneOptions {
  return {
    retentionMs: config.retentionSeconds * 1000,
    pushIdTtlMs: config.pushIdTtl * 1000,
    maxLogBytes: config.retentionMaxMb * 1024 * 1024,
    nodeTimeoutMs: config.heartbeatSeconds * 3000,
    presenceGraceMs: config.presenceGraceSeconds * 1000,
    ...(config.webhookUrl === '' ? {} : { presenceWebhookNode: config.nodeId }),
  };
}

/** The backplane named by `--backplane`. */
export function createBackplane(config: EpushConfig): Backplane {
  const options = backplaneOptions(config);
  if (config.backplane === 'memory') return new MemoryBackplane(options);
  if (config.backplane.startsWith('redis://') || config.backplane.startsWith('rediss://')) {
    return new RedisBackplane(config.backplane, options);
  }
  if (config.backplane.startsWith('nats://')) return new NatsBackplane(config.backplane, options);
  if (config.backplane.startsWith('stomp://')) return new StompBackplane(config.backplane, options);
  throw new Error(`backplane ${config.backplane} is not available in this version`);
}
