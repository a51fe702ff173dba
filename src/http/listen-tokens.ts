/**
 * Signed listen tokens (`--listen-token-secret`): an optional second capability besides the push
 * ID itself. A token is per push ID:
 *
 *   `v1.<expiresUnixSeconds>.<base64url HMAC-SHA256(secret, "epush-listen\n" + pushId + "\n" + expires)>`
 *
 * The first secret signs, every listed secret verifies (rotation). MACs are compared with
 * timingSafeEqual. No I/O: the clock is injectable.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { EpushError } from '../core/errors.js';
import type { PushId } from '../core/push-id.js';

/** Successful verifications remembered; past it the oldest are forgotten (re-polls hit it). */
const CACHE_LIMIT = 10_000;

const TOKEN = /^v1\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;
const MAC_BYTES = 32;

/** Why a token was refused; `valid` when it was not. */
export type TokenVerdict = 'valid' | 'missing' | 'malformed' | 'expired' | 'mismatch';

/**
 * A `forbidden` listen: the error object names the refused push IDs in an extra `pushIds` field,
 * so a client can stop listening on exactly those (and keep the others).
 */
export class ListenTokenError extends EpushError {
  constructor(
    message: string,
    readonly pushIds: readonly PushId[],
  ) {
    super('forbidden', message);
  }

  override toJSON(): { error: { code: 'forbidden'; message: string; pushIds: PushId[] } } {
    return { error: { code: 'forbidden', message: this.message, pushIds: [...this.pushIds] } };
  }
}

export interface ListenTokenOptions {
  /** `--listen-token-secret`: the first signs, all verify. At least one. */
  readonly secrets: readonly string[];
  /** `--listen-token-ttl`: lifetime of a minted token when the caller names none. */
  readonly ttlSeconds: number;
  /** `--require-listen-tokens`: every push ID of a listen needs a valid token. */
  readonly required: boolean;
  /** Milliseconds since the epoch; `Date.now` by default. */
  readonly now?: () => number;
}

/**
 * Mints and checks listen tokens. One instance per node (its cache is bounded); the listen paths
 * (accept loop, node:http long-poll, SSE, WebSocket) all call {@link check} through
 * `parseListenRequest`, before anything touches the node's state.
 */
export class ListenTokens {
  readonly ttlSeconds: number;
  readonly required: boolean;
  private readonly keys: readonly Buffer[];
  private readonly now: () => number;
  /** token → what it was verified for; expiry is still compared with the clock on every use. */
  private readonly verified = new Map<string, { pushId: string; expires: number }>();

  constructor(options: ListenTokenOptions) {
    if (options.secrets.length === 0) throw new Error('ListenTokens needs at least one secret');
    this.keys = options.secrets.map((secret) => Buffer.from(secret, 'utf8'));
    this.ttlSeconds = options.ttlSeconds;
    this.required = options.required;
    this.now = options.now ?? Date.now;
  }

  /** Seconds since the epoch, now. */
  nowSeconds(): number {
    return Math.floor(this.now() / 1000);
  }

  /** The token of `pushId` valid until `expires` (Unix seconds), signed with the first secret. */
  sign(pushId: string, expires: number): string {
    const key = this.keys[0];
    if (key === undefined) throw new Error('unreachable: no secret');
    return `v1.${expires}.${mac(key, pushId, expires).toString('base64url')}`;
  }

  /** Tokens for `pushIds` (same order), valid for `ttlSeconds` (default: the flag's). */
  mint(
    pushIds: readonly string[],
    ttlSeconds = this.ttlSeconds,
  ): { listenTokens: string[]; expires: number } {
    const expires = this.nowSeconds() + ttlSeconds;
    return { listenTokens: pushIds.map((id) => this.sign(id, expires)), expires };
  }

  /** Whether `token` lets its bearer listen on `pushId` now. */
  verify(pushId: string, token: string | null | undefined): TokenVerdict {
    if (token === null || token === undefined || token === '') return 'missing';
    const now = this.nowSeconds();
    const cached = this.verified.get(token);
    if (cached !== undefined) {
      if (cached.pushId !== pushId) return 'mismatch';
      return cached.expires > now ? 'valid' : 'expired';
    }
    const match = TOKEN.exec(token);
    if (match === null) return 'malformed';
    const expires = Number(match[1]);
    const text = match[2] ?? '';
    const offered = Buffer.from(text, 'base64url');
    // Canonical encodings only: the last character's two spare bits must be zero.
    if (offered.length !== MAC_BYTES || offered.toString('base64url') !== text) return 'malformed';
    let ok = false;
    for (const key of this.keys) {
      if (timingSafeEqual(offered, mac(key, pushId, expires))) ok = true;
    }
    if (!ok) return 'mismatch';
    if (expires <= now) return 'expired';
    if (this.verified.size >= CACHE_LIMIT) {
      const oldest = this.verified.keys().next();
      if (oldest.done !== true) this.verified.delete(oldest.value);
    }
    this.verified.set(token, { pushId, expires });
    return 'valid';
  }

  /**
   * Throws {@link ListenTokenError} (403 `forbidden`) unless the listen may go on: with tokens
   * required, every push ID needs a valid token; otherwise a token that is present must be valid.
   * `tokens` is parallel to `pushIds` (null: the listen carried none).
   */
  check(pushIds: readonly PushId[], tokens: readonly (string | null)[] | null): void {
    let refused: PushId[] | null = null;
    let first = '';
    for (const [index, pushId] of pushIds.entries()) {
      const token = tokens?.[index] ?? null;
      if (token === null && !this.required) continue;
      const verdict = this.verify(pushId, token);
      if (verdict === 'valid') continue;
      if (refused === null) {
        refused = [];
        first = `${pushId}: ${REASONS[verdict]}`;
      }
      refused.push(pushId);
    }
    if (refused === null) return;
    const more = refused.length > 1 ? ` (and ${refused.length - 1} more push IDs)` : '';
    throw new ListenTokenError(`Listen refused for push ID ${first}${more}.`, refused);
  }
}

const REASONS: Record<Exclude<TokenVerdict, 'valid'>, string> = {
  missing: 'the listen token is missing (this server requires a listen token per push ID)',
  malformed: 'the listen token is malformed (expected v1.<expires>.<signature>)',
  expired: 'the listen token has expired (mint a new one: POST /api/listen-tokens)',
  mismatch:
    'the listen token does not match (it was signed for another push ID, altered, or with a secret no longer configured)',
};

function mac(key: Buffer, pushId: string, expires: number): Buffer {
  return createHmac('sha256', key).update(`epush-listen\n${pushId}\n${expires}`).digest();
}
