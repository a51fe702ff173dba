/**
 * The JMS notify message (docs/jms.md): its queue names, the properties that name its target,
 * the headers of a dead-lettered copy, the notification id of a JMS message ID, and the reading
 * of one message into a notify request (validated: anyone who can write the queue sends here).
 */
import { createHash } from 'node:crypto';
import type { NotificationId } from '../../core/events.js';
import { isGroupName, type GroupName } from '../../core/group-name.js';
import { MAX_PAYLOAD_BYTES } from '../../core/limits.js';
import { isPushId, type PushId } from '../../core/push-id.js';

/** The string property naming the target group. */
export const GROUP_PROPERTY = 'epushGroup';
/** The string property naming the one target push ID. */
export const PUSH_ID_PROPERTY = 'epushPushId';
/** Set on a dead-lettered copy: the reason's stable code. */
export const ERROR_CODE_HEADER = 'epushErrorCode';
/** Set on a dead-lettered copy: a sentence saying what to fix. */
export const ERROR_HEADER = 'epushError';
/** Set on a dead-lettered copy: the JMS message ID of the message it copies. */
export const ORIGINAL_MESSAGE_ID_HEADER = 'epushOriginalMessageId';

/** Properties epush itself writes on a dead-lettered copy; ignored when such a copy is sent back. */
const DEAD_LETTER_HEADERS = new Set([ERROR_CODE_HEADER, ERROR_HEADER, ORIGINAL_MESSAGE_ID_HEADER]);

/** A body larger than this is refused unread (the payload limit applies after re-serializing). */
export const MAX_NOTIFY_BODY_BYTES = 1024 * 1024;

/** What the ingress hands valid messages to (the node's notify path). */

export function notifyQueue(prefix: string): string {
  return `${prefix}.notify`;
}

export function notifyDeadLetterQueue(prefix: string): string {
  return `${prefix}.notify.DLQ`;
}

/**
 * The notification id of a JMS message: `jms-` and the first 22 base64url characters (132 bits)
 * of the SHA-256 of its message ID. A message the broker redelivers keeps its message ID, so it
 * gets the same notification id and the backplane can drop it as a duplicate.
 */
export function notificationIdForJmsMessage(messageId: string): NotificationId {
  const digest = createHash('sha256').update(messageId, 'utf8').digest('base64url');
  return `jms-${digest.slice(0, 22)}` as NotificationId;
}

/** A notify message read: whom to notify with what, or why it can never be sent on. */
export type NotifyRequest =
  | { readonly kind: 'group'; readonly group: GroupName; readonly payloadJson: string }
  | { readonly kind: 'push-id'; readonly pushId: PushId; readonly payloadJson: string }
  | { readonly kind: 'rejected'; readonly code: string; readonly reason: string };

function rejected(code: string, reason: string): NotifyRequest {
  return { kind: 'rejected', code, reason };
}

/** A header value quoted in a reason, cut short: reasons travel back in a header. */
function quoted(value: string): string {
  return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads a notify message from its STOMP headers (JMS string properties arrive as headers of the
 * same name) and body bytes, with the HTTP API's rules for names and payloads.
 */
export function readNotifyMessage(
  headers: Readonly<Record<string, string | undefined>>,
  body: Uint8Array,
): NotifyRequest {
  for (const key of Object.keys(headers)) {
    if (!key.toLowerCase().startsWith('epush')) continue;
    if (key === GROUP_PROPERTY || key === PUSH_ID_PROPERTY || DEAD_LETTER_HEADERS.has(key))
      continue;
    return rejected(
      'unknown_property',
      `Unknown property ${quoted(key)}: a notify message names its target with exactly one of ` +
        `the string properties ${GROUP_PROPERTY} or ${PUSH_ID_PROPERTY} (one push ID per message).`,
    );
  }
  const group = headers[GROUP_PROPERTY];
  const pushId = headers[PUSH_ID_PROPERTY];
  if (group === undefined && pushId === undefined) {
    return rejected(
      'missing_target',
      `The message has no target: set the string property ${GROUP_PROPERTY} (a group name) ` +
        `or ${PUSH_ID_PROPERTY} (a push ID).`,
    );
  }
  if (group !== undefined && pushId !== undefined) {
    return rejected(
      'ambiguous_target',
      `The message has both ${GROUP_PROPERTY} and ${PUSH_ID_PROPERTY}: set exactly one of them ` +
        '(send one message per target).',
    );
  }
  if (group !== undefined && !isGroupName(group)) {
    return rejected(
      'invalid_group_name',
      `${GROUP_PROPERTY} ${quoted(group)} is not a group name: group names are 1-200 characters ` +
        'of letters, digits and . _ : ~ -',
    );
  }
  if (pushId !== undefined && !isPushId(pushId)) {
    return rejected(
      'invalid_push_id',
      `${PUSH_ID_PROPERTY} ${quoted(pushId)} is not a push ID: push IDs are 16-64 characters of ` +
        'letters, digits, _ and -.',
    );
  }

  // ActiveMQ marks a BytesMessage (and only that) with a content-length header.
  const bytesMessage = headers['content-length'] !== undefined;
  const notText =
    'The body is not JSON text: send a TextMessage whose text is the JSON payload ' +
    '(or is empty for no payload).';
  if (body.byteLength > MAX_NOTIFY_BODY_BYTES) {
    return rejected(
      'payload_too_large',
      `The body is ${body.byteLength} bytes; the payload may be at most ${MAX_PAYLOAD_BYTES} ` +
        'bytes once serialized: send less (e.g. an id the page then fetches).',
    );
  }
  let text: string;
  try {
    text = utf8.decode(body);
  } catch {
    return rejected('not_a_text_message', `${notText} (the body is not UTF-8).`);
  }
  let payloadJson: string;
  if (text.trim() === '') {
    payloadJson = 'null';
  } else {
    let payload: unknown;
    try {
      payload = JSON.parse(text);
    } catch (error) {
      const detail = (error as Error).message;
      return bytesMessage
        ? rejected('not_a_text_message', `${notText} (a BytesMessage whose bytes: ${detail}).`)
        : rejected(
            'invalid_json',
            `The body is not JSON (${detail}): send the payload as JSON text, e.g. ` +
              '{"text":"hello"} or "hello" with its quotes, or an empty body for no payload.',
          );
    }
    try {
      payloadJson = JSON.stringify(payload);
    } catch {
      // JSON.parse accepts nesting that JSON.stringify overflows on.
      return rejected('invalid_json', 'The payload nests too deeply to be sent on: flatten it.');
    }
  }
  const size = Buffer.byteLength(payloadJson);
  if (size > MAX_PAYLOAD_BYTES) {
    return rejected(
      'payload_too_large',
      `The payload is ${size} bytes once serialized; at most ${MAX_PAYLOAD_BYTES} are allowed: ` +
        'send less (e.g. an id the page then fetches).',
    );
  }
  return group !== undefined
    ? { kind: 'group', group, payloadJson }
    : { kind: 'push-id', pushId: pushId as PushId, payloadJson };
}
