import { createHash, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { parseApiKeyEntry } from '../core/api-key-entry.js';
import { EpushError } from '../core/errors.js';

/** What a request's API key allows. */
export interface KeyScope {
  readonly readOnly: boolean;
  /** Group-name prefixes the key may address; null = every group. */
  readonly groupPrefixes: readonly string[] | null;
  /** A name for logs that does not reveal the key: `key-` + 8 hex digits of its SHA-256. */
  readonly keyId: string;
}

/** The scope of a keyless call (`--insecure-dev`): everything. */
export const KEYLESS: KeyScope = { readOnly: false, groupPrefixes: null, keyId: 'keyless' };

/** A configured key: its SHA-256 (what is compared, and what signs dashboard sessions) and scope. */
export interface KnownKey {
  readonly digest: Buffer;
  readonly scope: KeyScope;
}

/**
 * Bearer API keys (`--api-key`), each with its scope. Keys are compared as SHA-256 digests with
 * timingSafeEqual, so neither a key's content nor its length leaks through timing; every
 * configured key is checked (several keys: rotation, one per application).
 */
export class ApiKeyAuth {
  readonly keys: readonly KnownKey[];

  /**
   * `keylessFromLoopbackOnly`: a call without a key (allowed by `allowWithoutKey`) must come
   * from a loopback peer. An embedded epush cannot know where its host binds, so the rule
   * "--insecure-dev only on loopback" is checked per request there instead of at start-up.
   */
  constructor(
    entries: readonly string[],
    private readonly allowWithoutKey: boolean,
    private readonly keylessFromLoopbackOnly = false,
  ) {
    this.keys = entries.map((entry) => {
      const spec = parseApiKeyEntry(entry);
      const digest = digestOf(spec.secret);
      return {
        digest,
        scope: {
          readOnly: spec.readOnly,
          groupPrefixes: spec.groupPrefixes,
          keyId: `key-${digest.subarray(0, 4).toString('hex')}`,
        },
      };
    });
  }

  /** The scope of the request's key; throws `unauthorized` without a valid one (unless keyless is allowed). */
  check(req: IncomingMessage): KeyScope {
    const header = req.headers.authorization;
    const match = header === undefined ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    if (this.allowWithoutKey && (this.keys.length === 0 || !match)) {
      if (this.keylessFromLoopbackOnly && !isLoopback(req.socket.remoteAddress)) {
        throw unauthorized(
          'Without an API key this call is accepted only from the loopback interface.',
        );
      }
      return KEYLESS;
    }
    if (!match) {
      throw unauthorized('This call needs an API key: send "Authorization: Bearer <key>".');
    }
    const scope = this.scopeOf(match[1] ?? '');
    if (scope === null) throw unauthorized('The API key is not valid.');
    return scope;
  }

  /** The scope of `key`, or null when no configured key matches it. */
  scopeOf(key: string): KeyScope | null {
    const offered = digestOf(key);
    let found: KeyScope | null = null;
    for (const known of this.keys) {
      if (timingSafeEqual(offered, known.digest)) found ??= known.scope;
    }
    return found;
  }

  /** Whether calls without a key are served (`--insecure-dev` without keys). */
  get keyless(): boolean {
    return this.allowWithoutKey && this.keys.length === 0;
  }
}

/** Throws `forbidden` unless the key may change state (not read-only). */
export function requireWrite(scope: KeyScope): void {
  if (scope.readOnly) {
    throw new EpushError('forbidden', `The API key ${scope.keyId} is read-only.`);
  }
}

/** Throws `forbidden` unless the key may address `group`. */
export function requireGroup(scope: KeyScope, group: string): void {
  const prefixes = scope.groupPrefixes;
  if (prefixes === null || prefixes.some((prefix) => group.startsWith(prefix))) return;
  throw new EpushError(
    'forbidden',
    `The API key ${scope.keyId} may only address groups starting with ${prefixes.map((p) => JSON.stringify(p)).join(', ')}.`,
  );
}

/** Throws `forbidden` unless the key may see the whole cluster (no group restriction). */
export function requireUnscoped(scope: KeyScope): void {
  if (scope.groupPrefixes === null) return;
  throw new EpushError(
    'forbidden',
    `The API key ${scope.keyId} is limited to some groups; this needs a key without a groups= scope.`,
  );
}

/** 127.0.0.0/8 and ::1, also as IPv4-mapped IPv6 addresses. */
export function isLoopback(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(address);
}

export function digestOf(key: string): Buffer {
  return createHash('sha256').update(key).digest();
}

function unauthorized(message: string): EpushError {
  return new EpushError('unauthorized', message, { 'www-authenticate': 'Bearer realm="epush"' });
}
