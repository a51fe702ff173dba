import { CURSOR_PATTERN } from '../core/cursor.js';
import type { ListenRequest } from '../core/listen-request.js';
import { PUSH_ID_PATTERN, type PushId } from '../core/push-id.js';

/** The anchored patterns' bodies, so this one cannot drift from what a push ID or cursor is. */
const PUSH_ID = PUSH_ID_PATTERN.source.slice(1, -1);
const CURSOR = CURSOR_PATTERN.source.slice(1, -1);

/** `{"pushIds":["<one push ID>"],"cursor":<cursor or null>}`, exactly as the clients send it. */
const PLAIN_LISTEN_BODY = new RegExp(
  `^\\{"pushIds":\\["(${PUSH_ID})"\\],"cursor":(?:null|"${CURSOR}")\\}$`,
);

/**
 * The common listen body (one push ID, a cursor or null, no tokens) read without JSON.parse: the
 * accept loop's re-poll path. Null for anything else, which then takes parseListenRequest; for
 * what it accepts, the result is the one parseListenRequest gives.
 */
export function parsePlainListenBody(body: Buffer): ListenRequest | null {
  if (body.length > 160) return null;
  const match = PLAIN_LISTEN_BODY.exec(body.toString('latin1'));
  if (match === null) return null;
  const pushId = match[1] as PushId;
  const epoch = match[2];
  if (epoch === undefined) return { pushIds: [pushId], from: null };
  const seq = parseInt(match[3] ?? '', 36);
  if (!Number.isSafeInteger(seq)) return null;
  return { pushIds: [pushId], from: { epoch, seq } };
}
