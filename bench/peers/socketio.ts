/**
 * Socket.IO 4.8 (polling transport only) as a bench stack: servers/sio-server.mjs, one Node
 * process. Pings every 300 s, so that no heartbeat falls inside a run (as epush's hold).
 */
import { EPUSH_HOLD_SECONDS } from './epush.js';
import { startNodeServerStack } from './node-server.js';
import { npmVersion } from './stack.js';
import type { PeerStack, StackOptions } from './types.js';

/** Package versions; throws naming a missing package. */
export function socketIoVersion(): string {
  return `${npmVersion('socket.io')} (${npmVersion('engine.io')})`;
}

export async function startSocketIo(options: StackOptions): Promise<PeerStack> {
  return startNodeServerStack(options, {
    name: 'socket.io',
    version: socketIoVersion(),
    script: 'sio-server.mjs',
    env: { PING_INTERVAL_MS: String(EPUSH_HOLD_SECONDS * 1000) },
    logName: 'socketio.log',
    config:
      `\`new Server(http, { transports: ['polling'], pingInterval: ${EPUSH_HOLD_SECONDS * 1000}, pingTimeout: 20000 })\`, ` +
      '`raw.request = null` on each engine connection (the documented memory tip), ' +
      '`POST /publish` → `io.emit("msg", payload)`; keepAliveTimeout 600 s',
  });
}
