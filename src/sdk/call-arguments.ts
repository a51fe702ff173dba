/** The SDK's argument checks: the server's rules, applied before anything is sent. */
import { isGroupName, type GroupName } from '../core/group-name.js';
import { MAX_PAYLOAD_BYTES } from '../core/limits.js';
import { isPushId, type PushId } from '../core/push-id.js';
import { EpushClientError, invalid } from './client-error.js';

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function positiveInteger(value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw invalid(`${what} must be an integer of at least 1.`);
  }
  return value;
}

export function nonNegative(value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw invalid(`${what} must be a finite number of at least 0.`);
  }
  return value;
}

export function groupArg(value: unknown): GroupName {
  if (!isGroupName(value)) {
    throw invalid('Group names are 1-200 characters of letters, digits and . _ : ~ -');
  }
  return value;
}

export function pushIdArg(value: unknown): PushId {
  if (!isPushId(value)) {
    throw invalid('Push IDs are 16-64 characters of letters, digits, _ and -.');
  }
  return value;
}

/** JSON.stringify answers undefined for a function or a symbol, whatever lib.d.ts says. */
const stringify: (value: unknown) => string | undefined = JSON.stringify;

/** The notify body for `payload` (undefined: no body, the server stores a null payload). */
export function notifyBody(payload: unknown): string | undefined {
  if (payload === undefined) return undefined;
  let json: string | undefined;
  try {
    json = stringify(payload);
  } catch (error) {
    throw new EpushClientError(
      'invalid_argument',
      `The payload cannot be serialized as JSON (${(error as Error).message}).`,
      { cause: error },
    );
  }
  if (json === undefined) {
    throw invalid('The payload is not a JSON value (a function, a symbol or undefined).');
  }
  if (Buffer.byteLength(json) > MAX_PAYLOAD_BYTES) {
    throw invalid(`The payload is larger than ${MAX_PAYLOAD_BYTES} bytes once serialized.`);
  }
  return `{"payload":${json}}`;
}

export function isTokenList(value: unknown, length: number): value is string[] {
  return (
    Array.isArray(value) &&
    value.length === length &&
    value.every((token) => typeof token === 'string' && token !== '')
  );
}

export function memberPath(group: string, pushId: string): string {
  return `/api/groups/${encodeURIComponent(groupArg(group))}/members/${pushIdArg(pushId)}`;
}
