/**
 * A listen's input rules (docs/protocol.md), shared by every transport (long-poll on the accept loop or
 * node:http, SSE, WebSocket) so that they accept exactly the same input with the same codes.
 */
import { decodeCursor, type CursorPosition } from './cursor.js';
import { EpushError } from './errors.js';
import { MAX_PUSH_IDS_PER_LISTEN } from './limits.js';
import { isPushId, type PushId } from './push-id.js';

/** A validated listen: distinct push IDs, and where to read from (null: from now). */
export interface ListenRequest {
  readonly pushIds: PushId[];
  readonly from: CursorPosition | null;
}

/**
 * What checks a listen's tokens (the node's `ListenTokens`, when `--listen-token-secret` is
 * set). Throws an EpushError (403 `forbidden`) to refuse the listen.
 */
export interface ListenTokenCheck {
  /** `tokens` is parallel to `pushIds` (null: the listen carried none). */
  check(pushIds: readonly PushId[], tokens: readonly (string | null)[] | null): void;
}

/**
 * Validates a listen body (the parsed JSON; undefined reads as `{}`). With `tokens` (a secret is
 * configured), this is also the one place where listen tokens are checked: a refused listen
 * throws 403 `forbidden` before anything touches the node's state.
 */
export function parseListenRequest(
  value: unknown,
  tokens: ListenTokenCheck | null = null,
): ListenRequest {
  if (
    value !== undefined &&
    (typeof value !== 'object' || value === null || Array.isArray(value))
  ) {
    throw new EpushError('invalid_body', 'The listen body must be a JSON object.');
  }
  const { pushIds, cursor, listenTokens } = (value ?? {}) as Readonly<Record<string, unknown>>;
  if (!Array.isArray(pushIds) || pushIds.length === 0) {
    throw new EpushError('invalid_body', '"pushIds" must be a non-empty array of push IDs.');
  }
  if (pushIds.length > MAX_PUSH_IDS_PER_LISTEN) {
    throw new EpushError(
      'too_many_push_ids',
      `A listen carries at most ${MAX_PUSH_IDS_PER_LISTEN} push IDs (got ${pushIds.length}).`,
    );
  }
  const unique = new Set<PushId>();
  for (const [index, pushId] of pushIds.entries()) {
    if (!isPushId(pushId)) {
      // Never echo the value itself: it may be huge or nested thousands deep.
      const shown = typeof pushId === 'string' ? `"${pushId.slice(0, 80)}"` : `a ${typeof pushId}`;
      throw new EpushError('invalid_push_id', `pushIds[${index}] (${shown}) is not a push ID.`);
    }
    unique.add(pushId);
  }
  if (listenTokens !== undefined && listenTokens !== null) {
    if (
      !Array.isArray(listenTokens) ||
      listenTokens.length !== pushIds.length ||
      !listenTokens.every((token) => token === null || typeof token === 'string')
    ) {
      throw new EpushError(
        'invalid_body',
        '"listenTokens" must be an array of strings (or nulls), one per entry of "pushIds".',
      );
    }
  }
  let from: CursorPosition | null = null;
  if (cursor !== undefined && cursor !== null) {
    from = typeof cursor === 'string' ? decodeCursor(cursor) : null;
    if (from === null) {
      throw new EpushError(
        'invalid_cursor',
        '"cursor" must be null or a cursor this service handed out.',
      );
    }
  }
  const ids = [...unique];
  if (tokens !== null) tokens.check(ids, tokensFor(ids, pushIds, listenTokens));
  return { pushIds: ids, from };
}

/** The token of each unique push ID (the first one given for a repeated push ID), or null. */
function tokensFor(
  ids: readonly PushId[],
  pushIds: readonly unknown[],
  listenTokens: unknown,
): (string | null)[] | null {
  if (!Array.isArray(listenTokens)) return null;
  const byId = new Map<unknown, string>();
  for (const [index, token] of (listenTokens as (string | null)[]).entries()) {
    const id = pushIds[index];
    if (token !== null && token !== '' && !byId.has(id)) byId.set(id, token);
  }
  return ids.map((id) => byId.get(id) ?? null);
}
