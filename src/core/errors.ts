/**
 * The error catalogue. Every failure a client can see has a stable snake_case code and one HTTP
 * status; the HTTP layer renders `{"error": {"code", "message"}}` from an EpushError and nothing else.
 */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_json: 400,
  invalid_body: 400,
  invalid_push_id: 400,
  invalid_group_name: 400,
  invalid_cursor: 400,
  invalid_count: 400,
  too_many_push_ids: 400,
  invalid_idempotency_key: 400,
  invalid_limit: 400,
  unauthorized: 401,
  forbidden: 403,
  forbidden_origin: 403,
  not_found: 404,
  push_id_not_found: 404,
  method_not_allowed: 405,
  request_timeout: 408,
  expectation_failed: 417,
  idempotency_conflict: 409,
  payload_too_large: 413,
  body_too_large: 413,
  unsupported_media_type: 415,
  headers_too_large: 431,
  rate_limited: 429,
  presence_unsupported: 501,
  backplane_unavailable: 503,
  too_many_connections: 503,
  draining: 503,
  not_ready: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

/** A failure with a code from the catalogue; anything else reaching the HTTP layer is a bug (500). */
export class EpushError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Extra response headers, e.g. `Allow` for 405 or `Retry-After` for 503. */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: ErrorCode, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = 'EpushError';
    this.code = code;
    this.status = ERROR_STATUS[code];
    this.headers = headers;
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}
