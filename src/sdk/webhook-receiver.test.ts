import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, test } from 'node:test';
import { verifyWebhook, WebhookVerificationError } from './webhook-receiver.js';

const SECRET = 'webhook-secret-0123456789abcdef-xyz';
const NOW = 1_800_000_000_000;
const BODY = JSON.stringify({
  events: [
    {
      type: 'push_id.idle',
      pushId: 'AAAAAAAAAAAAAAAAAAAAAA',
      at: '2027-01-15T08:00:00.000Z',
      id: 'e1',
    },
  ],
});

/** Signed the way docs/webhooks.md says, with plain node:crypto (not the code under test). */
function signature(body: string, t: number, secret = SECRET): string {
  const hex = createHmac('sha256', secret).update(`${t}.${body}`).digest('hex');
  return `t=${t},v1=${hex}`;
}

const t = Math.floor(NOW / 1000);
const options = { secret: SECRET, now: NOW };

describe('verifyWebhook', () => {
  test('a correctly signed batch verifies and is returned with its delivery id', () => {
    const batch = verifyWebhook(
      BODY,
      { 'epush-signature': signature(BODY, t), 'epush-delivery': 'd-1' },
      options,
    );
    assert.equal(batch.delivery, 'd-1');
    assert.equal(batch.events.length, 1);
    assert.equal(batch.events[0]?.type, 'push_id.idle');
  });

  test('a Buffer body verifies like the string', () => {
    const batch = verifyWebhook(
      Buffer.from(BODY),
      { 'epush-signature': signature(BODY, t) },
      options,
    );
    assert.equal(batch.delivery, null);
  });

  const refused: [string, string, Record<string, string>][] = [
    [
      'a wrong secret',
      BODY,
      { 'epush-signature': signature(BODY, t, 'another-secret-0123456789abcdefgh') },
    ],
    [
      'a tampered body',
      BODY.replace('idle', 'listening'),
      { 'epush-signature': signature(BODY, t) },
    ],
    ['no signature', BODY, {}],
    ['a malformed signature', BODY, { 'epush-signature': 'v1=abc' }],
    ['a signature older than the tolerance', BODY, { 'epush-signature': signature(BODY, t - 301) }],
    ['a signature from the future', BODY, { 'epush-signature': signature(BODY, t + 301) }],
  ];
  for (const [what, body, headers] of refused) {
    test(`${what} is refused`, () => {
      assert.throws(() => verifyWebhook(body, headers, options), WebhookVerificationError);
    });
  }

  test('the tolerance is configurable', () => {
    const headers = { 'epush-signature': signature(BODY, t - 1000) };
    assert.doesNotThrow(() => verifyWebhook(BODY, headers, { ...options, toleranceSeconds: 1200 }));
  });

  test('a signed body that is not a batch is refused', () => {
    const body = JSON.stringify({ events: [{ type: 'something.else' }] });
    assert.throws(
      () => verifyWebhook(body, { 'epush-signature': signature(body, t) }, options),
      WebhookVerificationError,
    );
  });
});
