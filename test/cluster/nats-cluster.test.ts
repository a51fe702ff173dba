/**
 * NATS JetStream as the cluster's backplane: the shared cluster behaviour (backplane-cluster.ts)
 * over a private nats-server with credentials in the URL, and a wrong password refused.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { PrivateNats } from '../../testbed/brokers/nats.js';
import { startEpush } from '../support/epush-process.js';
import { describeBrokerOutage, describeThreeNodes, KEY } from './backplane-cluster.js';

const CREDENTIALS = { user: 'epush', password: 's3cret/pass' };

describeThreeNodes('nats', () => PrivateNats.start());
describeBrokerOutage('nats-server (user:pass@ in the URL)', () => PrivateNats.start(CREDENTIALS));

describe('NATS credentials', () => {
  let nats: PrivateNats;

  before(async () => {
    nats = await PrivateNats.start(CREDENTIALS);
  });

  after(async () => {
    await nats.stop();
  });

  test('a wrong password keeps a node from starting', async () => {
    const wrong = nats.url.replace('s3cret%2Fpass', 'wrong');
    await assert.rejects(
      startEpush(['--backplane', wrong, '--api-key', KEY], { timeoutMs: 8000 }),
      /cannot start|Authorization|AUTHORIZATION/i,
    );
  });
});
