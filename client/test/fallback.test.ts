import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FallbackTransport } from '../src/transports/fallback.js';
import type {
  Transport,
  TransportFailure,
  TransportSession,
  TransportSink,
} from '../src/transports/transport.js';
import type { ListenAnswer, ListenRequest, TransportName } from '../src/types.js';

/** A transport the test drives by hand: it records sessions and lets the test answer or fail them. */
class ScriptedTransport implements Transport {
  readonly sessions: { request: ListenRequest; sink: TransportSink; closed: boolean }[] = [];
  constructor(readonly name: TransportName) {}
  open(request: ListenRequest, sink: TransportSink): TransportSession {
    const session = { request, sink, closed: false };
    this.sessions.push(session);
    return {
      close: () => {
        session.closed = true;
      },
    };
  }
  get last() {
    const session = this.sessions.at(-1);
    assert.ok(session, `${this.name} was opened`);
    return session;
  }
}

function answer(cursor: string): ListenAnswer {
  return {
    notifications: [],
    cursor,
    expired: [],
    reconnect: false,
    reset: false,
    replaced: false,
  };
}

const refused: TransportFailure = { kind: 'network', message: 'refused' };

function setup() {
  const ws = new ScriptedTransport('websocket');
  const sse = new ScriptedTransport('sse');
  const lp = new ScriptedTransport('long-poll');
  const used: TransportName[] = [];
  const fallback = new FallbackTransport([ws, sse, lp], (name) => used.push(name));
  const answers: ListenAnswer[] = [];
  const failures: TransportFailure[] = [];
  const sink: TransportSink = {
    opened: () => undefined,
    answer: (a) => answers.push(a),
    failed: (f) => failures.push(f),
  };
  return { ws, sse, lp, used, fallback, answers, failures, sink };
}

test('a transport that fails before its first answer is skipped at once, with the same cursor', () => {
  const { ws, sse, fallback, sink, failures, used } = setup();
  fallback.open({ pushIds: ['p'], cursor: 'e-1' }, sink);
  ws.last.sink.failed(refused);
  assert.deepEqual(failures, [], 'the connection above does not see it');
  assert.deepEqual(used, ['websocket', 'sse']);
  assert.deepEqual(sse.last.request, { pushIds: ['p'], cursor: 'e-1' });
  assert.equal(fallback.name, 'sse');
});

test('a buffered stream (a timeout before the first answer) falls through to long-poll', () => {
  const { ws, sse, lp, fallback, sink, answers } = setup();
  fallback.open({ pushIds: ['p'], cursor: null }, sink);
  ws.last.sink.failed(refused);
  sse.last.sink.failed({ kind: 'timeout', message: 'no first event within 4 s' });
  lp.last.sink.answer(answer('e-2'));
  assert.deepEqual(
    answers.map((a) => a.cursor),
    ['e-2'],
  );
  assert.equal(fallback.name, 'long-poll');
});

test('a transport that worked once is not skipped: its later failures go to the connection', () => {
  const { ws, fallback, sink, failures, used } = setup();
  fallback.open({ pushIds: ['p'], cursor: null }, sink);
  ws.last.sink.answer(answer('e-3'));
  ws.last.sink.failed(refused);
  assert.deepEqual(failures, [refused]);
  // The next session (after the connection's backoff) still starts on WebSocket.
  fallback.open({ pushIds: ['p'], cursor: 'e-3' }, sink);
  ws.last.sink.failed(refused);
  assert.equal(failures.length, 2);
  assert.deepEqual(used, ['websocket', 'websocket']);
});

test('when even long-poll fails before answering (the server is down), the next session starts from WebSocket again', () => {
  const { ws, sse, lp, fallback, sink, failures, used } = setup();
  fallback.open({ pushIds: ['p'], cursor: null }, sink);
  ws.last.sink.failed(refused);
  sse.last.sink.failed(refused);
  lp.last.sink.failed(refused);
  assert.deepEqual(failures, [refused], 'reported once, for the backoff above');
  fallback.open({ pushIds: ['p'], cursor: null }, sink);
  assert.deepEqual(used, ['websocket', 'sse', 'long-poll', 'websocket']);
});

test('an error the server itself sent (a code) is not a blocked transport', () => {
  const { ws, fallback, sink, failures, used } = setup();
  fallback.open({ pushIds: ['p'], cursor: null }, sink);
  const notReady: TransportFailure = { kind: 'http', status: 503, code: 'not_ready', message: 'x' };
  ws.last.sink.failed(notReady);
  assert.deepEqual(failures, [notReady]);
  assert.deepEqual(used, ['websocket']);
});

test('closing the session closes the transport in use and ignores its late failure', () => {
  const { ws, fallback, sink, failures } = setup();
  const session = fallback.open({ pushIds: ['p'], cursor: null }, sink);
  session.close();
  assert.equal(ws.last.closed, true);
  ws.last.sink.failed(refused);
  assert.deepEqual(failures, []);
});
