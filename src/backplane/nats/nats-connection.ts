/**
 * A NATS connection that notices when it dies without a FIN or an RST (a host replaced behind
 * the same address, a lost NAT entry). nats.js pings the server itself and, after `maxPingOut`
 * pings without a PONG, drops the socket and reconnects on a new one (status `staleConnection`,
 * then `disconnect`, `reconnecting`, `reconnect`); its default is a ping every 2 minutes, so a
 * dead link held every request for minutes. This sets the pace: a dead link is dropped 3 to 4.5
 * s after its last PONG, well inside the 5 s request timeout's neighbourhood and the 10 s the
 * operations guide promises. A busy link is not mistaken for a dead one: nats-server answers a
 * PING in order with everything else, within milliseconds.
 */
import { connect, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';

/** How often the client pings nats-server. */
export const NATS_PING_INTERVAL_MS = 1500;
/** Pings without a PONG after which the connection is dropped and replaced. */
export const NATS_MAX_PINGS_OUT = 2;

/**
 * Connects like nats.js `connect`, with the liveness above; every other option is the
 * caller's. Reconnects (on the same servers) stay the library's, so subscriptions and the
 * JetStream consumers carry over to the new socket.
 */
export function connectNats(options: NodeConnectionOptions): Promise<NatsConnection> {
  return connect({
    pingInterval: NATS_PING_INTERVAL_MS,
    maxPingOut: NATS_MAX_PINGS_OUT,
    ...options,
  });
}
