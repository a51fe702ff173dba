/**
 * JMS interoperability through ActiveMQ Classic (issue 6): a real Java JMS producer, talking
 * OpenWire, reaches a STOMP subscriber (@stomp/stompjs over plain TCP, as the STOMP backplane
 * will use it) with the body and the JMS properties intact; persistent queue messages survive
 * a SIGKILL of the broker; a wrong password is refused in words a person can act on.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import {
  Client,
  StompHeaders,
  StompSocketState,
  type IFrame,
  type IMessage,
  type IStompSocket,
} from '@stomp/stompjs';
import { PrivateActiveMq } from '../support/brokers/activemq.js';
import {
  compileJavaProducer,
  runJavaProducer,
  sendWithJavaProducer,
} from '../support/jms/java-producer.js';

/**
 * The smallest IStompSocket over a raw TCP connection: stompjs only needs the WebSocket-like
 * callbacks, `readyState`, `send` and `close`. Its parser is a byte-at-a-time state machine, so
 * TCP chunks that split or join frames are fine. A demonstration only; the real one belongs
 * in src/ next to the STOMP backplane.
 */
class TcpStompSocket implements IStompSocket {
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
  }

  /** stompjs calls this to drop a connection that stopped answering heart-beats. */
  terminate(): void {
    this.socket.destroy();
  }
}

/** stompjs declares its header bags as a class; its instances are plain records. */
function stompHeaders(values: Record<string, string>): StompHeaders {
  return Object.assign(new StompHeaders(), values);
}

/** A connected stompjs client over TCP; rejects with the broker's ERROR message. */
function connectStomp(broker: PrivateActiveMq, password = broker.password): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.webSocketFactory = () => new TcpStompSocket('127.0.0.1', broker.stompPort);
    client.connectHeaders = stompHeaders({
      login: broker.user,
      passcode: password,
      host: '127.0.0.1',
    });
    client.reconnectDelay = 0;
    client.heartbeatIncoming = 0;
    client.heartbeatOutgoing = 0;
    client.onConnect = () => {
      resolve(client);
    };
    client.onStompError = (frame: IFrame) => {
      reject(new Error(`STOMP ERROR: ${frame.headers.message ?? frame.body}`));
      void client.deactivate();
    };
    client.onWebSocketClose = () => {
      reject(new Error('the STOMP connection closed before CONNECTED'));
    };
    client.activate();
  });
}

/** Subscribes and resolves once the broker confirmed it (a RECEIPT), so no send races it. */
async function subscribe(
  client: Client,
  destination: string,
  headers: Record<string, string> = {},
): Promise<() => Promise<IMessage>> {
  const queue: IMessage[] = [];
  let waiter: ((message: IMessage) => void) | null = null;
  const receipt = `sub-${randomUUID()}`;
  const confirmed = new Promise<void>((resolve) => {
    client.watchForReceipt(receipt, () => {
      resolve();
    });
  });
  client.subscribe(
    destination,
    (message) => {
      if (waiter) waiter(message);
      else queue.push(message);
    },
    stompHeaders({ ...headers, receipt }),
  );
  await confirmed;
  return () => {
    const next = queue.shift();
    if (next) return Promise.resolve(next);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error(`no message on ${destination} within 10 s`));
      }, 10_000);
      waiter = (message) => {
        clearTimeout(timer);
        waiter = null;
        resolve(message);
      };
    });
  };
}

describe('ActiveMQ: a Java JMS producer and STOMP subscribers', () => {
  let broker: PrivateActiveMq;
  const clients: Client[] = [];

  before(async () => {
    // javac and the broker's JVM start side by side: the suite waits for the slower one only.
    const [started] = await Promise.all([PrivateActiveMq.start(), compileJavaProducer()]);
    broker = started;
    console.log(`# ActiveMQ answered STOMP ${broker.lastStartMs} ms after spawn`);
  });

  after(async () => {
    await Promise.all(clients.map((client) => client.deactivate({ force: true })));
    await broker.stop();
  });

  test('the body and JMS properties arrive intact (topic, OpenWire to STOMP)', async () => {
    const client = await connectStomp(broker);
    clients.push(client);
    const next = await subscribe(client, '/topic/epush.interop');
    const body = JSON.stringify({ text: 'héllo ✓ from JMS', n: 1 });
    const { messageId } = await sendWithJavaProducer({
      brokerUrl: broker.openwireUrl,
      user: broker.user,
      password: broker.password,
      destination: 'topic://epush.interop',
      body,
      properties: { epushGroup: 'news', epushPushIds: 'a,b', note: 'café: ✓\\x' },
    });
    const message = await next();
    assert.equal(message.body, body);
    assert.equal(message.headers['message-id'], messageId);
    assert.equal(message.headers.destination, '/topic/epush.interop');
    assert.equal(message.headers.epushGroup, 'news');
    assert.equal(message.headers.epushPushIds, 'a,b');
    // A colon and a backslash survive STOMP 1.2 header escaping both ways.
    assert.equal(message.headers.note, 'café: ✓\\x');
  });

  test('a wrong password is refused, on STOMP and on OpenWire', async () => {
    const [stomp, jms] = await Promise.all([
      connectStomp(broker, 'not-the-password').then(
        () => assert.fail('CONNECT with a wrong password succeeded'),
        (error: unknown) => error as Error,
      ),
      runJavaProducer({
        brokerUrl: broker.openwireUrl,
        user: broker.user,
        password: 'not-the-password',
        destination: 'queue://epush.refused',
        body: 'x',
      }),
    ]);
    assert.match(stomp.message, /STOMP ERROR: User name \[epush\] or password is invalid/);
    assert.equal(jms.status, 2);
    assert.match(jms.stderr, /JMSSecurityException: User name \[epush\] or password is invalid/);
  });

  test('browsing a queue over STOMP reads it in order, ends with browser:end, and keeps it', async () => {
    // The STOMP backplane's plan reads its log queue this way (docs/backplanes.md).
    const client = await connectStomp(broker);
    clients.push(client);
    const queue = `/queue/epush.browse.${randomUUID()}`;
    const bodies = ['event 1', 'event 2', 'event 3'];
    for (const body of bodies) {
      const receipt = `send-${randomUUID()}`;
      const stored = new Promise<void>((resolve) => {
        client.watchForReceipt(receipt, () => {
          resolve();
        });
      });
      client.publish({
        destination: queue,
        body,
        headers: stompHeaders({ persistent: 'true', receipt }),
        skipContentLengthHeader: true,
      });
      await stored;
    }
    const browse = async (): Promise<string[]> => {
      const next = await subscribe(client, queue, { browser: 'true' });
      const seen: string[] = [];
      for (;;) {
        const message = await next();
        if (message.headers.browser === 'end') return seen;
        seen.push(message.body);
      }
    };
    assert.deepEqual(await browse(), bodies);
    assert.deepEqual(await browse(), bodies, 'a second browse still sees every message');
  });

  test('a persistent queue message sent before a SIGKILL restart is delivered after', async () => {
    const queue = `epush.durable.${randomUUID()}`;
    const body = 'sent before the broker died';
    await sendWithJavaProducer({
      brokerUrl: broker.openwireUrl,
      user: broker.user,
      password: broker.password,
      destination: `queue://${queue}`,
      body,
      properties: { epushPushIds: 'p1' },
    });
    await broker.restart();
    console.log(`# ActiveMQ answered STOMP ${broker.lastStartMs} ms after the restart`);
    const client = await connectStomp(broker);
    clients.push(client);
    const next = await subscribe(client, `/queue/${queue}`);
    const message = await next();
    assert.equal(message.body, body);
    assert.equal(message.headers.persistent, 'true');
    assert.equal(message.headers.epushPushIds, 'p1');
  });
});
