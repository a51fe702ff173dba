/**
 * @stomp/stompjs over plain TCP. stompjs speaks STOMP over anything shaped like a WebSocket;
 * JMS brokers listen for STOMP on a raw TCP port, so this adapter gives it one. stompjs's parser
 * is a byte-at-a-time state machine, so TCP chunks that split or join frames are fine.
 */
import { connect, type Socket } from 'node:net';
import {
  Client,
  StompHeaders,
  StompSocketState,
  type IFrame,
  type IMessage,
  type IStompSocket,
} from '@stomp/stompjs';
import type { StompTarget } from '../../config/stomp-url.js';

export class TcpStompSocket implements IStompSocket {
  readonly url: string;
  onclose: ((ev?: unknown) => unknown) | null = null;
  onerror: ((ev: unknown) => unknown) | null = null;
  onmessage: ((ev: { data: ArrayBuffer }) => unknown) | null = null;
  onopen: ((ev?: unknown) => unknown) | null = null;
  binaryType = 'arraybuffer';
  readyState: StompSocketState = StompSocketState.CONNECTING;
  private readonly socket: Socket;

  constructor(host: string, port: number) {
    this.url = `tcp://${host}:${port}`;
    this.socket = connect({ host, port });
    this.socket.setNoDelay(true);
    this.socket.setKeepAlive(true, 10_000);
    this.socket.on('connect', () => {
      this.readyState = StompSocketState.OPEN;
      this.onopen?.();
    });
    this.socket.on('data', (chunk: Buffer) => {
      // A copy: a Buffer's ArrayBuffer may be a shared pool holding other data.
      const data = chunk.buffer.slice(chunk.byteOffset, chunk.byteOffset + chunk.byteLength);
      this.onmessage?.({ data: data as ArrayBuffer });
    });
    this.socket.on('error', (error) => {
      this.onerror?.(error);
    });
    this.socket.on('close', (hadError) => {
      this.readyState = StompSocketState.CLOSED;
      this.onclose?.({ code: hadError ? 1006 : 1000, reason: '', wasClean: !hadError });
    });
  }

  send(data: string | ArrayBufferLike | Blob | ArrayBufferView): void {
    if (typeof data === 'string') this.socket.write(data, 'utf8');
    else if (ArrayBuffer.isView(data)) {
      this.socket.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    } else if (data instanceof ArrayBuffer) this.socket.write(Buffer.from(data));
    else throw new TypeError('TcpStompSocket cannot send a Blob');
  }

  close(): void {
    if (this.readyState === StompSocketState.CLOSED) return;
    this.readyState = StompSocketState.CLOSING;
    this.socket.end();
    // A peer that is gone never sends its FIN: do not wait for it forever.
    setTimeout(() => {
      this.socket.destroy();
    }, CLOSE_GRACE_MS).unref();
  }

  /** stompjs calls this to drop a connection that stopped answering heart-beats. */
  terminate(): void {
    this.socket.destroy();
  }
}

/** stompjs declares its header bags as a class; its instances are plain records. */
export function stompHeaders(values: Record<string, string>): StompHeaders {
  return Object.assign(new StompHeaders(), values);
}

/**
 * Liveness of a backplane connection. A TCP connection can die without a FIN or an RST (a host
 * replaced behind the same address, a lost NAT entry); STOMP heart-beats notice it where the
 * kernel would take minutes. The broker is asked for a heart-beat every second and the link is
 * dropped after 4 s without a byte from it (ActiveMQ may send a beat up to one interval late:
 * AMQ-4710), then stompjs reconnects on a new socket. This node beats every 2.5 s; ActiveMQ
 * enforces that interval strictly (no grace unless `transport.hbGracePeriodMultiplier`), which
 * also makes it drop a dead node's old connection, and the exclusive sequencer queue it held,
 * within a few seconds (provided the link's subscriptions are not auto-acknowledged: see
 * `subscribeAcknowledged`). A CONNECT that gets no CONNECTED within 5 s is dropped the same way.
 */
export const BACKPLANE_LIVENESS = {
  heartbeatMs: 2500,
  heartbeatIncomingMs: 1000,
  connectTimeoutMs: 5000,
} as const;
/** Heart-beat periods without a byte from the broker after which the link is dead. */
const SILENT_BEATS = 4;
/** After `close()`, how long to wait for the broker's FIN before destroying the socket. */
const CLOSE_GRACE_MS = 1000;

export interface StompClientOptions {
  readonly reconnectDelayMs: number;
  /** How often this side sends a heart-beat (0: none); also asked of the broker by default. */
  readonly heartbeatMs: number;
  /** How often the broker is asked to send one (default `heartbeatMs`; 0: none). */
  readonly heartbeatIncomingMs?: number;
  /** Drop a connection whose CONNECT is not answered in time (default: wait). */
  readonly connectTimeoutMs?: number;
}

/** A stompjs client for `target`, configured but not activated. */
export function stompClient(target: StompTarget, options: StompClientOptions): Client {
  const client = new Client();
  client.webSocketFactory = () => new TcpStompSocket(target.host, target.port);
  client.connectHeaders = stompHeaders({
    login: target.login,
    passcode: target.passcode,
    host: target.host,
  });
  client.reconnectDelay = options.reconnectDelayMs;
  client.heartbeatIncoming = options.heartbeatIncomingMs ?? options.heartbeatMs;
  client.heartbeatOutgoing = options.heartbeatMs;
  client.heartbeatToleranceMultiplier = SILENT_BEATS;
  // A link that missed its heart-beats is destroyed, not closed: a graceful close waits for
  // the FIN of a peer that is gone, and stompjs reconnects only once the socket has closed.
  client.discardWebsocketOnCommFailure = true;
  if (options.connectTimeoutMs !== undefined) client.connectionTimeout = options.connectTimeoutMs;
  // stompjs would log every frame through console; errors reach us through the callbacks.
  client.debug = () => undefined;
  return client;
}

/** Sends and resolves once the broker has stored it (a RECEIPT). */
export function sendWithReceipt(
  client: Client,
  destination: string,
  body: string,
  headers: Record<string, string> = {},
): Promise<void> {
  return new Promise((resolve) => {
    const receipt = `r-${receiptCounter++}`;
    client.watchForReceipt(receipt, () => {
      resolve();
    });
    client.publish({
      destination,
      body,
      headers: stompHeaders({ ...headers, receipt }),
      // Without content-length ActiveMQ hands the message to JMS clients as a TextMessage.
      skipContentLengthHeader: true,
    });
  });
}
let receiptCounter = 0;

/**
 * Sends a non-persistent message without waiting for the broker (commands, fan-out, answers);
 * with `expiresInMs` the broker drops it unconsumed after that long. Throws when not connected.
 */
export function publishTransient(
  client: Client,
  destination: string,
  body: string,
  expiresInMs?: number,
): void {
  const headers: Record<string, string> = { persistent: 'false' };
  if (expiresInMs !== undefined) headers.expires = String(Date.now() + expiresInMs);
  client.publish({
    destination,
    body,
    headers: stompHeaders(headers),
    // Without content-length ActiveMQ hands the message to JMS clients as a TextMessage.
    skipContentLengthHeader: true,
  });
}

/**
 * Subscribes and resolves once the broker confirmed the subscription (a RECEIPT); rejects when
 * the confirmation does not come within `timeoutMs` (the connection died meanwhile).
 */
export function subscribeConfirmed(
  client: Client,
  destination: string,
  onMessage: (message: IMessage) => void,
  headers: Record<string, string> = {},
  timeoutMs = 10_000,
): Promise<{ unsubscribe: () => void }> {
  return new Promise((resolve, reject) => {
    const receipt = `s-${receiptCounter++}`;
    const timer = setTimeout(() => {
      reject(new Error(`the broker did not confirm the subscription to ${destination}`));
    }, timeoutMs);
    let subscription: { unsubscribe: () => void } | null = null;
    client.watchForReceipt(receipt, () => {
      clearTimeout(timer);
      resolve(subscription as { unsubscribe: () => void });
    });
    subscription = client.subscribe(destination, onMessage, stompHeaders({ ...headers, receipt }));
  });
}

/** A cumulative acknowledgement goes out after this many messages, or this long after one. */
const ACK_EVERY_MESSAGES = 100;
const ACK_WITHIN_MS = 200;

/**
 * `subscribeConfirmed` for a subscription that lives as long as its connection (the events
 * topic, a node's answers), acknowledged by this side ('client' mode, cumulative). Why not
 * 'auto': ActiveMQ acknowledges an auto subscription's messages itself, on the connection's
 * inbound path, and its read check counts those as traffic from the client, so a link that
 * died silently while messages still flow to it (the events topic always carries beats) is never
 * dropped, nor the exclusive sequencer queue it holds. Real ACK frames stop when the client does.
 */
export async function subscribeAcknowledged(
  client: Client,
  destination: string,
  onMessage: (message: IMessage) => void,
): Promise<{ unsubscribe: () => void }> {
  let latest: IMessage | null = null;
  let pending = 0;
  let timer: NodeJS.Timeout | null = null;
  const flush = (): void => {
    if (timer !== null) clearTimeout(timer);
    timer = null;
    const message = latest;
    latest = null;
    pending = 0;
    // A connection that went down meanwhile: its unacknowledged messages are the broker's again.
    if (message !== null && client.connected) message.ack();
  };
  return subscribeConfirmed(
    client,
    destination,
    (message) => {
      latest = message;
      pending += 1;
      if (pending >= ACK_EVERY_MESSAGES) flush();
      else timer ??= setTimeout(flush, ACK_WITHIN_MS);
      onMessage(message);
    },
    { ack: 'client', 'activemq.prefetchSize': String(ACK_EVERY_MESSAGES * 20) },
  );
}

export type { Client, IFrame, IMessage };
export { parseStompUrl, type StompTarget } from '../../config/stomp-url.js';
