/**
 * The STOMP backplane's log queue over a real ActiveMQ: it stays short (the sequencer deletes
 * what a checkpoint covers), a node that starts late receives the log window from before its
 * checkpoint so old cursors resume exactly, and a cluster whose every node stopped at once
 * comes back from the newest checkpoint with its groups.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { BackplaneOptions, ClusterEventSink } from '../../src/backplane/backplane.js';
import { StompBackplane } from '../../src/backplane/stomp/stomp-backplane.js';
import {
  parseStompUrl,
  stompClient,
  stompHeaders,
  type Client,
} from '../../src/backplane/stomp/stomp-connection.js';
import type { CursorPosition } from '../../src/core/cursor.js';
import { decodeCursor } from '../../src/core/cursor.js';
import type { NotificationId } from '../../src/core/events.js';
import type { GroupName } from '../../src/core/group-name.js';
import { mintPushIds, type PushId } from '../../src/core/push-id.js';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';

const OPTIONS: BackplaneOptions = {
  retentionMs: 600_000,
  pushIdTtlMs: 600_000,
  maxLogBytes: 64 << 20,
  nodeTimeoutMs: 15_000,
};

const quietSink: ClusterEventSink = {
  onEvent: () => undefined,
  onGap: () => undefined,
  onAvailability: () => undefined,
};

let counter = 0;
function draft(pushId: PushId, payload: unknown) {
  counter += 1;
  return {
    type: 'notification' as const,
    id: `logq${counter}` as NotificationId,
    group: null,
    pushId,
    payloadJson: JSON.stringify(payload),
    publishedAt: Date.now(),
  };
}

function position(cursor: string): CursorPosition {
  const decoded = decodeCursor(cursor);
  assert.ok(decoded);
  return decoded;
}

async function browseCount(client: Client, destination: string): Promise<number> {
  return new Promise((resolve) => {
    let n = 0;
    const subscription = client.subscribe(
      destination,
      (message) => {
        if (message.headers.browser === 'end') {
          subscription.unsubscribe();
          resolve(n);
        } else n += 1;
      },
      stompHeaders({ browser: 'true' }),
    );
  });
}

describe('the STOMP log queue', () => {
  let broker: PrivateActiveMq;
  let browser: Client;
  const opened: StompBackplane[] = [];

  const open = async (prefix: string): Promise<StompBackplane> => {
    const backplane = new StompBackplane(`${broker.stompUrl}?prefix=${prefix}`, OPTIONS);
    opened.push(backplane);
    await backplane.start(quietSink);
    return backplane;
  };

  before(async () => {
    broker = await PrivateActiveMq.start();
    browser = stompClient(parseStompUrl(broker.stompUrl), { reconnectDelayMs: 0, heartbeatMs: 0 });
    await new Promise<void>((resolve) => {
      browser.onConnect = () => {
        resolve();
      };
      browser.activate();
    });
  });

  after(async () => {
    await Promise.all(opened.map((backplane) => backplane.stop()));
    await browser.deactivate();
    await broker.stop();
  });

  test('stays short: what a checkpoint covers is deleted', async () => {
    const a = await open('short');
    const [id] = mintPushIds(1);
    await a.register([id!]);
    for (let n = 0; n < 700; n++) await a.publish(draft(id!, n));
    // 700 batches were stored; checkpoints every 200 batches leave at most the last stretch.
    const held = await browseCount(browser, '/queue/short.log');
    assert.ok(held >= 1, 'the newest checkpoint is kept');
    assert.ok(held <= 202, `the log queue holds ${held} messages`);
  });

  test('a node that starts late resumes cursors from before its checkpoint exactly', async () => {
    const a = await open('late');
    const [id] = mintPushIds(1);
    const group = 'late.room' as GroupName;
    await a.register([id!]);
    await a.addMember(group, id!);
    const early = await a.head();
    const published = [];
    for (let n = 0; n < 450; n++) published.push(await a.publish(draft(id!, n)));
    const b = await open('late');
    const read = await b.readForListener(position(early.cursor), [id!], 1000);
    assert.equal(read.kind, 'read', 'the old cursor is not answered with reset');
    if (read.kind !== 'read') return;
    assert.deepEqual(
      read.deliveries.map((d) => d.event.id),
      published.map((e) => e.id),
    );
    assert.deepEqual(read.groups.get(id!), [group]);
  });

  test('after every node stopped at once, the cluster comes back from the newest checkpoint', async () => {
    const a = await open('restart');
    const [id, other] = mintPushIds(2);
    const group = 'restart.room' as GroupName;
    await a.register([id!, other!]);
    await a.addMember(group, id!);
    await a.addMember(group, other!);
    for (let n = 0; n < 250; n++) await a.publish(draft(id!, n));
    const before = await a.head();
    const last = await a.publish(draft(id!, 'last'));
    await a.stop();
    const b = await open('restart');
    assert.deepEqual((await b.members(group)).sort(), [id!, other!].sort());
    assert.equal(await b.isLive(id!), true);
    const head = await b.head();
    assert.equal(position(head.cursor).epoch, position(before.cursor).epoch, 'same epoch');
    const read = await b.readForListener(position(before.cursor), [id!], 10);
    assert.equal(read.kind, 'read');
    if (read.kind !== 'read') return;
    assert.deepEqual(
      read.deliveries.map((d) => d.event.id),
      [last.id],
    );
  });
});
