/**
 * Presence webhooks on one node (docs/webhooks.md): signed batches that the SDK verifies,
 * several changes in one batch, a retry after a 500 with the same Epush-Delivery, a hanging
 * receiver that slows neither a listen nor a notify (measured against a node without webhooks),
 * and the flags refused with exit 2. The cluster behaviour (one sender per change, failover of
 * unsent events) is in test/cluster/webhooks-cluster.test.ts.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { verifyWebhook } from '../../src/sdk/index.js';
import {
  api,
  headCursor,
  listen,
  runEpush,
  sleep,
  startEpush,
  type EpushProcess,
} from '../support/epush-process.js';
import { requiredMetric } from '../support/metrics.js';
import { WebhookReceiver } from '../support/webhook-receiver.js';

const KEY = 'webhook-test-key-0123456789';
const SECRET = 'webhook-secret-for-tests-0123456789';
const GRACE_SECONDS = 1;

async function until(what: string, check: () => boolean, withinMs: number): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${withinMs} ms`);
    await sleep(50);
  }
}

function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function nodeFlags(receiver: WebhookReceiver | null): string[] {
  return [
    '--api-key',
    KEY,
    '--presence-grace-seconds',
    String(GRACE_SECONDS),
    '--hold-seconds',
    '2',
    ...(receiver ? ['--webhook-url', receiver.url, '--webhook-secret', SECRET] : []),
  ];
}

describe('presence webhooks on one node', () => {
  test('changes arrive signed, batched, and verify with the SDK', async () => {
    const receiver = await WebhookReceiver.start();
    const node = await startEpush(nodeFlags(receiver));
    try {
      const client = api(node.url, KEY);
      const pushIds = await client.mintPushIds(20);
      // One listen on 20 push IDs: 20 changes decided together.
      const answered = listen(node.url, pushIds);
      const listening = () =>
        new Set(
          receiver.acknowledged.filter((e) => e.type === 'push_id.listening').map((e) => e.pushId),
        );
      await until('20 listening events', () => listening().size === 20, 5000);
      await answered;
      await until(
        '20 idle events',
        () => receiver.acknowledged.filter((e) => e.type === 'push_id.idle').length === 20,
        GRACE_SECONDS * 1000 + 6000,
      );
      const listeningBatches = receiver.received.filter((r) =>
        r.events.some((e) => e.type === 'push_id.listening'),
      );
      assert.ok(listeningBatches.length <= 3, `${listeningBatches.length} requests for 20 events`);
      for (const request of receiver.received) {
        const batch = verifyWebhook(
          request.body,
          { 'epush-signature': request.signature, 'epush-delivery': request.delivery },
          { secret: SECRET },
        );
        assert.equal(batch.delivery, request.delivery);
        assert.ok(batch.events.length > 0);
      }
      assert.equal(
        new Set(receiver.received.map((r) => r.delivery)).size,
        receiver.received.length,
      );
      // Each change once: 20 listening, 20 idle, no more.
      assert.equal(receiver.acknowledged.length, 40);
      assert.equal(new Set(receiver.acknowledged.map((e) => e.id)).size, 40);
      assert.equal(
        await requiredMetric(node.url, 'epush_webhook_events_total{outcome="delivered"}'),
        40,
      );
    } finally {
      await node.stop();
      await receiver.close();
    }
  });

  test('a batch answered 500 is retried with the same delivery id until a 2xx', async () => {
    const receiver = await WebhookReceiver.start();
    receiver.mode = 500;
    const node = await startEpush(nodeFlags(receiver));
    try {
      const pushId = await api(node.url, KEY).mintPushId();
      void listen(node.url, [pushId]).catch(() => undefined);
      await until('two failed attempts', () => receiver.received.length >= 2, 8000);
      receiver.mode = 204;
      await until('the batch acknowledged', () => receiver.acknowledged.length >= 1, 10_000);
      const first = receiver.received[0]!;
      const retries = receiver.received.filter((r) => r.delivery === first.delivery);
      assert.ok(retries.length >= 3, `${retries.length} attempts of the first batch`);
      assert.deepEqual(
        retries.map((r) => r.body),
        retries.map(() => first.body),
        'every retry carries the same body',
      );
      assert.equal(retries.at(-1)?.status, 204);
      assert.ok(
        (await requiredMetric(node.url, 'epush_webhook_events_total{outcome="failed"}')) >= 2,
      );
    } finally {
      await node.stop();
      await receiver.close();
    }
  });

  describe('a hanging receiver', () => {
    let receiver: WebhookReceiver;
    let hanging: EpushProcess;
    let plain: EpushProcess;

    before(async () => {
      receiver = await WebhookReceiver.start();
      receiver.mode = 'hang';
      hanging = await startEpush(nodeFlags(receiver));
      plain = await startEpush(nodeFlags(null));
    });

    after(async () => {
      await hanging.stop();
      await plain.stop();
      await receiver.close();
    });

    /** Notify then listen (answered at once with it), each timed, on fresh push IDs. */
    async function measure(node: EpushProcess, rounds: number) {
      const client = api(node.url, KEY);
      const notifyMs: number[] = [];
      const listenMs: number[] = [];
      for (let i = 0; i < rounds; i++) {
        const pushId = await client.mintPushId();
        const cursor = await headCursor(node.url);
        let started = performance.now();
        await client.notifyPushId(pushId, { i });
        notifyMs.push(performance.now() - started);
        started = performance.now();
        // Answered at once (the notification is there): a listen that waits on the webhook
        // receiver fails here instead of hanging the suite.
        const answer = await listen(node.url, [pushId], cursor, {
          signal: AbortSignal.timeout(5000),
        });
        listenMs.push(performance.now() - started);
        assert.equal(answer.notifications.length, 1);
      }
      return { notifyMs, listenMs };
    }

    /**
     * Presence changes all along: every 100 ms a fresh listener on 20 fresh push IDs, held for
     * --hold-seconds (about 200 changes a second, each one an event the receiver never takes).
     */
    function churn(node: EpushProcess): { stop(): Promise<void> } {
      let running = true;
      const listens: Promise<unknown>[] = [];
      const loop = (async () => {
        const client = api(node.url, KEY);
        while (running) {
          const pushIds = await client.mintPushIds(20);
          listens.push(listen(node.url, pushIds).catch(() => undefined));
          await sleep(100);
        }
      })();
      return {
        async stop() {
          running = false;
          await loop;
          await Promise.all(listens);
        },
      };
    }

    test('slows neither a listen nor a notify', { timeout: 90_000 }, async (t) => {
      // Warm both up, and give the hanging receiver a first batch to hold.
      await measure(hanging, 20);
      await measure(plain, 20);
      let load = churn(hanging);
      await until('the receiver holds a request', () => receiver.received.length > 0, 5000);
      const withHang = await measure(hanging, 150);
      await load.stop();
      load = churn(plain);
      const without = await measure(plain, 150);
      await load.stop();
      const changes = await requiredMetric(
        hanging.url,
        'epush_webhook_events_total{outcome="failed"}',
      );
      t.diagnostic(`webhook events failed against the hanging receiver so far: ${changes}`);
      const figures = {
        notifyP50: [percentile(withHang.notifyMs, 50), percentile(without.notifyMs, 50)],
        notifyP95: [percentile(withHang.notifyMs, 95), percentile(without.notifyMs, 95)],
        listenP50: [percentile(withHang.listenMs, 50), percentile(without.listenMs, 50)],
        listenP95: [percentile(withHang.listenMs, 95), percentile(without.listenMs, 95)],
      };
      t.diagnostic(`ms [hanging receiver, no webhooks]: ${JSON.stringify(figures)}`);
      assert.ok(
        receiver.received.every((r) => r.status === 0),
        'the receiver never answered',
      );
      // Generous margins: the machine is shared. A blocked path would cost seconds, not ms.
      for (const [name, [hang, none]] of Object.entries(figures)) {
        assert.ok(
          hang! < none! * 3 + 25,
          `${name}: ${hang} ms with a hanging receiver, ${none} without`,
        );
      }
    });
  });

  test('one webhook flag without the other, or a short secret, is refused with exit 2', async () => {
    const cases: [string[], string][] = [
      [['--webhook-url', 'http://127.0.0.1:9/hook'], '--webhook-url'],
      [['--webhook-secret', SECRET], '--webhook-secret'],
      [
        ['--webhook-url', 'http://127.0.0.1:9/hook', '--webhook-secret', 'short'],
        '--webhook-secret',
      ],
      [['--webhook-url', 'ftp://example.test/', '--webhook-secret', SECRET], '--webhook-url'],
    ];
    for (const [flags, named] of cases) {
      const result = await runEpush(['start', '--insecure-dev', ...flags]);
      assert.equal(result.code, 2, `${flags.join(' ')}: exit ${result.code} ${result.stderr}`);
      const lines = result.stderr.trimEnd().split('\n');
      assert.equal(lines.length, 1, result.stderr);
      assert.ok(lines[0]!.includes(named), `${lines[0]!} does not name ${named}`);
    }
  });
});
