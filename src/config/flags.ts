/**
 * Every flag of `epush start`, once. `--help`, the environment names (`EPUSH_*`), the config-file
 * keys, validation and the README table are all derived from this table.
 */
import { parseStompUrl } from './stomp-url.js';
import { hostname } from 'node:os';
import { parseApiKeyEntry } from '../core/api-key-entry.js';
import { MAX_LISTEN_TOKEN_TTL_SECONDS, MIN_LISTEN_TOKEN_SECRET_LENGTH } from '../core/limits.js';
import { defaultMaxConnections } from './open-files-limit.js';
import { boolean, flag, FlagValueError, integer, list, type FlagSpec } from './flag-spec.js';
import { ICEPUSH_FLAGS } from './icepush-flags.js';
import { PRESENCE_FLAGS } from './presence-flags.js';
export { FlagValueError, type FlagSpec } from './flag-spec.js';

const BACKPLANE_SCHEMES = ['memory', 'redis:', 'rediss:', 'nats:', 'stomp:'];

export const FLAGS = {
  host: flag({
    name: 'host',
    arg: 'ADDR',
    help: 'address to bind',
    defaultText: '127.0.0.1',
    defaultValue: () => '127.0.0.1',
    parse: (raw) => {
      if (!/^[A-Za-z0-9.:_-]+$/.test(raw))
        throw new FlagValueError(`is not a host (got ${JSON.stringify(raw)})`);
      return raw;
    },
  }),
  port: flag({
    name: 'port',
    arg: 'N',
    help: 'port to bind (0 = any free port)',
    defaultText: '8080',
    defaultValue: () => 8080,
    parse: integer(0, 65535),
  }),
  backplane: flag({
    name: 'backplane',
    arg: 'URL',
    help: 'memory, redis://… (rediss://), nats://…, stomp://…',
    defaultText: 'memory',
    defaultValue: () => 'memory',
    parse: (raw) => {
      if (!BACKPLANE_SCHEMES.some((scheme) => raw === scheme || raw.startsWith(`${scheme}//`))) {
        throw new FlagValueError(
          `must be memory or a redis://, rediss://, nats:// or stomp:// URL (got ${JSON.stringify(raw)})`,
        );
      }
      return raw;
    },
  }),
  nodeId: flag({
    name: 'node-id',
    arg: 'NAME',
    help: "this node's name in the cluster",
    defaultText: 'hostname-pid',
    defaultValue: () => `${hostname()}-${process.pid}`,
    parse: (raw) => {
      if (!/^[A-Za-z0-9._:-]{1,100}$/.test(raw)) {
        throw new FlagValueError(
          `must be 1-100 characters of [A-Za-z0-9._:-] (got ${JSON.stringify(raw)})`,
        );
      }
      return raw;
    },
  }),
  apiKey: flag<string[]>({
    name: 'api-key',
    arg: 'KEYS',
    help: 'secret(s) for the application API, comma-separated; required unless --insecure-dev. A key may be scoped: KEY;read-only, KEY;groups=app-a.|shared. (only groups with these prefixes)',
    defaultText: 'none',
    defaultValue: () => [],
    parse: (raw) => {
      const keys = list(raw);
      for (const key of keys) {
        try {
          parseApiKeyEntry(key);
        } catch (error) {
          throw new FlagValueError((error as Error).message);
        }
      }
      return keys;
    },
  }),
  holdSeconds: flag({
    name: 'hold-seconds',
    arg: 'S',
    help: 'longest time a long-poll is held before an empty answer',
    defaultText: '25',
    defaultValue: () => 25,
    parse: integer(1, 3600),
  }),
  pushIdTtl: flag({
    name: 'push-id-ttl',
    arg: 'S',
    help: 'seconds before an unheld push ID expires',
    defaultText: '600',
    defaultValue: () => 600,
    parse: integer(1, 30 * 86400),
  }),
  ...PRESENCE_FLAGS,
  retentionSeconds: flag({
    name: 'retention-seconds',
    arg: 'S',
    help: 'how far back a cursor can resume',
    defaultText: '300',
    defaultValue: () => 300,
    parse: integer(1, 7 * 86400),
  }),
  retentionMaxMb: flag({
    name: 'retention-max-mb',
    arg: 'MB',
    help: 'memory bound of the retained log (memory backplane); older events go first',
    defaultText: '256',
    defaultValue: () => 256,
    parse: integer(1, 65536),
  }),
  workers: flag<number | 'auto'>({
    name: 'workers',
    arg: 'N|auto',
    help: 'processes on this machine (auto = one per core), all joined to the backplane',
    defaultText: '1',
    defaultValue: () => 1,
    parse: (raw) => (raw === 'auto' ? 'auto' : integer(1, 256)(raw)),
  }),
  drainSeconds: flag({
    name: 'drain-seconds',
    arg: 'S',
    help: 'on SIGTERM, time to hand listeners to other nodes before exit',
    defaultText: '10',
    defaultValue: () => 10,
    parse: integer(0, 3600),
  }),
  jmsNotify: flag<string>({
    name: 'jms-notify',
    arg: 'URL',
    help: 'stomp://user:pass@host:port[?prefix=…] of a JMS broker whose notify queue this node consumes (docs/jms.md), whatever the backplane; a stomp:// backplane already does this on its own connection',
    defaultText: 'none',
    defaultValue: () => '',
    parse: (raw) => {
      try {
        parseStompUrl(raw);
      } catch (error) {
        throw new FlagValueError(`must be a stomp:// URL: ${(error as Error).message}`);
      }
      return raw;
    },
  }),
  corsOrigins: flag<string[]>({
    name: 'cors-origins',
    arg: 'LIST',
    help: 'origins allowed to call the browser endpoints, comma-separated (* = any)',
    defaultText: '*',
    defaultValue: () => ['*'],
    parse: (raw) => {
      const origins = list(raw);
      for (const origin of origins) {
        if (origin !== '*' && !/^https?:\/\/[^/\s]+$/.test(origin)) {
          throw new FlagValueError(
            `has an entry that is not * or an origin like https://app.example.com (got ${JSON.stringify(origin)})`,
          );
        }
      }
      if (origins.length === 0) throw new FlagValueError('must name at least one origin');
      return origins;
    },
  }),
  insecureDev: flag({
    name: 'insecure-dev',
    help: 'allow the application API without a key (refused unless bound to loopback)',
    defaultText: 'off',
    defaultValue: () => false,
    parse: boolean,
    boolean: true,
  }),
  listenTokenSecret: flag<string[]>({
    name: 'listen-token-secret',
    arg: 'LIST',
    help: `secret(s) that sign listen tokens, comma-separated, each at least ${MIN_LISTEN_TOKEN_SECRET_LENGTH} characters; the first signs, all verify (rotation). Set: the API mints tokens and a listen token that is sent must be valid`,
    defaultText: 'none',
    defaultValue: () => [],
    parse: (raw) => {
      const secrets = list(raw);
      if (secrets.some((secret) => secret.length < MIN_LISTEN_TOKEN_SECRET_LENGTH)) {
        throw new FlagValueError(
          `needs secrets of at least ${MIN_LISTEN_TOKEN_SECRET_LENGTH} characters each`,
        );
      }
      return secrets;
    },
  }),
  requireListenTokens: flag({
    name: 'require-listen-tokens',
    help: 'every listen must carry a valid listen token for each push ID (needs --listen-token-secret)',
    defaultText: 'off',
    defaultValue: () => false,
    parse: boolean,
    boolean: true,
  }),
  listenTokenTtl: flag({
    name: 'listen-token-ttl',
    arg: 'S',
    help: 'lifetime in seconds of a listen token minted without an explicit ttlSeconds',
    defaultText: '86400',
    defaultValue: () => 86400,
    parse: integer(60, MAX_LISTEN_TOKEN_TTL_SECONDS),
  }),
  headersTimeoutSeconds: flag({
    name: 'headers-timeout-seconds',
    arg: 'S',
    help: 'a connection must send complete request headers within this time',
    defaultText: '10',
    defaultValue: () => 10,
    parse: integer(1, 600),
  }),
  bodyTimeoutSeconds: flag({
    name: 'body-timeout-seconds',
    arg: 'S',
    help: 'a request must arrive in full (headers and body) within this time',
    defaultText: '30',
    defaultValue: () => 30,
    parse: integer(1, 3600),
  }),
  idleTimeoutSeconds: flag({
    name: 'idle-timeout-seconds',
    arg: 'S',
    help: 'a keep-alive connection with no request in flight is closed after this time',
    defaultText: '60',
    defaultValue: () => 60,
    parse: integer(1, 3600),
  }),
  // --- abuse limits (docs/operations.md, "Limits") ---
  maxConnections: flag({
    name: 'max-connections',
    arg: 'N',
    help: 'most open TCP connections on this node (per process); past it a connection gets 503 too_many_connections and /readyz turns 503. 0 = no limit',
    defaultText: 'open-files limit - 256 (0 where unknown)',
    defaultValue: () => defaultMaxConnections(),
    parse: integer(0, 100_000_000),
  }),
  maxConnectionsPerIp: flag({
    name: 'max-connections-per-ip',
    arg: 'N',
    help: 'most open connections from one peer address; past it 429 rate_limited. 0 = off (behind a load balancer or NAT many users share one address)',
    defaultText: '0',
    defaultValue: () => 0,
    parse: integer(0, 100_000_000),
  }),
  listenStormRequests: flag({
    name: 'listen-storm-requests',
    arg: 'N',
    help: 'listen storm: after this many re-polls in a row on one connection, each sooner than --listen-storm-interval-ms after the previous, listens are delayed',
    defaultText: '25',
    defaultValue: () => 25,
    parse: integer(1, 100_000),
  }),
  listenStormIntervalMs: flag({
    name: 'listen-storm-interval-ms',
    arg: 'MS',
    help: 'listen storm: a re-poll sooner than this after the previous listen counts towards a storm',
    defaultText: '275',
    defaultValue: () => 275,
    parse: integer(1, 60_000),
  }),
  listenStormBackoffMs: flag({
    name: 'listen-storm-backoff-ms',
    arg: 'MS',
    help: 'listen storm: how long a storming listen waits before it is served (it keeps its cursor: nothing is lost, notifications arrive batched). 0 = detection off',
    defaultText: '1000',
    defaultValue: () => 1000,
    parse: integer(0, 60_000),
  }),
  maxHeaderKb: flag({
    name: 'max-header-kb',
    arg: 'KB',
    help: 'largest request head (request line and headers); past it 431 headers_too_large',
    defaultText: '16',
    defaultValue: () => 16,
    parse: integer(1, 1024),
  }),
  maxPayloadKb: flag({
    name: 'max-payload-kb',
    arg: 'KB',
    help: 'largest notification payload once serialized (may only be lowered: the protocol fixes 64 KiB); past it 413 payload_too_large',
    defaultText: '64',
    defaultValue: () => 64,
    parse: integer(1, 64),
  }),
  // --- end of abuse limits ---
  streamBudgetKb: flag({
    name: 'stream-budget-kb',
    arg: 'KB',
    help: 'an SSE or WebSocket peer with more unsent output than this is too slow: it is disconnected and resumes from its cursor',
    defaultText: '256',
    defaultValue: () => 256,
    parse: integer(16, 65536),
  }),
  heartbeatSeconds: flag({
    name: 'heartbeat-seconds',
    arg: 'S',
    help: 'how often a node reports to the cluster; one silent for 3 heartbeats is dead',
    defaultText: '5',
    defaultValue: () => 5,
    parse: integer(1, 600),
  }),
  canarySeconds: flag({
    name: 'canary-seconds',
    arg: 'S',
    help: 'how often the delivery canary probes the backplane; 3 missed periods turn readiness red',
    defaultText: '1',
    defaultValue: () => 1,
    parse: integer(1, 60),
  }),
  logLevel: flag({
    name: 'log-level',
    arg: 'LEVEL',
    help: 'fatal, error, warn, info, debug, trace or silent',
    defaultText: 'info',
    defaultValue: () => 'info',
    parse: (raw) => {
      if (!['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].includes(raw)) {
        throw new FlagValueError(
          `must be one of fatal, error, warn, info, debug, trace, silent (got ${JSON.stringify(raw)})`,
        );
      }
      return raw;
    },
  }),
  ...ICEPUSH_FLAGS,
} as const;

export type FlagKey = keyof typeof FLAGS;

/** The resolved configuration of a node: one field per flag. */
export type EpushConfig = {
  -readonly [K in FlagKey]: ReturnType<(typeof FLAGS)[K]['parse']>;
};

/** `hold-seconds` → `EPUSH_HOLD_SECONDS`. */
export function envName(spec: FlagSpec<unknown>): string {
  return `EPUSH_${spec.name.toUpperCase().replaceAll('-', '_')}`;
}
