import { createHmac, timingSafeEqual } from 'node:crypto';
import { digestOf, type KeyScope, type KnownKey } from './auth.js';

/** How long a dashboard login lasts (the cookie's Max-Age). */
export const ADMIN_SESSION_SECONDS = 12 * 60 * 60;

/** The dashboard's session cookie. */
export const ADMIN_COOKIE = 'epush_admin';

/** Accepted ahead of the local clock, for nodes whose clocks differ a little. */
const CLOCK_SKEW_SECONDS = 300;

/**
 * Stateless dashboard sessions: `v1.<expiresUnixSeconds>.<base64url HMAC-SHA256(sha256(key),
 * "epush-admin:" + expires)>`. Nothing is stored on the node, so any node configured with the
 * same key accepts the cookie (a load balancer without stickiness), and removing a key from
 * `--api-key` ends every session made with it. Verification tries every configured key with
 * timingSafeEqual. A session cannot be revoked before it expires except by removing its key:
 * logging out only makes the browser forget the cookie.
 */
export class AdminSessions {
  /** The node's API keys: each one's SHA-256 is its HMAC key, so the cookie holds nothing of it. */
  constructor(private readonly keys: readonly KnownKey[]) {}

  /** A session cookie value for `key` (a configured key, checked by the caller). */
  issue(key: string, nowMs = Date.now()): string {
    const expires = Math.floor(nowMs / 1000) + ADMIN_SESSION_SECONDS;
    return `v1.${expires}.${mac(digestOf(key), expires).toString('base64url')}`;
  }

  /** The scope of the key that signed `value`, or null when it is not a valid, current session. */
  verify(value: string, nowMs = Date.now()): KeyScope | null {
    const match = /^v1\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value);
    if (!match) return null;
    const expires = Number(match[1]);
    const now = Math.floor(nowMs / 1000);
    if (expires <= now || expires > now + ADMIN_SESSION_SECONDS + CLOCK_SKEW_SECONDS) return null;
    // The text is compared, not the decoded bytes: the last of 43 base64url characters carries
    // two unused bits, and a cookie whose MAC differs only there must not pass.
    const offered = Buffer.from(match[2] ?? '', 'latin1');
    let found: KeyScope | null = null;
    for (const key of this.keys) {
      const expected = Buffer.from(mac(key.digest, expires).toString('base64url'), 'latin1');
      if (timingSafeEqual(offered, expected)) found ??= key.scope;
    }
    return found;
  }
}

/** The value of cookie `name` in a Cookie header, or null. */
export function cookieValue(header: string | undefined, name: string): string | null {
  if (header === undefined) return null;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq === -1) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return null;
}

function mac(digest: Buffer, expires: number): Buffer {
  return createHmac('sha256', digest).update(`epush-admin:${expires}`).digest();
}
