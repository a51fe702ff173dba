/**
 * Socket.IO 4.8 (polling transport only) as a bench stack: servers/sio-server.mjs, one Node
 * process. Pings every 300 s, so that no heartbeat falls inside a run (as epush's hold).
 */
import { join } from 'node:path';
import { EPUSH_HOLD_SECONDS } from './epush.js';
import { startNodeServer } from './node-server.js';
import { isAlive, npmVersion, Publisher, publisherOn } from './stack.js';
import type { PeerStack, PublishResult, StackOptions } from './types.js';

/** Package versions; throws naming a missing package. */
export function socketIoVersion(): string {
  return `${npmVersion('socket.io')} (${npmVersion('engine.io')})`;
}

export async function startSocketIo(options: StackOptions): Promise<PeerStack> {
  const version = socketIoVersion();
  const server = await startNodeServer(
    'sio-server.mjs',
    { PING_INTERVAL_MS: String(EPUSH_HOLD_SECONDS * 1000) },
    options.cpu,
    join(options.dir, 'socketio.log'),
  );
  const api = new Publisher(server.port);
  const publishOn = async (client: Publisher, payload: string): Promise<PublishResult> => {
    const response = await client.request('POST', '/publish', payload);
    return { status: response.status, ok: response.status === 200, body: response.body };
  };
  return {
    name: 'socket.io',
    version,
    port: server.port,
    config:
      `\`new Server(http, { transports: ['polling'], pingInterval: ${EPUSH_HOLD_SECONDS * 1000}, pingTimeout: 20000 })\`, ` +
      '`raw.request = null` on each engine connection (the documented memory tip), ' +
      '`POST /publish` → `io.emit("msg", payload)`; keepAliveTimeout 600 s',
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
