import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { AppendOnceOutcome, StampedDraft } from '../driver.js';
import { CALL_TIMEOUT_MS } from '../protocol/backplane-call.js';
import { decodeEntry, encodeDraft } from '../protocol/event-codec.js';

/**
 * An idempotent append on JetStream: the scoped key is the message's `Nats-Msg-Id`, and the
 * stream's duplicate window is its retention (see NatsDriver.ensureStream), so nats-server
 * itself refuses a second message with the key, atomically for every node. Its ack of a
 * duplicate names the seq of the first message, which holds the first call's id and fingerprint.
 */
export async function appendOnceToStream(
  js: JetStreamClient,
  jsm: JetStreamManager,
  stream: string,
  subject: string,
  draft: StampedDraft,
): Promise<AppendOnceOutcome> {
  const ack = await js.publish(subject, encodeDraft(draft), {
    msgID: draft.idem.key,
    timeout: CALL_TIMEOUT_MS,
  });
  if (!ack.duplicate) return { kind: 'appended', seq: ack.seq };
  const first = await jsm.direct.getMessage(stream, { seq: ack.seq });
  const event = first === null ? null : decodeEntry({ seq: ack.seq, body: first.string() });
  if (event?.type !== 'notification' || event.idem?.key !== draft.idem.key) {
    // Trimmed by the byte budget before its window ended: the caller gets a 503, not a guess.
    throw new Error(`the first notification with this idempotency key (seq ${ack.seq}) is gone`);
  }
  return { kind: 'seen', record: { id: event.id, fingerprint: event.idem.fingerprint } };
}
