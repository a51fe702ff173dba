import type { ServerResponse } from 'node:http';
import { EpushError } from '../core/errors.js';

export type Headers = Record<string, string | number>;

/** The headers of every JSON answer (the accept loop writes the same ones itself). */
export const JSON_HEADERS = {
  'content-type': 'application/json; charset=utf-8',
  'cache-control': 'no-store',
} as const;

export function sendJson(
  res: ServerResponse,
  status: number,
  body: string,
  headers: Headers = {},
): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(status, {
    ...JSON_HEADERS,
    ...headers,
    'content-length': Buffer.byteLength(body),
  });
  res.end(body);
}

export function sendNoContent(res: ServerResponse, headers: Headers = {}): void {
  if (res.headersSent || res.destroyed) return;
  res.writeHead(204, headers);
  res.end();
}

/** The body of a 500: nothing of the failure itself reaches the client (it is logged). */
export const INTERNAL_ERROR = JSON.stringify({
  error: {
    code: 'internal_error',
    message: 'The server failed to handle this request; the failure has been logged.',
  },
});

/** Renders a failure as the JSON error shape; anything outside the catalogue is a bare 500. */
export function sendError(res: ServerResponse, error: unknown, headers: Headers = {}): void {
  if (error instanceof EpushError) {
    sendJson(res, error.status, JSON.stringify(error.toJSON()), { ...headers, ...error.headers });
  } else {
    sendJson(res, 500, INTERNAL_ERROR, headers);
  }
}
