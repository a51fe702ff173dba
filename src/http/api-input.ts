/**
 * The application API's input rules (docs/protocol.md), shared by the HTTP routes and the in-process API
 * of an embedded epush, so both refuse exactly the same input with exactly the same codes.
 */
import { EpushError } from '../core/errors.js';
import { isGroupName, type GroupName } from '../core/group-name.js';
import {
  MAX_LISTEN_TOKEN_TTL_SECONDS,
  MAX_PAYLOAD_BYTES,
  MAX_PUSH_IDS_PER_CALL,
  MIN_LISTEN_TOKEN_TTL_SECONDS,
} from '../core/limits.js';
import { isPushId, type PushId } from '../core/push-id.js';

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
 * A notification's payload serialized once (absent: `null`), checked against `maxBytes` (the
 * node's `--max-payload-kb`, at most {@link MAX_PAYLOAD_BYTES}). A value JSON cannot carry (a
 * function, a cycle, a BigInt, nesting too deep) is `invalid_body`.
 */
export function serializePayload(payload: unknown, maxBytes = MAX_PAYLOAD_BYTES): string {
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
  if (Buffer.byteLength(payloadJson) > maxBytes) {
    throw new EpushError(
      'payload_too_large',
      `The payload is larger than ${maxBytes} bytes once serialized.`,
    );
  }
  return payloadJson;
}

/**
 * The body of `POST /api/listen-tokens`: `{"pushIds": [1..1000 push IDs], "ttlSeconds"?: n}`;
 * `ttlSeconds` is null when absent (the node's --listen-token-ttl applies).
 */
export function parseListenTokenRequest(body: Readonly<Record<string, unknown>>): {
  pushIds: PushId[];
  ttlSeconds: number | null;
} {
  for (const key of Object.keys(body)) {
    if (key !== 'pushIds' && key !== 'ttlSeconds') {
      throw new EpushError(
        'invalid_body',
        `Unknown field "${key}"; the body is {"pushIds": [...], "ttlSeconds"?: n}.`,
      );
    }
  }
  const { pushIds, ttlSeconds } = body;
  if (!Array.isArray(pushIds)) {
    throw new EpushError('invalid_body', '"pushIds" must be an array of push IDs.');
  }
  if (pushIds.length < 1 || pushIds.length > MAX_PUSH_IDS_PER_CALL) {
    throw new EpushError(
      'invalid_count',
      `"pushIds" must hold 1 to ${MAX_PUSH_IDS_PER_CALL} push IDs (got ${pushIds.length}).`,
    );
  }
  for (const [index, pushId] of pushIds.entries()) {
    if (!isPushId(pushId)) {
      throw new EpushError(
        'invalid_push_id',
        `pushIds[${index}] is not a push ID (16-64 characters of letters, digits, _ and -).`,
      );
    }
  }
  if (
    ttlSeconds !== undefined &&
    (typeof ttlSeconds !== 'number' ||
      !Number.isInteger(ttlSeconds) ||
      ttlSeconds < MIN_LISTEN_TOKEN_TTL_SECONDS ||
      ttlSeconds > MAX_LISTEN_TOKEN_TTL_SECONDS)
  ) {
    throw new EpushError(
      'invalid_body',
      `"ttlSeconds" must be an integer from ${MIN_LISTEN_TOKEN_TTL_SECONDS} to ${MAX_LISTEN_TOKEN_TTL_SECONDS}.`,
    );
  }
  return { pushIds: pushIds as PushId[], ttlSeconds: ttlSeconds ?? null };
}
