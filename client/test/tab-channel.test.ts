import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openTabChannel } from '../src/tab-channel.js';
import type { TabMessage } from '../src/tab-messages.js';
import type { BroadcastChannelConstructor } from '../src/types.js';
import { FakeBroadcastNetwork, FakeStorageArea, FakeWindow, newLogger, settle } from './fakes.js';

function storageTabs(count: number) {
  const storage = new FakeStorageArea();
  return Array.from({ length: count }, () => {
    const window = new FakeWindow();
    const inbox: TabMessage[] = [];
    const channel = openTabChannel(
      'site',
      {
        BroadcastChannel: null,
        localStorage: storage.forWindow(window),
        window,
        logger: newLogger(),
      },
      (message) => inbox.push(message),
    );
    return { channel, inbox, window, storage };
  });
}

test('the storage fallback carries each message to every other tab, in order, and not back to the sender', async () => {
  const [a, b, c] = storageTabs(3);
  assert.equal(a!.channel.kind, 'storage');
  const first: TabMessage = { t: 'register', from: 'a', pushIds: ['x'] };
  a!.channel.post(first);
  a!.channel.post(first); // identical messages are distinct writes
  a!.channel.post({ t: 'unregister', from: 'a' });
  await settle();
  assert.deepEqual(a!.inbox, []);
  for (const tab of [b!, c!])
    assert.deepEqual(tab.inbox, [first, first, { t: 'unregister', from: 'a' }]);
  assert.equal(a!.storage.data.size, 0, 'messages do not stay in storage');
});

test('a closed storage channel neither hears nor keeps its listener', async () => {
  const [a, b] = storageTabs(2);
  b!.channel.close();
  assert.equal(b!.window.listenerCount('storage'), 0);
  a!.channel.post({ t: 'resign', from: 'a' });
  await settle();
  assert.deepEqual(b!.inbox, []);
});

test('malformed or foreign messages on the channel are ignored', async () => {
  const network = new FakeBroadcastNetwork();
  const inbox: TabMessage[] = [];
  openTabChannel(
    'site',
    {
      BroadcastChannel: network.forTab().ctor,
      localStorage: null,
      window: null,
      logger: newLogger(),
    },
    (message) => inbox.push(message),
  );
  const Other = network.forTab().ctor;
  const stranger = new Other('site');
  for (const junk of [
    null,
    'text',
    { t: 'register', from: 'x' },
    { t: 'register', from: 'x', pushIds: [1] },
    { t: 'deliver', from: 'x', notifications: [{ id: 'n' }], cursor: null },
    { t: 'leader', from: 'x', status: 'weird', cursor: null, pushIds: [] },
    { t: 'unknown', from: 'x' },
  ]) {
    stranger.postMessage(junk);
  }
  stranger.postMessage({ t: 'resign', from: 'x' });
  await settle();
  assert.deepEqual(inbox, [{ t: 'resign', from: 'x' }]);
});

test("works over the platform's own BroadcastChannel (Node's), with structured clone", async () => {
  const received: TabMessage[] = [];
  const env = {
    BroadcastChannel: globalThis.BroadcastChannel as unknown as BroadcastChannelConstructor,
    localStorage: null,
    window: null,
    logger: newLogger(),
  };
  const a = openTabChannel('epush-real-bc-test', env, () => undefined);
  const b = openTabChannel('epush-real-bc-test', env, (message) => received.push(message));
  assert.equal(a.kind, 'broadcast-channel');
  const message: TabMessage = {
    t: 'deliver',
    from: 'a',
    notifications: [{ id: 'n1', pushId: 'p'.repeat(22), group: null, payload: { deep: [1, 2] } }],
    cursor: 'e1-1',
  };
  a.post(message);
  for (let i = 0; i < 100 && received.length === 0; i++)
    await new Promise((resolve) => setTimeout(resolve, 5));
  assert.deepEqual(received, [message]);
  a.close();
  b.close();
});

test('without BroadcastChannel and storage a tab is on its own', () => {
  const channel = openTabChannel(
    'site',
    { BroadcastChannel: null, localStorage: null, window: null, logger: newLogger() },
    () => undefined,
  );
  assert.equal(channel.kind, 'none');
  channel.post({ t: 'resign', from: 'a' });
});
