/**
 * Faye 1.4 (Bayeux long-polling) as a bench stack: servers/faye-server.mjs, one Node process, a
 * `/meta/connect` held up to 300 s (as epush's hold), publishing through the in-process client.
 */
import { EPUSH_HOLD_SECONDS } from './epush.js';
import { startNodeServerStack } from './node-server.js';
import { npmVersion } from './stack.js';
import type { PeerStack, StackOptions } from './types.js';

/** Package version; throws naming a missing package. */
export function fayeVersion(): string {
  return npmVersion('faye');
}

export async function startFaye(options: StackOptions): Promise<PeerStack> {
  return startNodeServerStack(options, {
    name: 'faye',
    version: fayeVersion(),
    script: 'faye-server.mjs',
    env: { CHANNEL: options.channel, TIMEOUT_SECONDS: String(EPUSH_HOLD_SECONDS) },
    logName: 'faye.log',
    config:
      `\`new faye.NodeAdapter({ mount: '/faye', timeout: ${EPUSH_HOLD_SECONDS} })\` attached to a node:http server, ` +
      `\`POST /publish\` → \`bayeux.getClient().publish('/${options.channel}', { t: payload })\`; keepAliveTimeout 600 s`,
  });
}
