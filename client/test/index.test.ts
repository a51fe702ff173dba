import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connect } from '../src/index.js';
import type { ConnectOptions } from '../src/types.js';
import { FakeClock, FakePushServer, newLogger, pushId, settle } from './fakes.js';

function options(url: string, clock: FakeClock, server: FakePushServer): ConnectOptions {
  return {
    url,
    fetch: server.fetchFor('page'),
    BroadcastChannel: null,
    locks: null,
    localStorage: null,
    window: null,
    onLine: () => true,
    now: clock.now,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    logger: newLogger(),
  };
}

test('connect() returns the same instance for the same server within a page, and close() shuts it after the last user', async () => {
  const clock = new FakeClock();
  const server = new FakePushServer(clock);
  const first = connect(options('https://push.example.test', clock, server));
  const second = connect(options('https://push.example.test/', clock, server));
  assert.equal(first, second);
  const other = connect(options('https://other.example.test', clock, server));
  assert.notEqual(other, first);
  assert.notEqual(other.channelName, first.channelName, 'two servers never share a channel');
  const id = pushId('shared-page');
  const seen: string[] = [];
  first.listen(id, (n) => seen.push(`app1:${n.id}`));
  second.listen(id, (n) => seen.push(`app2:${n.id}`));
  await clock.advance(10);
  assert.equal(server.open, 1, 'one listen for both applications');
  first.close();
  assert.equal(second.isClosed, false, 'the other application still uses it');
  const n = server.notify(id);
  await clock.advance(10);
  assert.deepEqual(seen, [`app1:${n}`, `app2:${n}`]);
  second.close();
  assert.equal(second.isClosed, true);
  await settle();
  assert.equal(server.open, 0);
  const third = connect(options('https://push.example.test', clock, server));
  assert.notEqual(third, first, 'a closed instance is not handed out again');
  third.close();
  other.close();
});

test('connect() needs a url and refuses nonsense options', () => {
  assert.throws(() => connect({ url: '' }), TypeError);
  assert.throws(
    () =>
      connect({
        url: 'https://push.example.test',
        holdSeconds: -1,
        fetch: () => Promise.reject(new Error()),
      }),
    TypeError,
  );
});
