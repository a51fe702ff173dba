import { idempotencyConflict } from '../../core/idempotency.js';
import type { PublishOnceOutcome } from '../backplane.js';
import type { BackplaneDriver, StampedDraft } from '../driver.js';

/**
 * Publishes `draft` unless its key was used within retention (the driver's atomic check). A
 * repeat with the same fingerprint answers the first call's id and publishes nothing; another
 * fingerprint is a conflict (409 `idempotency_conflict`).
 */
export async function publishOnce(
  driver: Pick<BackplaneDriver, 'appendOnce'>,
  draft: StampedDraft,
  retentionMs: number,
): Promise<PublishOnceOutcome> {
  const outcome = await driver.appendOnce(draft, retentionMs);
  if (outcome.kind === 'appended')
    return { kind: 'published', event: { ...draft, seq: outcome.seq } };
  if (outcome.record.fingerprint !== draft.idem.fingerprint) throw idempotencyConflict();
  return { kind: 'repeat', id: outcome.record.id };
}
