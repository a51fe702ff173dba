/**
 * The JMS notify ingress: a Java application (any JMS client of the broker, e.g. over OpenWire)
 * notifies epush without HTTP by sending a TextMessage to the queue `<prefix>.notify`. Every node
 * of the cluster consumes that queue (competing consumers), hands each valid message to the
 * notify path and acknowledges it only once that resolved; a message that can never be sent on
 * goes to `<prefix>.notify.DLQ` with the reason. The contract is in docs/jms.md.
 */
import type { Logger } from 'pino';
import { EpushError } from '../../core/errors.js';
import { JMS_IDEMPOTENCY_SCOPE, scopedIdempotencyKey } from '../../core/idempotency.js';
import type { NotifyTarget } from '../backplane.js';
import {
  ERROR_CODE_HEADER,
  ERROR_HEADER,
  notificationIdForJmsMessage,
  notifyDeadLetterQueue,
  notifyQueue,
  ORIGINAL_MESSAGE_ID_HEADER,
  readNotifyMessage,
} from './jms-notify-message.js';
import {
  sendWithReceipt,
  stompHeaders,
  subscribeConfirmed,
  type Client,
  type IMessage,
} from './stomp-connection.js';

/** Messages the broker may hand one node ahead of its acknowledgements. */
export const NOTIFY_PREFETCH = 64;
const RETRY_FIRST_MS = 100;
const RETRY_MAX_MS = 2_000;
/** How long a dead-letter send waits for the broker's RECEIPT before it is tried again. */
const RECEIPT_TIMEOUT_MS = 10_000;

/**
 * A failure that trying again cannot fix (the target does not exist, the name is bad...): the
 * message goes to the dead-letter queue. Rate limiting and timeouts pass, so they are retried.
 */
function isPermanent(error: unknown): error is EpushError {
  return (
    error instanceof EpushError &&
    error.status >= 400 &&
    error.status < 500 &&
    error.code !== 'rate_limited' &&
    error.code !== 'request_timeout'
  );
}

/** One subscription's view of the world: a message may be settled only while it still holds. */
interface Delivery {
  readonly message: IMessage;
  readonly generation: number;
  /** The connection the message came on: an ACK can only travel on it. */
  readonly socket: unknown;
}

let deadLetterReceipts = 0;

export class JmsNotifyIngress {
  private readonly client: Client;
  private readonly prefix: string;
  private readonly target: NotifyTarget;
  private readonly log: Logger;
  private started = false;
  /** Bumped by every start() and stop(): deliveries of an older subscription are abandoned. */
  private generation = 0;
  private subscription: { unsubscribe: () => void } | null = null;
  private subscriptionSocket: unknown = null;
  /** Messages are handled one at a time, in arrival order (per node). */
  private chain: Promise<void> = Promise.resolve();
  /** Wakes every pending backoff sleep at once (on stop or restart). */
  private readonly sleepers = new Set<() => void>();

  constructor(options: { client: Client; prefix: string; target: NotifyTarget; log: Logger }) {
    this.client = options.client;
    this.prefix = options.prefix;
    this.target = options.target;
    this.log = options.log;
  }

  get destination(): string {
    return `/queue/${notifyQueue(this.prefix)}`;
  }

  get deadLetterDestination(): string {
    return `/queue/${notifyDeadLetterQueue(this.prefix)}`;
  }

  /** Subscribes to `/queue/<prefix>.notify`; the owner calls it again after every (re)connect. */
  async start(): Promise<void> {
    this.releaseSubscription();
    this.generation += 1;
    const generation = this.generation;
    this.started = true;
    this.wakeSleepers();
    // Whatever an older subscription still had queued is abandoned, not waited for.
    this.chain = Promise.resolve();
    const socket = this.client.webSocket;
    let subscription: { unsubscribe: () => void };
    try {
      subscription = await subscribeConfirmed(
        this.client,
        this.destination,
        (message) => {
          this.enqueue({ message, generation, socket });
        },
        {
          ack: 'client-individual',
          'activemq.prefetchSize': String(NOTIFY_PREFETCH),
          // RabbitMQ's STOMP plugin spells it so; other brokers ignore the header.
          'prefetch-count': String(NOTIFY_PREFETCH),
        },
      );
    } catch (error) {
      if (generation === this.generation) this.started = false;
      throw error;
    }
    if (generation !== this.generation) {
      // stop() or another start() came while the broker confirmed this subscription.
      if (this.onConnection(socket)) subscription.unsubscribe();
      return;
    }
    this.subscription = subscription;
    this.subscriptionSocket = socket;
    this.log.info({ destination: this.destination }, 'JMS notify ingress subscribed');
  }

  /**
   * Stops taking messages. Those received and not yet acknowledged go back to the broker, which
   * hands them to another consumer (their notification id makes a second notify harmless).
   */
  stop(): void {
    this.started = false;
    this.generation += 1;
    this.wakeSleepers();
    this.releaseSubscription();
  }

  private releaseSubscription(): void {
    const subscription = this.subscription;
    this.subscription = null;
    // After a reconnect the broker already forgot it, and its id may name a newer subscription.
    if (subscription && this.onConnection(this.subscriptionSocket)) {
      try {
        subscription.unsubscribe();
      } catch (error) {
        this.log.debug({ err: error }, 'JMS notify ingress: unsubscribe failed');
      }
    }
  }

  private onConnection(socket: unknown): boolean {
    return this.client.connected && this.client.webSocket === socket;
  }

  /** The delivery may still be settled: same subscription, same live connection. */
  private current(delivery: Delivery): boolean {
    return (
      this.started && delivery.generation === this.generation && this.onConnection(delivery.socket)
    );
  }

  private enqueue(delivery: Delivery): void {
    this.chain = this.chain
      .then(() => this.handle(delivery))
      .catch((error: unknown) => {
        // handle() settles every outcome itself; this is a bug, and the broker redelivers.
        this.log.error({ err: error }, 'JMS notify ingress: unexpected failure');
      });
  }

  private async handle(delivery: Delivery): Promise<void> {
    if (!this.current(delivery)) return;
    const { message } = delivery;
    const headers: Readonly<Record<string, string | undefined>> = message.headers;
    const messageId = headers['message-id'];
    const request = readNotifyMessage(headers, message.binaryBody);
    if (request.kind === 'rejected') {
      await this.deadLetter(delivery, request.code, request.reason);
      return;
    }
    // The JMS message ID keys the notify in the JMS scope: a redelivered message (to this node or
    // another, on any backplane) is published once.
    const options =
      messageId === undefined
        ? {}
        : {
            id: notificationIdForJmsMessage(messageId),
            idempotencyKey: scopedIdempotencyKey(JMS_IDEMPOTENCY_SCOPE, messageId),
          };
    let delay = RETRY_FIRST_MS;
    for (let attempt = 1; ; attempt++) {
      if (!this.current(delivery)) return;
      try {
        const notified =
          request.kind === 'group'
            ? await this.target.notifyGroup(request.group, request.payloadJson, options)
            : await this.target.notifyPushId(request.pushId, request.payloadJson, options);
        this.log.debug(
          { messageId, id: notified, attempt },
          'JMS notify message notified; acknowledging it',
        );
        break;
      } catch (error) {
        if (isPermanent(error)) {
          await this.deadLetter(delivery, error.code, error.message);
          return;
        }
        if (!this.current(delivery)) return;
        this.log.warn(
          { messageId, attempt, retryInMs: delay, err: error },
          'JMS notify message could not be notified yet; retrying it',
        );
        await this.sleep(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
    // Stopped or disconnected meanwhile: no ACK; the broker redelivers and the id deduplicates.
    this.ack(delivery);
  }

  /** A copy with the reason to the dead-letter queue, stored (RECEIPT), then the ACK. */
  private async deadLetter(delivery: Delivery, code: string, reason: string): Promise<void> {
    const { message } = delivery;
    const original: Readonly<Record<string, string | undefined>> = message.headers;
    const messageId = original['message-id'];
    this.log.warn(
      { messageId, code, reason, deadLetterQueue: this.deadLetterDestination },
      'JMS notify message rejected to the dead-letter queue',
    );
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(message.headers)) {
      if (key.toLowerCase().startsWith('epush') || key === 'correlation-id') headers[key] = value;
    }
    headers.persistent = 'true';
    headers[ERROR_CODE_HEADER] = code;
    headers[ERROR_HEADER] = reason;
    if (messageId !== undefined) headers[ORIGINAL_MESSAGE_ID_HEADER] = messageId;
    const bytesMessage = original['content-length'] !== undefined;
    let delay = RETRY_FIRST_MS;
    for (;;) {
      if (!this.current(delivery)) return;
      try {
        const stored = bytesMessage
          ? this.sendBytesWithReceipt(message.binaryBody, headers)
          : sendWithReceipt(this.client, this.deadLetterDestination, message.body, headers);
        await this.withinReceiptTimeout(stored);
        break;
      } catch (error) {
        if (!this.current(delivery)) return;
        this.log.warn(
          { messageId, retryInMs: delay, err: error },
          'JMS notify message could not be dead-lettered yet; retrying it',
        );
        await this.sleep(delay);
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
    this.ack(delivery);
  }

  private ack(delivery: Delivery): void {
    if (!this.current(delivery)) return;
    try {
      delivery.message.ack();
      this.log.debug(
        { messageId: delivery.message.headers['message-id'] },
        'JMS notify message acknowledged',
      );
    } catch (error) {
      // The connection went at this very moment: the broker redelivers.
      this.log.debug({ err: error }, 'JMS notify ingress: ACK failed');
    }
  }

  /** The original bytes with a content-length, so the copy is a BytesMessage like the original. */
  private sendBytesWithReceipt(body: Uint8Array, headers: Record<string, string>): Promise<void> {
    return new Promise((resolve) => {
      const receipt = `dlq-${deadLetterReceipts++}`;
      this.client.watchForReceipt(receipt, () => {
        resolve();
      });
      this.client.publish({
        destination: this.deadLetterDestination,
        binaryBody: body,
        headers: stompHeaders({ ...headers, receipt }),
      });
    });
  }

  private async withinReceiptTimeout(stored: Promise<void>): Promise<void> {
    const timeout = this.timer(RECEIPT_TIMEOUT_MS);
    try {
      const first = await Promise.race([stored.then(() => 'stored' as const), timeout.done]);
      if (first !== 'stored') {
        throw new Error(`no RECEIPT from the broker within ${RECEIPT_TIMEOUT_MS} ms`);
      }
    } finally {
      timeout.cancel();
    }
  }

  /** A backoff wait that stop() and start() cut short. */
  private sleep(ms: number): Promise<void> {
    return this.timer(ms).done;
  }

  private timer(ms: number): { done: Promise<void>; cancel: () => void } {
    let cancel: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        cancel();
      }, ms);
      cancel = () => {
        clearTimeout(timer);
        this.sleepers.delete(cancel);
        resolve();
      };
      this.sleepers.add(cancel);
    });
    return { done, cancel };
  }

  private wakeSleepers(): void {
    for (const wake of [...this.sleepers]) wake();
  }
}

/** A node's ingress across reconnects: attached once, started anew on every connection. */
export class JmsIngressSlot {
  private attached: { target: NotifyTarget; log: Logger } | null = null;
  private ingress: JmsNotifyIngress | null = null;

  constructor(private readonly prefix: string) {}

  attach(target: NotifyTarget, log: Logger): void {
    this.attached = { target, log };
  }

  async start(client: Client): Promise<void> {
    if (this.attached === null) return;
    this.ingress?.stop();
    this.ingress = new JmsNotifyIngress({ client, prefix: this.prefix, ...this.attached });
    await this.ingress.start();
  }

  stop(): void {
    this.ingress?.stop();
    this.ingress = null;
  }
}
