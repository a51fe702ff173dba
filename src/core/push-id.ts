import { randomBytes } from 'node:crypto';

declare const pushIdBrand: unique symbol;
/** An unguessable listening capability: 128 random bits, base64url (22 characters). */
export type PushId = string & { readonly [pushIdBrand]: true };

/**
 * Accepts our own 22-character ids and longer ones an operator may have minted elsewhere. The one
 * definition of a push ID's shape (the accept loop's plain-body pattern is built from it).
 */
export const PUSH_ID_PATTERN = /^[A-Za-z0-9_-]{16,64}$/;

export function isPushId(value: unknown): value is PushId {
  return typeof value === 'string' && PUSH_ID_PATTERN.test(value);
}

/**
 * Mints `count` fresh push IDs from the CSPRNG. One randomBytes call per batch: minting 1000 ids
 * costs one syscall, not a thousand.
 */
export function mintPushIds(count: number): PushId[] {
  const bytes = randomBytes(16 * count);
  const ids: PushId[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(bytes.subarray(i * 16, i * 16 + 16).toString('base64url') as PushId);
  }
  return ids;
}
