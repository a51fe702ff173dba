import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Connection } from '../src/connection.js';
import { LongPollTransport } from '../src/transports/long-poll.js';
import type { ConnectionStatus, ListenAnswer } from '../src/types.js';
import { FakeClock, FakePushServer, newLogger, pushId } from './fakes.js';

function setup(options: { random?: number; cursor?: string | null; online?: boolean } = {}) {
  const clock = new FakeClock();
  const server = new FakePushServer(clock);
  const logger = newLogger();
  const answers: ListenAnswer[] = [];
  const statuses: ConnectionStatus[] = [];
  let invalidCursors = 0;
  const connection = new Connection({
    transport: new LongPollTransport({
      listenUrl: 'https://push.example.test/push/listen',
      fetch: server.fetchFor('leader'),
      clock,
      logger,
      abandonAfterMs: 35_000,
      openedAfterMs: 1000,
    }),
    clock,
    random: () => options.random ?? 0.999,
    logger,
    cursor: options.cursor ?? null,
    wasConnected: false,
    online: options.online ?? true,
    events: {
      answer: (answer) => answers.push(answer),
      status: (status) => statuses.push(status),
      cursorInvalid: () => {
        invalidCursors += 1;
      },
    },
  });
  /** When each request reached the server, relative to the start. */
  const start = clock.now();
  const times: number[] = [];
  const requestTimes = (): number[] => times;
  const originalPush = server.requests.push.bind(server.requests);
  server.requests.push = (...items) => {
    for (let i = 0; i < items.length; i++) times.push(clock.now() - start);
    return originalPush(...items);
  };
  return {
    clock,
    server,
    logger,
    connection,
    answers,
    statuses,
    requestTimes,
    invalidCursors: () => invalidCursors,
  };
}

const a = pushId('conn-a');
const b = pushId('conn-b');

test('network errors, 5xx and 429 are retried after growing jittered delays, and an answer resets the backoff', async () => {
  const { clock, server, connection, requestTimes } = setup({ random: 0.999 });
  server.faults.push(
    { kind: 'network' },
    { kind: 'status', status: 503 },
    { kind: 'status', status: 429, code: 'rate_limited' },
  );
  connection.listenOn([a]);
  await clock.advance(10_000);
  // Ceilings 500, 1000, 2000 ms; random 0.999 puts each delay just below its ceiling.
  assert.deepEqual(requestTimes(), [0, 499, 499 + 999, 499 + 999 + 1998]);
  assert.equal(connection.failures, 3);
  server.notify(a);
  await clock.advance(10);
  assert.equal(connection.failures, 0, 'an answer resets the backoff');
  server.faults.push({ kind: 'network' });
  server.drain(); // answers with reconnect: the immediate re-listen meets the fault
  const before = requestTimes().length;
  await clock.advance(498);
  assert.equal(requestTimes().length, before + 1, 'the failed re-listen');
  await clock.advance(2);
  assert.equal(requestTimes().length, before + 2, 'retried after the first ceiling again');
});

test('a 503 or 429 with Retry-After waits at least that long, plus up to half again of jitter', async () => {
  const { clock, server, connection, requestTimes } = setup({ random: 0.5 });
  server.faults.push(
    { kind: 'status', status: 503, code: 'too_many_connections', retryAfter: '2' },
    { kind: 'status', status: 429, code: 'rate_limited', retryAfter: '5' },
    { kind: 'status', status: 503, retryAfter: '0' },
  );
  connection.listenOn([a]);
  await clock.advance(20_000);
  // 2 s + 0.5 × 1 s; then 5 s + 0.5 × 2.5 s; a Retry-After under the backoff leaves the
  // backoff (ceiling 2 s × 0.5), never a retry at once.
  assert.deepEqual(requestTimes(), [0, 2500, 2500 + 6250, 2500 + 6250 + 1000]);
});

test('a 400 is logged as a client bug and retried with backoff instead of a hot loop', async () => {
  const { clock, server, connection, logger, requestTimes } = setup({ random: 0.999 });
  for (let i = 0; i < 20; i++)
    server.faults.push({ kind: 'status', status: 400, code: 'invalid_body' });
  connection.listenOn([a]);
  await clock.advance(4000);
  assert.equal(requestTimes().length, 4, `requests at ${requestTimes().join(', ')}`);
  assert.ok(logger.errors.length >= 3);
  assert.match(String(logger.errors[0]?.[0]), /HTTP 400/);
});

test('status goes connecting, connected, reconnecting on a failure and connected again once a listen holds', async () => {
  const { clock, server, connection, statuses } = setup({ random: 0 });
  assert.equal(connection.status, 'connecting');
  connection.listenOn([a]);
  await clock.advance(1000);
  assert.deepEqual(statuses, ['connected']);
  server.faults.push({ kind: 'network' });
  server.drain();
  await clock.advance(1);
  assert.deepEqual(statuses, ['connected', 'reconnecting']);
  await clock.advance(1000);
  assert.deepEqual(statuses, ['connected', 'reconnecting', 'connected']);
});

test('reconnect: true re-listens at once; a run of reconnect answers backs off', async () => {
  const { clock, server, connection, requestTimes } = setup({ random: 0.999 });
  connection.listenOn([a]);
  await clock.advance(10);
  server.faults.push({ kind: 'reconnect' }, { kind: 'reconnect' }, { kind: 'reconnect' });
  server.drain();
  await clock.advance(5000);
  // drain at 10 → at once (10), then faults: reconnect → at once? no: the 2nd in a row waits < 500,
  // the 3rd < 1000, the 4th < 2000.
  assert.deepEqual(requestTimes(), [0, 10, 10 + 499, 10 + 499 + 999, 10 + 499 + 999 + 1998]);
  assert.equal(connection.status, 'connected');
});

test('offline pauses every listen and reports offline; online re-listens at once with the same cursor', async () => {
  const { clock, server, connection, statuses, requestTimes } = setup({ random: 0.999 });
  connection.listenOn([a]);
  server.notify(a);
  await clock.advance(1000);
  server.faults.push({ kind: 'network' }, { kind: 'network' });
  server.drain();
  await clock.advance(1);
  connection.setOnline(false);
  await clock.advance(60_000);
  assert.equal(connection.status, 'offline');
  assert.equal(server.open, 0);
  const count = requestTimes().length;
  connection.setOnline(true);
  await clock.advance(0);
  assert.equal(requestTimes().length, count + 1, 'at once, backoff forgotten');
  assert.equal(server.lastBody().cursor, 'e1-1');
  assert.deepEqual(statuses.slice(-2), ['offline', 'reconnecting']);
});

test('more than 100 push IDs are split into listens of at most 100, all from the same cursor', async () => {
  const { clock, server, connection } = setup({ cursor: 'e1-0' });
  const ids = Array.from({ length: 230 }, (_, i) =>
    pushId(`many${String(i).padStart(3, '0')}`),
  ).sort();
  connection.listenOn(ids);
  await clock.advance(10);
  assert.deepEqual(
    connection.listens.map((listen) => listen.length),
    [100, 100, 30],
  );
  assert.deepEqual(
    server
      .heldPushIds()
      .map((held) => held.length)
      .sort(),
    [100, 100, 30],
  );
  assert.deepEqual(
    server.requests.map((request) => request.body.cursor),
    ['e1-0', 'e1-0', 'e1-0'],
  );
  server.notify(ids[150]!);
  await clock.advance(10);
  assert.equal(connection.cursor, 'e1-0', 'the others have not moved: resume from the oldest');
  server.notify(ids[0]!);
  server.notify(ids[229]!);
  await clock.advance(10);
  assert.equal(connection.cursor, 'e1-1', 'now the middle listen is the oldest');
});

test('a union change closes the current listen first: an answer in flight for the old union never moves the cursor', async () => {
  const { clock, server, connection, answers } = setup({ cursor: 'e1-0' });
  connection.listenOn([a]);
  await clock.advance(10);
  server.notify(b); // b is not in the union yet
  server.notify(a); // the held listen for [a] is being answered...
  connection.listenOn([a, b]); // ...when the union changes, in the same turn
  await clock.advance(10);
  assert.deepEqual(
    server.requests.slice(0, 2).map((request) => request.body),
    [
      { pushIds: [a], cursor: 'e1-0' },
      { pushIds: [a, b], cursor: 'e1-0' },
    ],
  );
  assert.deepEqual(
    answers.flatMap((answer) => answer.notifications.map((n) => n.pushId)),
    [b, a],
    'both come from the new listen',
  );
});

test('a cursor the server refuses (invalid_cursor) is dropped: listening restarts from now and the loss is reported', async () => {
  const { clock, server, connection, invalidCursors } = setup({ cursor: 'garbage' });
  connection.listenOn([a]);
  await clock.advance(10);
  assert.deepEqual(
    server.requests.map((request) => request.body.cursor),
    ['garbage', null],
  );
  assert.equal(invalidCursors(), 1);
  assert.equal(server.open, 1);
});

test('replaced by someone else: the listen is repeated after a short jittered pause, not at once', async () => {
  const { clock, server, connection, requestTimes } = setup({ random: 0.5 });
  connection.listenOn([a]);
  await clock.advance(10);
  // Another browser listens on the same push ID: the server answers ours with replaced.
  const other = server.fetchFor('someone-else');
  void other('https://push.example.test/push/listen', {
    method: 'POST',
    headers: {},
    body: JSON.stringify({ pushIds: [a], cursor: null }),
    signal: new AbortController().signal,
    cache: 'no-store',
  });
  await clock.advance(1000);
  const ours = requestTimes().filter((_, i) => server.requests[i]?.client === 'leader');
  assert.deepEqual(ours, [0, 10 + 250]);
});

test('a listen abandoned after hold + margin is retried with backoff', async () => {
  const { clock, server, connection, requestTimes, logger } = setup({ random: 0 });
  server.faults.push({ kind: 'hang' });
  connection.listenOn([a]);
  await clock.advance(35_000);
  assert.deepEqual(requestTimes(), [0, 35_000]);
  assert.equal(connection.status, 'reconnecting');
  assert.match(String(logger.warnings[0]?.[0]), /abandoned/);
});
