/**
 * epush browser client: every tab and application of a site shares ONE push connection.
 *
 * ```js
 * const push = EPush.connect({ url: 'https://push.example.com' });
 * const stop = push.listen(pushId, (notification) => { ... }); // {id, pushId, group, payload}
 * push.on('status', (status) => { ... }); // connecting | connected | reconnecting | offline
 * push.on('reset', () => { ... });        // reload application state
 * push.on('expired', (pushIds) => { ... });
 * push.on('forbidden', ({ pushIds, message }) => { ... }); // listen token refused
 * push.listen(pushId, callback, { listenToken }); // with --listen-token-secret
 * stop();
 * push.close();
 * ```
 */
import { EPushClient } from './client.js';
import { normaliseBaseUrl, TAB_PROTOCOL_VERSION } from './environment.js';
import type { ConnectOptions } from './types.js';

export { EPushClient, type SharingInfo } from './client.js';
export { MAX_PUSH_IDS_PER_LISTEN } from './connection.js';
export type {
  ConnectionStatus,
  ConnectOptions,
  EPushEventName,
  EPushEvents,
  ForbiddenEvent,
  ListenOptions,
  PushNotification,
  ResetEvent,
  TransportName,
} from './types.js';

/** The library version; tabs only share a connection with tabs speaking the same tab protocol. */
export const VERSION = '0.1.0';

// Shared through the global object, so the classic script and the ES module loaded on one page
// still give applications one instance (and one connection).
const INSTANCES_KEY = Symbol.for(`epush.clients/${TAB_PROTOCOL_VERSION}`);

function instances(): Map<string, EPushClient> {
  const g = globalThis as unknown as Record<symbol, Map<string, EPushClient> | undefined>;
  let map = g[INSTANCES_KEY];
  if (!map) {
    map = new Map();
    g[INSTANCES_KEY] = map;
  }
  return map;
}

/**
 * Connects this page to the push server at `options.url`, or returns the instance this page
 * already has for it (same url and channel name): applications on one page share it, and each
 * call is one reference that `close()` releases. Options of a later call are ignored.
 */
export function connect(options: ConnectOptions): EPushClient {
  const location = (globalThis as { location?: { href: string } }).location;
  const key = `${options.channelName ?? ''}\n${normaliseBaseUrl(options.url, location?.href)}`;
  const map = instances();
  const existing = map.get(key);
  if (existing && !existing.isClosed) {
    existing.retain();
    return existing;
  }
  const client = new EPushClient(options);
  map.set(key, client);
  return client;
}
