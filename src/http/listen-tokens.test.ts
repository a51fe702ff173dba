import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import type { PushId } from '../core/push-id.js';
import { ListenTokenError, ListenTokens } from './listen-tokens.js';

const SECRET = 'a-listen-token-secret-of-32-chars!';
const OLD_SECRET = 'an-older-listen-token-secret-0123456';
const A = 'AAAAAAAAAAAAAAAAAAAAAA' as PushId;
const B = 'BBBBBBBBBBBBBBBBBBBBBB' as PushId;

function tokens(
  options: Partial<{ secrets: string[]; required: boolean; now: () => number }> = {},
): ListenTokens {
  return new ListenTokens({
    secrets: options.secrets ?? [SECRET],
    ttlSeconds: 600,
    required: options.required ?? true,
    now: options.now ?? (() => 1_700_000_000_000),
  });
}

function refusal(fn: () => void): ListenTokenError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof ListenTokenError);
    return error;
  }
  assert.fail('expected a refusal');
}

describe('ListenTokens', () => {
  it('signs v1.<expires>.<base64url HMAC-SHA256> over "epush-listen\\n" + pushId + "\\n" + expires', () => {
    const token = tokens().sign(A, 1_700_000_600);
    const mac = createHmac('sha256', SECRET)
      .update(`epush-listen\n${A}\n1700000600`)
      .digest('base64url');
    assert.equal(token, `v1.1700000600.${mac}`);
  });

  it('mints tokens that verify for their own push ID until they expire', () => {
    let now = 1_700_000_000_000;
    const t = tokens({ now: () => now });
    const { listenTokens, expires } = t.mint([A, B], 60);
    assert.equal(expires, 1_700_000_060);
    assert.equal(t.verify(A, listenTokens[0]), 'valid');
    assert.equal(t.verify(B, listenTokens[1]), 'valid');
    now += 59_999;
    assert.equal(t.verify(A, listenTokens[0]), 'valid', 'cached, still before expiry');
    now += 1;
    assert.equal(t.verify(A, listenTokens[0]), 'expired', 'the cache still checks the clock');
    assert.equal(tokens({ now: () => now }).verify(B, listenTokens[1]), 'expired', 'uncached');
  });

  it('refuses a token for another push ID, cached or not', () => {
    const t = tokens();
    const [forA] = t.mint([A]).listenTokens;
    assert.equal(t.verify(B, forA), 'mismatch');
    assert.equal(t.verify(A, forA), 'valid');
    assert.equal(t.verify(B, forA), 'mismatch', 'after it was cached for A');
  });

  it('refuses tampered, malformed and missing tokens', () => {
    const t = tokens();
    const token = t.sign(A, 1_800_000_000);
    const [, expires, mac] = token.split('.') as [string, string, string];
    assert.equal(t.verify(A, `v1.${Number(expires) + 1}.${mac}`), 'mismatch', 'longer expiry');
    const flipped = mac.startsWith('A') ? `B${mac.slice(1)}` : `A${mac.slice(1)}`;
    assert.equal(t.verify(A, `v1.${expires}.${flipped}`), 'mismatch');
    for (const bad of [
      'v2.1800000000.' + mac,
      `v1.${expires}`,
      `v1.-5.${mac}`,
      `v1.${expires}.${mac}=`,
      `v1.${expires}.${mac.slice(1)}`,
      'hello',
      ' ' + token,
    ]) {
      assert.equal(t.verify(A, bad), 'malformed', bad);
    }
    // The last character carries two spare bits: only the canonical form is accepted.
    const last = mac.at(-1) ?? '';
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sibling = alphabet[alphabet.indexOf(last) + 1] ?? 'A';
    assert.notEqual(t.verify(A, `v1.${expires}.${mac.slice(0, -1)}${sibling}`), 'valid');
    assert.equal(t.verify(A, null), 'missing');
    assert.equal(t.verify(A, ''), 'missing');
    assert.equal(t.verify(A, token), 'valid');
  });

  it('verifies with every listed secret and signs with the first (rotation)', () => {
    const old = tokens({ secrets: [OLD_SECRET] });
    const fromOld = old.sign(A, 1_800_000_000);
    const rotated = tokens({ secrets: [SECRET, OLD_SECRET] });
    assert.equal(rotated.verify(A, fromOld), 'valid');
    const fresh = rotated.sign(A, 1_800_000_000);
    assert.notEqual(fresh, fromOld);
    assert.equal(tokens({ secrets: [SECRET] }).verify(A, fresh), 'valid');
    assert.equal(
      tokens({ secrets: [SECRET] }).verify(A, fromOld),
      'mismatch',
      'old secret dropped',
    );
  });

  it('check: with tokens required, names the first refused push ID and why, and lists them all', () => {
    const t = tokens();
    const [forA] = t.mint([A]).listenTokens;
    assert.doesNotThrow(() => {
      t.check([A], [forA ?? null]);
    });
    const missing = refusal(() => {
      t.check([A, B], [forA ?? null, null]);
    });
    assert.equal(missing.status, 403);
    assert.equal(missing.code, 'forbidden');
    assert.match(missing.message, new RegExp(`${B}: the listen token is missing`));
    assert.deepEqual(missing.pushIds, [B]);
    assert.deepEqual(missing.toJSON().error.pushIds, [B]);
    const none = refusal(() => {
      t.check([A, B], null);
    });
    assert.deepEqual(none.pushIds, [A, B]);
    assert.match(none.message, /and 1 more push IDs/);
    const swapped = refusal(() => {
      t.check([B], [forA ?? null]);
    });
    assert.match(swapped.message, /does not match/);
  });

  it('check: without tokens required, a missing token passes but a bad one is refused', () => {
    const t = tokens({ required: false });
    assert.doesNotThrow(() => {
      t.check([A, B], null);
    });
    assert.doesNotThrow(() => {
      t.check([A, B], [null, t.mint([B]).listenTokens[0] ?? null]);
    });
    const bad = refusal(() => {
      t.check([A], ['v1.1.abc']);
    });
    assert.match(bad.message, /malformed/);
    const expired = refusal(() => {
      t.check([A], [t.sign(A, 1)]);
    });
    assert.match(expired.message, /expired/);
  });
});
