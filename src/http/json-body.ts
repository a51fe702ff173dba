import type { IncomingMessage } from 'node:http';
import { EpushError } from '../core/errors.js';

/**
 * Reads a request body up to `limit` bytes. Refuses early on a declared Content-Length over the
 * limit, and stops reading (413) as soon as a streamed body passes it.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > limit) {
    return Promise.reject(tooLarge(limit));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        cleanup();
        req.resume(); // discard the rest; the response closes the connection
        reject(tooLarge(limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => {
      cleanup();
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
    };
    const onError = (error: Error): void => {
      cleanup();
      reject(error);
    };
    const cleanup = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
    };
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}

function tooLarge(limit: number): EpushError {
  return new EpushError('body_too_large', `The request body is larger than ${limit} bytes.`, {
    connection: 'close',
  });
}

/** Parses a JSON body; an empty body is `undefined` (for calls whose body is optional). */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new EpushError('invalid_json', 'The request body is not valid JSON.');
  }
}

/** Narrows an optional JSON body to an object (or an empty one when absent). */
export function asObject(value: unknown, what: string): Record<string, unknown> {
  if (value === undefined) return {};
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new EpushError('invalid_body', `${what} must be a JSON object.`);
  }
  return value as Record<string, unknown>;
}
