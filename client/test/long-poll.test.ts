import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LongPollTransport, parseListenAnswer } from '../src/transports/long-poll.js';
import type { TransportFailure } from '../src/transports/transport.js';
import type { FetchLike, ListenAnswer } from '../src/types.js';
import { FakeClock, FakePushServer, newLogger, pushId } from './fakes.js';

function setup(fetch?: FetchLike) {
  const clock = new FakeClock();
  const server = new FakePushServer(clock);
  const transport = new LongPollTransport({
    listenUrl: 'https://push.example.test/push/listen',
    fetch: fetch ?? server.fetchFor('page'),
    clock,
    logger: newLogger(),
    abandonAfterMs: 35_000,
    openedAfterMs: 1000,
  });
  const answers: ListenAnswer[] = [];
  const failures: TransportFailure[] = [];
  let opened = 0;
  const sink = {
    opened: () => {
      opened += 1;
    },
    answer: (answer: ListenAnswer) => answers.push(answer),
    failed: (failure: TransportFailure) => failures.push(failure),
  };
  return { clock, server, transport, answers, failures, sink, opened: () => opened };
}

const id = pushId('lp');

test('a listen is a POST of {pushIds, cursor} to {url}/push/listen sent as text/plain (a CORS simple request)', async () => {
  const seen: {
    url: string;
    method: string;
    headers: Record<string, string>;
    body: string;
    cache: string;
  }[] = [];
  const { transport, sink, clock } = setup((url, init) => {
    seen.push({
      url,
      method: init.method,
      headers: init.headers,
      body: init.body,
      cache: init.cache,
    });
    return new Promise(() => undefined);
  });
  transport.open({ pushIds: [id], cursor: 'e1-5' }, sink);
  await clock.advance(0);
  assert.deepEqual(seen, [
    {
      url: 'https://push.example.test/push/listen',
      method: 'POST',
      headers: { 'Content-Type': 'text/plain;charset=UTF-8' },
      body: JSON.stringify({ pushIds: [id], cursor: 'e1-5' }),
      cache: 'no-store',
    },
  ]);
});

test('a session keeps listening from the cursor of each answer', async () => {
  const { transport, sink, clock, server, answers } = setup();
  transport.open({ pushIds: [id], cursor: null }, sink);
  await clock.advance(10);
  server.notify(id, 'a');
  await clock.advance(10);
  server.notify(id, 'b');
  await clock.advance(10);
  assert.deepEqual(
    answers.map((answer) => answer.notifications.map((n) => n.payload)),
    [['a'], ['b']],
  );
  assert.deepEqual(
    server.requests.map((request) => request.body.cursor),
    [null, 'e1-1', 'e1-2'],
  );
});

test('a listen still held after openedAfterMs reports the session opened', async () => {
  const { transport, sink, clock, opened } = setup();
  transport.open({ pushIds: [id], cursor: null }, sink);
  await clock.advance(999);
  assert.equal(opened(), 0);
  await clock.advance(1);
  assert.equal(opened(), 1);
});

test('a listen that never answers is abandoned after hold + margin and reported as a timeout', async () => {
  const { transport, sink, clock, server, failures } = setup();
  server.faults.push({ kind: 'hang' });
  transport.open({ pushIds: [id], cursor: null }, sink);
  await clock.advance(34_999);
  assert.equal(failures.length, 0);
  await clock.advance(1);
  assert.equal(failures.length, 1);
  assert.equal(failures[0]?.kind, 'timeout');
  assert.equal(server.requests.length, 1, 'no retry inside the transport');
});

test("an error status is reported with the server's error code and Retry-After", async () => {
  const { transport, sink, clock, failures } = setup(() =>
    Promise.resolve({
      ok: false,
      status: 503,
      headers: { get: (name: string) => (name === 'retry-after' ? '7' : null) },
      text: () => Promise.resolve('{"error":{"code":"draining","message":"node is draining"}}'),
    }),
  );
  transport.open({ pushIds: [id], cursor: null }, sink);
  await clock.advance(1);
  assert.deepEqual(failures, [
    {
      kind: 'http',
      status: 503,
      code: 'draining',
      message: 'HTTP 503: node is draining',
      retryAfterMs: 7000,
    },
  ]);
});

test('a network error and an answer that is not the documented JSON are failures, not answers', async () => {
  const network = setup(() => Promise.reject(new TypeError('Failed to fetch')));
  network.transport.open({ pushIds: [id], cursor: null }, network.sink);
  await network.clock.advance(1);
  assert.deepEqual(
    network.failures.map((f) => f.kind),
    ['network'],
  );

  const garbage = setup(() =>
    Promise.resolve({
      ok: true,
      status: 200,
      headers: { get: () => null },
      text: () => Promise.resolve('<html>'),
    }),
  );
  garbage.transport.open({ pushIds: [id], cursor: null }, garbage.sink);
  await garbage.clock.advance(1);
  assert.deepEqual(
    garbage.failures.map((f) => f.kind),
    ['protocol'],
  );
  assert.deepEqual(garbage.answers, []);
});

test('closing a session aborts the request in flight and reports nothing afterwards', async () => {
  const { transport, sink, clock, server, answers, failures } = setup();
  const session = transport.open({ pushIds: [id], cursor: null }, sink);
  await clock.advance(10);
  assert.equal(server.open, 1);
  session.close();
  await clock.advance(10);
  assert.equal(server.open, 0, 'the held request was aborted');
  server.notify(id);
  await clock.advance(60_000);
  assert.deepEqual(answers, []);
  assert.deepEqual(failures, []);
  assert.equal(server.requests.length, 1);
});

test('answers are validated: flags default to false, a missing cursor or a malformed notification is refused', () => {
  assert.deepEqual(parseListenAnswer('{"notifications":[],"cursor":"e-1"}'), {
    notifications: [],
    cursor: 'e-1',
    expired: [],
    reconnect: false,
    reset: false,
    replaced: false,
  });
  assert.equal(parseListenAnswer('{"notifications":[],"expired":[]}'), null);
  assert.equal(parseListenAnswer('{"notifications":[{"id":1}],"cursor":"e-1"}'), null);
  assert.equal(
    parseListenAnswer('{"notifications":[],"cursor":"e-1","reconnect":true,"replaced":true}')
      ?.reconnect,
    true,
  );
});
