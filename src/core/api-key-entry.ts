/**
 * API key entries of `--api-key`: `SECRET`, optionally followed by scopes, each after a `;`:
 *
 *   s3cret-for-app-a-0001;groups=app-a.|shared.     notify / manage only groups with these prefixes
 *   s3cret-for-grafana-01;read-only                  GET calls only (members, cluster, /admin)
 *
 * `;` and `|` cannot occur in a group name, so a prefix needs no escaping.
 */
import { GROUP_NAME_PATTERN } from './group-name.js';
import { MIN_API_KEY_LENGTH } from './limits.js';

export interface ApiKeySpec {
  readonly secret: string;
  readonly readOnly: boolean;
  /** Group-name prefixes the key may address; null = every group. */
  readonly groupPrefixes: readonly string[] | null;
}

/** Throws an Error whose message completes "--api-key …" when the entry is not valid. */
export function parseApiKeyEntry(entry: string): ApiKeySpec {
  const [secret = '', ...scopes] = entry.split(';').map((part) => part.trim());
  if (secret.length < MIN_API_KEY_LENGTH) {
    throw new Error(`needs keys of at least ${MIN_API_KEY_LENGTH} characters each`);
  }
  if (!/^[\x21-\x7e]+$/.test(secret)) {
    throw new Error('needs keys of printable ASCII without spaces');
  }
  let readOnly = false;
  let groupPrefixes: string[] | null = null;
  for (const scope of scopes) {
    if (scope === 'read-only') {
      readOnly = true;
    } else if (scope.startsWith('groups=')) {
      const prefixes = scope.slice('groups='.length).split('|');
      for (const prefix of prefixes) {
        if (!GROUP_NAME_PATTERN.test(prefix)) {
          throw new Error(
            `has a group prefix that is not 1-200 characters of [A-Za-z0-9._:~-] (got ${JSON.stringify(prefix)})`,
          );
        }
      }
      groupPrefixes = [...(groupPrefixes ?? []), ...prefixes];
    } else {
      throw new Error(
        `has an unknown scope ${JSON.stringify(scope)} after ";" (known: read-only, groups=PREFIX|PREFIX)`,
      );
    }
  }
  return { secret, readOnly, groupPrefixes };
}
