import { createServer, type IncomingMessage, type ServerResponse, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One request the receiver got. */
export interface ReceivedWebhook {
  readonly at: number;
  readonly delivery: string | undefined;
  readonly signature: string | undefined;
  readonly body: string;
  readonly events: { type: string; pushId: string; at: string; id: string }[];
  /** The status it was answered with (0: left hanging). */
  readonly status: number;
}

/** How the receiver answers: a status, or `hang` (never answers). */
export type ReceiverMode = number | 'hang';

/**
 * A webhook receiver on a private loopback port for the tests: it records every request, and
 * answers with `mode` (changeable at any time; `hang` keeps the request open until close).
 */
export class WebhookReceiver {
  readonly received: ReceivedWebhook[] = [];
  mode: ReceiverMode = 204;
  private readonly hanging = new Set<ServerResponse>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<WebhookReceiver> {
    let receiver: WebhookReceiver | null = null;
    const server = createServer((req, res) => {
      receiver?.handle(req, res);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    receiver = new WebhookReceiver(server, `http://127.0.0.1:${port}/hooks/epush`);
    return receiver;
  }

  /** Every event received with a 2xx, in arrival order. */
  get acknowledged(): ReceivedWebhook['events'] {
    return this.received.filter((r) => r.status >= 200 && r.status < 300).flatMap((r) => r.events);
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let events: ReceivedWebhook['events'] = [];
      try {
        events = (JSON.parse(body) as { events: ReceivedWebhook['events'] }).events;
      } catch {
        events = [];
      }
      const mode = this.mode;
      this.received.push({
        at: Date.now(),
        delivery: header(req, 'epush-delivery'),
        signature: header(req, 'epush-signature'),
        body,
        events,
        status: mode === 'hang' ? 0 : mode,
      });
      if (mode === 'hang') this.hanging.add(res);
      else res.writeHead(mode).end();
    });
  }

  async close(): Promise<void> {
    for (const res of this.hanging) res.destroy();
    await new Promise<void>((resolve) => {
      this.server.close(() => {
        resolve();
      });
      this.server.closeAllConnections();
    });
  }
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}
