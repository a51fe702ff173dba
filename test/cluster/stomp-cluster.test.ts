/**
 * ActiveMQ over STOMP as the cluster's backplane: the shared cluster behaviour
 * (backplane-cluster.ts) over a private ActiveMQ 5.17 with credentials in the URL, and a wrong
 * password refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PrivateActiveMq } from '../../testbed/brokers/activemq.js';
import {
  api,
  headCursor,
  listenRaw,
  request,
  sleep,
  startEpush,
  until,
  type EpushProcess,
  type HttpAnswer,
} from '../support/epush-process.js';
import { describeBrokerOutage, describeThreeNodes, KEY, startNode } from './backplane-cluster.js';

describeThreeNodes('stomp', () => PrivateActiveMq.start());
describeBrokerOutage('ActiveMQ (user:pass@ in the URL)', () => PrivateActiveMq.start());

async function isLeader(node: EpushProcess): Promise<boolean> {
  const metrics = await request<string>('GET', `${node.url}/metrics`).catch(() => null);
  return metrics !== null && /^epush_backplane_leader 1$/m.test(metrics.text);
}

describe('the sequencer dies (SIGKILL) while notifications flow', () => {
  let broker: PrivateActiveMq;
  let nodes: EpushProcess[];

  before(async () => {
    broker = await PrivateActiveMq.start();
    nodes = [];
    // One at a time: the first to subscribe becomes the sequencer.
    for (const id of ['n1', 'n2', 'n3']) nodes.push(await startNode(broker, id));
  });

  after(async () => {
    await Promise.all(nodes.map((node) => node.stop()));
    await broker.stop();
  });

  test('another node takes over; every notification answered 202 is delivered exactly once', async () => {
    await until('one node is the sequencer', async () =>
      (await Promise.all(nodes.map(isLeader))).some(Boolean),
    );
    const flags = await Promise.all(nodes.map(isLeader));
    assert.equal(flags.filter(Boolean).length, 1, 'exactly one sequencer');
    const leader = nodes[flags.indexOf(true)]!;
    const [publisherNode, listenerNode] = nodes.filter((node) => node !== leader) as [
      EpushProcess,
      EpushProcess,
    ];
    const client = api(publisherNode.url, KEY);
    const pushId = await client.mintPushId();
    const group = `takeover.${Date.now()}`;
    await client.addMember(group, pushId);

    const accepted: string[] = [];
    const received: string[] = [];
    let killedAt = 0;
    let firstAfterKill = 0;
    let publishing = true;
    type Body = { notifications: { id: string }[]; cursor: string; reset?: boolean };
    let cursor: string | null = null;
    let resets = 0;
    // Where the log stood before the first notification: a failure says whether a missing one
    // is in the log (a delivery fault) or not (a loss).
    const from = await headCursor(listenerNode.url);
    let consuming = true;
    const consume = (async () => {
      while (consuming) {
        const answer: HttpAnswer<Body> | null = await listenRaw<Body>(listenerNode.url, {
          pushIds: [pushId],
          cursor,
        }).catch(() => null);
        if (answer?.status === 200) {
          for (const notification of answer.body.notifications) received.push(notification.id);
          if (answer.body.reset === true) resets += 1;
          cursor = answer.body.cursor;
        } else await sleep(50);
      }
    })();
    await until('the first listen is held', async () => {
      const metrics = await request<string>('GET', `${listenerNode.url}/metrics`);
      return /^epush_listeners 1$/m.test(metrics.text);
    });
    const publish = (async () => {
      let n = 0;
      while (publishing) {
        n += 1;
        // Group and direct notifications alternate: both paths go through the sequencer.
        const path = n % 2 === 0 ? `/api/groups/${group}/notify` : `/api/push-ids/${pushId}/notify`;
        const answer = await client
          .call<{ id: string }>('POST', path, { body: { payload: n } })
          .catch(() => null);
        if (answer?.status === 202) {
          accepted.push(answer.body.id);
          if (killedAt > 0 && firstAfterKill === 0) firstAfterKill = Date.now();
        }
        await sleep(10);
      }
    })();
    await until('notifications flow', () => Promise.resolve(accepted.length >= 30));
    killedAt = Date.now();
    await leader.stop();
    const acceptedAtKill = accepted.length;
    await until(
      'a new sequencer answers',
      () => Promise.resolve(accepted.length >= acceptedAtKill + 30),
      20_000,
    );
    await until('a surviving node reports itself the sequencer', async () =>
      (await Promise.all([publisherNode, listenerNode].map(isLeader))).some(Boolean),
    );
    publishing = false;
    await publish;
    await until(
      'every accepted notification arrived',
      () => Promise.resolve(accepted.every((id) => received.includes(id))),
      10_000,
    ).catch(() => undefined);
    consuming = false;
    await consume;
    const missing = accepted.filter((id) => !received.includes(id));
    const twice = received.filter((id, i) => received.indexOf(id) !== i);
    console.log(
      `# sequencer SIGKILL: ${accepted.length} accepted, ${received.length} received, ` +
        `${missing.length} missing, ${twice.length} twice; first 202 after the kill in ` +
        `${firstAfterKill - killedAt} ms; ${resets} listen answers with reset`,
    );
    if (missing.length > 0) {
      for (const node of [publisherNode, listenerNode]) {
        const history = await api(node.url, KEY).call<{ notifications: { id: string }[] }>(
          'GET',
          `/api/push-ids/${pushId}/notifications?since=${encodeURIComponent(from)}&limit=1000`,
        );
        const logged = new Set(history.body.notifications?.map((n) => n.id) ?? []);
        console.log(
          `# ${node.nodeId}: history ${history.status}, ${logged.size} in the log; missing ` +
            missing
              .map(
                (id) =>
                  `${id} (accepted #${accepted.indexOf(id) + 1} of ` +
                  `${accepted.length}, kill after #${acceptedAtKill}): ` +
                  (logged.has(id) ? 'in the log' : 'NOT in the log'),
              )
              .join(', '),
        );
      }
    }
    assert.deepEqual(missing, [], 'every notification answered 202 arrived');
    assert.deepEqual(twice, [], 'none arrived twice');
  });
});

describe('STOMP credentials', () => {
  let broker: PrivateActiveMq;

  before(async () => {
    broker = await PrivateActiveMq.start();
  });

  after(async () => {
    await broker.stop();
  });

  test('a wrong password keeps a node from starting, with the broker’s reason', async () => {
    const wrong = broker.url.replace(`:${encodeURIComponent(broker.password)}@`, ':wrong@');
    assert.notEqual(wrong, broker.url);
    await assert.rejects(
      startEpush(['--backplane', wrong, '--api-key', KEY], { timeoutMs: 10_000 }),
      /refused the connection: User name \[epush\] or password is invalid/,
    );
  });
});
