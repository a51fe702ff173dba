/**
 * Faye 1.4 (Bayeux long-polling) as a bench stack: servers/faye-server.mjs, one Node process, a
 * `/meta/connect` held up to 300 s (as epush's hold), publishing through the in-process client.
 */
import { join } from 'node:path';
import { EPUSH_HOLD_SECONDS } from './epush.js';
import { startNodeServer } from './node-server.js';
import { isAlive, npmVersion, Publisher, publisherOn } from './stack.js';
import type { PeerStack, PublishResult, StackOptions } from './types.js';

/** Package version; throws naming a missing package. */
export function fayeVersion(): string {
  return npmVersion('faye');
}

export async function startFaye(options: StackOptions): Promise<PeerStack> {
  const version = fayeVersion();
  const server = await startNodeServer(
    'faye-server.mjs',
    { CHANNEL: options.channel, TIMEOUT_SECONDS: String(EPUSH_HOLD_SECONDS) },
    options.cpu,
    join(options.dir, 'faye.log'),
  );
  const api = new Publisher(server.port);
  const publishOn = async (client: Publisher, payload: string): Promise<PublishResult> => {
    const response = await client.request('POST', '/publish', payload);
    return { status: response.status, ok: response.status === 200, body: response.body };
  };
  return {
    name: 'faye',
    version,
    port: server.port,
    config:
      `\`new faye.NodeAdapter({ mount: '/faye', timeout: ${EPUSH_HOLD_SECONDS} })\` attached to a node:http server, ` +
      `\`POST /publish\` → \`bayeux.getClient().publish('/${options.channel}', { t: payload })\`; keepAliveTimeout 600 s`,
    pids: () => (isAlive(server.spawned.pid) ? [server.spawned.pid] : []),
    prepareListeners: (n) => Promise.resolve(Array.from({ length: n }, () => options.channel)),
    publish: (payload) => publishOn(api, payload),
    openPublisher: () => publisherOn(server.port, publishOn),
    async stop() {
      api.close();
      await server.stop();
    },
  };
}
