import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { EpushError } from '../core/errors.js';

/**
 * Bearer API keys. Keys are compared as SHA-256 digests with timingSafeEqual, so neither a key's
 * content nor its length leaks through timing; every configured key is checked (rotation).
 */
export class ApiKeyAuth {
  private readonly digests: Buffer[];

  constructor(
    keys: readonly string[],
    private readonly allowWithoutKey: boolean,
  ) {
    this.digests = keys.map(digest);
  }

  /** Throws `unauthorized` unless the request carries a valid key (or keys are not required). */
  check(req: IncomingMessage): void {
    if (this.allowWithoutKey && this.digests.length === 0) return;
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (!match) {
      if (this.allowWithoutKey) return;
      throw unauthorized('This call needs an API key: send "Authorization: Bearer <key>".');
    }
    const offered = digest(match[1] ?? '');
    let ok = false;
    for (const known of this.digests) ok = timingSafeEqual(offered, known) || ok;
    if (!ok) throw unauthorized('The API key is not valid.');
  }
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

function unauthorized(message: string): EpushError {
  return new EpushError('unauthorized', message, { 'www-authenticate': 'Bearer realm="epush"' });
}
