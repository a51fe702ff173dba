import type { Logger } from 'pino';
import { parseStompUrl } from '../../config/stomp-url.js';
import type { NotifyTarget } from '../backplane.js';
import { JmsNotifyIngress } from './jms-notify-ingress.js';
import { BACKPLANE_LIVENESS, stompClient, type Client } from './stomp-connection.js';

const RECONNECT_DELAY_MS = 500;

/**
 * The JMS notify ingress on a STOMP connection of its own (`--jms-notify stomp://…`), so that a
 * node on any backplane (Redis, NATS, memory) consumes a JMS broker's notify queue: Java
 * applications on Tomcat/ActiveMQ notify through the broker while the cluster runs on Redis.
 * The connection heals like the STOMP backplane's (heart-beats, reconnects); a message is
 * acknowledged only once its notify was accepted, so nothing is lost while the node is away.
 */
export class JmsNotifyConnection {
  private readonly client: Client;
  private ingress: JmsNotifyIngress | null = null;

  constructor(url: string, target: NotifyTarget, log: Logger) {
    const where = parseStompUrl(url);
    this.client = stompClient(where, {
      reconnectDelayMs: RECONNECT_DELAY_MS,
      ...BACKPLANE_LIVENESS,
    });
    this.client.onConnect = () => {
      this.ingress?.stop();
      const ingress = new JmsNotifyIngress({
        client: this.client,
        prefix: where.prefix,
        target,
        log,
      });
      this.ingress = ingress;
      ingress.start().catch((error: unknown) => {
        log.warn(
          { err: error },
          'the JMS notify queue could not be subscribed; retrying on reconnect',
        );
        this.client.forceDisconnect();
      });
    };
    this.client.onWebSocketClose = () => {
      this.ingress?.stop();
      this.ingress = null;
    };
    this.client.onStompError = (frame) => {
      log.warn(
        { reason: frame.headers.message ?? frame.body },
        'the JMS broker refused --jms-notify',
      );
    };
  }

  /** Connects (and reconnects by itself); the node does not wait for the broker. */
  start(): void {
    this.client.activate();
  }

  async stop(): Promise<void> {
    this.ingress?.stop();
    this.ingress = null;
    await this.client.deactivate();
  }
}
