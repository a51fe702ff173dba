/**
 * The application API's input rules (SPEC §3), shared by the HTTP routes and the in-process API
 * of an embedded epush, so both refuse exactly the same input with exactly the same codes.
 */
import { EpushError } from '../core/errors.js';
import { isGroupName, type GroupName } from '../core/group-name.js';
import { isPushId, type PushId } from '../core/push-id.js';

/** Largest serialized payload a notification may carry (SPEC §1). */
export const MAX_PAYLOAD_BYTES = 64 * 1024;
/** Most push IDs one create call may mint (SPEC §3). */
export const MAX_PUSH_IDS_PER_CALL = 1000;

/** JSON.stringify answers undefined for a function or a symbol, whatever lib.d.ts says. */
const stringify: (value: unknown) => string | undefined = JSON.stringify;

/** Throws `invalid_group_name` unless `value` is a group name. */
export function parseGroupName(value: unknown): GroupName {
  if (!isGroupName(value)) {
    throw new EpushError(
      'invalid_group_name',
      'Group names are 1-200 characters of letters, digits and . _ : ~ -',
    );
  }
  return value;
}

/** Throws `invalid_push_id` unless `value` is a push ID. */
export function parsePushId(value: unknown): PushId {
  if (!isPushId(value)) {
    throw new EpushError(
      'invalid_push_id',
      'Push IDs are 16-64 characters of letters, digits, _ and -.',
    );
  }
  return value;
}

/** `count` of a create call (absent: 1); throws `invalid_count` outside 1..1000. */
export function parsePushIdCount(value: unknown): number {
  const count = value ?? 1;
  if (
    typeof count !== 'number' ||
    !Number.isInteger(count) ||
    count < 1 ||
    count > MAX_PUSH_IDS_PER_CALL
  ) {
    throw new EpushError(
      'invalid_count',
      `"count" must be an integer from 1 to ${MAX_PUSH_IDS_PER_CALL}.`,
    );
  }
  return count;
}

/**
 * A notification's payload serialized once (absent: `null`), checked against the limit. A value
 * JSON cannot carry (a function, a cycle, a BigInt, nesting too deep) is `invalid_body`.
 */
export function serializePayload(payload: unknown): string {
  if (payload === undefined) return 'null';
  let payloadJson: string | undefined;
  try {
    payloadJson = stringify(payload);
  } catch {
    // A cycle or a BigInt, or nesting JSON.parse accepted but JSON.stringify overflows on.
    throw new EpushError(
      'invalid_body',
      'The payload cannot be serialized as JSON (it nests too deeply, or holds a cycle or a BigInt).',
    );
  }
  if (payloadJson === undefined) {
    throw new EpushError('invalid_body', 'The payload is not a JSON value.');
  }
  if (Buffer.byteLength(payloadJson) > MAX_PAYLOAD_BYTES) {
    throw new EpushError(
      'payload_too_large',
      `The payload is larger than ${MAX_PAYLOAD_BYTES} bytes once serialized.`,
    );
  }
  return payloadJson;
}
