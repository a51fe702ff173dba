import { createHash } from 'node:crypto';
import { EpushError } from './errors.js';
import type { NotificationId } from './events.js';

/** The `Idempotency-Key` header: 1-200 characters of the group-name alphabet. */
export const IDEMPOTENCY_KEY_PATTERN = /^[A-Za-z0-9._:~-]{1,200}$/;

/** The scope of the JMS notify ingress: its keys are JMS message IDs, apart from any API key's. */
export const JMS_IDEMPOTENCY_SCOPE = 'jms';

/**
 * What the backplane stores for one idempotent notify, in the notification event itself (so a
 * log replayed elsewhere, e.g. by a new STOMP sequencer, knows the keys it already holds).
 */
export interface IdempotencyStamp {
  /** The scoped key: a hash of (scope, key), so neither the API key nor the raw key is stored. */
  readonly key: string;
  /** A hash of (target kind, target, payload JSON): a repeat must carry the same. */
  readonly fingerprint: string;
}

/** The header's value checked; undefined when it was not sent. */
export function parseIdempotencyKey(value: string | string[] | undefined): string | undefined {
  if (value === undefined) return undefined;
  const key = Array.isArray(value) ? value.join(',') : value;
  if (!IDEMPOTENCY_KEY_PATTERN.test(key)) {
    throw new EpushError(
      'invalid_idempotency_key',
      'The Idempotency-Key header must be 1-200 characters of letters, digits and . _ : ~ - (e.g. a UUID).',
    );
  }
  return key;
}

/** The key as the backplane stores it: scoped, fixed length (32 base64url characters). */
export function scopedIdempotencyKey(scope: string, key: string): string {
  return sha(`${scope}\n${key}`);
}

/** The fingerprint of a notify: what it targets and what it carries (not the raw body). */
export function notifyFingerprint(
  kind: 'group' | 'push-id',
  target: string,
  payloadJson: string,
): string {
  return sha(`${kind}\n${target}\n${payloadJson}`);
}

function sha(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url').slice(0, 32);
}

/** 409: the key was used for another notify within retention. */
export function idempotencyConflict(): EpushError {
  return new EpushError(
    'idempotency_conflict',
    'This Idempotency-Key was already used for a notify with another target or body; use a new key for a new notification.',
  );
}

/** How a caller of the node's notify asks for a safe retry. */
export interface NotifyOptions {
  /** The notification's id (the JMS ingress derives one); else the node mints one. */
  readonly id?: NotificationId | undefined;
  /** The scoped key (see `scopedIdempotencyKey`): a repeat within retention publishes nothing. */
  readonly idempotencyKey?: string | undefined;
}
