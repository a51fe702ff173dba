import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { EpushError } from '../core/errors.js';

/**
 * Bearer API keys. Keys are compared as SHA-256 digests with timingSafeEqual, so neither a key's
 * content nor its length leaks through timing; every configured key is checked (rotation).
 */
export class ApiKeyAuth {
  private readonly digests: Buffer[];

  /**
   * `keylessFromLoopbackOnly`: a call without a key (allowed by `allowWithoutKey`) must come
   * from a loopback peer. An embedded epush cannot know where its host binds, so the rule
   * "--insecure-dev only on loopback" is checked per request there instead of at start-up.
   */
  constructor(
    keys: readonly string[],
    private readonly allowWithoutKey: boolean,
    private readonly keylessFromLoopbackOnly = false,
  ) {
    this.digests = keys.map(digest);
  }

  /** Throws `unauthorized` unless the request carries a valid key (or keys are not required). */
  check(req: IncomingMessage): void {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (this.allowWithoutKey && (this.digests.length === 0 || !match)) {
      if (this.keylessFromLoopbackOnly && !isLoopback(req.socket.remoteAddress)) {
        throw unauthorized(
          'Without an API key this call is accepted only from the loopback interface.',
        );
      }
      return;
    }
    if (!match) {
      throw unauthorized('This call needs an API key: send "Authorization: Bearer <key>".');
    }
    const offered = digest(match[1] ?? '');
    let ok = false;
    for (const known of this.digests) ok = timingSafeEqual(offered, known) || ok;
    if (!ok) throw unauthorized('The API key is not valid.');
  }
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 addresses. */
function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(address);
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

function unauthorized(message: string): EpushError {
  return new EpushError('unauthorized', message, { 'www-authenticate': 'Bearer realm="epush"' });
}
