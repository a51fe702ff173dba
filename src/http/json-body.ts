import { isUtf8 } from 'node:buffer';
import type { IncomingMessage } from 'node:http';
import { EpushError } from '../core/errors.js';

/**
 * Reads a request body up to `limit` bytes. Refuses early on a declared Content-Length over the
 * limit, and stops reading (413) as soon as a streamed body passes it.
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  if (req.readableEnded) return consumedBody(req, limit);
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
    const onError = (): void => {
      cleanup();
      // The client cut the body short or went away ("aborted"): its failure, not the node's.
      reject(
        new EpushError('bad_request', 'The request body ended before its declared length.', {
          connection: 'close',
        }),
      );
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

/**
 * The body of a request whose stream a host framework's body parser has read already (epush
 * embedded behind `express.json()` and the like): what the parser kept on `req.body`, as bytes.
 * A parser that kept nothing there leaves no body to read, which is the host's mistake (500).
 */
function consumedBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const kept = (req as IncomingMessage & { body?: unknown }).body;
  let body: Buffer;
  if (Buffer.isBuffer(kept)) body = kept;
  else if (typeof kept === 'string') body = Buffer.from(kept, 'utf8');
  else if (typeof kept === 'object' && kept !== null) {
    // A parsed JSON body; an empty one stands for "no body" (parsers answer {} for none).
    const none = !Array.isArray(kept) && Object.keys(kept).length === 0;
    body = none ? Buffer.alloc(0) : Buffer.from(JSON.stringify(kept));
  } else {
    return Promise.reject(
      new Error(
        'the request body was read by another middleware before epush; mount epush before body parsers',
      ),
    );
  }
  return body.length > limit ? Promise.reject(tooLarge(limit)) : Promise.resolve(body);
}

function tooLarge(limit: number): EpushError {
  return new EpushError('body_too_large', `The request body is larger than ${limit} bytes.`, {
    connection: 'close',
  });
}

/**
 * Parses a JSON body; an empty body is `undefined` (for calls whose body is optional). A body that
 * is not valid UTF-8 is `invalid_json` (RFC 8259 §8.1), like one that is not JSON. Every JSON body
 * of the HTTP API and the browser protocol is read through here.
 */
export function parseJson(body: Buffer): unknown {
  if (body.length === 0) return undefined;
  // Decoding would put U+FFFD in place of the bad bytes and accept a body other than the one sent.
  if (!isUtf8(body)) {
    throw new EpushError('invalid_json', 'The request body is not valid UTF-8.');
  }
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
