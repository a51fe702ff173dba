import type { ErrorCode } from '../core/errors.js';

/** Codes the SDK itself reports, besides the server's catalogue. */
export type EpushClientLocalCode =
  /** An argument or option broke the server's rules; nothing was sent. */
  | 'invalid_argument'
  /** The connection failed or broke before a complete answer arrived. */
  | 'network_error'
  /** No complete answer within `timeoutMs`. */
  | 'timeout'
  /** The answer was not what docs/protocol.md says (not JSON, wrong shape, an error without a code). */
  | 'unexpected_response'
  /** The client was closed. */
  | 'client_closed';

/** The server's codes (src/core/errors.ts), the SDK's own, or a code a newer server added. */
export type EpushClientErrorCode =
  ErrorCode | EpushClientLocalCode | (string & Record<never, never>);

/** Every failure of an EpushApiClient call. */
export class EpushClientError extends Error {
  /** The HTTP status of the last answer; null when no answer came (local, network, timeout). */
  readonly status: number | null;
  /** The server's snake_case code, or one of {@link EpushClientLocalCode}. */
  readonly code: EpushClientErrorCode;
  /** The server's Retry-After of the last answer in milliseconds; null when it sent none. */
  readonly retryAfterMs: number | null;
  /** Requests sent (or tried) for this call; 0 when it failed validation. */
  attempts: number;

  constructor(
    code: EpushClientErrorCode,
    message: string,
    details: {
      readonly status?: number | null;
      readonly retryAfterMs?: number | null;
      readonly attempts?: number;
      readonly cause?: unknown;
    } = {},
  ) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = 'EpushClientError';
    this.code = code;
    this.status = details.status ?? null;
    this.retryAfterMs = details.retryAfterMs ?? null;
    this.attempts = details.attempts ?? 0;
  }
}

/** A call's argument broke the server's rules: thrown before anything is sent. */
export function invalid(message: string): EpushClientError {
  return new EpushClientError('invalid_argument', message);
}

/** The server answered, but not in the shape docs/protocol.md gives. */
export function unexpected(message: string): EpushClientError {
  return new EpushClientError('unexpected_response', message);
}
