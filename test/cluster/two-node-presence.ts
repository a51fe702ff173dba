/**
 * Presence over real HTTP on two nodes that share one backplane (docs/protocol.md, "Presence"):
 * the calls answer (no 501), a long-poll held by one node reads `listening` on the other,
 * through the grace, then `idle`; a group's presence likewise; webhooks (docs/webhooks.md)
 * report each change once for the two nodes. Run for every backplane with a broker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { WebhookReceiver } from '../support/webhook-receiver.js';
import {
  api,
  listen,
  sleep,
  startEpush,
  type Api,
  type EpushProcess,
} from '../support/epush-process.js';

const KEY = 'two-node-presence-key-0123456789';
const GRACE_SECONDS = 1;
const SECRET = 'two-node-webhook-secret-0123456789abcdef';

/** A private broker: the `--backplane` URL of one cluster on it, and how to stop it. */
export interface PresenceBroker {
  readonly backplaneUrl: string;
  stop(): Promise<void>;
}

interface PushIdPresence {
  state: string;
  since: string;
  groups: string[];
}

export function describeTwoNodePresence(name: string, broker: () => Promise<PresenceBroker>): void {
  describe(`presence: 2 nodes over ${name}`, () => {
    let backplane: PresenceBroker;
    let receiver: WebhookReceiver;
    let a: EpushProcess;
    let b: EpushProcess;
    let clientA: Api;
    let clientB: Api;

    before(async () => {
      backplane = await broker();
      receiver = await WebhookReceiver.start();
      const node = (id: string): Promise<EpushProcess> =>
        startEpush([
          '--backplane',
          backplane.backplaneUrl,
          '--node-id',
          id,
          '--api-key',
          KEY,
          '--hold-seconds',
          '2',
          '--heartbeat-seconds',
          '1',
          '--presence-grace-seconds',
          String(GRACE_SECONDS),
          '--webhook-url',
          receiver.url,
          '--webhook-secret',
          SECRET,
        ]);
      a = await node('node-a');
      b = await node('node-b');
      clientA = api(a.url, KEY);
      clientB = api(b.url, KEY);
    });

    after(async () => {
      await a?.stop();
      await b?.stop();
      await backplane?.stop();
      await receiver?.close();
    });

    const presenceOn = async (client: Api, pushId: string): Promise<PushIdPresence> => {
      const answer = await client.call<PushIdPresence>('GET', `/api/push-ids/${pushId}`);
      assert.equal(answer.status, 200, answer.text);
      return answer.body;
    };

    const waitForState = async (client: Api, pushId: string, state: string, withinMs: number) => {
      const deadline = Date.now() + withinMs;
      for (;;) {
        const presence = await presenceOn(client, pushId);
        if (presence.state === state) return presence;
        if (Date.now() > deadline) {
          throw new Error(
            `${pushId} is still ${presence.state}, not ${state}, after ${withinMs} ms`,
          );
        }
        await sleep(100);
      }
    };

    test('a push ID minted on one node is idle on the other, with its groups', async () => {
      const pushId = await clientA.mintPushId();
      await clientA.addMember('room-1', pushId);
      const presence = await presenceOn(clientB, pushId);
      assert.equal(presence.state, 'idle');
      assert.deepEqual(presence.groups, ['room-1']);
    });

    test('a long-poll on one node reads listening on the other, then idle after the grace', async () => {
      const pushId = await clientA.mintPushId();
      const held = listen(a.url, [pushId]);
      await waitForState(clientB, pushId, 'listening', 5000);
      await held;
      const endedAt = Date.now();
      const idle = await waitForState(clientB, pushId, 'idle', GRACE_SECONDS * 1000 + 6000);
      assert.ok(Date.parse(idle.since) >= endedAt - 1000, `idle since ${idle.since}`);
    });

    test("a group's presence counts its members and lists those listening", async () => {
      const [p1, p2] = (await clientA.mintPushIds(2)) as [string, string];
      await clientA.addMember('room-2', p1);
      await clientA.addMember('room-2', p2);
      const held = listen(b.url, [p2]);
      await waitForState(clientA, p2, 'listening', 5000);
      const answer = await clientA.call<{ members: number; listening: string[] }>(
        'GET',
        '/api/groups/room-2/presence',
      );
      assert.equal(answer.status, 200, answer.text);
      assert.deepEqual(answer.body, { members: 2, listening: [p2] });
      await held;
    });

    test('webhooks report each change once, whichever node decides it', async () => {
      const pushIds = await clientA.mintPushIds(5);
      const events = (type: string) =>
        receiver.acknowledged.filter((e) => e.type === type && pushIds.includes(e.pushId));
      await Promise.all([listen(a.url, pushIds), listen(b.url, pushIds)]);
      const deadline = Date.now() + GRACE_SECONDS * 1000 + 8000;
      while (events('push_id.idle').length < 5 && Date.now() < deadline) await sleep(100);
      await sleep(1500); // a second report would come within this
      assert.equal(events('push_id.listening').length, 5);
      assert.equal(events('push_id.idle').length, 5);
    });
  });
}
