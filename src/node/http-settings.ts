import type { EpushConfig } from '../config/flags.js';
import type { RequestHandlerOptions } from '../http/request-handler.js';
import type { StandaloneServerOptions } from '../http/standalone-server.js';

/** The HTTP surface's options from the node's configuration (flags in bytes and milliseconds). */
export function requestHandlerOptions(config: EpushConfig): RequestHandlerOptions {
  return {
    apiKeys: config.apiKey,
    insecureDev: config.insecureDev,
    corsOrigins: config.corsOrigins,
    streamBudgetBytes: config.streamBudgetKb * 1024,
    pingMs: Math.max(1000, config.holdSeconds * 1000),
    maxPayloadBytes: config.maxPayloadKb * 1024,
    listenStorm: {
      requests: config.listenStormRequests,
      intervalMs: config.listenStormIntervalMs,
      backoffMs: config.listenStormBackoffMs,
    },
    icepush: config.icepush
      ? {
          openApi: config.icepushOpenApi,
          heartbeatMs: config.icepushHeartbeatSeconds * 1000,
          stormBackoffMs: config.icepushStormBackoffMs,
        }
      : null,
    listenTokens: {
      secrets: config.listenTokenSecret,
      required: config.requireListenTokens,
      ttlSeconds: config.listenTokenTtl,
    },
  };
}

/** The standalone server's timeouts and limits from the node's configuration. */
export function standaloneServerOptions(config: EpushConfig): StandaloneServerOptions {
  return {
    headersTimeoutMs: config.headersTimeoutSeconds * 1000,
    bodyTimeoutMs: config.bodyTimeoutSeconds * 1000,
    idleTimeoutMs: config.idleTimeoutSeconds * 1000,
    maxConnections: config.maxConnections,
    maxConnectionsPerIp: config.maxConnectionsPerIp,
    maxHeadBytes: config.maxHeaderKb * 1024,
  };
}
